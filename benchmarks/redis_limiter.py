"""What a shared RedisLimiter costs, what it buys at fleet scale, and what it survives.

Starts throwaway servers on loopback (``livestats.testing.RedisServer``, a 3-master
cluster from ``redis-cli --cluster create``) and measures three things. Nothing is
asserted.

1. The cost of one slot, per backend: ``--acquires`` acquire + release pairs of a
   quota that never makes anyone wait (1,000,000 per second), through a
   ``LocalLimiter``, a ``RedisLimiter`` on one redis-server, on the cluster, and on
   ``valkey-server`` where installed: one after another in one coroutine (median and
   p99 time per pair), then ``CONCURRENCY`` coroutines at once (pairs per second).
   A redis-py ``PING`` is timed the same way for reference.
2. Fleet scale: ``--processes`` worker processes (spawned), each with its own
   ``TencentClient`` and its own limiter, start together and spend one
   ``get_room_stats`` quota of each of ``--rates`` calls per second (``--seconds``
   of calls each) against one in-process ``Simulator`` that enforces the same quota
   and records every arrival (the strict judge). With a ``RedisLimiter`` each (one
   shared quota) and, at the first rate, a ``LocalLimiter`` each (what a team gets
   without a shared limiter). Shows the ratio to the quota (``pacing_report``), the
   busiest window, the requests the simulator refused, the Lua scripts Redis ran
   per call (``INFO commandstats``), and the connections the judge's listening
   socket dropped (Linux's ListenDrops: each makes a request of a worker's first
   burst wait a second for its SYN to be sent again; a judge's limit, not the
   limiter's).
3. Priorities across processes: ``--processes`` worker processes, each with its own
   ``RedisLimiter``, run a batch of ``BULK`` calls (``--priority-concurrency``
   coroutines each, requests of up to ``2 * --rtt-ms``) that keeps a 100/1 s quota
   full for about ``--seconds``, while one more process, already in use when the
   batch starts (one call before it), makes an ``INTERACTIVE`` call every
   ``1 / --interactive-rate`` seconds. Shows the interactive calls' waits
   (percentiles; issue 11's bar: p95 under half a period), the batch's own
   progress, the busiest window of all arrivals and the Lua scripts per call; then
   the same with the person's calls made as ``BULK`` too (first come, first served:
   what they would wait without priorities).
4. Faults: three limiters (three "processes" in this one) saturate a quota on a
   redis-server of their own while it is restarted (kill -9, data lost), frozen
   (SIGSTOP past the socket timeout), filled past ``maxmemory`` (noeviction), and
   while a worker process holding every slot is killed. Shows the busiest window
   (every grant counted as an arrival), errors, and how long after the fault ended
   the group was back at full rate, against the bound the limiter promises.

    .venv/bin/python benchmarks/redis_limiter.py [--acquires N] [--processes P]
        [--rates 100,1000] [--seconds S] [--interactive-rate R] [--rtt-ms MS]
        [--priority-concurrency N] [--only cost,fleet,priorities,faults] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import queue
import random
import re
import secrets
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, ExitStack
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import _common

from livestats import (
    Limiter,
    LimiterUnavailableError,
    LocalLimiter,
    Priority,
    Quota,
    RedisLimiter,
    TencentClient,
)
from livestats.testing import RedisServer, Simulator, TencentSim, max_in_window, pacing_report
from livestats.testing._redis import redis_cluster

ROOMS = 200
OPERATION = "get_room_stats"
#: Big enough that no acquire in the cost runs ever waits: only the limiter's own cost shows.
COST_QUOTA = Quota(1_000_000, 1.0)
CONCURRENCY = 32
WARMUP_PAIRS = 200
#: The issue's bars for 8 processes: 100/s at >= 0.95 of the quota, 1000/s at >= 0.90.
TARGET_RATIOS = {100: 0.95, 1000: 0.90}
TARGET_SCRIPTS_PER_CALL = 3.0
START_TIMEOUT = 60.0  # spawned workers import livestats before they reach the barrier
KINDS = {"redis": "shared RedisLimiter", "local": "LocalLimiter each"}
#: The quota the priorities run fills (Tencent's default for room statistics), and its key.
PRIORITY_QUOTA = Quota(100, 1.0)
KEY = "bench"
#: The fault runs: a short quota, small timeouts (what the limiter promises scales with them).
FAULT_QUOTA = Quota(20, 1.0)
FAULT_OPTIONS: dict[str, Any] = {
    "attempt_timeout": 0.5,
    "redis_timeout": 0.25,
    "outage_timeout": 10.0,
    "lease": 1.0,
    "ticket_ttl": 3.0,
}


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
    """A bare PING through redis-py: the floor under any Redis round trip."""
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


async def _redis_cost(url: str, pairs: int, *, cluster: bool = False) -> dict[str, float]:
    async with RedisLimiter(
        url, key_prefix=f"bench-{secrets.token_hex(4)}", cluster=cluster
    ) as shared:
        return await _cost_of(lambda key: _pair(shared, key), pairs)


async def _acquire_cost(
    backends: dict[str, tuple[str, bool]], ping_url: str, pairs: int
) -> dict[str, Any]:
    limiter = LocalLimiter()
    costs = {"LocalLimiter": await _cost_of(lambda key: _pair(limiter, key), pairs)}
    for name, (url, cluster) in backends.items():
        costs[name] = await _redis_cost(url, pairs, cluster=cluster)
    costs["for reference: one redis-py PING"] = await _ping_cost(ping_url, pairs)
    return {
        "pairs": pairs,
        "concurrency": CONCURRENCY,
        "quota": {"limit": COST_QUOTA.limit, "period": COST_QUOTA.period},
        "backends": costs,
    }


# -- 2. fleet scale ------------------------------------------------------------------------


def _collect(
    *,
    kind: str,
    worker: int,
    base_url: str,
    redis_url: str,
    key_prefix: str,
    credentials: tuple[int, str, str],
    quota: tuple[int, float],
    room_ids: list[str],
    start: Barrier,
    results: Any,
    concurrency: int | None = None,
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
                    quotas={OPERATION: Quota(*quota)},
                )
            )
            # Blocks the loop, which has nothing to do yet: every worker ready, all start.
            start.wait(START_TIMEOUT)
            started = time.perf_counter()
            ok = 0
            errors: Counter[str] = Counter()
            async for result in client.get_room_stats_many(room_ids, concurrency=concurrency):
                if result.error is None:
                    ok += 1
                else:
                    errors[type(result.error).__name__] += 1
            elapsed = time.perf_counter() - started
        return {"worker": worker, "ok": ok, "errors": dict(errors), "elapsed_s": elapsed}

    _report(worker, main, results)


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


async def _processes_run(
    kind: str,
    processes: int,
    quota: Quota,
    calls: int,
    redis_url: str,
    concurrency: int | None,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    async with Simulator(tencent=TencentSim(rooms=ROOMS, quotas={OPERATION: quota})) as sim:
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
                    "quota": (quota.limit, quota.period),
                    "room_ids": list(itertools.islice(room_cycle, share)),
                    "start": start,
                    "results": results,
                    "concurrency": concurrency,
                },
                name=f"livestats-{kind}-worker-{w}",
                daemon=True,
            )
            for w, share in enumerate(_shares(calls, processes))
        ]
        scripts_before = await _scripts_run(redis_url)
        drops_before = _listen_drops()
        for worker in workers:
            worker.start()
        try:
            # Generous: several times the quota's pace, plus the workers' start-up.
            outcomes = await _gather(results, workers, 5 * calls / quota.rate + START_TIMEOUT)
        finally:
            await _stop(workers)
        arrivals = sim.arrivals(OPERATION)
        violations = sim.violations(OPERATION)
    drops_after = _listen_drops()
    scripts = await _scripts_run(redis_url) - scripts_before
    report = pacing_report(arrivals, quota)
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
        "syn_drops": None if drops_after is None else drops_after - (drops_before or 0),
    }


async def _fleet(
    redis_url: str,
    processes: int,
    rates: Sequence[int],
    seconds: float,
    concurrency: int | None = None,
) -> list[dict[str, Any]]:
    runs = []
    for n, rate in enumerate(rates):
        quota = Quota(rate, 1.0)
        calls = max(processes, round(rate * seconds))
        kinds = KINDS if n == 0 else {"redis": KINDS["redis"]}
        figures = {
            kind: await _processes_run(kind, processes, quota, calls, redis_url, concurrency)
            for kind in kinds
        }
        runs.append(
            {
                "processes": processes,
                "calls": calls,
                "operation": OPERATION,
                "quota": {"limit": quota.limit, "period": quota.period},
                "target_ratio": TARGET_RATIOS.get(rate, 0.90),
                "concurrency": concurrency,
                **figures,
            }
        )
    return runs


# -- 3. priorities across processes ---------------------------------------------------------


def _spend(
    *,
    worker: int,
    redis_url: str,
    key_prefix: str,
    quota: tuple[int, float],
    calls: int,
    concurrency: int,
    rtt: float,
    start: Barrier,
    results: Any,
) -> None:
    """Worker process: spend ``calls`` BULK slots with ``concurrency`` coroutines (a batch)."""

    async def main() -> dict[str, Any]:
        rng = random.Random(worker)
        arrivals: list[float] = []
        async with RedisLimiter(redis_url, key_prefix=key_prefix) as limiter:
            paced = Quota(*quota)
            # Knows the server before the start (a first call learns its clock).
            await (await limiter.acquire(KEY, paced, priority=Priority.BULK)).release(sent=False)
            start.wait(START_TIMEOUT)
            started = time.perf_counter()
            left = itertools.count()

            async def one_coroutine() -> None:
                while next(left) < calls:
                    permit = await limiter.acquire(KEY, paced, priority=Priority.BULK)
                    hold = rng.uniform(0, 2 * rtt)
                    await asyncio.sleep(hold / 2)
                    arrivals.append(time.monotonic())
                    await asyncio.sleep(hold / 2)
                    await permit.release()

            await asyncio.gather(*(one_coroutine() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        return {"worker": worker, "arrivals": arrivals, "elapsed_s": elapsed}

    _report(worker, main, results)


def _person(
    *,
    worker: int,
    redis_url: str,
    key_prefix: str,
    quota: tuple[int, float],
    calls: int,
    every: float,
    rtt: float,
    priority: Priority,
    start: Barrier,
    results: Any,
) -> None:
    """Worker process: one call every ``every`` s (a web app's users); report each wait."""

    async def main() -> dict[str, Any]:
        rng = random.Random(1000 + worker)
        waits: list[float] = []
        arrivals: list[float] = []
        async with RedisLimiter(redis_url, key_prefix=key_prefix) as limiter:
            paced = Quota(*quota)
            # In use before the batch starts: the reserve begins with an interactive ask.
            await (await limiter.acquire(KEY, paced, priority=priority)).release()
            start.wait(START_TIMEOUT)

            async def one() -> None:
                asked = time.monotonic()
                permit = await limiter.acquire(KEY, paced, priority=priority)
                waits.append(time.monotonic() - asked)
                hold = rng.uniform(0, 2 * rtt)
                await asyncio.sleep(hold / 2)
                arrivals.append(time.monotonic())
                await asyncio.sleep(hold / 2)
                await permit.release()

            tasks = []
            for _ in range(calls):
                tasks.append(asyncio.create_task(one()))
                await asyncio.sleep(every)
            await asyncio.gather(*tasks)
        return {"worker": worker, "waits": waits, "arrivals": arrivals}

    _report(worker, main, results)


def _report(
    worker: int, main: Callable[[], Coroutine[Any, Any, dict[str, Any]]], results: Any
) -> None:
    try:
        outcome = asyncio.run(main())
    except Exception as exc:  # reported by the parent, which would otherwise wait for nothing
        outcome = {"worker": worker, "crash": f"{type(exc).__name__}: {exc}"}
    results.put(outcome)


def _percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def _priority_run(
    redis_url: str,
    processes: int,
    seconds: float,
    rtt: float,
    interactive_rate: float,
    concurrency: int,
    priority: Priority,
) -> dict[str, Any]:
    quota = PRIORITY_QUOTA
    calls = round(quota.rate * seconds)
    interactive = max(2, round(interactive_rate * seconds))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    common = {
        "redis_url": redis_url,
        "key_prefix": f"bench-{secrets.token_hex(4)}",
        "quota": (quota.limit, quota.period),
        "rtt": rtt,
        "start": start,
        "results": results,
    }
    workers = [
        context.Process(
            target=_spend,
            kwargs={**common, "worker": w, "calls": share, "concurrency": concurrency},
            name=f"livestats-bulk-worker-{w}",
            daemon=True,
        )
        for w, share in enumerate(_shares(calls, processes))
    ]
    workers.append(
        context.Process(
            target=_person,
            kwargs={
                **common,
                "worker": processes,
                "calls": interactive,
                "every": 1 / interactive_rate,
                "priority": priority,
            },
            name="livestats-person",
            daemon=True,
        )
    )
    scripts_before = await _scripts_run(redis_url)
    for worker in workers:
        worker.start()
    try:
        outcomes = await _gather(results, workers, 5 * seconds + START_TIMEOUT)
    finally:
        await _stop(workers)
    scripts = await _scripts_run(redis_url) - scripts_before
    person = next(o for o in outcomes if "waits" in o)
    batch = [o for o in outcomes if "waits" not in o]
    waits = sorted(person["waits"])
    arrivals = sorted(t for o in outcomes for t in o["arrivals"])
    report = pacing_report(arrivals, quota)
    return {
        "person_priority": priority.name,
        "quota": {"limit": quota.limit, "period": quota.period},
        "bulk_calls": calls,
        "interactive_calls": len(waits),
        "interactive_rate": interactive_rate,
        "wait_p50_ms": _percentile(waits, 50) * 1000,
        "wait_p95_ms": _percentile(waits, 95) * 1000,
        "wait_p99_ms": _percentile(waits, 99) * 1000,
        "wait_max_ms": waits[-1] * 1000,
        "bulk_done": sum(len(o["arrivals"]) for o in batch),
        "bulk_elapsed_s": max(float(o["elapsed_s"]) for o in batch),
        "ratio": report.ratio,
        "busiest_window": report.busiest_window,
        "scripts_per_call": scripts / max(1, len(arrivals)),
    }


async def _priorities(
    redis_url: str,
    processes: int,
    seconds: float,
    rtt: float,
    interactive_rate: float,
    concurrency: int,
) -> list[dict[str, Any]]:
    return [
        await _priority_run(
            redis_url, processes, seconds, rtt, interactive_rate, concurrency, priority
        )
        for priority in (Priority.INTERACTIVE, Priority.BULK)
    ]


# -- 4. faults -----------------------------------------------------------------------------


class _Judge:
    """Every grant of the fault runs as an arrival, and what they show."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.arrivals: list[float] = []
        self.errors = 0

    async def drive(self, limiter: RedisLimiter, until: float, workers: int = 12) -> None:
        async def worker() -> None:
            while time.monotonic() < until:
                try:
                    permit = await limiter.acquire("k", self.quota)
                except LimiterUnavailableError:
                    self.errors += 1
                    await asyncio.sleep(0.05)
                    continue
                self.arrivals.append(time.monotonic())
                try:
                    await asyncio.sleep(0.005)
                finally:
                    await permit.release()

        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, until - time.monotonic()) + 1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def back_to_full_rate(self, since: float, fraction: float = 0.9) -> float:
        """Seconds from ``since`` until a window starts holding ``fraction`` of the limit."""
        times = sorted(t for t in self.arrivals if t >= since)
        need = max(1, int(self.quota.limit * fraction))
        right = 0
        for left, begin in enumerate(times):
            right = max(right, left)
            while right < len(times) and times[right] - begin < self.quota.period:
                right += 1
            if right - left >= need:
                return begin - since
        return float("inf")


def _hold_all(url: str, prefix: str, ready: Event) -> None:
    """Spawned: take every slot of the fault quota, queue more waiters, never release."""

    async def main() -> None:
        limiter = RedisLimiter(url, key_prefix=prefix, **FAULT_OPTIONS)
        for _ in range(FAULT_QUOTA.limit):
            await limiter.acquire("k", FAULT_QUOTA)
        waiting = [asyncio.ensure_future(limiter.acquire("k", FAULT_QUOTA)) for _ in range(5)]
        await asyncio.sleep(0.2)
        ready.set()
        await asyncio.sleep(3600)
        del waiting

    asyncio.run(main())


async def _fault_run(name: str) -> dict[str, Any]:
    """One fault against a group of three limiters saturating FAULT_QUOTA."""
    quota = FAULT_QUOTA
    judge = _Judge(quota)
    bound = quota.period + FAULT_OPTIONS["attempt_timeout"]
    config = {"maxmemory-policy": "noeviction"} if name == "out of memory" else {}
    with RedisServer(config=config) as server, ExitStack() as stack:
        prefix = f"fault-{secrets.token_hex(4)}"
        group = [RedisLimiter(server.url, key_prefix=prefix, **FAULT_OPTIONS) for _ in range(3)]
        worker: BaseProcess | None = None
        if name == "worker killed holding every slot":
            ctx = multiprocessing.get_context("spawn")
            ready = ctx.Event()
            worker = ctx.Process(target=_hold_all, args=(server.url, prefix, ready), daemon=True)
            worker.start()
            stack.callback(worker.kill)
            await asyncio.to_thread(ready.wait, START_TIMEOUT)
            bound = FAULT_OPTIONS["lease"] + quota.period + 1.0
        start = time.monotonic()
        runs = [asyncio.ensure_future(judge.drive(lim, start + 6.0)) for lim in group]
        await asyncio.sleep(2.0)
        began = time.monotonic()
        if name == "restart (kill -9, data lost)":
            await asyncio.to_thread(server.restart)
        elif name == "freeze 1 s (SIGSTOP)":
            server.freeze()
            await asyncio.sleep(1.0)
            server.thaw()
        elif name == "out of memory":
            for n in range(8):
                server.command("SET", f"junk:{n}", "x" * 200_000)
            found = re.search(rb"used_memory:(\d+)", server.command("INFO", "memory"))
            assert found is not None
            server.command("CONFIG", "SET", "maxmemory", int(found.group(1)) - 100_000)
            await asyncio.sleep(1.0)
            for n in range(8):
                server.command("DEL", f"junk:{n}")
        elif worker is not None:
            worker.kill()
        ended = time.monotonic()
        await asyncio.gather(*runs)
        for limiter in group:
            await limiter.aclose()
    return {
        "fault": name,
        "lasted_s": ended - began,
        "grants": len(judge.arrivals),
        "busiest_window": max_in_window(sorted(judge.arrivals), quota.period),
        "limit": quota.limit,
        "errors": judge.errors,
        "recovery_s": judge.back_to_full_rate(ended),
        "bound_s": bound,
    }


async def _faults() -> list[dict[str, Any]]:
    names = [
        "restart (kill -9, data lost)",
        "freeze 1 s (SIGSTOP)",
        "out of memory",
        "worker killed holding every slot",
    ]
    return [await _fault_run(name) for name in names]


# -- reporting ------------------------------------------------------------------------------


def _print_cost(fig: dict[str, Any], redis_version: str) -> None:
    costs = fig["backends"]
    local = costs["LocalLimiter"]

    def row(name: str, f: dict[str, float]) -> list[str]:
        digits = 1 if f["median_us"] < 100 else 0
        return [
            name,
            f"{f['median_us']:,.{digits}f}",
            f"{f['p99_us']:,.{digits}f}",
            f"{f['sequential_per_s']:,.0f}",
            f"{f['concurrent_per_s']:,.0f}",
            f"{f['median_us'] / local['median_us']:,.0f}x",
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
            "median / local",
        ],
        [row(name, f) for name, f in costs.items()],
    )
    print(
        "\na RedisLimiter pair alone is one script (the release rides with the next acquire,"
        "\nor goes a few milliseconds later); with 32 coroutines one script carries many"
    )


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(errors.items())) or "0"


def _print_fleet(fig: dict[str, Any]) -> None:
    limit, period = fig["quota"]["limit"], fig["quota"]["period"]
    kinds = [kind for kind in KINDS if kind in fig]
    runs = [fig[kind] for kind in kinds]
    target = fig["target_ratio"]

    def row(label: str, cell: Callable[[dict[str, Any]], str], goal: str) -> list[str]:
        return [label, *(cell(run) for run in runs), goal]

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
        row("ratio to quota", lambda r: f"{r['ratio']:.1%}", f">= {target:.0%}"),
        row(f"busiest {period:g} s window", lambda r: str(r["busiest_window"]), f"<= {limit}"),
        row("violations (simulator)", lambda r: str(r["violations"]), "0"),
        row(
            "connections the judge dropped",
            lambda r: "-" if r["syn_drops"] is None else str(r["syn_drops"]),
            "0",
        ),
        row(
            "Lua scripts per call",
            lambda r: f"{r['redis_scripts'] / r['calls']:.2f}" if r["redis_scripts"] else "-",
            f"<= {TARGET_SCRIPTS_PER_CALL:g}",
        ),
    ]
    _common.print_table(
        f"fleet scale: {fig['processes']} processes share {fig['calls']} {fig['operation']} "
        f"calls, quota {limit}/{period:g}s, concurrency {fig['concurrency'] or 'default'} "
        f"each, one in-process simulator ({ROOMS} rooms)",
        ["figure", *(KINDS[kind] for kind in kinds), "target"],
        rows,
        show_machine=False,
    )


def _print_priorities(runs: list[dict[str, Any]], processes: int, concurrency: int) -> None:
    period_ms = PRIORITY_QUOTA.period * 1000

    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str) -> list[str]:
        return [label, *(cell(run) for run in runs), target]

    rows = [
        row("interactive calls", lambda r: str(r["interactive_calls"]), ""),
        row("their wait, p50", lambda r: f"{r['wait_p50_ms']:.1f} ms", ""),
        row("their wait, p95", lambda r: f"{r['wait_p95_ms']:.1f} ms", f"< {period_ms / 2:g} ms"),
        row("their wait, p99", lambda r: f"{r['wait_p99_ms']:.1f} ms", ""),
        row("their wait, max", lambda r: f"{r['wait_max_ms']:.1f} ms", ""),
        row("bulk calls done", lambda r: f"{r['bulk_done']:,} / {r['bulk_calls']:,}", "all"),
        row("batch elapsed", lambda r: f"{r['bulk_elapsed_s']:.2f} s", ""),
        row("share of the quota (all arrivals)", lambda r: f"{r['ratio']:.1%}", ""),
        row(
            "busiest window / limit",
            lambda r: f"{r['busiest_window']} / {r['quota']['limit']}",
            "<= limit",
        ),
        row(
            "Lua scripts per call",
            lambda r: f"{r['scripts_per_call']:.2f}",
            f"<= {TARGET_SCRIPTS_PER_CALL:g}",
        ),
    ]
    rate = runs[0]["interactive_rate"]
    _common.print_table(
        f"priorities across processes: {processes} processes x {concurrency} coroutines run a"
        f" BULK batch that fills {PRIORITY_QUOTA} through one redis-server, one more process"
        f" makes a call every {1 / rate:g} s",
        ["figure", "its calls INTERACTIVE", "its calls BULK (first come, first served)", "target"],
        rows,
        show_machine=False,
    )
    print(
        "\nboth processes' arrivals count in the busiest window; the person's process was in"
        "\nuse before the batch started (one call), so the reserve holds from the start"
    )


def _print_faults(runs: list[dict[str, Any]]) -> None:
    rows = [
        [
            run["fault"],
            f"{run['lasted_s']:.2f} s",
            str(run["grants"]),
            f"{run['busiest_window']}/{run['limit']}",
            str(run["errors"]),
            f"{run['recovery_s']:.2f} s",
            f"<= {run['bound_s']:.2f} s",
        ]
        for run in runs
    ]
    opts = FAULT_OPTIONS
    _common.print_table(
        f"faults: 3 limiters x 12 callers saturate {FAULT_QUOTA} on a redis-server of their own"
        f" (attempt_timeout {opts['attempt_timeout']:g} s, redis_timeout "
        f"{opts['redis_timeout']:g} s, lease {opts['lease']:g} s)",
        [
            "fault",
            "lasted",
            "grants",
            "busiest window",
            "errors",
            "back to full rate",
            "promised",
        ],
        rows,
        show_machine=False,
    )
    print(
        "\nevery grant counts as an arrival; 'back to full rate': from the end of the fault"
        "\nto the first window holding 90% of the limit"
    )


# -- running ---------------------------------------------------------------------------------


def _listen_drops() -> int | None:
    """SYNs this host's listening sockets dropped so far (Linux; ``None`` elsewhere).

    Each one is a connection of a worker's first burst that waits a whole second
    for its retransmit: a full accept queue at the judge, not the limiter.
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split(), values.split(), strict=False))
            drops = fields.get("ListenDrops")
            return int(drops) if drops is not None else None
    return None


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
    """Lua scripts the server has run so far (nothing else uses it)."""
    stats = await _redis_info(url, "commandstats")
    return sum(int(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0)) for cmd in ("eval", "evalsha"))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="What a shared RedisLimiter costs, what it buys, and what it survives."
    )
    parser.add_argument(
        "--acquires", type=int, default=2000, help="acquire + release pairs (default 2000)"
    )
    parser.add_argument("--processes", type=int, default=8, help="worker processes (default 8)")
    parser.add_argument(
        "--rates",
        default="100,1000",
        help="quotas to share, calls per second, comma-separated (default 100,1000)",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="seconds of calls at each rate (default 10)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="calls each worker runs at once (default: the client's, min(limit, 100))",
    )
    parser.add_argument(
        "--interactive-rate",
        type=float,
        default=5.0,
        help="interactive calls per second beside the batch (default 5: half the reserve)",
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=5.0,
        help="the priorities run's requests take up to twice this (default 5 ms)",
    )
    parser.add_argument(
        "--priority-concurrency",
        type=int,
        default=32,
        help="coroutines each batch process runs in the priorities run (default 32)",
    )
    parser.add_argument(
        "--only",
        type=_sections,
        default=SECTIONS,
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument("--no-faults", action="store_true", help="skip the fault runs")
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    for name in ("acquires", "processes", "priority_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.interactive_rate <= 0 or args.rtt_ms < 0:
        parser.error("--interactive-rate must be positive and --rtt-ms not negative")
    if args.no_faults:
        args.only = tuple(s for s in args.only if s != "faults")
    try:
        args.rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error("--rates must be whole numbers, comma-separated")
    if not args.rates or min(args.rates) < 1 or args.seconds <= 0:
        parser.error("--rates and --seconds must be positive")
    return args


def _wait_past_the_grace(server: RedisServer) -> None:
    """Wait until the server is older than one period plus the attempt timeout.

    On a younger server a key RedisLimiter has not seen is held for a short grace
    (it cannot tell a fresh server from a restarted one whose slot holders have not
    reported in yet). That is a one-off after a Redis start, not the steady state
    the fleet runs measure; the cost section, when it runs first, usually takes
    longer than this anyway.
    """
    need = PRIORITY_QUOTA.period + 10.0  # the default attempt_timeout
    info = server.command("INFO", "server").decode(errors="replace")
    found = re.search(r"uptime_in_seconds:(\d+)", info)
    uptime = int(found.group(1)) if found else 0
    if uptime < need:
        print(f"\n(waiting {need - uptime:.0f} s: the redis-server is younger than the grace)")
        time.sleep(need - uptime)


SECTIONS = ("cost", "fleet", "priorities", "faults")


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in SECTIONS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}, not {text!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    figures: dict[str, Any] = {}
    with ExitStack() as stack:
        server = stack.enter_context(RedisServer())
        version = asyncio.run(_redis_version(server.url))
        figures["redis_version"] = version
        if "cost" in args.only:
            nodes = stack.enter_context(redis_cluster(3))
            backends = {
                "RedisLimiter, one redis-server": (server.url, False),
                "RedisLimiter, 3-master cluster": (nodes[0].url, True),
            }
            if shutil.which("valkey-server"):
                valkey = stack.enter_context(RedisServer(binary="valkey-server"))
                backends["RedisLimiter, valkey-server"] = (valkey.url, False)
            cost = asyncio.run(_acquire_cost(backends, server.url, args.acquires))
            _print_cost(cost, version)
            figures["acquire_cost"] = cost
        if "fleet" in args.only or "priorities" in args.only:
            _wait_past_the_grace(server)
        if "fleet" in args.only:
            fleet = asyncio.run(
                _fleet(server.url, args.processes, args.rates, args.seconds, args.concurrency)
            )
            for fig in fleet:
                print()
                _print_fleet(fig)
            figures["fleet"] = fleet
        if "priorities" in args.only:
            runs = asyncio.run(
                _priorities(
                    server.url,
                    args.processes,
                    args.seconds,
                    args.rtt_ms / 1000,
                    args.interactive_rate,
                    args.priority_concurrency,
                )
            )
            print()
            _print_priorities(runs, args.processes, args.priority_concurrency)
            figures["priorities"] = runs
    if "faults" in args.only:
        faults = asyncio.run(_faults())
        print()
        _print_faults(faults)
        figures["faults"] = faults
    _common.write_json(args.json, "redis_limiter", **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
