"""RedisLimiter and the rules of one quota with many consumers (livestats._core.sharing).

Priorities, deadlines, learned limits and quotas set at run time, against a real
redis-server. Several limiters in one test stand for several processes (each has
its own name in Redis); where the promise is about processes, real ones run.
Quotas are short, so each test takes about a second or less.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import random
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from livestats import Priority, Quota, RedisLimiter
from livestats._core import sharing
from livestats._core.redis_limiter import _RULES
from livestats._core.sharing import WaitExceeded
from livestats.testing import max_in_window
from tests._redis_worker import bulk_batch, queue_waiters

BULK, INTERACTIVE = Priority.BULK, Priority.INTERACTIVE


@pytest.fixture
def prefix() -> str:
    return f"s-{secrets.token_hex(4)}"


@pytest.fixture
async def limiter(redis_url: str, prefix: str) -> AsyncIterator[RedisLimiter]:
    async with RedisLimiter(redis_url, key_prefix=prefix) as made:
        yield made


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def warm(limiter: RedisLimiter, quota: Quota, priority: Priority = INTERACTIVE) -> None:
    """Use ``key`` once: a key new to a young server is held a moment (RedisLimiter's
    grace for a restart it cannot tell from a fresh server), and the tests of
    ``max_wait=0`` are about the quota, not that."""
    await (await limiter.acquire("k", quota, priority=priority)).release(sent=False)


async def queued(redis: Redis, limiter: RedisLimiter) -> int:
    """Tickets in Redis's lines for key "k" (both priorities)."""
    keys = limiter.keys("k")
    return int(await redis.zcard(keys["queue:i"])) + int(await redis.zcard(keys["queue:b"]))


# -- the rules, in Lua -------------------------------------------------------------------------


async def test_the_scripts_rules_are_the_python_rules(redis: Redis) -> None:
    """The Lua copies of reserve, recovery_step, decreased, interactive_window and
    effective_limit give what livestats._core.sharing gives (the scripts count in µs)."""
    rng = random.Random(11)
    cases = []
    for _ in range(300):
        limit = rng.choice(
            [1, 2, 9, 10, 11, 99, 100, 150, 300, 1000, 10**6, rng.randrange(1, 10**9)]
        )
        period = rng.choice([0.05, 0.2, 1.0, 300.0])
        low = rng.randrange(1, limit + 1)
        elapsed = rng.uniform(0, 40 * period)
        recover = rng.random() < 0.7
        cases.append((limit, period, low, elapsed, recover))
    check = (
        _RULES
        + """
local out = {}
for i = 1, #ARGV, 5 do
  local limit, period, low = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local elapsed, recover = tonumber(ARGV[i + 3]), ARGV[i + 4] == '1'
  out[#out + 1] = reserve(limit)
  out[#out + 1] = step(limit)
  out[#out + 1] = decreased(limit)
  out[#out + 1] = window(period)
  out[#out + 1] = effective(limit, period, low, 0, recover, elapsed)
end
return out
"""
    )
    args: list[int] = []
    for limit, period, low, elapsed, recover in cases:
        args += [limit, round(period * 1e6), low, round(elapsed * 1e6), int(recover)]
    got = await redis.eval(check, 0, *args)
    for n, (limit, period, low, elapsed, recover) in enumerate(cases):
        quota = Quota(limit, period)
        learned = sharing.Learned(low, 0.0, recover)
        want = [
            sharing.reserve(limit),
            sharing.recovery_step(limit),
            sharing.decreased(limit),
            round(sharing.interactive_window(period) * 1e6),
            sharing.effective_limit(quota, learned, elapsed),
        ]
        assert got[5 * n : 5 * n + 5] == want, (limit, period, low, elapsed, recover)


# -- priorities ----------------------------------------------------------------------------


