"""Quota fidelity against what a user would write instead of livestats.

Three clients make ``--calls`` ``get_room_stats`` calls each against their own
fresh in-process :class:`~livestats.testing.Simulator`, which enforces the DEFAULT
Tencent quota (100 per second) and records when every request arrived:

- livestats: ``TencentClient.get_room_stats_many`` with its default quota and
  concurrency;
- aiolimiter + aiohttp: ``aiolimiter.AsyncLimiter(limit, period)`` around raw
  ``aiohttp`` POSTs from as many workers as livestats uses. A leaky bucket lets a
  full bucket through at once and then drips, so the first window sees up to
  twice the limit: expect refusals;
- requests, sequential: a plain ``requests.Session`` loop, one call after the
  other, in a thread (so the in-process simulator keeps serving). Its rate is
  set by the round trip, not by the quota.

``--latency-ms`` makes the simulator answer every request that long after it
arrived (its ``slow_reply`` fault at rate 1), like a far vendor host: on
loopback (the default, 0) a sequential loop is fast enough to go over the quota;
behind a real round trip it falls far below it.

For each: the answers and errors, the achieved rate and its ratio to the quota
(``pacing_report``: calls over the windows the run occupied), the busiest window
against the limit, and the requests the simulator refused. Target for livestats:
at least 97% with 0 refused. Nothing is asserted.

    .venv/bin/python benchmarks/alternatives.py [--calls N] [--latency-ms MS] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import _common
import aiohttp
import requests
from aiolimiter import AsyncLimiter

from livestats import LocalLimiter, TencentClient
from livestats.providers.tencent.quotas import DEFAULT_QUOTAS
from livestats.providers.tencent.usersig import generate_usersig
from livestats.testing import Faults, Simulator, TencentSim, pacing_report

ROOMS = 200
OPERATION = "get_room_stats"
PATH = f"/v4/live_engine_http_srv/{OPERATION}"
QUOTA = DEFAULT_QUOTAS[OPERATION]
#: livestats' default concurrency for a paced operation: min(limit, 100).
CONCURRENCY = min(QUOTA.limit, 100)
TARGET_RATIO = 0.97
TIMEOUT_S = 10.0


def _room_ids(sim: Simulator, calls: int) -> Iterator[str]:
    return itertools.islice(itertools.cycle(sim.room_ids), calls)


def _params(sim: Simulator, usersig: str) -> dict[str, str]:
    creds = sim.tencent
    return {
        "sdkappid": str(creds.sdkappid),
        "identifier": creds.identifier,
        "usersig": usersig,
        "random": str(random.getrandbits(32)),
        "contenttype": "json",
    }


def _usersig(sim: Simulator) -> str:
    creds = sim.tencent
    return generate_usersig(
        creds.sdkappid, creds.identifier, creds.secret_key, now=int(time.time())
    )


def _ok(doc: object) -> bool:
    return isinstance(doc, dict) and doc.get("ErrorCode") == 0


# -- the three clients: each returns how many calls failed -----------------------------------


async def _livestats(sim: Simulator, calls: int) -> int:
    creds = sim.tencent
    failures = 0
    async with TencentClient(
        creds.sdkappid,
        creds.identifier,
        secret_key=creds.secret_key,
        base_url=sim.url,
        limiter=LocalLimiter(),  # fresh: the run measures itself only
    ) as client:
        async for result in client.get_room_stats_many(_room_ids(sim, calls)):
            if not result.ok:
                failures += 1
    return failures


async def _aiolimiter(sim: Simulator, calls: int) -> int:
    limiter = AsyncLimiter(QUOTA.limit, QUOTA.period)
    usersig = _usersig(sim)
    endpoint = f"{sim.url}{PATH}"
    headers = {"Content-Type": "application/json"}
    room_ids = _room_ids(sim, calls)
    failures = 0
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)

    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            nonlocal failures
            for room_id in room_ids:
                body = json.dumps({"RoomId": room_id}).encode()
                try:
                    async with (
                        limiter,
                        session.post(
                            endpoint, params=_params(sim, usersig), data=body, headers=headers
                        ) as resp,
                    ):
                        doc = json.loads(await resp.read())
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    failures += 1
                    continue
                if not _ok(doc):
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures


def _requests_loop(sim: Simulator, calls: int) -> int:
    usersig = _usersig(sim)
    endpoint = f"{sim.url}{PATH}"
    failures = 0
    with requests.Session() as session:
        for room_id in _room_ids(sim, calls):
            try:
                resp = session.post(
                    endpoint,
                    params=_params(sim, usersig),
                    json={"RoomId": room_id},
                    timeout=TIMEOUT_S,
                )
                doc = resp.json()
            except (requests.RequestException, ValueError):
                failures += 1
                continue
            if not _ok(doc):
                failures += 1
    return failures


async def _requests(sim: Simulator, calls: int) -> int:
    return await asyncio.to_thread(_requests_loop, sim, calls)


Runner = Callable[[Simulator, int], Awaitable[int]]
CLIENTS: dict[str, Runner] = {
    "livestats": _livestats,
    "aiolimiter + aiohttp": _aiolimiter,
    "requests, sequential": _requests,
}


# -- measuring and reporting -------------------------------------------------------------------


def _faults(latency_ms: float) -> Faults | None:
    if latency_ms <= 0:
        return None
    return Faults(rate=1.0, kinds=("slow_reply",), slow_delay=latency_ms / 1000)


async def _measure(name: str, calls: int, latency_ms: float) -> dict[str, Any]:
    async with Simulator(faults=_faults(latency_ms), tencent=TencentSim(rooms=ROOMS)) as sim:
        started = time.perf_counter()
        failures = await CLIENTS[name](sim, calls)
        elapsed = time.perf_counter() - started
        report = pacing_report(sim.arrivals(OPERATION), QUOTA)
        return {
            "client": name,
            "calls": calls,
            "failures": failures,
            "requests_seen": report.calls,
            "elapsed_s": elapsed,
            "rate_per_s": report.rate,
            "ratio": report.ratio,
            "busiest_window": report.busiest_window,
            "violations": sim.violations(OPERATION),
        }


async def _run(calls: int, latency_ms: float) -> list[dict[str, Any]]:
    return [await _measure(name, calls, latency_ms) for name in CLIENTS]


def _print(calls: int, latency_ms: float, runs: list[dict[str, Any]]) -> None:
    limit, period = QUOTA.limit, QUOTA.period
    _common.print_table(
        f"alternatives: {calls} {OPERATION} calls each, default quota {limit}/{period:g}s, "
        f"in-process simulator ({ROOMS} rooms, {latency_ms:g} ms added latency); "
        "target for livestats: "
        f">= {TARGET_RATIO:.0%}, 0 refused",
        [
            "client",
            "failures",
            "elapsed s",
            "achieved rate",
            "ratio to quota",
            f"busiest {period:g} s window",
            "refused (simulator)",
        ],
        [
            [
                r["client"],
                str(r["failures"]),
                f"{r['elapsed_s']:.2f}",
                f"{r['rate_per_s']:.1f}/s",
                f"{r['ratio']:.1%}",
                f"{r['busiest_window']}/{limit}",
                str(r["violations"]),
            ]
            for r in runs
        ],
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Quota fidelity of livestats against aiolimiter + aiohttp and requests."
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls per client (default 2000)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="the simulator answers this long after each request arrives (default 0)",
    )
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    runs = asyncio.run(_run(args.calls, args.latency_ms))
    _print(args.calls, args.latency_ms, runs)
    _common.write_json(
        args.json,
        "alternatives",
        operation=OPERATION,
        quota={"limit": QUOTA.limit, "period": QUOTA.period},
        target_ratio=TARGET_RATIO,
        latency_ms=args.latency_ms,
        runs=runs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
