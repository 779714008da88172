"""How much of a quota livestats uses, and whether it ever goes over.

Runs ``--calls`` calls of one operation through the bulk helper
(``get_room_stats_many`` or ``get_gift_count_many``) with the client's DEFAULT
quotas, against an in-process :class:`~livestats.testing.Simulator` that enforces
the same quotas and records when every request arrived. Prints the achieved rate
and its ratio to the quota (``pacing_report``: calls over the windows the run
occupied; target >= 95%), the busiest window against the limit, and the requests
the simulator refused (target 0). Nothing is asserted.

    .venv/bin/python benchmarks/quota_fidelity.py [--calls N]
        [--operation get_room_stats|get_gift_count] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import _common

from livestats import BatchResult, TencentClient
from livestats.testing import Simulator, pacing_report

OPERATIONS = ("get_room_stats", "get_gift_count")
ROOMS = 200
TARGET_RATIO = 0.95


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="How much of a quota livestats uses, and whether it ever goes over."
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls to make (default 2000)")
    parser.add_argument(
        "--operation", choices=OPERATIONS, default="get_room_stats", help="default get_room_stats"
    )
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    return args


def _room_ids(room_ids: list[str], calls: int) -> Iterator[str]:
    return itertools.islice(itertools.cycle(room_ids), calls)


def _results(
    client: TencentClient, operation: str, room_ids: list[str], calls: int
) -> AsyncIterator[BatchResult[Any, Any]]:
    if operation == "get_room_stats":
        return client.get_room_stats_many(_room_ids(room_ids, calls))
    pairs = ((room, f"anchor-{i}") for i, room in enumerate(_room_ids(room_ids, calls)))
    return client.get_gift_count_many(pairs)


async def _run(operation: str, calls: int) -> dict[str, Any]:
    async with Simulator(rooms=ROOMS) as sim:
        creds = sim.tencent
        async with TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url
        ) as client:
            quota = client.quotas[operation]
            assert quota is not None, "the default quotas pace every operation"
            errors: Counter[str] = Counter()
            started = time.perf_counter()
            async for result in _results(client, operation, sim.room_ids, calls):
                if result.error is not None:
                    errors[type(result.error).__name__] += 1
            elapsed = time.perf_counter() - started
        report = pacing_report(sim.arrivals(operation), quota)
        return {
            "operation": operation,
            "quota": {"limit": quota.limit, "period": quota.period},
            "calls": calls,
            "requests_seen": report.calls,
            "errors": dict(errors),
            "elapsed_s": elapsed,
            "rate_per_s": report.rate,
            "ratio": report.ratio,
            "target_ratio": TARGET_RATIO,
            "busiest_window": report.busiest_window,
            "violations": sim.violations(operation),
        }


def _print(fig: dict[str, Any]) -> None:
    quota = fig["quota"]
    limit, period = quota["limit"], quota["period"]
    errors = ", ".join(f"{n} {name}" for name, n in sorted(fig["errors"].items())) or "0"
    rows = [
        ["calls", str(fig["calls"]), ""],
        ["requests the simulator saw", str(fig["requests_seen"]), str(fig["calls"])],
        ["errors", errors, "0"],
        ["elapsed", f"{fig['elapsed_s']:.2f} s", ""],
        ["achieved rate", f"{fig['rate_per_s']:.1f}/s", f"{limit / period:g}/s"],
        ["ratio to quota", f"{fig['ratio']:.1%}", f">= {TARGET_RATIO:.0%}"],
        [f"busiest {period:g} s window", str(fig["busiest_window"]), f"<= {limit}"],
        ["violations (simulator)", str(fig["violations"]), "0"],
    ]
    _common.print_table(
        f"quota_fidelity: {fig['operation']}, default quota {limit}/{period:g}s, "
        f"in-process simulator ({ROOMS} rooms)",
        ["figure", "value", "target"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    figures = asyncio.run(_run(args.operation, args.calls))
    _print(figures)
    _common.write_json(args.json, "quota_fidelity", **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