async def test_interactive_callers_go_before_bulk_ones(limiter: RedisLimiter) -> None:
    """Interactive waiters are served before bulk ones that asked earlier (but less
    than three periods earlier); each priority first come, first served."""
    quota = Quota(1, 0.5)
    held = await limiter.acquire("k", quota)
    order: list[str] = []

    async def waiter(name: str, priority: Priority) -> None:
        permit = await limiter.acquire("k", quota, priority=priority)
        order.append(name)
        await permit.release(sent=False)

    tasks = []
    for name, priority in [("b0", BULK), ("b1", BULK), ("i0", INTERACTIVE), ("b2", BULK)]:
        tasks.append(asyncio.create_task(waiter(name, priority)))
        await asyncio.sleep(0.02)  # each takes its ticket before the next
    tasks.append(asyncio.create_task(waiter("i1", INTERACTIVE)))
    await asyncio.sleep(0.02)
    await held.release(sent=False)
    await asyncio.wait_for(asyncio.gather(*tasks), 5.0)
    assert order == ["i0", "i1", "b0", "b1", "b2"]


async def test_a_bulk_caller_three_periods_in_line_goes_first(limiter: RedisLimiter) -> None:
    """Aging: an interactive call that arrives more than HEAD_START periods after a
    bulk one goes behind it."""
    quota = Quota(1, 0.05)
    held = await limiter.acquire("k", quota)
    order: list[str] = []

    async def waiter(name: str, priority: Priority) -> None:
        permit = await limiter.acquire("k", quota, priority=priority)
        order.append(name)
        await permit.release(sent=False)

    old = asyncio.create_task(waiter("bulk", BULK))
    await asyncio.sleep(sharing.HEAD_START * quota.period + 0.05)
    new = asyncio.create_task(waiter("interactive", INTERACTIVE))
    await asyncio.sleep(0.02)
    await held.release(sent=False)
    await asyncio.wait_for(asyncio.gather(old, new), 5.0)
    assert order == ["bulk", "interactive"]


async def test_bulk_callers_leave_the_reserve_while_interactive_ones_are_about(
    limiter: RedisLimiter, redis: Redis
) -> None:
    """With an interactive ask in the last interactive_window, bulk callers take
    at most limit - reserve slots; a bulk waiter that may not take one does not hold
    up an interactive waiter behind it."""
    quota = Quota(20, 60.0)
    await (await limiter.acquire("k", quota)).release(sent=False)  # an interactive ask
    bulk = [
        await asyncio.wait_for(limiter.acquire("k", quota, priority=BULK), 2.0) for _ in range(18)
    ]
    with pytest.raises(WaitExceeded):
        await limiter.acquire("k", quota, priority=BULK, max_wait=0)
    stuck = asyncio.create_task(limiter.acquire("k", quota, priority=BULK))
    await asyncio.sleep(0.05)
    assert not stuck.done()
    interactive = [await asyncio.wait_for(limiter.acquire("k", quota), 1.0) for _ in range(2)]
    assert not stuck.done()
    stuck.cancel()
    for permit in bulk + interactive:
        await permit.release(sent=False)
    window = sharing.interactive_window(quota.period)
    assert 0 < await redis.pttl(limiter.keys("k")["ilast"]) <= window * 1000


async def test_without_interactive_use_the_batch_has_the_whole_quota(
    limiter: RedisLimiter,
) -> None:
    quota = Quota(20, 60.0)
    await warm(limiter, quota, BULK)
    permits = [
        await asyncio.wait_for(limiter.acquire("k", quota, priority=BULK, max_wait=0), 2.0)
        for _ in range(20)
    ]
    for permit in permits:
        await permit.release(sent=False)


