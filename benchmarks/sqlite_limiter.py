"""What a shared SQLiteLimiter costs, what it buys across processes, and how a crash heals.

Every file lives in a fresh temporary directory (``--dir`` picks where: the
filesystem matters, an fsync on tmpfs is free). Nothing is asserted.

1. The cost of one slot: ``--acquires`` acquire + release pairs of a quota that
   never makes anyone wait (1,000,000 per second), through a ``LocalLimiter``, a
   ``SQLiteLimiter`` and a ``SQLiteLimiter(durable=True)`` (an fsync per step): one
   after another in one coroutine (median and p99 per pair), then ``CONCURRENCY``
   coroutines at once (pairs per second). A pair is two SQLite transactions, each
   on the limiter's worker thread.
2. Fidelity across processes, the limiter alone: ``--processes`` worker processes
   (spawned), each with its own ``SQLiteLimiter`` on one file, start together (a
   ``multiprocessing.Barrier``) and spend ``--seconds`` worth of calls of a quota of
   R per second for each R in ``--rates``. Each worker runs ``min(R, 64)``
   coroutines (what a bulk call runs by default); a call holds its slot for a
   random round trip of up to ``2 * --rtt-ms`` and "arrives" at a random moment
   inside it (``time.monotonic()``, one clock for every process on the host).
   Shows the achieved rate and its ratio to the quota (``pacing_report``), the
   busiest window against the limit, the arrivals a sliding-window server would
   have refused (as the simulator counts them), and SQLite steps per call (2 is one
   acquire and one release; more is waiting).
3. The same end to end at the DEFAULT Tencent quota (100/s): the processes'
   ``TencentClient``s split ``--calls`` ``get_room_stats`` calls against one
   in-process ``Simulator`` that enforces the quota and records every arrival; once
   with a ``SQLiteLimiter`` each (one file), once with a ``LocalLimiter`` each (what
   cron jobs get without a shared limiter).
4. Recovery of a killed holder: a process takes every slot of a 100/1 s quota with
   ``--lease`` and is killed (SIGKILL); the parent then asks for the slots and
   times when it gets the first and the last, against lease + period.
5. Priorities across processes: ``--processes`` worker processes run a batch of
   ``BULK`` calls that keeps a 100/1 s quota full for about ``--seconds``, while one
   more process, already in use when the batch starts (one call before it), makes
   an ``INTERACTIVE`` call every ``1 / --interactive-rate`` seconds. Shows the
   interactive calls' waits (percentiles; issue 11's bar: p95 under half a period),
   the batch's own rate and the busiest window; then the same with the person's
   calls made as ``BULK`` too (first come, first served: what they would wait
   without priorities).
6. The share across processes: one process keeps ``SHARE_QUOTA`` full with
   ``SHARE_CROWD`` INTERACTIVE callers (each asks again as soon as its answer is
   in), another runs a BULK batch of ``MAX_WORKER_CONCURRENCY`` coroutines for
   ``--seconds``. The reserve holds the batch back throughout; the share gives it
   one grant in ``AGED_SHARE``. Shows the batch's part of all grants, its waits and
   its SQLite steps per call, once with the crowd's default ``max_jitter`` and once
   with none (with jitter, slots sit free for a few ms after they free and a bulk
   call that looks then may take one by the reserve's own rule: the part above a
   tenth is that).

    .venv/bin/python benchmarks/sqlite_limiter.py [--acquires N] [--processes P]
        [--rates R,R] [--seconds S] [--rtt-ms MS] [--calls N] [--lease S]
        [--interactive-rate R] [--only priorities,share] [--dir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import multiprocessing
import os
import queue
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import _common

from livestats import Limiter, LocalLimiter, Priority, Quota, SQLiteLimiter, TencentClient
from livestats._core.sharing import AGED_SHARE, HEAD_START
from livestats.providers.tencent.quotas import DEFAULT_QUOTAS
from livestats.testing import Simulator, TencentSim, max_in_window, pacing_report

ROOMS = 200
OPERATION = "get_room_stats"
SIM_QUOTA = DEFAULT_QUOTAS[OPERATION]
#: Big enough that no acquire in the cost runs ever waits: only the limiter's own cost shows.
COST_QUOTA = Quota(1_000_000, 1.0)
CONCURRENCY = 32
WARMUP_PAIRS = 200
#: What a bulk call runs at once by default, at most (min(limit, this)).
MAX_WORKER_CONCURRENCY = 64
#: The bar the issue sets for the group of processes.
TARGET_RATIO = 0.90
START_TIMEOUT = 60.0  # spawned workers import livestats before they reach the barrier
KEY = "bench"
#: The quota the priorities run fills (Tencent's default for room statistics).
PRIORITY_QUOTA = Quota(100, 1.0)
#: The quota the share run fills: a reserve of 4, a head start of 0.6 s.
SHARE_QUOTA = Quota(40, 0.2)
#: Interactive callers that keep it full.
SHARE_CROWD = 2 * SHARE_QUOTA.limit
DEFAULT_JITTER: float = inspect.signature(SQLiteLimiter).parameters["max_jitter"].default


# -- 1. the cost of one slot -----------------------------------------------------------------


Op = Callable[[], Awaitable[None]]


def _pair(limiter: Limiter, key: str) -> Op:
    async def pair() -> None:
        permit = await limiter.acquire(key, COST_QUOTA)
        await permit.release()

    return pair


async def _sequential(op: Op, times: int) -> list[float]:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        await op()
        took.append(time.perf_counter() - started)
    return took


async def _concurrent(op: Op, times: int, concurrency: int) -> float:
    counter = itertools.count()

    async def worker() -> None:
        while next(counter) < times:
            await op()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def _cost_of(make: Callable[[str], Op], pairs: int) -> dict[str, float]:
    run = secrets.token_hex(4)
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


async def _acquire_cost(directory: Path, pairs: int) -> dict[str, Any]:
    local = LocalLimiter()
    figures: dict[str, Any] = {"local": await _cost_of(lambda key: _pair(local, key), pairs)}
    for name, durable in (("sqlite", False), ("sqlite_durable", True)):
        path = directory / f"cost-{name}.db"
        async with SQLiteLimiter(path, durable=durable) as shared:
            figures[name] = await _cost_of(lambda key, s=shared: _pair(s, key), pairs)  # type: ignore[misc]
    return {"pairs": pairs, "concurrency": CONCURRENCY, **figures}


# -- 2. fidelity of the limiter alone ----------------------------------------------------------


class _CountingLimiter(SQLiteLimiter):
    """Counts the SQLite transactions it runs (on its one worker thread)."""

    steps = 0

    def _run(
        self, worker: Any, step: Callable[..., Any], *args: Any, deadline: float | None = None
    ) -> Any:
        type(self).steps += 1
        return super()._run(worker, step, *args, deadline=deadline)


def _spend(
    *,
    worker: int,
    path: str,
    quota: tuple[int, float],
    calls: int,
    concurrency: int,
    rtt: float,
    start: Barrier,
    results: Any,
    priority: Priority = Priority.BULK,
) -> None:
    """Worker process: spend ``calls`` slots with ``concurrency`` coroutines; report arrivals."""

    async def main() -> dict[str, Any]:
        rng = random.Random(worker)
        arrivals: list[float] = []
        left = itertools.count()
        async with _CountingLimiter(path) as limiter:
            await (await limiter.acquire("warm-up", Quota(1, 1.0))).release(sent=False)
            _CountingLimiter.steps = 0
            start.wait(START_TIMEOUT)

            async def one_coroutine() -> None:
                while next(left) < calls:
                    permit = await limiter.acquire(KEY, Quota(*quota), priority=priority)
                    hold = rng.uniform(0, 2 * rtt)
                    arrive = rng.uniform(0, hold)
                    await asyncio.sleep(arrive)
                    arrivals.append(time.monotonic())
                    await asyncio.sleep(hold - arrive)
                    await permit.release()

            started = time.perf_counter()
            await asyncio.gather(*(one_coroutine() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        return {
            "worker": worker,
            "arrivals": arrivals,
            "steps": _CountingLimiter.steps,
            "elapsed_s": elapsed,
        }

    _report(worker, main, results)


def _report(
    worker: int, main: Callable[[], Coroutine[Any, Any, dict[str, Any]]], results: Any
) -> None:
    try:
        outcome = asyncio.run(main())
    except Exception as exc:  # reported by the parent, which would otherwise wait for nothing
        outcome = {"worker": worker, "crash": f"{type(exc).__name__}: {exc}"}
    results.put(outcome)


def _refused(arrivals: Sequence[float], quota: Quota) -> int:
    """Arrivals a sliding-window server would refuse (every arrival counts, as the simulator's)."""
    window: deque[float] = deque()
    refused = 0
    for t in sorted(arrivals):
        while window and t - window[0] >= quota.period:
            window.popleft()
        window.append(t)
        if len(window) > quota.limit:
            refused += 1
    return refused


def _shares(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if w < extra else 0) for w in range(parts)]


