"""Argument parsing and the ``demo`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from livestats import LiveStatsError, TencentClient
from livestats.testing import Simulator, pacing_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livestats",
        description="Collect live-streaming statistics without breaking vendor quotas.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a collection job against the built-in simulator",
        description=(
            "Start the simulator, list every room and collect all their statistics at "
            "the vendor's default quotas, then print the achieved rate against each quota."
        ),
    )
    demo.add_argument("--rooms", type=_positive_int, default=400, help="rooms to simulate")
    demo.add_argument("--seed", type=int, default=0, help="seed of the simulated data")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_demo(rooms=args.rooms, seed=args.seed))
    except KeyboardInterrupt:
        return 130
    except LiveStatsError as err:
        print(f"livestats: {err}", file=sys.stderr)
        return 1


async def _demo(*, rooms: int, seed: int) -> int:
    async with Simulator(rooms=rooms, seed=seed) as sim:
        creds = sim.tencent
        print(f"simulator at {sim.url}, {rooms} rooms, SDKAppID {creds.sdkappid}")
        async with TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url
        ) as client:
            started = time.monotonic()
            room_ids = [room.room_id async for room in client.iter_rooms()]
            listed = time.monotonic() - started
            print(f"listed {len(room_ids)} rooms in {listed:.2f} s")

            started = time.monotonic()
            ok = failed = viewers = 0
            async for result in client.get_room_stats_many(room_ids):
                if result.value is not None:
                    ok += 1
                    viewers += result.value.total_viewers
                else:
                    failed += 1
                    print(f"  {result.key}: {result.error}", file=sys.stderr)
            collected = time.monotonic() - started
            print(
                f"collected stats of {ok} rooms ({failed} failed) in {collected:.2f} s, "
                f"{viewers:,} viewer entries in all"
            )

            print()
            print(
                f"{'operation':<16} {'calls':>6} {'achieved':>10} {'quota':>8} "
                f"{'of quota':>9} {'busiest window':>15} {'refused':>8}"
            )
            for operation in ("get_room_list", "get_room_stats"):
                quota = client.quotas[operation]
                if quota is None:
                    continue
                report = pacing_report(sim.arrivals(operation), quota)
                print(
                    f"{operation:<16} {report.calls:>6} {report.rate:>8.1f}/s "
                    f"{quota.rate:>6.0f}/s {report.ratio:>9.1%} "
                    f"{report.busiest_window:>8}/{quota.limit:<6} "
                    f"{sim.violations(operation):>8}"
                )
    return 0 if failed == 0 else 1
