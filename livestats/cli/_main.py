"""``livestats``: argument parsing, exit codes, and a clean stop on Ctrl-C or SIGTERM.

Exit codes: 0 every item ok; 1 some items failed (each reported, the job went
on); 2 a usage or configuration error, or an error that stops the whole job
(credentials refused, the shared limiter unusable), told in one line; 130
interrupted by Ctrl-C and 143 by SIGTERM (work in flight cancelled, what
completed written out and closed); 141 the reader of stdout went away (``| head``).

This module imports nothing beyond the SDK: ``livestats --help`` and
``--version`` work without the ``cli`` extra, and a command then says what to
install. The commands themselves are imported when one runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import signal
import sys
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from livestats import AuthenticationError, ConfigurationError, LiveStatsError, __version__
from livestats.cli._clients import parse_quota_option
from livestats.cli._config import ENVIRONMENT, UsageError
from livestats.cli._log import logging_to_stderr
from livestats.cli._output import FORMATS, error_detail, error_summary

Handler = Callable[[argparse.Namespace], Awaitable[int]]

INSTALL_CLI = "pip install 'livestats[cli]'"

#: Settings every command reads, whatever the provider.
COMMON_ENVIRONMENT = {
    "LIVESTATS_CONFIG": "config file (~/.config/livestats/config.toml)",
    "LIVESTATS_LIMITER_PATH": "shared quota file, in ~/.cache/livestats",
    "LIVESTATS_REDIS_URL": "share quotas through this Redis (as --redis)",
}

#: Help is laid out for a terminal this wide.
HELP_WIDTH = 80


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit 2 (argparse would print the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _epilog(examples: Sequence[str], provider: str | None) -> str:
    """Examples, then each variable the command reads, within :data:`HELP_WIDTH`."""
    lines = ["examples:", *(f"  {example}" for example in examples), "", "environment:"]
    variables = {
        variable: f"[{provider}] {setting} in the config file"
        for setting, variable in (ENVIRONMENT.get(provider, {}) if provider else {}).items()
    }
    variables.update(COMMON_ENVIRONMENT)
    width = min(30, max(len(v) for v in variables))
    for variable, what in variables.items():
        line = f"  {variable.ljust(width)}  {what}"
        if len(variable) <= width and len(line) < HELP_WIDTH:
            lines.append(line)
        else:  # a long name or text: the text on a line of its own
            lines += [
                f"  {variable}",
                *textwrap.wrap(
                    what, HELP_WIDTH - 1, initial_indent=" " * 6, subsequent_indent=" " * 6
                ),
            ]
    return "\n".join(lines)


def _common(*, clients: bool) -> _Parser:
    """Options every command takes after its name too (``livestats tencent rooms --config F``)."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("settings")
    # SUPPRESS: given before the command, a value is not reset here.
    group.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML config file with credentials and the [limiter] table",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the debug log on stderr (every request; secrets shown as [secure])",
    )
    if clients:
        group.add_argument(
            "--redis",
            metavar="URL",
            help="share quotas through this Redis (redis://host:6379/0) instead of the "
            "per-user SQLite file (needs the redis extra)",
        )
        group.add_argument(
            "--quota",
            metavar="OPERATION=REQUESTS/SECONDS",
            action="append",
            type=parse_quota_option,
            help="pace OPERATION by this quota instead of the vendor's published one, "
            "e.g. get_room_stats=500/1 for a raised limit (repeat for more)",
        )
    return parent


def _output_options(*, resume: bool) -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument(
        "--format", choices=FORMATS, default="table", help="how rows are written (default: table)"
    )
    group.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    if resume:
        group.add_argument(
            "--resume",
            action="store_true",
            help="carry on the job whose output is -o FILE (jsonl or csv): skip the items "
            "it holds without an error, ask again for the rest, and append them",
        )
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    return parent