async def _gather(
    results: Any, workers: Sequence[BaseProcess], timeout: float
) -> list[dict[str, Any]]:
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


async def _limiter_run(
    directory: Path, processes: int, rate: int, seconds: float, rtt: float
) -> dict[str, Any]:
    quota = Quota(rate, 1.0)
    calls = round(rate * seconds)
    concurrency = min(rate, MAX_WORKER_CONCURRENCY)
    context = multiprocessing.get_context("spawn")
    path = str(directory / f"fidelity-{rate}.db")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_spend,
            kwargs={
                "worker": w,
                "path": path,
                "quota": (quota.limit, quota.period),
                "calls": share,
                "concurrency": concurrency,
                "rtt": rtt,
                "start": start,
                "results": results,
            },
            name=f"livestats-sqlite-worker-{w}",
            daemon=True,
        )
        for w, share in enumerate(_shares(calls, processes))
    ]
    for worker in workers:
        worker.start()
    try:
        outcomes = await _gather(results, workers, 5 * seconds + START_TIMEOUT)
    finally:
        await _stop(workers)
    arrivals = sorted(t for o in outcomes for t in o["arrivals"])
    report = pacing_report(arrivals, quota)
    steps = sum(int(o["steps"]) for o in outcomes)
    return {
        "rate": rate,
        "quota": {"limit": quota.limit, "period": quota.period},
        "calls": calls,
        "concurrency_per_process": concurrency,
        "arrivals": report.calls,
        "elapsed_s": max(float(o["elapsed_s"]) for o in outcomes),
        "rate_per_s": report.rate,
        "ratio": report.ratio,
        "busiest_window": report.busiest_window,
        "refused": _refused(arrivals, quota),
        "steps_per_call": steps / max(1, report.calls),
    }


