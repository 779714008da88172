"""One quota, many consumers, in one process: priorities, learned limits, smoothing.

Three runs of ``TencentClient`` / ``PolyvClient`` over ``MockTransport`` on the
real event loop (real time; the vendor is a function that sleeps its round trip):

1. **Interactive beside a batch.** A bulk batch keeps a 100/s quota full while a
   dashboard makes one call every 0.2 s. The dashboard's waits, as INTERACTIVE (the
   default of a single call) and, for contrast, as BULK (first come, first served
   behind the batch's workers). The batch's rate is printed beside.
2. **Learned limits.** A strict vendor that allows 60/s (refusing the rest with
   60007) and a client told 100/s: 1,500 calls, against the ideal 25 s; the
   refusals, and the effective limit second by second.
3. **Smoothing.** 1,500 Polyv calls at once (concurrency 1,500) on a 1500/10 s
   quota, with and without ``burst=150``, against a vendor whose round trip grows
   with the requests it has in hand (20 ms + 0.2 ms each, a loaded gateway): the
   most requests started in any second, the round trip's median and 95th
   percentile, the time to the first result and to the last.

Run: ``.venv/bin/python benchmarks/sharing.py`` (about 60 s; ``--only`` picks runs).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import json
import math
import statistics
import sys
import time
from typing import Any

from _common import add_json_option, print_table, write_json

import livestats
from livestats import HttpRequest, HttpResponse, LocalLimiter, Priority, Quota, RetryPolicy
from livestats.testing import MockTransport

STATS = {
    "TotalViewers": 1,
    "TotalGiftsSent": 0,
    "TotalGiftCoins": 0,
    "TotalUniqueGiftSenders": 0,
    "TotalLikesReceived": 0,
    "TotalMsgCount": 0,
}
OK = json.dumps({"ActionStatus": "OK", "ErrorCode": 0, "RequestId": "r", "Response": STATS})
REFUSED = json.dumps({"ActionStatus": "FAIL", "ErrorCode": 60007, "ErrorInfo": "frequency"})
POLYV_OK = json.dumps({"code": 200, "status": "success", "data": []})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def tencent(transport: MockTransport, **kwargs: Any) -> livestats.TencentClient:
    kwargs.setdefault("limiter", LocalLimiter())
    return livestats.TencentClient(
        1400000000, "admin", secret_key="benchmark-secret-key-0123", transport=transport, **kwargs
    )


async def answer_after(seconds: float, body: str) -> HttpResponse:
    await asyncio.sleep(seconds)
    return HttpResponse(status=200, body=body.encode(), elapsed=seconds)


# -- 1. interactive beside a batch -----------------------------------------------------------


async def beside_a_batch(priority: Priority, seconds: float) -> dict[str, Any]:
    async def vendor(request: HttpRequest) -> HttpResponse:
        return await answer_after(0.02, OK)

    client = tencent(MockTransport(vendor), retry=RetryPolicy.instant())
    loop = asyncio.get_running_loop()
    started = loop.time()
    done = 0

    async def batch() -> None:
        nonlocal done
        ids = (f"bulk-{i}" for i in range(10**9))
        async for result in client.get_room_stats_many(ids, concurrency=100):
            done += result.ok
            if loop.time() - started > seconds:
                break

    running = asyncio.create_task(batch())
    waits = []
    await asyncio.sleep(1.0)  # the batch has filled the window
    while loop.time() - started < seconds - 0.5:
        asked = loop.time()
        await client.get_room_stats("dashboard", priority=priority)
        waits.append(loop.time() - asked - 0.02)  # the wait: less the round trip
        await asyncio.sleep(0.2)
    await running
    elapsed = loop.time() - started
    return {
        "priority": priority.name,
        "calls": len(waits),
        "p50": statistics.median(waits),
        "p95": pct(waits, 0.95),
        "max": max(waits),
        "batch_rate": done / elapsed,
    }


# -- 2. learned limits -----------------------------------------------------------------------


class Judge:
    """At most ``limit`` arrivals in any ``period``; more are refused (Tencent's 60007)."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.arrivals: collections.deque[float] = collections.deque()
        self.refusals = 0

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0.01)
        at = asyncio.get_running_loop().time()
        while self.arrivals and self.arrivals[0] <= at - self.period:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.limit:
            self.refusals += 1
            body = REFUSED
        else:
            self.arrivals.append(at)
            body = OK
        return await answer_after(0.01, body)


async def learned(calls: int) -> dict[str, Any]:
    judge = Judge(60, 1.0)
    client = tencent(MockTransport(judge), retry=RetryPolicy())
    loop = asyncio.get_running_loop()
    started = loop.time()
    trace: list[int] = []

    async def watch() -> None:
        while True:
            quota = client.effective_quota("get_room_stats")
            trace.append(0 if quota is None else quota.limit)
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch())
    ok = failed = 0
    async for result in client.get_room_stats_many(f"room-{i}" for i in range(calls)):
        ok += result.ok
        failed += not result.ok
    elapsed = loop.time() - started
    watcher.cancel()
    ideal = calls / 60
    return {
        "calls": calls,
        "ok": ok,
        "failed": failed,
        "elapsed": elapsed,
        "ideal": ideal,
        "ratio": elapsed / ideal,
        "refusals": judge.refusals,
        "effective_by_second": trace,
    }


