"""What a shared RedisLimiter costs, and what it buys when several processes use one quota.

Starts a throwaway ``redis-server`` on loopback (``livestats.testing.redis_server``)
and measures two things. Nothing is asserted.

1. The cost of one slot: ``--acquires`` acquire + release pairs of a quota that
   never makes anyone wait (1,000,000 per second), through a ``LocalLimiter`` and a
   ``RedisLimiter``: one after another in one coroutine (median and p99 time per
   pair), then ``CONCURRENCY`` coroutines at once (pairs per second). Each limiter
   gets a short warm-up first (connections, script loading). A redis-py ``PING``
   is timed the same way for reference: a pair is two Redis round trips.
2. Fidelity across processes: ``--processes`` worker processes (spawned), each
   with its own ``TencentClient`` and its own limiter, start together (a
   ``multiprocessing.Barrier``) and split ``--calls`` ``get_room_stats`` calls
   between them at the DEFAULT Tencent quota, against one in-process
   ``Simulator`` that enforces the same quota and records every arrival. Once
   with a ``RedisLimiter`` each (one key prefix: one shared quota), once with a
   ``LocalLimiter`` each (what a team gets without a shared limiter). Shows the
   achieved rate and its ratio to the quota (``pacing_report``), the busiest
   window against the limit, the requests the simulator refused, and the Lua
   scripts Redis ran per call (2 is one acquire and one release; more is polling).

    .venv/bin/python benchmarks/redis_limiter.py [--acquires N] [--processes P]
        [--calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import queue
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any

import _common

from livestats import Limiter, LocalLimiter, Quota, RedisLimiter, TencentClient
from livestats.providers.tencent.quotas import DEFAULT_QUOTAS
from livestats.testing import Simulator, TencentSim, pacing_report, redis_server

ROOMS = 200
OPERATION = "get_room_stats"
QUOTA = DEFAULT_QUOTAS[OPERATION]
#: Big enough that no acquire in the cost runs ever waits: only the limiter's own cost shows.
COST_QUOTA = Quota(1_000_000, 1.0)
CONCURRENCY = 32
WARMUP_PAIRS = 200
#: The bar the multi-process test of RedisLimiter holds the group to.
TARGET_RATIO = 0.90
START_TIMEOUT = 60.0  # spawned workers import livestats before they reach the barrier
KINDS = {"redis": "shared RedisLimiter", "local": "LocalLimiter each"}


# -- 1. the cost of one slot ---------------------------------------------------------------


Op = Callable[[], Awaitable[None]]


def _pair(limiter: Limiter, key: str) -> Op:
    """One acquire + release of a slot of ``key``: what every paced request costs."""

    async def pair() -> None:
        permit = await limiter.acquire(key, COST_QUOTA)
        await permit.release()

    return pair


async def _sequential(op: Op, times: int) -> list[float]:
    """Seconds each ``op`` took, one after another."""
    took = []
    for _ in range(times):
        started = time.perf_counter()
        await op()
        took.append(time.perf_counter() - started)
    return took


async def _concurrent(op: Op, times: int, concurrency: int) -> float:
    """Seconds for ``times`` ops by ``concurrency`` coroutines taking turns at a counter."""
    counter = itertools.count()

    async def worker() -> None:
        while next(counter) < times:
            await op()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def _cost_of(make: Callable[[str], Op], pairs: int) -> dict[str, float]:
    """Warm up, then time ``make(key)`` alone and ``CONCURRENCY`` at a time."""
    run = secrets.token_hex(4)  # fresh keys: no slot left over from an earlier phase
    warmup = make(f"warmup:{run}")
    await _sequential(warmup, min(pairs, WARMUP_PAIRS))
    await _concurrent(warmup, min(pairs, WARMUP_PAIRS), CONCURRENCY)
    took = await _sequential(make(f"sequential:{run}"), pairs)
    elapsed = await _concurrent(make(f"concurrent:{run}"), pairs, CONCURRENCY)
    return {
        "median_us": statistics.median(took) * 1e6,
        "p99_us": _p99(took) * 1e6,
        "mean_us": statistics.fmean(took) * 1e6,
        "sequential_per_s": len(took) / sum(took),
        "concurrent_per_s": pairs / elapsed,
    }


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def _ping_cost(redis_url: str, pairs: int) -> dict[str, float]:
    """A bare PING through redis-py: the floor under any Redis round trip (a pair makes two)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)

    def make(key: str) -> Op:
        async def ping() -> None:
            await client.ping()

        return ping

    try:
        return await _cost_of(make, pairs)
    finally:
        await client.aclose()