# -- 3. end to end against the simulator ---------------------------------------------------------


def _collect(
    *,
    kind: str,
    worker: int,
    base_url: str,
    path: str,
    credentials: tuple[int, str, str],
    room_ids: list[str],
    start: Barrier,
    results: Any,
) -> None:
    """Worker process: collect ``room_ids`` with a client and limiter of its own."""

    async def main() -> dict[str, Any]:
        sdkappid, identifier, secret_key = credentials
        async with AsyncExitStack() as stack:
            limiter: Limiter = LocalLimiter()
            if kind == "sqlite":
                shared = await stack.enter_async_context(SQLiteLimiter(path))
                await (await shared.acquire("warm-up", Quota(1, 1.0))).release(sent=False)
                limiter = shared
            client = await stack.enter_async_context(
                TencentClient(
                    sdkappid, identifier, secret_key=secret_key, base_url=base_url, limiter=limiter
                )
            )
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

    _report(worker, main, results)


async def _simulator_run(directory: Path, kind: str, processes: int, calls: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    path = str(directory / f"simulator-{secrets.token_hex(4)}.db")
    async with Simulator(tencent=TencentSim(rooms=ROOMS)) as sim:
        creds = sim.tencent
        start = context.Barrier(processes)
        results = context.Queue()
        room_cycle = itertools.cycle(sim.room_ids)
        workers = [
            context.Process(
                target=_collect,
                kwargs={
                    "kind": kind,
                    "worker": w,
                    "base_url": sim.url,
                    "path": path,
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
        for worker in workers:
            worker.start()
        try:
            outcomes = await _gather(results, workers, 5 * calls / SIM_QUOTA.rate + START_TIMEOUT)
        finally:
            await _stop(workers)
        arrivals = sim.arrivals(OPERATION)
        violations = sim.violations(OPERATION)
    report = pacing_report(arrivals, SIM_QUOTA)
    errors: Counter[str] = Counter()
    for outcome in outcomes:
        errors.update(outcome["errors"])
    return {
        "limiter": kind,
        "calls": calls,
        "ok": sum(int(o["ok"]) for o in outcomes),
        "errors": dict(errors),
        "requests_seen": report.calls,
        "elapsed_s": max(float(o["elapsed_s"]) for o in outcomes),
        "rate_per_s": report.rate,
        "ratio": report.ratio,
        "busiest_window": report.busiest_window,
        "violations": violations,
    }


# -- 4. recovery of a killed holder ------------------------------------------------------------


def _hold(*, path: str, quota: tuple[int, float], lease: float, results: Any) -> None:
    """Worker process: take every slot, say when, and hang until killed."""

    async def main() -> None:
        limiter = SQLiteLimiter(path, lease=lease)
        before = time.monotonic()
        for _ in range(quota[0]):
            await limiter.acquire(KEY, Quota(*quota))
        results.put((before, time.monotonic()))
        await asyncio.sleep(3600)

    asyncio.run(main())


async def _recovery(directory: Path, lease: float) -> dict[str, Any]:
    quota = Quota(100, 1.0)
    path = str(directory / "recovery.db")
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    holder = context.Process(
        target=_hold,
        kwargs={
            "path": path,
            "quota": (quota.limit, quota.period),
            "lease": lease,
            "results": results,
        },
        daemon=True,
    )
    holder.start()
    try:
        before, after = await asyncio.to_thread(results.get, True, START_TIMEOUT)
        os.kill(holder.pid or 0, signal.SIGKILL)
        await asyncio.to_thread(holder.join, 10)
        killed = time.monotonic()
        async with SQLiteLimiter(path) as limiter:
            first = await limiter.acquire(KEY, quota)
            first_at = time.monotonic()
            rest = [await limiter.acquire(KEY, quota) for _ in range(quota.limit - 1)]
            last_at = time.monotonic()
            for permit in [first, *rest]:
                await permit.release(sent=False)
    finally:
        if holder.is_alive():
            holder.kill()
    expected = lease + quota.period
    return {
        "quota": {"limit": quota.limit, "period": quota.period},
        "lease_s": lease,
        "expected_s": expected,
        "grants_took_s": after - before,
        "killed_after_s": killed - before,
        # Every slot was granted between `before` and `after`: it may free no earlier
        # than `grant + lease + period`, so `first - before` >= expected is the test.
        "first_regained_s": first_at - before,
        "all_regained_s": last_at - before,
        "first_late_vs_last_grant_s": first_at - (after + expected),
    }


# -- 5. priorities across processes ------------------------------------------------------------


def _person(
    *,
    worker: int,
    path: str,
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
        async with SQLiteLimiter(path) as limiter:
            # In use before the batch starts: the reserve begins with an interactive ask.
            await (await limiter.acquire(KEY, Quota(*quota), priority=priority)).release()
            start.wait(START_TIMEOUT)

            async def one() -> None:
                asked = time.monotonic()
                permit = await limiter.acquire(KEY, Quota(*quota), priority=priority)
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


def _percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def _priority_run(
    directory: Path,
    processes: int,
    seconds: float,
    rtt: float,
    interactive_rate: float,
    priority: Priority,
) -> dict[str, Any]:
    quota = PRIORITY_QUOTA
    calls = round(quota.rate * seconds)
    interactive = max(2, round(interactive_rate * seconds))
    context = multiprocessing.get_context("spawn")
    path = str(directory / f"priorities-{priority.name.lower()}.db")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    common = {"path": path, "quota": (quota.limit, quota.period), "rtt": rtt, "start": start}
    workers = [
        context.Process(
            target=_spend,
            kwargs={
                **common,
                "worker": w,
                "calls": share,
                "concurrency": MAX_WORKER_CONCURRENCY,
                "results": results,
            },
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
                "results": results,
            },
            name="livestats-person",
            daemon=True,
        )
    )
    for worker in workers:
        worker.start()
    try:
        outcomes = await _gather(results, workers, 5 * seconds + START_TIMEOUT)
    finally:
        await _stop(workers)
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
        "refused": _refused(arrivals, quota),
    }


# -- 6. the share across processes --------------------------------------------------------------


def _crowd(
    *,
    worker: int,
    path: str,
    rtt: float,
    max_jitter: float,
    stop: Any,
    start: Barrier,
    results: Any,
) -> None:
    """Worker process: SHARE_CROWD interactive callers until ``stop`` is set; reports grants."""

    async def main() -> dict[str, Any]:
        rng = random.Random(worker)
        grants: list[float] = []
        async with SQLiteLimiter(path, max_jitter=max_jitter) as limiter:
            await (await limiter.acquire(KEY, SHARE_QUOTA)).release(sent=False)
            start.wait(START_TIMEOUT)

            async def caller() -> None:
                while not stop.is_set():
                    permit = await limiter.acquire(KEY, SHARE_QUOTA)
                    grants.append(time.monotonic())
                    await asyncio.sleep(rng.uniform(0, 2 * rtt))
                    await permit.release()

            await asyncio.gather(*(caller() for _ in range(SHARE_CROWD)))
        return {"worker": worker, "grants": grants}

    _report(worker, main, results)


def _batch(
    *, worker: int, path: str, rtt: float, seconds: float, stop: Any, start: Barrier, results: Any
) -> None:
    """Worker process: BULK calls for ``seconds``, then stops the crowd (a call still
    waiting, starved, is served once it has gone); reports grants, waits and steps."""

    async def main() -> dict[str, Any]:
        rng = random.Random(worker)
        waits: list[float] = []
        grants: list[float] = []
        async with _CountingLimiter(path) as limiter:
            await (await limiter.acquire("warm-up", Quota(1, 1.0))).release(sent=False)
            _CountingLimiter.steps = 0
            start.wait(START_TIMEOUT)
            await asyncio.sleep(2 * SHARE_QUOTA.period)  # the crowd fills the window first
            started = time.monotonic()
            until = started + seconds
            asyncio.get_running_loop().call_at(until, stop.set)

            async def one_coroutine() -> None:
                while time.monotonic() < until:
                    asked = time.monotonic()
                    permit = await limiter.acquire(KEY, SHARE_QUOTA, priority=Priority.BULK)
                    grants.append(time.monotonic())
                    waits.append(grants[-1] - asked)
                    await asyncio.sleep(rng.uniform(0, 2 * rtt))
                    await permit.release()

            await asyncio.gather(*(one_coroutine() for _ in range(MAX_WORKER_CONCURRENCY)))
        return {
            "worker": worker,
            "started": started,
            "until": until,
            "waits": waits,
            "grants": grants,
            "steps": _CountingLimiter.steps,
        }

    _report(worker, main, results)


async def _share_run(
    directory: Path, seconds: float, rtt: float, max_jitter: float
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    path = str(directory / f"share-{max_jitter}.db")
    start, stop, results = context.Barrier(2), context.Event(), context.Queue()
    common = {"path": path, "rtt": rtt, "stop": stop, "start": start, "results": results}
    workers = [
        context.Process(
            target=_crowd,
            kwargs={**common, "worker": 0, "max_jitter": max_jitter},
            name="livestats-crowd",
            daemon=True,
        ),
        context.Process(
            target=_batch,
            kwargs={**common, "worker": 1, "seconds": seconds},
            name="livestats-batch",
            daemon=True,
        ),
    ]
    for worker in workers:
        worker.start()
    try:
        crowd, batch = await _gather(results, workers, 5 * seconds + START_TIMEOUT)
    finally:
        stop.set()
        await _stop(workers)
    # While both ran, from the end of the batch's head start: the crowd fills the window.
    begin = batch["started"] + HEAD_START * SHARE_QUOTA.period
    end = batch["until"]
    interactive = [t for t in crowd["grants"] if begin <= t <= end]
    bulk = [t for t in batch["grants"] if begin <= t <= end]
    waits = sorted(batch["waits"])
    return {
        "max_jitter": max_jitter,
        "quota": {"limit": SHARE_QUOTA.limit, "period": SHARE_QUOTA.period},
        "seconds": end - begin,
        "interactive_grants": len(interactive),
        "bulk_grants": len(bulk),
        "bulk_part": len(bulk) / max(1, len(bulk) + len(interactive)),
        "bulk_wait_p50_s": _percentile(waits, 50),
        "bulk_wait_p95_s": _percentile(waits, 95),
        "bulk_wait_max_s": waits[-1],
        "bulk_steps_per_call": batch["steps"] / len(waits),
        "busiest_window": max_in_window(sorted([*crowd["grants"], *bulk]), SHARE_QUOTA.period),
    }


# -- reporting ------------------------------------------------------------------------------


def _print_cost(fig: dict[str, Any]) -> None:
    def row(name: str, f: dict[str, float], digits: int) -> list[str]:
        return [
            name,
            f"{f['median_us']:,.{digits}f}",
            f"{f['p99_us']:,.{digits}f}",
            f"{f['sequential_per_s']:,.0f}",
            f"{f['concurrent_per_s']:,.0f}",
        ]

    _common.print_table(
        f"sqlite_limiter: cost of one acquire + release pair, {fig['pairs']} pairs, quota "
        f"{COST_QUOTA.limit:,}/{COST_QUOTA.period:g}s (never waits), SQLite "
        f"{_sqlite_version()}",
        [
            "limiter",
            "median us",
            "p99 us",
            "pairs/s, 1 coroutine",
            f"pairs/s, {fig['concurrency']} coroutines",
        ],
        [
            row("LocalLimiter", fig["local"], 1),
            row("SQLiteLimiter", fig["sqlite"], 0),
            row("SQLiteLimiter(durable=True)", fig["sqlite_durable"], 0),
        ],
    )
    print("\na SQLiteLimiter pair is two transactions on the limiter's worker thread")


def _print_fidelity(runs: list[dict[str, Any]], processes: int, seconds: float, rtt: float) -> None:
    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str) -> list[str]:
        return [label, *(cell(run) for run in runs), target]

    rows = [
        row("calls", lambda r: f"{r['calls']:,}", ""),
        row("coroutines per process", lambda r: str(r["concurrency_per_process"]), ""),
        row("arrivals", lambda r: f"{r['arrivals']:,}", ""),
        row("elapsed", lambda r: f"{r['elapsed_s']:.2f} s", ""),
        row("achieved rate (arrivals)", lambda r: f"{r['rate_per_s']:,.1f}/s", ""),
        row("share of the quota", lambda r: f"{r['ratio']:.1%}", f">= {TARGET_RATIO:.0%}"),
        row(
            "busiest 1 s window / limit",
            lambda r: f"{r['busiest_window']:,} / {r['quota']['limit']:,}",
            "<= limit",
        ),
        row("refused by a sliding window", lambda r: str(r["refused"]), "0"),
        row("SQLite steps per call", lambda r: f"{r['steps_per_call']:.2f}", ""),
    ]
    _common.print_table(
        f"multi-process fidelity, the limiter alone: {processes} processes share one file, "
        f"{seconds:g} s of calls, round trip up to {2 * rtt * 1000:g} ms",
        ["figure", *(f"{run['rate']:,}/1s" for run in runs), "target"],
        rows,
        show_machine=False,
    )


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(errors.items())) or "0"


def _print_simulator(runs: dict[str, dict[str, Any]], processes: int) -> None:
    kinds = {"sqlite": "shared SQLiteLimiter", "local": "LocalLimiter each"}
    ordered = [runs[kind] for kind in kinds]
    limit = SIM_QUOTA.limit

    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str) -> list[str]:
        return [label, *(cell(run) for run in ordered), target]

    calls = str(ordered[0]["calls"])
    rows = [
        row("answered", lambda r: str(r["ok"]), calls),
        row("errors", lambda r: _errors(r["errors"]), "0"),
        row("requests the simulator saw", lambda r: str(r["requests_seen"]), calls),
        row("elapsed", lambda r: f"{r['elapsed_s']:.2f} s", ""),
        row("achieved rate (arrivals)", lambda r: f"{r['rate_per_s']:.1f}/s", f"{limit}/s"),
        row("share of the quota", lambda r: f"{r['ratio']:.1%}", f">= {TARGET_RATIO:.0%}"),
        row("busiest 1 s window", lambda r: str(r["busiest_window"]), f"<= {limit}"),
        row("violations (simulator)", lambda r: str(r["violations"]), "0"),
    ]
    _common.print_table(
        f"end to end: {processes} processes share {calls} {OPERATION} calls at the default "
        f"quota {limit}/1s, one in-process simulator ({ROOMS} rooms)",
        ["figure", *kinds.values(), "target"],
        rows,
        show_machine=False,
    )


def _print_recovery(fig: dict[str, Any]) -> None:
    rows = [
        ["quota", f"{fig['quota']['limit']}/{fig['quota']['period']:g}s", ""],
        ["lease", f"{fig['lease_s']:g} s", ""],
        ["holder took every slot within", f"{fig['grants_took_s'] * 1000:.1f} ms", ""],
        ["holder killed (SIGKILL) at", f"{fig['killed_after_s']:.3f} s", ""],
        [
            "first slot regained at",
            f"{fig['first_regained_s']:.3f} s",
            f">= {fig['expected_s']:g} s",
        ],
        ["every slot regained at", f"{fig['all_regained_s']:.3f} s", ""],
        [
            "first regained, after last grant + lease + period",
            f"{fig['first_late_vs_last_grant_s'] * 1000:+.1f} ms",
            "small",
        ],
    ]
    _common.print_table(
        "recovery: a holder of every slot killed; times from just before its first grant",
        ["figure", "value", "target"],
        rows,
        show_machine=False,
    )


def _print_priorities(runs: list[dict[str, Any]], processes: int) -> None:
    period_ms = PRIORITY_QUOTA.period * 1000

    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str) -> list[str]:
        return [label, *(cell(run) for run in runs), target]

    rows = [
        row("interactive calls", lambda r: str(r["interactive_calls"]), ""),
        row("their wait, p50", lambda r: f"{r['wait_p50_ms']:.1f} ms", ""),
        row("their wait, p95", lambda r: f"{r['wait_p95_ms']:.1f} ms", f"< {period_ms / 2:g} ms"),
        row("their wait, p99", lambda r: f"{r['wait_p99_ms']:.1f} ms", ""),
        row("their wait, max", lambda r: f"{r['wait_max_ms']:.1f} ms", ""),
        row(
            "bulk calls done",
            lambda r: f"{r['bulk_done']:,} / {r['bulk_calls']:,}",
            "all",
        ),
        row("batch elapsed", lambda r: f"{r['bulk_elapsed_s']:.2f} s", ""),
        row("share of the quota (all arrivals)", lambda r: f"{r['ratio']:.1%}", ""),
        row(
            "busiest window / limit",
            lambda r: f"{r['busiest_window']} / {r['quota']['limit']}",
            "<= limit",
        ),
        row("refused by a sliding window", lambda r: str(r["refused"]), "0"),
    ]
    rate = runs[0]["interactive_rate"]
    _common.print_table(
        f"priorities across processes: {processes} processes run a BULK batch that fills "
        f"{PRIORITY_QUOTA}, one more makes a call every {1 / rate:g} s",
        ["figure", "its calls INTERACTIVE", "its calls BULK (first come, first served)", "target"],
        rows,
        show_machine=False,
    )