async def test_interactive_calls_barely_wait_beside_a_batch_in_another_process(
    redis_url: str, prefix: str
) -> None:
    """A process runs a bulk batch that saturates the quota; this one makes
    interactive calls meanwhile, fewer than the reserve per period.

    Promise (issue 11): the interactive calls wait less than half a period at the
    95th percentile, the batch completes, and no window holds more than the limit,
    both processes' calls counted.
    """
    quota = Quota(20, 0.25)
    calls = 160
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    batch = ctx.Process(
        target=bulk_batch,
        kwargs={
            "redis_url": redis_url,
            "key_prefix": prefix,
            "quota": (quota.limit, quota.period),
            "calls": calls,
            "concurrency": 20,
            "latency": 0.005,
            "go": go,
            "results": results,
        },
        daemon=True,
    )
    batch.start()
    try:
        assert await asyncio.to_thread(results.get, True, 30) == "ready"
        async with RedisLimiter(redis_url, key_prefix=prefix) as limiter:
            # The web app is already in use when the batch starts.
            await (await limiter.acquire("k", quota)).release()
            go.set()
            await asyncio.sleep(0.3)  # the batch saturates the quota by now
            waits: list[float] = []
            mine: list[float] = []
            while len(waits) < 10:
                asked = time.monotonic()
                permit = await asyncio.wait_for(limiter.acquire("k", quota), 5.0)
                mine.append(time.monotonic())
                waits.append(mine[-1] - asked)
                await asyncio.sleep(0.005)
                await permit.release()
                await asyncio.sleep(0.6 * quota.period)  # within the reserve: 2 per window
            arrivals = await asyncio.to_thread(results.get, True, 30)
    finally:
        await asyncio.to_thread(batch.join, 10)
        if batch.is_alive():
            batch.kill()
    assert len(arrivals) == calls  # the batch completed
    during = [t for t in mine if arrivals[0] < t < arrivals[-1]]
    assert len(during) >= 8  # the interactive calls did run beside the batch
    p95 = statistics.quantiles(waits, n=20, method="inclusive")[18]
    assert p95 < quota.period / 2, waits
    assert max_in_window(sorted(arrivals + mine), quota.period) <= quota.limit


@pytest.mark.parametrize("limit", [5, 20])
async def test_bulk_is_never_starved_by_a_saturating_interactive_load(
    limiter: RedisLimiter, limit: int
) -> None:
    """A crowd of interactive callers keeps the window full; one bulk call waits among them.

    Promise: aging and the share (sharing.AGED_SHARE) serve it within a few periods:
    its head start runs out after HEAD_START periods, then the interactive calls
    already ahead of it and its one grant in ten; not when the crowd stops. With a
    limit of 20 the reserve (2) holds bulk back, and only the share moves it (without
    it, this bulk call waits past the 5 s cap).
    """
    quota = Quota(limit, 0.2)
    rng = random.Random(5)
    stop = False

    async def web() -> None:
        while not stop:
            permit = await limiter.acquire("k", quota)
            # Answers of up to a period: the slots free one by one, never a few at once.
            await asyncio.sleep(rng.uniform(0.0, quota.period))
            await permit.release()

    crowd = [asyncio.create_task(web()) for _ in range(3 * limit)]
    await asyncio.sleep(2 * quota.period)
    asked = time.monotonic()
    try:  # starved, it would wait until the crowd stops: give up after 5 s
        permit = await asyncio.wait_for(limiter.acquire("k", quota, priority=BULK), 5.0)
    finally:
        stop = True
    waited = time.monotonic() - asked
    await permit.release()
    await asyncio.gather(*crowd)
    assert sharing.HEAD_START * quota.period <= waited
    assert waited <= 2 * sharing.HEAD_START * quota.period + 1.0


# -- deadlines -----------------------------------------------------------------------------


async def test_max_wait_raises_at_once_when_the_slot_is_reserved_past_it(
    limiter: RedisLimiter, redis: Redis
) -> None:
    """The only slot cools for a second: a call with max_wait=0.2 is told at once,
    with retry_after; the reservation it got goes back, and the slot is still
    cooling (never freed early), then free."""
    quota = Quota(1, 1.0)
    await (await limiter.acquire("k", quota)).release()
    released = time.monotonic()
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=0.2)
    assert time.monotonic() - started < 0.15
    assert info.value.retry_after is not None
    assert 0.7 < info.value.retry_after <= 1.05
    await limiter.flush()
    assert await queued(redis, limiter) == 0
    with pytest.raises(WaitExceeded):  # given back as it was: cooling until its time
        await limiter.acquire("k", quota, max_wait=0)
    await asyncio.sleep(max(0.0, released + quota.period + 0.05 - time.monotonic()))
    permit = await limiter.acquire("k", quota, max_wait=0)
    await permit.release(sent=False)