def _input_options(what: str) -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument(
        "ids", nargs="*", metavar=what.upper().replace(" ", "_"), help=f"{what}s (- = stdin)"
    )
    parent.add_argument(
        "-i", "--input", metavar="FILE", help=f"read {what}s from FILE, one per line (- = stdin)"
    )
    parent.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="calls in flight at most (default: from the quota)",
    )
    return parent


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 365 * 86400:  # also refuses nan and inf
        raise argparse.ArgumentTypeError("must be a positive number of seconds, at most a year")
    return value


def _window(text: str) -> float:
    value = _seconds(text)
    if value > 86400:
        raise argparse.ArgumentTypeError("must be at most a day (86400 seconds)")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be from 0 to 65535 (0: any free port)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _watch_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("schedule and metrics")
    group.add_argument(
        "--every",
        type=_seconds,
        required=True,
        metavar="SECONDS",
        help="start a sweep every SECONDS (drift-free; back to back if the quota cannot keep up)",
    )
    group.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve /metrics for Prometheus on PORT (needs the prometheus extra)",
    )
    group.add_argument(
        "--metrics-host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)"
    )
    return parent


def _base_url(parser: _Parser) -> None:
    parser.add_argument(
        "--base-url", metavar="URL", help="replace the vendor host (the simulator, a proxy)"
    )


def _add(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    handler: str,
    help_text: str,
    *,
    examples: Sequence[str],
    provider: str | None,
    parents: Sequence[_Parser] = (),
) -> _Parser:
    """A command; ``handler`` is ``module:function`` under livestats.cli, imported to run."""
    command = commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=_epilog(examples, provider),
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.set_defaults(handler=handler)
    return command