def _print_share(runs: list[dict[str, Any]]) -> None:
    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str) -> list[str]:
        return [label, *(cell(run) for run in runs), target]

    rows = [
        row("seconds counted (after the head start)", lambda r: f"{r['seconds']:.2f} s", ""),
        row("interactive grants", lambda r: f"{r['interactive_grants']:,}", ""),
        row("bulk grants", lambda r: f"{r['bulk_grants']:,}", ""),
        row(
            "bulk part of all grants", lambda r: f"{r['bulk_part']:.1%}", f">= {1 / AGED_SHARE:.0%}"
        ),
        row("bulk wait, p50", lambda r: f"{r['bulk_wait_p50_s']:.2f} s", ""),
        row("bulk wait, p95", lambda r: f"{r['bulk_wait_p95_s']:.2f} s", ""),
        row("bulk wait, max", lambda r: f"{r['bulk_wait_max_s']:.2f} s", ""),
        row("SQLite steps per bulk call", lambda r: f"{r['bulk_steps_per_call']:.1f}", ""),
        row(
            "busiest window / limit",
            lambda r: f"{r['busiest_window']} / {r['quota']['limit']}",
            "<= limit",
        ),
    ]
    _common.print_table(
        f"the share across processes: {SHARE_CROWD} INTERACTIVE callers in one process keep "
        f"{SHARE_QUOTA} full, {MAX_WORKER_CONCURRENCY} BULK coroutines in another",
        ["figure", *(f"crowd max_jitter={r['max_jitter']:g}" for r in runs), "target"],
        rows,
        show_machine=False,
    )


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