async def test_max_wait_raises_at_the_deadline_and_strands_nothing(
    limiter: RedisLimiter, redis: Redis
) -> None:
    """The only slot is in flight (nothing can tell when it comes back): the call
    waits max_wait, raises, and leaves no ticket; the slot then goes to the next."""
    quota = Quota(1, 0.2)
    held = await limiter.acquire("k", quota)
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=0.3)
    assert 0.3 <= time.monotonic() - started < 0.45
    assert info.value.max_wait == 0.3
    await limiter.flush()
    assert await queued(redis, limiter) == 0
    await held.release(sent=False)
    permit = await asyncio.wait_for(limiter.acquire("k", quota), 1.0)
    await permit.release(sent=False)


async def test_max_wait_zero_takes_only_a_free_slot_in_one_trip(
    limiter: RedisLimiter, redis: Redis
) -> None:
    quota = Quota(2, 60.0)
    await warm(limiter, quota)
    first = await limiter.acquire("k", quota, max_wait=0)
    second = await limiter.acquire("k", quota, max_wait=0)
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=0)
    assert time.monotonic() - started < 0.1
    assert info.value.max_wait == 0
    assert await queued(redis, limiter) == 0  # never left in line
    await first.release(sent=False)
    again = await limiter.acquire("k", quota, max_wait=0)
    for permit in (second, again):
        await permit.release(sent=False)


async def test_max_wait_shorter_than_a_pause_raises_at_once(limiter: RedisLimiter) -> None:
    quota = Quota(10, 0.1)
    await (await limiter.acquire("k", quota)).release(sent=False)
    await limiter.pause("k", 1.0)
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=0.3)
    assert time.monotonic() - started < 0.1
    assert info.value.retry_after is not None
    assert 0.8 < info.value.retry_after <= 1.0


async def test_a_pause_from_another_process_fails_waiters_it_outlasts(
    redis_url: str, prefix: str
) -> None:
    """A waiter with max_wait learns of a pause set by another process (the nudge)
    and raises at once, not at its deadline."""
    quota = Quota(1, 1.0)
    async with (
        RedisLimiter(redis_url, key_prefix=prefix) as mine,
        RedisLimiter(redis_url, key_prefix=prefix) as other,
    ):
        held = await mine.acquire("k", quota)
        waiting = asyncio.create_task(mine.acquire("k", quota, max_wait=3.0))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await other.pause("k", 10.0)
        with pytest.raises(WaitExceeded) as info:
            await asyncio.wait_for(waiting, 1.0)
        assert time.monotonic() - started < 0.5
        assert info.value.retry_after is not None
        assert info.value.retry_after > 9.0
        await held.release(sent=False)


async def test_a_long_line_ahead_is_predicted(limiter: RedisLimiter, redis: Redis) -> None:
    """Ten bulk waiters ahead, one slot a period: a bulk call with max_wait of two
    periods is told at once that its turn is about ten periods away, and leaves."""
    quota = Quota(1, 0.5)
    held = await limiter.acquire("k", quota)
    ahead = [asyncio.create_task(limiter.acquire("k", quota, priority=BULK)) for _ in range(10)]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, priority=BULK, max_wait=1.0)
    assert time.monotonic() - started < 0.2
    assert info.value.retry_after is not None
    assert 10 * quota.period <= info.value.retry_after <= 11 * quota.period + 0.05
    for task in ahead:
        task.cancel()
    await asyncio.gather(*ahead, return_exceptions=True)
    await limiter.flush()
    assert await queued(redis, limiter) == 0
    await held.release(sent=False)


