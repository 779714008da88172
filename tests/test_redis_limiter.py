"""RedisLimiter against a real redis-server: the LocalLimiter's guarantee, across processes."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import random
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from livestats import (
    ChinaNetCenterClient,
    Clock,
    LimiterUnavailableError,
    PolyvClient,
    Quota,
    RedisLimiter,
    TencentClient,
)
from livestats._core.limiter import Paused
from livestats.testing import (
    ChinaNetCenterSim,
    PolyvSim,
    Simulator,
    TencentSim,
    max_in_window,
    pacing_report,
)
from tests._redis_worker import collect_room_stats
from tests.conftest import collect


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[RedisLimiter]:
    # A prefix per test: tests never see each other's slots.
    async with RedisLimiter(redis_url, key_prefix=f"t-{secrets.token_hex(4)}") as made:
        yield made


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_free_window_allows_a_full_burst(limiter: RedisLimiter) -> None:
    quota = Quota(5, 60.0)
    permits = [await asyncio.wait_for(limiter.acquire("k", quota), 2.0) for _ in range(5)]
    sixth = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.1)
    assert not sixth.done()
    sixth.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sixth
    for permit in permits:
        await permit.release(sent=False)


@pytest.mark.parametrize("seed", [1, 2])
async def test_no_window_ever_holds_more_than_the_limit(limiter: RedisLimiter, seed: int) -> None:
    rng = random.Random(seed)
    quota = Quota(8, 0.1)
    arrivals: list[float] = []

    async def request() -> None:
        permit = await limiter.acquire("k", quota)
        try:
            latency = rng.uniform(0, 0.01)
            await asyncio.sleep(rng.uniform(0, latency))
            arrivals.append(time.monotonic())
            await asyncio.sleep(latency)
        finally:
            await permit.release()

    await asyncio.gather(*(request() for _ in range(60)))
    assert len(arrivals) == 60
    assert max_in_window(sorted(arrivals), quota.period) <= quota.limit


async def test_waiters_are_served_first_come_first_served(limiter: RedisLimiter) -> None:
    quota = Quota(1, 0.05)
    held = await limiter.acquire("k", quota)
    order: list[int] = []

    async def waiter(n: int) -> None:
        permit = await limiter.acquire("k", quota)
        order.append(n)
        await permit.release()

    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(waiter(n)))
        await asyncio.sleep(0.02)  # each takes its ticket before the next
    await held.release()
    await asyncio.gather(*tasks)
    assert order == list(range(5))


async def test_a_cancelled_waiter_gives_up_its_place(limiter: RedisLimiter, redis: Redis) -> None:
    quota = Quota(1, 0.05)
    held = await limiter.acquire("k", quota)
    doomed = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.05)
    survivor = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.05)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await redis.zcard(limiter.keys("k")["queue:i"]) == 1  # only the survivor waits
    await held.release()
    permit = await asyncio.wait_for(survivor, 2.0)
    await permit.release()


async def test_a_reservation_given_back_frees_its_slot_no_earlier(redis_url: str) -> None:
    """One process's slot cools; another's waiter reserves it and is cancelled while
    it sleeps to it.

    Promise: the slot goes back as it was, cooling until its time: handed back as
    free, the second process's next request would land in the window of the first
    (its own ledger knows nothing of that slot).
    """
    quota = Quota(1, 0.5)
    prefix = secrets.token_hex(4)
    async with (
        RedisLimiter(redis_url, key_prefix=prefix) as first,
        RedisLimiter(redis_url, key_prefix=prefix) as second,
    ):
        await (await second.acquire("k", quota)).release(sent=False)  # knows the server
        await (await first.acquire("k", quota)).release()
        await first.flush()
        released = time.monotonic()
        sleeper = asyncio.create_task(second.acquire("k", quota))
        await asyncio.sleep(0.1)  # reserved: it sleeps until the slot has cooled
        sleeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        permit = await asyncio.wait_for(second.acquire("k", quota), 2.0)
        assert time.monotonic() >= released + quota.period - 0.01
        await permit.release(sent=False)


async def test_a_free_slot_is_used_at_once(redis_url: str) -> None:
    """A slot free when the script ran is handed over with no sleep (only a slot
    reserved from a cooling one waits, until the server's clock has reached it).

    Promise: an acquire that finds a free slot costs one round trip. (It slept half
    a millisecond of clock margin, a whole millisecond of event-loop timer, on each.)
    """
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    clock = Clock(monotonic=time.monotonic, sleep=sleep)
    async with RedisLimiter(redis_url, key_prefix=secrets.token_hex(4), clock=clock) as limiter:
        quota = Quota(1000, 1.0)
        await (await limiter.acquire("k", quota)).release()  # a new key: the server's grace
        sleeps.clear()
        for _ in range(20):
            await (await limiter.acquire("k", quota)).release()
        assert sleeps == []
        quota = Quota(1, 0.2)  # the one slot cools: the next grant is a reservation
        await (await limiter.acquire("r", quota)).release()
        sleeps.clear()
        await (await limiter.acquire("r", quota)).release()
        assert len(sleeps) == 1
        assert 0.1 < sleeps[0] <= 0.21


async def test_an_unsent_release_frees_the_slot_at_once(limiter: RedisLimiter) -> None:
    quota = Quota(1, 60.0)
    permit = await limiter.acquire("k", quota)
    await permit.release(sent=False)
    again = await asyncio.wait_for(limiter.acquire("k", quota), 2.0)
    await again.release(sent=False)


async def test_pause_holds_waiters_and_fails_fail_fast_ones(limiter: RedisLimiter) -> None:
    quota = Quota(10, 0.05)
    await (await limiter.acquire("k", quota)).release(sent=False)
    await limiter.pause("k", 0.3)
    with pytest.raises(Paused) as info:
        await limiter.acquire("k", quota, wait_if_paused=False)
    assert 0.1 < info.value.seconds <= 0.3
    started = time.monotonic()
    permit = await limiter.acquire("k", quota)
    assert time.monotonic() - started >= 0.15
    await permit.release()


async def test_memory_is_bounded_and_keys_expire(limiter: RedisLimiter, redis: Redis) -> None:
    quota = Quota(4, 0.2)
    permits = [await limiter.acquire("k", quota) for _ in range(4)]
    for permit in permits:
        await permit.release()
    await limiter.flush()  # releases reach Redis with the next acquire, or a moment later
    keys = limiter.keys("k")
    assert await redis.zcard(keys["slots"]) == 4  # never more entries than the limit
    for name in ("slots",):
        ttl = await redis.pttl(keys[name])
        assert 0 < ttl <= (60.0 + 0.2 + 10.0) * 1000 + 1000


async def test_a_slot_whose_holder_died_frees_itself(redis_url: str) -> None:
    async with RedisLimiter(redis_url, key_prefix=secrets.token_hex(4), lease=0.2) as limiter:
        quota = Quota(1, 0.1)
        await limiter.acquire("k", quota)  # never released: the holder "crashed"
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 3.0)  # lease + period
        await permit.release()


async def test_a_ticket_nobody_renews_lapses(redis_url: str, redis: Redis) -> None:
    async with RedisLimiter(redis_url, key_prefix=secrets.token_hex(4), ticket_ttl=0.3) as limiter:
        quota = Quota(1, 0.05)
        held = await limiter.acquire("k", quota)
        keys = limiter.keys("k")
        # A waiter of a process that died: first in line, then never heard from again.
        await redis.zadd(keys["queue:i"], {"ghost": 0})
        await redis.zadd(keys["alive"], {"ghost": 0})
        await held.release()
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 3.0)
        await permit.release()
        assert await redis.zscore(keys["queue:i"], "ghost") is None


async def test_redis_unreachable_is_a_typed_error_by_default() -> None:
    async with RedisLimiter("redis://127.0.0.1:9/0", outage_timeout=0.2) as limiter:
        with pytest.raises(LimiterUnavailableError, match="Redis"):
            await limiter.acquire("k", Quota(1, 1.0))


async def test_fallback_local_paces_in_process_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="livestats")
    async with RedisLimiter("redis://127.0.0.1:9/0", fallback="local") as limiter:
        quota = Quota(2, 60.0)
        first = await limiter.acquire("k", quota)
        await limiter.acquire("k", quota)
        third = asyncio.create_task(limiter.acquire("k", quota))
        await asyncio.sleep(0.1)
        assert not third.done()  # still paced: locally
        third.cancel()
        await first.release()
    warnings = [r for r in caplog.records if "Redis is unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not per call


async def test_every_client_can_use_it(redis_url: str, sim: Simulator) -> None:
    async with RedisLimiter(redis_url, key_prefix=secrets.token_hex(4)) as limiter:
        creds = sim.tencent
        client = TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url,
            limiter=limiter, quotas={"get_room_stats": Quota(10, 0.2)},
        )  # fmt: skip
        async with client:
            results = await collect(client.get_room_stats_many(sim.room_ids[:30]))
        assert all(r.ok for r in results)
        assert sim.max_in_window("get_room_stats", 0.2) <= 10
        assert sim.violations("get_room_stats") == 0


async def test_chinanetcenter_and_polyv_clients_use_it_too(redis_url: str, redis: Redis) -> None:
    cnc_quota, polyv_quota = Quota(2, 0.3), Quota(3, 0.3)
    prefix = secrets.token_hex(4)
    async with (
        Simulator(
            chinanetcenter=ChinaNetCenterSim(domains=4, quotas={"get_stream_durations": cnc_quota}),
            polyv=PolyvSim(quotas={"get_stream_info": polyv_quota}),
        ) as sim,
        RedisLimiter(redis_url, key_prefix=prefix) as limiter,
    ):
        cnc = ChinaNetCenterClient(
            sim.chinanetcenter.username, sim.chinanetcenter.api_key, base_url=sim.url,
            limiter=limiter, quotas={"get_stream_durations": cnc_quota},
        )  # fmt: skip
        polyv = PolyvClient(
            sim.polyv.app_id, sim.polyv.app_secret, base_url=sim.url,
            limiter=limiter, quotas={"get_stream_info": polyv_quota},
        )  # fmt: skip
        async with cnc, polyv:
            durations, samples = await asyncio.gather(
                cnc.get_stream_durations(sim.domains),
                collect(polyv.get_stream_info_many(sim.channel_ids * 2)),
            )
        assert len(durations) == sum(len(s) for s in sim.domains.values())
        assert all(r.ok for r in samples)
        for operation, quota in (
            ("get_stream_durations", cnc_quota),
            ("get_stream_info", polyv_quota),
        ):
            assert sim.violations(operation) == 0
            assert sim.max_in_window(operation) <= quota.limit
    keys = {
        key.decode() if isinstance(key, bytes) else key for key in await redis.keys(f"{prefix}:*")
    }
    username = sim.chinanetcenter.username
    assert f"{prefix}:{{chinanetcenter:{username}:get_stream_durations}}:slots" in keys
    assert f"{prefix}:{{polyv:default:127.0.0.1}}:slots" in keys


def test_one_limiter_serves_several_event_loops(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, key_prefix=secrets.token_hex(4))

    async def use() -> None:
        permit = await limiter.acquire("k", Quota(5, 0.05))
        await permit.release()

    asyncio.run(use())
    asyncio.run(use())
    asyncio.run(limiter.aclose())


async def test_four_processes_share_one_quota_exactly(redis_url: str) -> None:
    """Four workers, each with its own client and RedisLimiter, drive one quota at once."""
    quota = Quota(25, 0.5)
    per_worker = 50
    ctx = multiprocessing.get_context("spawn")
    async with Simulator(tencent=TencentSim(rooms=40, quotas={"get_room_stats": quota})) as sim:
        creds = (sim.tencent.sdkappid, sim.tencent.identifier, sim.tencent.secret_key)
        start = ctx.Barrier(4)
        results = ctx.Queue()
        prefix = f"mp-{secrets.token_hex(4)}"  # one prefix: the workers share the quota
        workers = [
            ctx.Process(
                target=collect_room_stats,
                kwargs={
                    "base_url": sim.url,
                    "redis_url": redis_url,
                    "key_prefix": prefix,
                    "credentials": creds,
                    "room_ids": [sim.room_ids[(w + i) % 40] for i in range(per_worker)],
                    "quota": (quota.limit, quota.period),
                    "start": start,
                    "results": results,
                },
            )
            for w in range(4)
        ]
        for worker in workers:
            worker.start()
        outcomes = []
        for _ in workers:  # the simulator must keep serving while the workers run
            outcomes.append(await asyncio.to_thread(results.get, True, 60))
        for worker in workers:
            await asyncio.to_thread(worker.join, 10)
        arrivals = sim.arrivals("get_room_stats")
        violations = sim.violations("get_room_stats")
    assert outcomes == [(per_worker, 0)] * 4
    assert len(arrivals) == 4 * per_worker
    assert violations == 0
    assert max_in_window(arrivals, quota.period) <= quota.limit
    report = pacing_report(arrivals, quota)
    assert report.ratio >= 0.90, str(report)  # the bar for the group