# -- running ---------------------------------------------------------------------------------


def _rates(text: str) -> list[int]:
    try:
        rates = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not rates or any(rate < 1 for rate in rates):
        raise argparse.ArgumentTypeError("rates must be positive integers")
    return rates


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="What a shared SQLiteLimiter costs, and what it buys across processes."
    )
    parser.add_argument(
        "--acquires", type=int, default=2000, help="acquire + release pairs (default 2000)"
    )
    parser.add_argument("--processes", type=int, default=8, help="worker processes (default 8)")
    parser.add_argument(
        "--rates", type=_rates, default=[100, 1000], help="quotas per second (default 100,1000)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="seconds of calls per rate (default 5)"
    )
    parser.add_argument(
        "--rtt-ms", type=float, default=5.0, help="mean round trip in ms (default 5)"
    )
    parser.add_argument(
        "--calls", type=int, default=1000, help="simulator calls in all, split (default 1000)"
    )
    parser.add_argument(
        "--lease", type=float, default=2.0, help="lease of the killed holder (default 2 s)"
    )
    parser.add_argument(
        "--interactive-rate",
        type=float,
        default=5.0,
        help="interactive calls per second beside the batch (default 5: half the reserve)",
    )
    parser.add_argument(
        "--only",
        type=_sections,
        default=SECTIONS,
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument("--dir", type=Path, help="where the files go (default: a temp dir)")
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    for name in ("acquires", "processes", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("seconds", "lease", "interactive_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.rtt_ms < 0:
        parser.error("--rtt-ms must not be negative")
    return args


SECTIONS = ("cost", "fidelity", "simulator", "recovery", "priorities", "share")


def _sections(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in SECTIONS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}, not {text!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"sqlite_version": _sqlite_version()}
    rtt = args.rtt_ms / 1000
    with tempfile.TemporaryDirectory(prefix="livestats-bench-", dir=args.dir) as made:
        directory = Path(made)
        if "cost" in args.only:
            cost = figures["acquire_cost"] = asyncio.run(_acquire_cost(directory, args.acquires))
            _print_cost(cost)
            print()
        if "fidelity" in args.only:
            fidelity = figures["multi_process"] = [
                asyncio.run(_limiter_run(directory, args.processes, rate, args.seconds, rtt))
                for rate in args.rates
            ]
            _print_fidelity(fidelity, args.processes, args.seconds, rtt)
            print()
        if "simulator" in args.only:
            simulator = figures["end_to_end"] = {
                kind: asyncio.run(_simulator_run(directory, kind, args.processes, args.calls))
                for kind in ("sqlite", "local")
            }
            _print_simulator(simulator, args.processes)
            print()
        if "recovery" in args.only:
            recovery = figures["recovery"] = asyncio.run(_recovery(directory, args.lease))
            _print_recovery(recovery)
            print()
        if "priorities" in args.only:
            priorities = figures["priorities"] = [
                asyncio.run(
                    _priority_run(
                        directory, args.processes, args.seconds, rtt, args.interactive_rate, kind
                    )
                )
                for kind in (Priority.INTERACTIVE, Priority.BULK)
            ]
            _print_priorities(priorities, args.processes)
            print()
        if "share" in args.only:
            share = figures["share"] = [
                asyncio.run(_share_run(directory, args.seconds, rtt, max_jitter))
                for max_jitter in (DEFAULT_JITTER, 0.0)
            ]
            _print_share(share)
            print()
        print(f"files in {directory} (removed on exit)")
    _common.write_json(args.json, "sqlite_limiter", **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