# -- learned limits ------------------------------------------------------------------------


async def test_refused_lowers_the_limit_once_a_period_for_every_process(
    redis_url: str, prefix: str
) -> None:
    """Two limiters (two processes) on one key: a refusal in one lowers the limit
    both grant by, at most once a period, and it grows back a step per quiet period."""
    quota = Quota(100, 0.4)
    step = sharing.recovery_step(100)
    async with (
        RedisLimiter(redis_url, key_prefix=prefix) as one,
        RedisLimiter(redis_url, key_prefix=prefix) as two,
    ):
        assert one.effective_quota("k", quota) is quota  # nothing learned: the caller's
        lowered = await one.refused("k", quota)
        learned_at = time.monotonic()
        assert lowered == Quota(70, 0.4)
        assert one.effective_quota("k", quota) == Quota(70, 0.4)
        assert await one.refused("k", quota) is None  # the same window: one signal
        assert await two.refused("k", quota) is None
        # The other process grants by it: 70 slots, not 100.
        permits = [await two.acquire("k", quota, max_wait=0) for _ in range(70)]
        assert two.effective_quota("k", quota) == Quota(70, 0.4)
        with pytest.raises(WaitExceeded):
            await two.acquire("k", quota, max_wait=0)
        for permit in permits:
            await permit.release(sent=False)
        await asyncio.sleep(max(0.0, learned_at + quota.period + 0.02 - time.monotonic()))
        # A period later: it had grown a step, and is lowered from there.
        lowered_again = sharing.decreased(70 + step)
        assert await two.refused("k", quota) == Quota(lowered_again, 0.4)
        learned_at = time.monotonic()
        await asyncio.sleep(learned_at + 2 * quota.period + 0.05 - time.monotonic())
        await (await one.acquire("k", quota)).release(sent=False)
        assert one.effective_quota("k", quota) == Quota(lowered_again + 2 * step, 0.4)


async def test_a_limit_that_never_grows_back(limiter: RedisLimiter, redis: Redis) -> None:
    """recover=False (a refusal that blocks for minutes): lowered, never raised by
    itself; its state is kept a day after the key's last use."""
    quota = Quota(10, 0.1)
    assert await limiter.refused("k", quota, recover=False) == Quota(7, 0.1)
    await asyncio.sleep(5 * quota.period)
    await (await limiter.acquire("k", quota)).release(sent=False)
    assert limiter.effective_quota("k", quota) == Quota(7, 0.1)
    ttl = await redis.pttl(limiter.keys("k")["learn"])
    assert 23 * 3600_000 < ttl <= 24 * 3600_000


async def test_a_learned_limit_is_forgotten_once_grown_back(
    limiter: RedisLimiter, redis: Redis
) -> None:
    quota = Quota(10, 0.05)  # 7, then +1 a period: back at 10 after 3 periods
    await limiter.refused("k", quota)
    ttl = await redis.pttl(limiter.keys("k")["learn"])
    assert 0 < ttl <= 5 * 50  # grown back after 3 periods, kept one more
    await asyncio.sleep(4 * quota.period + 0.05)
    await (await limiter.acquire("k", quota)).release(sent=False)
    assert limiter.effective_quota("k", quota) is quota
    assert await redis.exists(limiter.keys("k")["learn"]) == 0


async def test_the_ledger_paces_by_the_learned_limit_while_redis_is_away(
    prefix: str,
) -> None:
    """fallback="local": after a refusal lowered the limit, the process alone keeps
    to the lowered limit through an outage."""
    from livestats.testing import RedisServer

    quota = Quota(10, 60.0)
    with RedisServer() as server:
        async with RedisLimiter(
            server.url, key_prefix=prefix, fallback="local", redis_timeout=0.2
        ) as limiter:
            await warm(limiter, quota)
            await limiter.refused("k", quota)
            permits = [await limiter.acquire("k", quota, max_wait=0) for _ in range(7)]
            server.kill()
            with pytest.raises(WaitExceeded):
                await limiter.acquire("k", quota, max_wait=0.5)
            for permit in permits:
                await permit.release(sent=False)
            again = await asyncio.wait_for(limiter.acquire("k", quota), 2.0)  # locally
            await again.release(sent=False)