# -- 3. smoothing ----------------------------------------------------------------------------


async def smoothing(burst: int | None, calls: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    in_hand = 0
    starts: list[float] = []
    trips: list[float] = []

    async def vendor(request: HttpRequest) -> HttpResponse:
        nonlocal in_hand
        in_hand += 1
        starts.append(loop.time())
        trip = 0.02 + 0.0002 * in_hand
        try:
            await asyncio.sleep(trip)
        finally:
            in_hand -= 1
        trips.append(trip)
        return HttpResponse(status=200, body=POLYV_OK.encode(), elapsed=trip)

    client = livestats.PolyvClient(
        "benchmark-app",
        "benchmark-secret-0123",
        transport=MockTransport(vendor),
        limiter=LocalLimiter(),
        quotas={"get_stream_info": Quota(1500, 10.0, burst=burst)},
        retry=RetryPolicy.instant(),
    )
    started = loop.time()
    first = None
    ok = 0
    channels = (f"channel-{i}" for i in range(calls))
    async for result in client.get_stream_info_many(channels, concurrency=calls):
        if first is None:
            first = loop.time() - started
        ok += result.ok
    last = loop.time() - started
    starts.sort()
    busiest = max(bisect.bisect_left(starts, t + 1.0) - i for i, t in enumerate(starts))
    return {
        "burst": burst,
        "ok": ok,
        "most_started_in_1s": busiest,
        "rtt_p50_ms": statistics.median(trips) * 1000,
        "rtt_p95_ms": pct(trips, 0.95) * 1000,
        "first_result_s": first,
        "last_result_s": last,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if "priorities" in args.only:
        rows = [
            await beside_a_batch(p, args.seconds) for p in (Priority.INTERACTIVE, Priority.BULK)
        ]
        figures["priorities"] = rows
        print_table(
            "1. a dashboard call every 0.2 s beside a batch keeping 100/s full"
            f" ({args.seconds:g} s)",
            ["dashboard as", "calls", "wait p50 s", "p95 s", "max s", "batch rate /s"],
            [
                [
                    r["priority"],
                    str(r["calls"]),
                    f"{r['p50']:.3f}",
                    f"{r['p95']:.3f}",
                    f"{r['max']:.3f}",
                    f"{r['batch_rate']:.1f}",
                ]
                for r in rows
            ],
        )
        print()
    if "learned" in args.only:
        r = await learned(args.calls)
        figures["learned"] = r
        print_table(
            f"2. {args.calls} calls, the vendor allows 60/s, the client is told 100/s",
            ["ok", "failed", "elapsed s", "ideal s", "ratio", "refusals", "target"],
            [
                [
                    str(r["ok"]),
                    str(r["failed"]),
                    f"{r['elapsed']:.1f}",
                    f"{r['ideal']:.1f}",
                    f"{r['ratio']:.2f}",
                    str(r["refusals"]),
                    "ratio <= 1.3, refusals <= 120",
                ]
            ],
            show_machine="priorities" not in args.only,
        )
        print("effective limit, second by second:", " ".join(map(str, r["effective_by_second"])))
        print()
    if "smoothing" in args.only:
        rows = [await smoothing(b, args.burst_calls) for b in (None, 150)]
        figures["smoothing"] = rows
        print_table(
            f"3. {args.burst_calls} Polyv calls at once on 1500/10 s, round trip 20 ms + 0.2 ms "
            "per request in hand",
            ["burst", "ok", "most started in 1 s", "rtt p50 ms", "rtt p95 ms", "first s", "last s"],
            [
                [
                    "none" if r["burst"] is None else str(r["burst"]),
                    str(r["ok"]),
                    str(r["most_started_in_1s"]),
                    f"{r['rtt_p50_ms']:.1f}",
                    f"{r['rtt_p95_ms']:.1f}",
                    f"{r['first_result_s']:.3f}",
                    f"{r['last_result_s']:.2f}",
                ]
                for r in rows
            ],
            show_machine=False,
        )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default="priorities,learned,smoothing",
        type=lambda s: set(s.split(",")),
        help="comma-separated runs: priorities, learned, smoothing (default: all)",
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="run 1's length (default 12)")
    parser.add_argument("--calls", type=int, default=1500, help="run 2's calls (default 1500)")
    parser.add_argument(
        "--burst-calls", type=int, default=1500, help="run 3's calls (default 1500)"
    )
    add_json_option(parser)
    arguments = parser.parse_args()
    t0 = time.monotonic()
    result = asyncio.run(main(arguments))
    print(f"\n({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    write_json(arguments.json, "sharing", **result)
