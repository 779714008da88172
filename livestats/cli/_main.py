"""``livestats``: argument parsing, exit codes, and a clean stop on Ctrl-C.

Exit codes: 0 every item ok; 1 some items failed (each reported, the job went
on); 2 a usage or configuration error, told in one line; 130 interrupted (work
in flight cancelled, what completed written out); 141 the reader of stdout went
away (``| head``).
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
from livestats.cli import _commands, _simulate
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


async def _interruptible(handler: Handler, args: argparse.Namespace) -> int:
    """Run the command; Ctrl-C cancels it, so its cleanup (flushing output) runs, then 130."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        return await handler(args)
    except asyncio.CancelledError:
        if not interrupted:
            raise
        print("livestats: interrupted", file=sys.stderr)
        return 130
    finally:
        loop.remove_signal_handler(signal.SIGINT)


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