async def _acquire_cost(redis_url: str, pairs: int) -> dict[str, Any]:
    limiter = LocalLimiter()
    local = await _cost_of(lambda key: _pair(limiter, key), pairs)
    async with RedisLimiter(redis_url, key_prefix=f"bench-{secrets.token_hex(4)}") as shared:
        redis = await _cost_of(lambda key: _pair(shared, key), pairs)
    return {
        "pairs": pairs,
        "concurrency": CONCURRENCY,
        "quota": {"limit": COST_QUOTA.limit, "period": COST_QUOTA.period},
        "local": local,
        "redis": redis,
        "redis_over_local": {name: redis[name] / local[name] for name in local},
        "ping": await _ping_cost(redis_url, pairs),
    }


# -- 2. fidelity across processes ------------------------------------------------------------


def _collect(
    *,
    kind: str,
    worker: int,
    base_url: str,
    redis_url: str,
    key_prefix: str,
    credentials: tuple[int, str, str],
    room_ids: list[str],
    start: Barrier,
    results: Any,
) -> None:
    """Worker process entry point: collect ``room_ids`` with a client and limiter of its own.

    Runs in a spawned child, which imports this script as ``__mp_main__``. Puts one
    dict on ``results``: the outcome, or what went wrong.
    """

    async def main() -> dict[str, Any]:
        sdkappid, identifier, secret_key = credentials
        async with AsyncExitStack() as stack:
            limiter: Limiter = (
                await stack.enter_async_context(RedisLimiter(redis_url, key_prefix=key_prefix))
                if kind == "redis"
                else LocalLimiter()
            )
            client = await stack.enter_async_context(
                TencentClient(
                    sdkappid,
                    identifier,
                    secret_key=secret_key,
                    base_url=base_url,
                    limiter=limiter,
                )
            )
            # Blocks the loop, which has nothing to do yet: every worker ready, all start.
            start.wait(START_TIMEOUT)
            started = time.perf_counter()
            ok = 0
            errors: Counter[str] = Counter()
            async for result in client.get_room_stats_many(room_ids):
                if result.error is None:
                    ok += 1
                else:
                    errors[type(result.error).__name__] += 1
            elapsed = time.perf_counter() - started
        return {"worker": worker, "ok": ok, "errors": dict(errors), "elapsed_s": elapsed}

    try:
        outcome = asyncio.run(main())
    except Exception as exc:  # reported by the parent, which would otherwise wait for nothing
        outcome = {"worker": worker, "crash": f"{type(exc).__name__}: {exc}"}
    results.put(outcome)


def _shares(calls: int, processes: int) -> list[int]:
    """``calls`` split as evenly as whole numbers allow."""
    base, extra = divmod(calls, processes)
    return [base + (1 if w < extra else 0) for w in range(processes)]


async def _gather(
    results: Any, workers: Sequence[BaseProcess], timeout: float
) -> list[dict[str, Any]]:
    """One outcome per worker, awaited in a thread so the simulator keeps serving."""
    deadline = time.monotonic() + timeout
    outcomes: list[dict[str, Any]] = []
    while len(outcomes) < len(workers):
        try:
            outcome = await asyncio.to_thread(results.get, True, 1.0)
        except queue.Empty:
            died = [w.name for w in workers if w.exitcode not in (None, 0)]
            if died:
                raise RuntimeError(f"worker processes died: {', '.join(died)}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not finish within {timeout:g} s") from None
            continue
        if "crash" in outcome:
            raise RuntimeError(f"worker {outcome['worker']} failed: {outcome['crash']}")
        outcomes.append(outcome)
    return sorted(outcomes, key=lambda o: int(o["worker"]))