def build_parser() -> _Parser:
    missing_cli = importlib.util.find_spec("rich") is None
    epilog = (
        "Credentials come from LIVESTATS_* environment variables or the config file; "
        "each command's --help lists them, with examples."
    )
    if missing_cli:
        epilog += f" The commands need the cli extra, not installed here: {INSTALL_CLI}"
    parser = _Parser(
        prog="livestats",
        description="Collect live-streaming statistics without breaking vendor quotas.",
        epilog=epilog,
    )
    parser.add_argument("--version", action="version", version=f"livestats {__version__}")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML config file with credentials (see the README)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the debug log on stderr")
    providers = parser.add_subparsers(dest="provider", required=True, metavar="COMMAND")
    output = _output_options(resume=False)
    resumable = _output_options(resume=True)
    clients = _common(clients=True)

    tencent = providers.add_parser("tencent", help="Tencent Cloud Live")
    tencent_commands = tencent.add_subparsers(dest="command", required=True, metavar="COMMAND")
    where = _Parser(add_help=False)
    _base_url(where)
    where.add_argument(
        "--region",
        choices=("china", "singapore", "silicon-valley", "jakarta"),
        metavar="REGION",
        help="the API region: china (the default), singapore, silicon-valley or jakarta",
    )
    stats = _add(
        tencent_commands,
        "room-stats",
        "_commands:tencent_room_stats",
        "statistics of rooms",
        examples=[
            "livestats tencent room-stats room-1 room-2",
            "livestats tencent room-stats --input ids.txt --format csv -o stats.csv",
            "livestats tencent room-stats -i ids.txt --format jsonl -o out.jsonl --resume",
            "livestats tencent room-stats --all --format jsonl",
            "cat ids.txt | livestats tencent room-stats - --quota get_room_stats=500/1",
        ],
        provider="tencent",
        parents=[_input_options("room id"), resumable, where, clients],
    )
    stats.add_argument("--all", action="store_true", help="every room get_room_list returns")
    gifts = _add(
        tencent_commands,
        "gift-count",
        "_commands:tencent_gift_count",
        "gift statistics of (room, receiver) pairs",
        examples=[
            "livestats tencent gift-count --account anchor-1 room-1 room-2",
            "livestats tencent gift-count --input pairs.txt   # lines: room_id account",
        ],
        provider="tencent",
        parents=[_input_options("room id"), resumable, where, clients],
    )
    gifts.add_argument("--account", help="the receiver (From_Account) for rooms given without one")
    _add(
        tencent_commands,
        "rooms",
        "_commands:tencent_rooms",
        "every room of the app",
        examples=["livestats tencent rooms", "livestats tencent rooms --format json -o rooms.json"],
        provider="tencent",
        parents=[output, where, clients],
    )
    watch = _add(
        tencent_commands,
        "watch",
        "_watch:tencent_watch",
        "room statistics on a schedule: every room (listed each sweep), or those given",
        examples=[
            "livestats tencent watch --every 60 --metrics-port 9464",
            "livestats tencent watch --every 60 --rooms rooms.txt --format jsonl -o out",
        ],
        provider="tencent",
        parents=[_watch_options(), output, where, clients],
    )
    watch.add_argument("ids", nargs="*", metavar="ROOM_ID", help="rooms to watch (or --rooms)")
    watch.add_argument(
        "--rooms", metavar="FILE", help="watch the room ids in FILE, one per line (- = stdin)"
    )

    cnc = providers.add_parser("chinanetcenter", help="ChinaNetCenter (Wangsu)")
    cnc_commands = cnc.add_subparsers(dest="command", required=True, metavar="COMMAND")
    durations = _add(
        cnc_commands,
        "durations",
        "_commands:chinanetcenter_durations",
        "stream push durations",
        examples=[
            "livestats chinanetcenter durations --domain live1.example.com live/show-1 \\\n"
            "      --from 2026-09-01 --to 2026-11-09",
            "livestats chinanetcenter durations -i streams.txt  # lines: domain app/stream",
        ],
        provider="chinanetcenter",
        parents=[_input_options("stream"), resumable, clients],
    )
    durations.add_argument("--domain", help="the domain of the streams given as arguments")
    durations.add_argument("--from", dest="date_from", metavar="DATE", help="first day, 2026-11-01")
    durations.add_argument("--to", dest="date_to", metavar="DATE", help="last day (inclusive)")
    durations.add_argument(
        "--time-zone", help="X-Time-Zone, e.g. GMT+08:00 (decides where days start)"
    )
    _base_url(durations)
    cnc_watch = _add(
        cnc_commands,
        "watch",
        "_watch:chinanetcenter_watch",
        "today's push durations on a schedule",
        examples=["livestats chinanetcenter watch --every 300 --domain live1.example.com live/a"],
        provider="chinanetcenter",
        parents=[_watch_options(), _input_options("stream"), output, clients],
    )
    cnc_watch.add_argument("--domain", help="the domain of the streams given as arguments")
    cnc_watch.add_argument("--time-zone", help="X-Time-Zone, e.g. GMT+08:00 (decides 'today')")
    _base_url(cnc_watch)

    polyv = providers.add_parser("polyv", help="Polyv")
    polyv_commands = polyv.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = _add(
        polyv_commands,
        "stream-info",
        "_commands:polyv_stream_info",
        "stream monitor info of live channels",
        examples=[
            "livestats polyv stream-info 2477096 2272655 --start 2026-11-22T09:00+08:00",
            "livestats polyv stream-info --input channels.txt --format jsonl -o info.jsonl",
        ],
        provider="polyv",
        parents=[_input_options("channel id"), resumable, clients],
    )
    info.add_argument("--start", help="ISO time (default: 3 hours ago); naive = local time")
    info.add_argument("--end", help="ISO time (default: now)")
    _base_url(info)
    polyv_watch = _add(
        polyv_commands,
        "watch",
        "_watch:polyv_watch",
        "the latest stream sample of channels on a schedule",
        examples=["livestats polyv watch --every 60 2477096 2272655 --metrics-port 9464"],
        provider="polyv",
        parents=[_watch_options(), _input_options("channel id"), output, clients],
    )
    polyv_watch.add_argument(
        "--window",
        type=_window,
        default=600.0,
        metavar="SECONDS",
        help="each sweep asks for the samples of this long before it (default 600, at most a day)",
    )
    _base_url(polyv_watch)

    _add(
        providers,
        "quotas",
        "_quotas:quotas",
        "each operation's quota: its key, as configured, in effect, and the limiter",
        examples=[
            "livestats quotas",
            "livestats quotas --quota get_room_stats=500/1 --redis redis://localhost/0",
        ],
        provider=None,
        parents=[output, clients],
    )

    simulate = _add(
        providers,
        "simulate",
        "_simulate:simulate",
        "run the simulator for every provider and print matching credentials",
        examples=[
            "livestats simulate --port 8080",
            'eval "$(livestats simulate --port 8080 | grep ^export)"   # in another shell',
        ],
        provider=None,
        parents=[_common(clients=False)],
    )
    simulate.add_argument(
        "--port", type=_port, default=8080, help="port to listen on (default 8080; 0: any free)"
    )
    simulate.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    simulate.add_argument(
        "--rooms", type=_positive, default=200, help="Tencent rooms to simulate (default 200)"
    )
    simulate.add_argument(
        "--seed", type=_whole, default=0, help="seed of the simulated data (default 0)"
    )

    demo = _add(
        providers,
        "demo",
        "_simulate:demo",
        "a collection job across all providers against the built-in simulator",
        examples=["livestats demo", "livestats demo --rooms 1000 --no-progress"],
        provider=None,
        parents=[_common(clients=False)],
    )
    demo.add_argument("--rooms", type=_positive, default=400, help="rooms to simulate (400)")
    demo.add_argument("--top", type=_positive, default=200, help="rooms whose gifts to count (200)")
    demo.add_argument("--seed", type=_whole, default=0, help="seed of the simulated data (0)")
    demo.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: only when stderr is a terminal)",
    )
    return parser