# -- quotas set at run time ----------------------------------------------------------------


async def test_set_quota_reaches_waiters_queued_in_another_process(
    redis_url: str, prefix: str
) -> None:
    """Another process has six waiters queued behind the one slot this one holds.

    Promise: a raised quota grants as many of them at once as it allows, a lowered
    one grants none more, and "off" grants all the rest at once with permits that
    hold nothing.
    """
    quota = Quota(1, 60.0)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    results = ctx.Queue()
    worker = ctx.Process(
        target=queue_waiters,
        kwargs={
            "redis_url": redis_url,
            "key_prefix": prefix,
            "quota": (quota.limit, quota.period),
            "waiters": 6,
            "ready": ready,
            "results": results,
        },
        daemon=True,
    )
    async with RedisLimiter(redis_url, key_prefix=prefix) as limiter:
        held = await limiter.acquire("k", quota)
        worker.start()
        try:
            assert await asyncio.to_thread(ready.wait, 30), "the worker did not start"

            async def grants(count: int, within: float) -> list[tuple[float, str]]:
                return [await asyncio.to_thread(results.get, True, within) for _ in range(count)]

            raised = time.monotonic()
            await limiter.set_quota("k", Quota(3, 60.0))
            first = await grants(2, 2.0)
            assert all(when - raised < 0.5 for when, _ in first)
            assert all("held" in shown for _, shown in first)
            assert limiter.effective_quota("k", quota) == Quota(3, 60.0)

            await limiter.set_quota("k", Quota(2, 60.0))
            await asyncio.sleep(0.3)
            assert results.empty()  # 3 in use: a lower quota grants none

            off = time.monotonic()
            await limiter.set_quota("k", None)
            rest = await grants(4, 2.0)
            assert all(when - off < 0.5 for when, _ in rest)
            assert all("not paced" in shown for _, shown in rest)
            assert limiter.effective_quota("k", quota) is None
        finally:
            await asyncio.to_thread(worker.join, 10)
            if worker.is_alive():
                worker.kill()
        await held.release(sent=False)


async def test_a_key_that_is_off_costs_no_trip(
    limiter: RedisLimiter, redis: Redis, redis_url: str, prefix: str
) -> None:
    """While the key is off, acquire returns at once without a script (but asks
    Redis again now and then, so a quota set elsewhere comes through)."""
    quota = Quota(1, 60.0)
    await limiter.set_quota("k", None)
    await (await limiter.acquire("k", quota)).release()
    before = await scripts_run(redis)
    permits = [await limiter.acquire("k", quota) for _ in range(200)]
    assert await scripts_run(redis) - before <= 1
    assert all("not paced" in repr(p) for p in permits)
    for permit in permits:
        await permit.release()
    async with RedisLimiter(redis_url, key_prefix=prefix) as other:
        await other.set_quota("k", Quota(2, 60.0))
    await asyncio.sleep(1.05)  # the next use asks again
    await (await limiter.acquire("k", quota)).release(sent=False)
    await asyncio.sleep(0.05)
    assert limiter.effective_quota("k", quota) == Quota(2, 60.0)


async def test_set_quota_replaces_the_callers_and_forgets_what_was_learned(
    limiter: RedisLimiter, redis: Redis
) -> None:
    quota = Quota(10, 60.0)
    await warm(limiter, quota)
    assert await limiter.refused("k", quota) == Quota(7, 60.0)
    await limiter.set_quota("k", Quota(4, 0.1))
    assert await redis.exists(limiter.keys("k")["learn"]) == 0
    assert limiter.effective_quota("k", quota) == Quota(4, 0.1)
    permits = [await limiter.acquire("k", quota, max_wait=0) for _ in range(4)]
    with pytest.raises(WaitExceeded):
        await limiter.acquire("k", quota, max_wait=0)
    for permit in permits:
        await permit.release()  # cools for the quota set (0.1 s), not the caller's minute
    permit = await asyncio.wait_for(limiter.acquire("k", quota), 1.0)
    await permit.release(sent=False)
    ttl = await redis.pttl(limiter.keys("k")["quota"])
    assert 23 * 3600_000 < ttl <= 24 * 3600_000