async def _stop(workers: Sequence[BaseProcess]) -> None:
    for worker in workers:
        await asyncio.to_thread(worker.join, 10)
        if worker.is_alive():
            worker.kill()
            await asyncio.to_thread(worker.join)


async def _processes_run(kind: str, processes: int, calls: int, redis_url: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    async with Simulator(tencent=TencentSim(rooms=ROOMS)) as sim:
        creds = sim.tencent
        start = context.Barrier(processes)
        results = context.Queue()
        prefix = f"bench-{secrets.token_hex(4)}"  # one prefix: the workers share one quota
        room_cycle = itertools.cycle(sim.room_ids)
        workers = [
            context.Process(
                target=_collect,
                kwargs={
                    "kind": kind,
                    "worker": w,
                    "base_url": sim.url,
                    "redis_url": redis_url,
                    "key_prefix": prefix,
                    "credentials": (creds.sdkappid, creds.identifier, creds.secret_key),
                    "room_ids": list(itertools.islice(room_cycle, share)),
                    "start": start,
                    "results": results,
                },
                name=f"livestats-{kind}-worker-{w}",
                daemon=True,
            )
            for w, share in enumerate(_shares(calls, processes))
        ]
        scripts_before = await _scripts_run(redis_url)
        for worker in workers:
            worker.start()
        try:
            # Generous: several times the quota's pace, plus the workers' start-up.
            outcomes = await _gather(results, workers, 5 * calls / QUOTA.rate + START_TIMEOUT)
        finally:
            await _stop(workers)
        arrivals = sim.arrivals(OPERATION)
        violations = sim.violations(OPERATION)
    scripts = await _scripts_run(redis_url) - scripts_before
    report = pacing_report(arrivals, QUOTA)
    errors: Counter[str] = Counter()
    for outcome in outcomes:
        errors.update(outcome["errors"])
    elapsed = [float(o["elapsed_s"]) for o in outcomes]
    return {
        "limiter": kind,
        "calls": calls,
        "ok": sum(int(o["ok"]) for o in outcomes),
        "errors": dict(errors),
        "requests_seen": report.calls,
        "elapsed_s": max(elapsed),
        "worker_elapsed_s": elapsed,
        "rate_per_s": report.rate,
        "ratio": report.ratio,
        "busiest_window": report.busiest_window,
        "violations": violations,
        "redis_scripts": scripts,
    }


async def _fidelity(redis_url: str, processes: int, calls: int) -> dict[str, Any]:
    runs = {kind: await _processes_run(kind, processes, calls, redis_url) for kind in KINDS}
    return {
        "processes": processes,
        "calls": calls,
        "operation": OPERATION,
        "quota": {"limit": QUOTA.limit, "period": QUOTA.period},
        "target_ratio": TARGET_RATIO,
        **runs,
    }


# -- reporting ------------------------------------------------------------------------------


def _print_cost(fig: dict[str, Any], redis_version: str) -> None:
    local, redis, ratio = fig["local"], fig["redis"], fig["redis_over_local"]

    def row(name: str, f: dict[str, float], digits: int) -> list[str]:
        return [
            name,
            f"{f['median_us']:,.{digits}f}",
            f"{f['p99_us']:,.{digits}f}",
            f"{f['sequential_per_s']:,.0f}",
            f"{f['concurrent_per_s']:,.0f}",
        ]

    rows = [
        row("LocalLimiter", local, 1),
        row("RedisLimiter", redis, 0),
        [
            "RedisLimiter / LocalLimiter",
            f"{ratio['median_us']:,.0f}x",
            f"{ratio['p99_us']:,.0f}x",
            f"{ratio['sequential_per_s']:.3f}",
            f"{ratio['concurrent_per_s']:.3f}",
        ],
        row("for reference: one redis-py PING", fig["ping"], 0),
    ]
    _common.print_table(
        f"redis_limiter: cost of one acquire + release pair, {fig['pairs']} pairs, quota "
        f"{COST_QUOTA.limit:,}/{COST_QUOTA.period:g}s (never waits), "
        f"redis-server {redis_version} on loopback",
        [
            "limiter",
            "median us",
            "p99 us",
            "pairs/s, 1 coroutine",
            f"pairs/s, {fig['concurrency']} coroutines",
        ],
        rows,
    )
    print("\na RedisLimiter pair is two Redis round trips (the acquire script, the release one)")


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(errors.items())) or "0"