def _handler(reference: str) -> Handler:
    """The command's function, imported now (its module may need the cli extra)."""
    module, _, name = reference.partition(":")
    try:
        loaded = importlib.import_module(f"livestats.cli.{module}")
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in ("rich", "tomli"):
            raise UsageError(f"this command needs {missing}: {INSTALL_CLI}") from None
        raise
    handler: Handler = getattr(loaded, name)
    return handler


#: What stops a command, the exit code it then ends with, and the line it says.
STOPS = {
    signal.SIGINT: (130, "livestats: interrupted"),
    signal.SIGTERM: (143, "livestats: terminated"),
}


async def _interruptible(handler: Handler, args: argparse.Namespace) -> int:
    """Run the command; Ctrl-C or SIGTERM cancels it, so its cleanup (flushing output) runs.

    The exit code is then 130 (Ctrl-C) or 143 (SIGTERM), as a shell reports a
    command those signals ended.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    stopped_by: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        stopped_by.append(signum)
        task.cancel()

    # Put back what was there (asyncio would leave the defaults), for a caller that
    # runs main() in its own process and has handlers of its own.
    before = {signum: signal.getsignal(signum) for signum in STOPS}
    for signum in STOPS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await handler(args)
    except asyncio.CancelledError:
        if not stopped_by:
            raise
        code, line = STOPS[stopped_by[0]]
        print(line, file=sys.stderr)
        return code
    finally:
        for signum, previous in before.items():
            loop.remove_signal_handler(signum)
            if previous is not None:
                signal.signal(signum, previous)


def _stopped(err: LiveStatsError) -> str:
    """The one line for an error that ends the whole job."""
    if isinstance(err, AuthenticationError):
        provider = err.provider or "the vendor"
        return (
            f"{provider} refused the credentials ({error_summary(err)}); nothing more was "
            f"sent: check the {provider} settings (LIVESTATS_{provider.upper()}_* or "
            f"[{provider}] in the config file)"
        )
    return f"{type(err).__name__}: {error_detail(err)}; the job stopped"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    try:
        with logging_to_stderr(verbose):
            handler = _handler(args.handler)
            return asyncio.run(_interruptible(handler, args))
    except (UsageError, ConfigurationError) as err:
        print(f"livestats: error: {err}", file=sys.stderr)
        return 2
    except LiveStatsError as err:
        if err.dooms_batch or isinstance(err, AuthenticationError):
            print(f"livestats: error: {_stopped(err)}", file=sys.stderr)
            return 2
        # A whole-job failure that is not the setting's fault, e.g. the room list itself.
        print(f"livestats: {type(err).__name__}: {error_detail(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the loop was up
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a shell tool does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