# -- memory --------------------------------------------------------------------------------


async def test_every_key_expires(redis_url: str, redis: Redis, prefix: str) -> None:
    """After a run with both priorities, deadlines and a refusal, every key has a
    time to live, and within a few seconds only the settings remain: the reserve
    marker (interactive_window), the learned limit (until it has grown back)."""
    quota = Quota(10, 0.1)
    options: dict[str, Any] = {
        "lease": 0.1,
        "ticket_ttl": 0.2,
        "attempt_timeout": 0.05,
        "redis_timeout": 0.2,
    }
    async with RedisLimiter(redis_url, key_prefix=prefix, **options) as limiter:

        async def call(priority: Priority) -> None:
            try:
                permit = await limiter.acquire("k", quota, priority=priority, max_wait=0.15)
            except WaitExceeded:
                return
            await asyncio.sleep(0.002)
            await permit.release()

        await asyncio.gather(*(call(random.choice([BULK, INTERACTIVE])) for _ in range(60)))
        await limiter.refused("k", quota)
        keys = [_text(k) for k in await redis.keys(f"{prefix}:*")]
        assert keys
        for key in keys:
            assert await redis.pttl(key) > 0, key
    await asyncio.sleep(2.0)  # the longest: a second past lease + periods + ticket_ttl
    left = sorted(_text(k).rsplit(":", 1)[-1] for k in await redis.keys(f"{prefix}:*"))
    assert left in (["ilast"], ["ilast", "learn"])
    assert 0 < await redis.pttl(f"{prefix}:{{k}}:ilast") <= 60_000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def scripts_run(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("eval", "evalsha"))


def test_max_wait_is_checked() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:9/0")

    async def ask(value: Any) -> None:
        await limiter.acquire("k", Quota(1, 1.0), max_wait=value)

    for bad in (-1, math.nan, "1", True):
        with pytest.raises(Exception, match="max_wait"):
            asyncio.run(ask(bad))


async def test_clients_in_two_processes_learn_a_lower_quota_together(
    redis_url: str, prefix: str
) -> None:
    """The vendor allows 10 per 0.5 s; two clients (two limiters: two processes)
    believe 20. Promise: refusals lower the effective quota both clients report
    (client.effective_quota), and the batch completes without a failed item."""
    from livestats import TencentClient
    from livestats.testing import Simulator, TencentSim

    believed, real = Quota(20, 0.5), Quota(10, 0.5)
    async with (
        Simulator(tencent=TencentSim(rooms=40, quotas={"get_room_stats": real})) as sim,
        RedisLimiter(redis_url, key_prefix=prefix) as one,
        RedisLimiter(redis_url, key_prefix=prefix) as two,
    ):
        creds = sim.tencent
        clients = [
            TencentClient(
                creds.sdkappid,
                creds.identifier,
                secret_key=creds.secret_key,
                base_url=sim.url,
                limiter=limiter,
                quotas={"get_room_stats": believed},
            )
            for limiter in (one, two)
        ]
        async with clients[0], clients[1]:
            results = await asyncio.gather(
                *(
                    asyncio.wait_for(collect_all(client, sim.room_ids[:16]), 30)
                    for client in clients
                )
            )
            seen = [client.effective_quota("get_room_stats") for client in clients]
    assert all(r.ok for batch in results for r in batch)
    assert all(q is not None and q.limit < believed.limit for q in seen), seen


async def collect_all(client: Any, ids: list[str]) -> list[Any]:
    return [result async for result in client.get_room_stats_many(ids)]