def _print_fidelity(fig: dict[str, Any]) -> None:
    limit, period = fig["quota"]["limit"], fig["quota"]["period"]
    runs = [fig[kind] for kind in KINDS]

    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str) -> list[str]:
        return [label, *(cell(run) for run in runs), target]

    rows = [
        row("calls", lambda r: str(r["calls"]), ""),
        row("answered", lambda r: str(r["ok"]), str(fig["calls"])),
        row("errors", lambda r: _errors(r["errors"]), "0"),
        row("requests the simulator saw", lambda r: str(r["requests_seen"]), str(fig["calls"])),
        row(
            "elapsed per worker",
            lambda r: f"{min(r['worker_elapsed_s']):.2f}-{max(r['worker_elapsed_s']):.2f} s",
            "",
        ),
        row(
            "achieved rate (arrivals)",
            lambda r: f"{r['rate_per_s']:.1f}/s",
            f"{limit / period:g}/s",
        ),
        row("ratio to quota", lambda r: f"{r['ratio']:.1%}", f">= {TARGET_RATIO:.0%}"),
        row(f"busiest {period:g} s window", lambda r: str(r["busiest_window"]), f"<= {limit}"),
        row("busiest window / limit", lambda r: f"{r['busiest_window'] / limit:.2f}x", "<= 1.00x"),
        row("violations (simulator)", lambda r: str(r["violations"]), "0"),
        row(
            "Redis round trips per call",
            lambda r: f"{r['redis_scripts'] / r['calls']:.2f}" if r["redis_scripts"] else "-",
            "",
        ),
    ]
    _common.print_table(
        f"multi-process fidelity: {fig['processes']} processes share {fig['calls']} "
        f"{fig['operation']} calls, "
        f"default quota {limit}/{period:g}s, one in-process simulator ({ROOMS} rooms)",
        ["figure", *KINDS.values(), "target"],
        rows,
        show_machine=False,
    )
    print(
        "\nrates and windows count every arrival, refused ones and retries too (as the vendor "
        "does);\na worker's elapsed time runs from the common start to its last answer"
    )


# -- running ---------------------------------------------------------------------------------


async def _redis_info(url: str, section: str) -> dict[str, Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        info: dict[str, Any] = await client.info(section)
    finally:
        await client.aclose()
    return info


async def _redis_version(url: str) -> str:
    return str((await _redis_info(url, "server")).get("redis_version", "?"))


async def _scripts_run(url: str) -> int:
    """Lua scripts the server has run so far: the limiter's round trips (nothing else uses it)."""
    stats = await _redis_info(url, "commandstats")
    return sum(int(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0)) for cmd in ("eval", "evalsha"))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="What a shared RedisLimiter costs, and what it buys across processes."
    )
    parser.add_argument(
        "--acquires", type=int, default=2000, help="acquire + release pairs (default 2000)"
    )
    parser.add_argument("--processes", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument(
        "--calls", type=int, default=2000, help="calls in all, split evenly (default 2000)"
    )
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    for name in ("acquires", "processes", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    with redis_server() as url:
        version = asyncio.run(_redis_version(url))
        cost = asyncio.run(_acquire_cost(url, args.acquires))
        _print_cost(cost, version)
        print()
        fidelity = asyncio.run(_fidelity(url, args.processes, args.calls))
        _print_fidelity(fidelity)
    _common.write_json(
        args.json,
        "redis_limiter",
        redis_version=version,
        acquire_cost=cost,
        multi_process=fidelity,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
