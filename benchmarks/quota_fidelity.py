"""How much of a quota livestats uses, and whether it ever goes over.

Runs ``--calls`` calls of one operation through the client against an
in-process :class:`~livestats.testing.Simulator` that enforces the same quota and
records when every request arrived. Tencent operations use the DEFAULT quotas;
ChinaNetCenter's 300 per 300 s is scaled to 30 per 3 s (the same rate, a period
short enough to run), on both sides. Polyv uses its real 1500 per 10 s. Prints
the achieved rate and its ratio to the quota (``pacing_report``: calls over the
windows the run occupied; target >= 95%), the busiest window against the limit,
and the requests the simulator refused (target 0). Nothing is asserted.

    .venv/bin/python benchmarks/quota_fidelity.py [--calls N] [--operation OP] [--json PATH]

OP is get_room_stats (default), get_gift_count, get_stream_durations or
get_stream_info; ``--calls`` defaults to a whole number of windows of it.
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

from livestats import (
    BatchResult,
    ChinaNetCenterClient,
    LocalLimiter,
    PolyvClient,
    Quota,
    TencentClient,
)
from livestats._core.batch import fan_out
from livestats.testing import ChinaNetCenterSim, Simulator, TencentSim, pacing_report

ROOMS = 200
TARGET_RATIO = 0.95
#: Calls per operation by default: a whole number of its quota windows.
DEFAULT_CALLS = {
    "get_room_stats": 2000,
    "get_gift_count": 2000,
    "get_stream_durations": 150,
    # Six windows: a burst of 1500 takes about 1.5 s to serve on 2 cores with the
    # simulator in-process, and in a two-window run that spread alone costs 7%.
    "get_stream_info": 9000,
}
OPERATIONS = tuple(DEFAULT_CALLS)
#: ChinaNetCenter's real period (300 s) is too long to run: the same rate, scaled.
SCALED = {"get_stream_durations": Quota(30, 3.0)}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="How much of a quota livestats uses, and whether it ever goes over."
    )
    parser.add_argument("--calls", type=int, default=None, help="calls to make")
    parser.add_argument(
        "--operation", choices=OPERATIONS, default="get_room_stats", help="default get_room_stats"
    )
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.calls is None:
        args.calls = DEFAULT_CALLS[args.operation]
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    return args


def _room_ids(room_ids: list[str], calls: int) -> Iterator[str]:
    return itertools.islice(itertools.cycle(room_ids), calls)


def _tencent_results(
    sim: Simulator, client: TencentClient, operation: str, calls: int
) -> AsyncIterator[BatchResult[Any, Any]]:
    if operation == "get_room_stats":
        return client.get_room_stats_many(_room_ids(sim.room_ids, calls))
    pairs = ((room, f"anchor-{i}") for i, room in enumerate(_room_ids(sim.room_ids, calls)))
    return client.get_gift_count_many(pairs)


def _client_and_results(
    sim: Simulator, operation: str, calls: int
) -> tuple[
    TencentClient | ChinaNetCenterClient | PolyvClient, AsyncIterator[BatchResult[Any, Any]]
]:
    # A fresh limiter: the run measures itself, not what an earlier run left cooling.
    limiter = LocalLimiter()
    if operation in ("get_room_stats", "get_gift_count"):
        creds = sim.tencent
        tencent = TencentClient(
            creds.sdkappid,
            creds.identifier,
            secret_key=creds.secret_key,
            base_url=sim.url,
            limiter=limiter,
        )
        return tencent, _tencent_results(sim, tencent, operation, calls)
    if operation == "get_stream_durations":
        cnc = ChinaNetCenterClient(
            sim.chinanetcenter.username,
            sim.chinanetcenter.api_key,
            base_url=sim.url,
            quotas=dict(SCALED),
            limiter=limiter,
        )
        domains = list(sim.domains.items())

        async def one(i: int) -> object:
            domain, streams = domains[i % len(domains)]
            return await cnc.get_stream_durations({domain: streams})

        return cnc, fan_out(range(calls), one, concurrency=SCALED[operation].limit)
    polyv = PolyvClient(sim.polyv.app_id, sim.polyv.app_secret, base_url=sim.url, limiter=limiter)
    channels = itertools.islice(itertools.cycle(sim.channel_ids), calls)
    return polyv, polyv.get_stream_info_many(channels)


async def _run(operation: str, calls: int) -> dict[str, Any]:
    async with Simulator(
        tencent=TencentSim(rooms=ROOMS), chinanetcenter=ChinaNetCenterSim(quotas=dict(SCALED))
    ) as sim:
        client, results = _client_and_results(sim, operation, calls)
        async with client:
            quota = client.quotas[operation]
            assert quota is not None, "the default quotas pace every operation"
            errors: Counter[str] = Counter()
            started = time.perf_counter()
            async for result in results:
                if result.error is not None:
                    errors[type(result.error).__name__] += 1
            elapsed = time.perf_counter() - started
        report = pacing_report(sim.arrivals(operation), quota)
        return {
            "operation": operation,
            "quota": {"limit": quota.limit, "period": quota.period},
            "scaled": operation in SCALED,
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
        f"quota_fidelity: {fig['operation']}, "
        f"{'scaled' if fig['scaled'] else 'default'} quota {limit}/{period:g}s, "
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
