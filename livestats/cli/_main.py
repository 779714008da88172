"""``livestats``: argument parsing, exit codes, and a clean stop on Ctrl-C.

Exit codes: 0 every item ok; 1 some items failed (each reported, the job went
on); 2 a usage or configuration error, told in one line; 130 interrupted by
Ctrl-C and 143 by SIGTERM (work in flight cancelled, what completed written out);
141 the reader of stdout went away (``| head``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from livestats import ConfigurationError, LiveStatsError, __version__
from livestats.cli import _commands, _simulate, _watch
from livestats.cli._config import UsageError
from livestats.cli._output import FORMATS

Handler = Callable[[argparse.Namespace], Awaitable[int]]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit 2 (argparse would print the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _output_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    group.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    return parent


def _input_options(what: str) -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument("ids", nargs="*", metavar=what.upper(), help=f"{what}s (or --input)")
    parent.add_argument(
        "-i", "--input", metavar="FILE", help=f"read {what}s from FILE, one per line (- = stdin)"
    )
    parent.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="calls in flight (default: from the quota)",
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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    handler: Handler,
    help_text: str,
    parents: Sequence[_Parser] = (),
) -> _Parser:
    command = commands.add_parser(name, help=help_text, description=help_text, parents=parents)
    command.set_defaults(handler=handler)
    return command


def build_parser() -> _Parser:
    parser = _Parser(
        prog="livestats",
        description="Collect live-streaming statistics without breaking vendor quotas.",
        epilog="Credentials come from LIVESTATS_* environment variables or the config file; "
        "see the README.",
    )
    parser.add_argument("--version", action="version", version=f"livestats {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML config file with credentials")
    providers = parser.add_subparsers(dest="provider", required=True, metavar="COMMAND")
    output = _output_options()

    tencent = providers.add_parser("tencent", help="Tencent Cloud Live")
    tencent_commands = tencent.add_subparsers(dest="command", required=True, metavar="COMMAND")
    where = _Parser(add_help=False)
    where.add_argument("--base-url", help="replace the vendor host (simulator, proxy)")
    where.add_argument("--region", choices=("china", "singapore", "silicon-valley", "jakarta"))
    stats = _add(
        tencent_commands,
        "room-stats",
        _commands.tencent_room_stats,
        "statistics of rooms",
        [_input_options("room id"), output, where],
    )
    stats.add_argument("--all", action="store_true", help="every room get_room_list returns")
    gifts = _add(
        tencent_commands,
        "gift-count",
        _commands.tencent_gift_count,
        "gift statistics of (room, receiver) pairs",
        [_input_options("room id"), output, where],
    )
    gifts.add_argument("--account", help="the receiver for lines that give only a room id")
    _add(
        tencent_commands, "rooms", _commands.tencent_rooms, "every room of the app", [output, where]
    )
    watch = _add(
        tencent_commands,
        "watch",
        _watch.tencent_watch,
        "room statistics on a schedule: every room (listed each sweep), or those given",
        [_watch_options(), output, where],
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
        _commands.chinanetcenter_durations,
        "stream push durations",
        [_input_options("stream"), output],
    )
    durations.add_argument("--domain", help="the domain of the streams given as arguments")
    durations.add_argument("--from", dest="date_from", metavar="DATE", help="first day, 2026-11-01")
    durations.add_argument("--to", dest="date_to", metavar="DATE", help="last day (inclusive)")
    durations.add_argument("--time-zone", help="X-Time-Zone, e.g. GMT+08:00")
    durations.add_argument("--base-url", help="replace the vendor host (simulator, proxy)")
    cnc_watch = _add(
        cnc_commands,
        "watch",
        _watch.chinanetcenter_watch,
        "today's push durations on a schedule",
        [_watch_options(), _input_options("stream"), output],
    )
    cnc_watch.add_argument("--domain", help="the domain of the streams given as arguments")
    cnc_watch.add_argument("--time-zone", help="X-Time-Zone, e.g. GMT+08:00 (decides 'today')")
    cnc_watch.add_argument("--base-url", help="replace the vendor host (simulator, proxy)")

    polyv = providers.add_parser("polyv", help="Polyv")
    polyv_commands = polyv.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = _add(
        polyv_commands,
        "stream-info",
        _commands.polyv_stream_info,
        "stream monitor info of live channels",
        [_input_options("channel id"), output],
    )
    info.add_argument("--start", help="ISO time (default: 3 hours ago); naive = local time")
    info.add_argument("--end", help="ISO time (default: now)")
    info.add_argument("--base-url", help="replace the vendor host (simulator, proxy)")
    polyv_watch = _add(
        polyv_commands,
        "watch",
        _watch.polyv_watch,
        "the latest stream sample of channels on a schedule",
        [_watch_options(), _input_options("channel id"), output],
    )
    polyv_watch.add_argument(
        "--window",
        type=_window,
        default=600.0,
        metavar="SECONDS",
        help="each sweep asks for the samples of this long before it (default 600, at most a day)",
    )
    polyv_watch.add_argument("--base-url", help="replace the vendor host (simulator, proxy)")

    simulate = _add(
        providers,
        "simulate",
        _simulate.simulate,
        "run the simulator for every provider and print matching credentials",
    )
    simulate.add_argument("--port", type=int, default=8080, help="default 8080 (0: any free port)")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--rooms", type=_positive, default=200)
    simulate.add_argument("--seed", type=int, default=0)

    demo = _add(
        providers,
        "demo",
        _simulate.demo,
        "a collection job across all providers against the built-in simulator",
    )
    demo.add_argument("--rooms", type=_positive, default=400, help="rooms to simulate")
    demo.add_argument("--top", type=_positive, default=200, help="rooms whose gifts to count")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_interruptible(args.handler, args))
    except (UsageError, ConfigurationError) as err:
        print(f"livestats: error: {err}", file=sys.stderr)
        return 2
    except LiveStatsError as err:  # a whole-job failure, e.g. the room list itself
        print(f"livestats: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the loop was up
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as a shell tool does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
