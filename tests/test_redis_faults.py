"""RedisLimiter through real Redis faults: each test hurts a redis-server of its own.

The judge is strict: every grant is an arrival, recorded the moment the slot is
handed over (before the "request" goes out), and ``max_in_window`` counts them in
every window of the quota's period; a slot is released after the request's
"answer". Several limiters in one test stand for several processes (each has its
own name in Redis and its own record of its slots); a test that needs a process to
die uses a real one. Quotas are short and timeouts small, so each test takes a
few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
from redis.asyncio import Redis

from livestats import LimiterUnavailableError, Quota, RedisLimiter, TencentClient
from livestats.testing import RedisServer, Simulator, max_in_window
from tests._redis_worker import hold_slots

ROOT = Path(__file__).resolve().parent.parent
#: Where scripts/bootstrap installs the oldest redis-py the ``redis`` extra allows.
OLDEST_REDIS_PY = ROOT / ".venv" / "redis-oldest"

#: Small timeouts keep the faults short: a Redis call is given up after REDIS_TIMEOUT,
#: and after a possible loss nothing is granted for one period plus ATTEMPT_TIMEOUT.
REDIS_TIMEOUT = 0.2
ATTEMPT_TIMEOUT = 0.3
QUOTA = Quota(10, 0.3)


def options(**overrides: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "attempt_timeout": ATTEMPT_TIMEOUT,
        "redis_timeout": REDIS_TIMEOUT,
        "outage_timeout": 5.0,
        "lease": 1.0,
        "ticket_ttl": 2.0,
    }
    made.update(overrides)
    return made


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as made:
        yield made


class Judge:
    """Arrivals (grant moments) of every limiter in a test, and what they show."""

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.arrivals: list[float] = []
        self.errors: list[BaseException] = []

    def busiest(self) -> int:
        return max_in_window(sorted(self.arrivals), self.quota.period)

    def back_to_full_rate(self, since: float, fraction: float = 0.8) -> float:
        """Seconds from ``since`` until a window starts that holds ``fraction`` of the limit."""
        times = sorted(t for t in self.arrivals if t >= since)
        need = max(1, int(self.quota.limit * fraction))
        right = 0
        for left, start in enumerate(times):
            right = max(right, left)
            while right < len(times) and times[right] - start < self.quota.period:
                right += 1
            if right - left >= need:
                return start - since
        return float("inf")

    async def drive(
        self,
        limiter: RedisLimiter,
        until: float,
        *,
        workers: int = 6,
        latency: float = 0.005,
        key: str = "k",
    ) -> None:
        """``workers`` callers request back to back until ``until`` (monotonic)."""

        async def worker() -> None:
            while time.monotonic() < until:
                try:
                    permit = await limiter.acquire(key, self.quota)
                except LimiterUnavailableError as err:
                    self.errors.append(err)
                    await asyncio.sleep(0.05)
                    continue
                self.arrivals.append(time.monotonic())
                try:
                    await asyncio.sleep(latency)  # the request on its way, and the answer
                finally:
                    await permit.release()

        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        # A worker still waiting for a slot at the end is cancelled: that is part of the run.
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, until - time.monotonic()) + 1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def burst_is_free(url: str, prefix: str, quota: Quota, timeout: float) -> bool:
    """Whether a newcomer gets the whole limit at once: no slot is stranded."""
    async with RedisLimiter(url, key_prefix=prefix, **options()) as newcomer:
        try:
            permits = [
                await asyncio.wait_for(newcomer.acquire("k", quota), timeout)
                for _ in range(quota.limit)
            ]
        except asyncio.TimeoutError:
            return False
        for permit in permits:
            await permit.release(sent=False)
        return True


@contextlib.asynccontextmanager
async def limiters(url: str, count: int, **overrides: Any) -> AsyncIterator[list[RedisLimiter]]:
    """``count`` limiters on one prefix: ``count`` processes sharing one quota."""
    prefix = f"f-{secrets.token_hex(4)}"
    made = [RedisLimiter(url, key_prefix=prefix, **options(**overrides)) for _ in range(count)]
    try:
        yield made
    finally:
        for limiter in made:
            await limiter.aclose()


async def test_a_fast_restart_loses_no_window(server: RedisServer) -> None:
    """Redis killed (-9) and started again at once, its data lost, mid-run.

    Promise: no window ever holds more than the limit (the limiters notice the new
    server run and grant nothing for one period plus the attempt timeout), and the
    group is back at full rate within that much of Redis answering again. The
    period is longer than the restart takes, so the lost slots still matter.
    """
    quota = Quota(10, 1.0)
    judge = Judge(quota)
    async with limiters(server.url, 3) as group:
        start = time.monotonic()
        runs = [asyncio.ensure_future(judge.drive(lim, start + 3.6)) for lim in group]
        await asyncio.sleep(1.4)
        await asyncio.to_thread(server.restart)
        answering = time.monotonic()
        await asyncio.gather(*runs)
    assert not judge.errors
    assert judge.busiest() <= quota.limit
    assert judge.back_to_full_rate(answering) <= quota.period + ATTEMPT_TIMEOUT + 0.3


async def test_a_freeze_past_the_socket_timeout_strands_no_slot(server: RedisServer) -> None:
    """Redis stopped (SIGSTOP) for five Redis timeouts mid-run, then continued (SIGCONT).

    Promise: the scripts that timed out run when Redis resumes, but grant nothing to
    callers that gave up; releases that failed meanwhile arrive with the free times
    they had; no window holds more than the limit; the group is back at full rate
    within one period plus the attempt timeout of the thaw, and afterwards a newcomer
    gets the whole limit at once (nothing stranded for ``lease``).
    """
    judge = Judge(QUOTA)
    async with limiters(server.url, 3) as group:
        start = time.monotonic()
        runs = [asyncio.ensure_future(judge.drive(lim, start + 2.0)) for lim in group]
        await asyncio.sleep(0.6)
        server.freeze()
        await asyncio.sleep(5 * REDIS_TIMEOUT)
        server.thaw()
        thawed = time.monotonic()
        await asyncio.gather(*runs)
        prefix = group[0]._prefix
    assert not judge.errors
    assert judge.busiest() <= QUOTA.limit
    assert judge.back_to_full_rate(thawed) <= QUOTA.period + ATTEMPT_TIMEOUT + 0.3
    await asyncio.sleep(QUOTA.period + 0.05)
    assert await burst_is_free(server.url, prefix, QUOTA, timeout=0.5)


async def test_out_of_memory_with_noeviction_keeps_the_quota() -> None:
    """Redis past ``maxmemory`` with ``noeviction`` for a second (another user filled it).

    Promise: the limiter keeps working (its scripts free before they write, and Redis
    refuses only a script's first write), so callers see no error and the group stays
    at full rate; no window holds more than the limit, and nothing is stranded.
    """
    with RedisServer(config={"maxmemory-policy": "noeviction"}) as server:
        judge = Judge(QUOTA)
        async with limiters(server.url, 2) as group:
            start = time.monotonic()
            runs = [asyncio.ensure_future(judge.drive(lim, start + 2.2)) for lim in group]
            await asyncio.sleep(0.6)
            filled = 8
            for n in range(filled):
                server.command("SET", f"junk:{n}", "x" * 200_000)
            server.command("CONFIG", "SET", "maxmemory", used_memory(server) - 100_000)
            assert server.command("SET", "one-more", "x").startswith(b"-OOM")
            full = time.monotonic()
            await asyncio.sleep(1.0)
            assert server.command("SET", "one-more", "x").startswith(b"-OOM")  # still full
            for n in range(filled):
                server.command("DEL", f"junk:{n}")
            await asyncio.gather(*runs)
            prefix = group[0]._prefix
        assert not judge.errors
        assert judge.busiest() <= QUOTA.limit
        assert judge.back_to_full_rate(full) <= QUOTA.period
        during = [t for t in judge.arrivals if full < t < full + 1.0]
        assert len(during) >= 0.8 * QUOTA.limit * (1.0 / QUOTA.period - 1)
        await asyncio.sleep(QUOTA.period + 0.05)
        assert await burst_is_free(server.url, prefix, QUOTA, timeout=0.5)


def used_memory(server: RedisServer) -> int:
    found = re.search(rb"used_memory:(\d+)", server.command("INFO", "memory"))
    assert found is not None
    return int(found.group(1))


async def test_a_worker_killed_holding_slots(server: RedisServer) -> None:
    """A worker process takes every slot, queues more waiters, and is killed (SIGKILL).

    Promise: its slots count until ``lease`` plus one period after it took them (no
    window holds more than the limit, its requests included), its waiting tickets
    get no slot once Redis stops hearing from it, and the survivors are back at full
    rate within lease + period (+ a second of slack for that silence).
    """
    quota = QUOTA
    prefix = f"kill-{secrets.token_hex(4)}"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    results = ctx.Queue()
    worker = ctx.Process(
        target=hold_slots,
        kwargs={
            "redis_url": server.url,
            "key_prefix": prefix,
            "quota": (quota.limit, quota.period),
            "hold": quota.limit,
            "wait": 4,
            "limiter_options": options(lease=0.6),
            "ready": ready,
            "results": results,
        },
        daemon=True,
    )
    worker.start()
    try:
        assert await asyncio.to_thread(ready.wait, 30), "the worker did not start"
        judge = Judge(quota)
        judge.arrivals += await asyncio.to_thread(results.get, True, 5)
        worker.kill()
        killed = time.monotonic()
        async with RedisLimiter(
            server.url,
            key_prefix=prefix,
            **options(lease=0.6),
        ) as survivor:
            await judge.drive(survivor, killed + 2.2)
    finally:
        worker.kill()
        await asyncio.to_thread(worker.join, 10)
    assert not judge.errors
    assert judge.busiest() <= quota.limit
    assert judge.back_to_full_rate(killed) <= 0.6 + quota.period + 1.0


async def test_local_fallback_keeps_one_process_within_the_quota(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """One process with ``fallback="local"``; Redis killed, down a second, back empty.

    Promise: before, during and after the outage no window holds more than the limit
    (the process paces from its own record of every slot it holds or cools, whoever
    granted it), the outage costs no error, and once Redis is back the process
    paces with it again.
    """
    caplog.set_level(logging.WARNING, logger="livestats")
    judge = Judge(QUOTA)
    async with limiters(server.url, 1, fallback="local") as (limiter,):
        start = time.monotonic()
        run = asyncio.ensure_future(judge.drive(limiter, start + 2.6, workers=10))
        await asyncio.sleep(0.6)
        await asyncio.to_thread(server.kill)
        down = time.monotonic()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(server.start)
        back = time.monotonic()
        await run
        assert limiter._bound is not None
        assert limiter._bound.lines["k"].mode == "redis"
    assert not judge.errors
    assert judge.busiest() <= QUOTA.limit
    during = [t for t in judge.arrivals if down + REDIS_TIMEOUT < t < back]
    assert len(during) >= QUOTA.limit  # it went on, locally
    messages = [r.getMessage() for r in caplog.records]
    assert any("unavailable" in m for m in messages)
    assert any("Redis is back" in m for m in messages)


async def test_slots_spent_locally_are_written_back(server: RedisServer) -> None:
    """``fallback="local"`` through a freeze; a second process joins after the thaw.

    Promise: the slots the first process spent locally while Redis was away are
    written into Redis when it answers again, so the newcomer, which never saw the
    outage, does not exceed the quota together with it.
    """
    judge = Judge(QUOTA)
    async with (
        limiters(server.url, 1, fallback="local") as (first,),
        RedisLimiter(server.url, key_prefix=first._prefix, **options()) as second,
    ):
        start = time.monotonic()
        run = asyncio.ensure_future(judge.drive(first, start + 2.0))
        await asyncio.sleep(0.5)
        server.freeze()
        await asyncio.sleep(0.5)
        server.thaw()
        await asyncio.sleep(0.1)  # the first process has told Redis what it spent
        await judge.drive(second, start + 2.0)
        await run
    assert not judge.errors
    assert judge.busiest() <= QUOTA.limit


async def test_an_outage_does_not_burn_the_input(server: RedisServer, sim: Simulator) -> None:
    """A batch meets a Redis that is gone for good, then one that is gone for a while.

    Promise: with Redis gone past ``outage_timeout`` the batch raises
    LimiterUnavailableError having taken at most a few items per worker from its
    input (never thousands of failures); an outage shorter than ``outage_timeout``
    costs no item at all.
    """
    taken = 0

    def ids() -> Iterator[str]:
        nonlocal taken
        while True:
            taken += 1
            yield sim.room_ids[taken % len(sim.room_ids)]

    creds = sim.tencent
    quota = Quota(20, 0.2)
    async with RedisLimiter(
        server.url, key_prefix=secrets.token_hex(4), **options(outage_timeout=0.5)
    ) as limiter:
        client = TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url,
            limiter=limiter, quotas={"get_room_stats": quota},
        )  # fmt: skip
        async with client:

            async def consume() -> None:
                ok = 0
                async for result in client.get_room_stats_many(ids(), concurrency=8):
                    ok += result.ok
                    if ok == 40:
                        await asyncio.to_thread(server.kill)

            started = time.monotonic()
            with pytest.raises(LimiterUnavailableError):
                await consume()
            assert time.monotonic() - started < 5
    assert taken <= 40 + 8 * 3

    await asyncio.to_thread(server.start)
    async with RedisLimiter(
        server.url, key_prefix=secrets.token_hex(4), **options(outage_timeout=3.0)
    ) as limiter:
        client = TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url,
            limiter=limiter, quotas={"get_room_stats": quota},
        )  # fmt: skip
        async with client:
            outcomes = []
            async for result in client.get_room_stats_many(sim.room_ids[:50] * 2, concurrency=8):
                outcomes.append(result)
                if len(outcomes) == 30:
                    await asyncio.to_thread(server.kill)
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(server.start)
    assert len(outcomes) == 100
    assert all(r.ok for r in outcomes)


async def test_scripts_per_call_stay_low(server: RedisServer) -> None:
    """Four processes saturate one quota.

    Promise: a release wakes the next waiter and a worker that releases and acquires
    again does it in one trip, so Redis runs at most 3 scripts per call (``INFO
    commandstats``), and no window holds more than the limit.
    """
    quota = Quota(20, 0.2)
    judge = Judge(quota)
    client = Redis.from_url(server.url)
    try:
        before = await _scripts(client)
        async with limiters(server.url, 4) as group:
            until = time.monotonic() + 1.5
            await asyncio.gather(*(judge.drive(lim, until, workers=10) for lim in group))
        ran = await _scripts(client) - before
    finally:
        await client.aclose()
    assert judge.busiest() <= quota.limit
    assert len(judge.arrivals) >= 0.8 * quota.rate * 1.5
    assert ran / len(judge.arrivals) <= 3.0, (ran, len(judge.arrivals))


async def _scripts(client: Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


@pytest.mark.parametrize("binary", ["redis-server", "valkey-server"])
async def test_the_quota_holds_on_each_server(binary: str) -> None:
    """The same group test on Redis and, where its Debian package is installed, Valkey.

    Promise: the limiter keeps the quota on any server that speaks Redis 6.2+.
    """
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian 13 packages valkey-server)")
    judge = Judge(QUOTA)
    with RedisServer(binary=binary) as server:
        async with limiters(server.url, 3) as group:
            until = time.monotonic() + 1.2
            await asyncio.gather(*(judge.drive(lim, until) for lim in group))
    assert not judge.errors
    assert judge.busiest() <= QUOTA.limit
    assert len(judge.arrivals) >= QUOTA.limit * 2


# -- cancellation: prompt with every supported redis-py --------------------------------------


def test_cancellation_tests_run_against_the_redis_py_installed() -> None:
    """The cancellation tests below run with whichever redis-py is importable.

    In the suite that is the newest (the virtualenv's); the next test runs them
    again in a subprocess with the oldest the ``redis`` extra allows.
    """
    expected = os.environ.get("LIVESTATS_EXPECT_REDIS_PY")
    if expected is not None:
        assert redis_py.__version__ == expected


@pytest.mark.skipif("LIVESTATS_EXPECT_REDIS_PY" in os.environ, reason="already the oldest redis-py")
def test_cancellation_with_the_oldest_supported_redis_py() -> None:
    """The cancellation tests again, in a subprocess with the oldest supported redis-py.

    Promise: the lower bound of the ``redis`` extra in pyproject.toml is a version
    these tests pass with (scripts/bootstrap installs it in .venv/redis-oldest).
    """
    pyproject = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'redis = \["redis>=([0-9.]+),<([0-9.]+)"\]', pyproject)
    assert match, "pyproject.toml's redis extra should read redis>=X,<Y"
    oldest = match.group(1)
    marker = OLDEST_REDIS_PY / f"redis-{oldest}.installed"
    if not marker.exists():
        pytest.fail(f"redis-py {oldest} is not in {OLDEST_REDIS_PY}: run scripts/bootstrap")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(OLDEST_REDIS_PY), str(ROOT)]),
        "LIVESTATS_EXPECT_REDIS_PY": oldest,
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         f"{__file__}", "-k", "cancel or never_answers"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


@pytest.mark.parametrize("seed", range(12))
async def test_a_cancelled_batch_ends_promptly(
    server: RedisServer, sim: Simulator, seed: int
) -> None:
    """A batch paced by RedisLimiter is cancelled at a random moment.

    Promise: it ends within one second plus one Redis timeout, whatever redis-py
    does with the cancellation (the callers never await redis-py themselves).
    """
    rng = random.Random(seed)
    creds = sim.tencent
    async with RedisLimiter(server.url, key_prefix=secrets.token_hex(4), **options()) as limiter:
        client = TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url,
            limiter=limiter, quotas={"get_room_stats": Quota(10, 0.1)},
        )  # fmt: skip
        async with client:

            async def consume() -> None:
                async for _ in client.get_room_stats_many(sim.room_ids * 5, concurrency=20):
                    pass

            task = asyncio.ensure_future(consume())
            await asyncio.sleep(rng.uniform(0.0, 0.4))
            task.cancel()
            cancelled = time.monotonic()
            done, _ = await asyncio.wait([task], timeout=1.0 + REDIS_TIMEOUT)
            assert done, "the cancelled batch did not end"
            assert time.monotonic() - cancelled <= 1.0 + REDIS_TIMEOUT


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A 'Redis' that accepts connections and never answers (nor even reads)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


async def test_a_redis_that_never_answers_costs_a_timeout_not_a_hang(sim: Simulator) -> None:
    """Acquire, and a batch cancelled, against a server that accepts but never answers.

    Promise: an acquire fails within ``outage_timeout`` plus one Redis timeout, and a
    cancelled batch ends within one second plus one Redis timeout.
    """
    creds = sim.tencent
    with silent_server() as url:
        async with RedisLimiter(url, **options(outage_timeout=0.5)) as limiter:
            started = time.monotonic()
            with pytest.raises(LimiterUnavailableError):
                await limiter.acquire("k", QUOTA)
            assert time.monotonic() - started <= 0.5 + 2 * REDIS_TIMEOUT + 0.3
        async with RedisLimiter(url, **options(outage_timeout=30.0)) as limiter:
            client = TencentClient(
                creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url,
                limiter=limiter,
            )  # fmt: skip
            async with client:

                async def consume() -> None:
                    async for _ in client.get_room_stats_many(sim.room_ids, concurrency=20):
                        pass

                task = asyncio.ensure_future(consume())
                await asyncio.sleep(0.5)
                assert not task.done()  # waiting for Redis, not failing item after item
                task.cancel()
                cancelled = time.monotonic()
                done, _ = await asyncio.wait([task], timeout=1.0 + REDIS_TIMEOUT)
                assert done, "the cancelled batch did not end"
                assert time.monotonic() - cancelled <= 1.0 + REDIS_TIMEOUT
