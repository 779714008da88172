"""LocalLimiter: the any-window guarantee, bursts, fairness, cancellation, loop binding.

The async tests run on virtual time (``tests/virtual_time.py``): the limiter wakes
on the loop's timers, so a wait for a slot takes no real time and the loop's clock
says exactly how long it was. The loop-binding tests run real loops of their own.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from livestats import LocalLimiter, Quota, shared_limiter
from livestats._core.limiter import Paused
from livestats.testing import max_in_window
from tests.virtual_time import virtual_time


@virtual_time
async def test_full_burst_when_the_window_is_free() -> None:
    limiter = LocalLimiter()
    quota = Quota(5, 60.0)
    # Five acquisitions complete without ever yielding to the loop for a timer.
    permits = [await asyncio.wait_for(limiter.acquire("k", quota), 0.5) for _ in range(5)]
    assert len(permits) == 5
    sixth = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.05)
    assert not sixth.done()  # all five slots are in flight or cooling for 60 s
    sixth.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sixth


async def _slot_reuse_wait(period: float) -> float:
    """How long after the answer a waiter for the only slot of ``Quota(1, period)`` is served."""
    limiter = LocalLimiter()
    quota = Quota(1, period)
    first = await limiter.acquire("k", quota)
    waiting = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # the slot is held until its outcome is known
    answered = asyncio.get_running_loop().time()
    await first.release()
    permit = await waiting
    waited = asyncio.get_running_loop().time() - answered
    await permit.release()
    return waited


@virtual_time
async def test_a_slot_is_reusable_one_period_after_its_answer() -> None:
    assert await _slot_reuse_wait(0.05) >= 0.05


@pytest.mark.parametrize("period", [0.3, 0.0625])
@virtual_time
async def test_a_slot_is_never_reused_a_rounding_error_early(period: float) -> None:
    # On virtual time the wait is exact: "answer + period" must not round below a
    # period (0.05 and 0.3 did, at the loop's clock of 1000 s; 0.0625 is exact).
    assert await _slot_reuse_wait(period) >= period


@virtual_time
async def test_unsent_release_frees_the_slot_at_once() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 60.0)
    permit = await limiter.acquire("k", quota)
    waiting = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0)
    await permit.release(sent=False)
    second = await asyncio.wait_for(waiting, 1.0)
    await second.release(sent=False)


@virtual_time
async def test_release_is_idempotent() -> None:
    limiter = LocalLimiter()
    quota = Quota(2, 60.0)
    permit = await limiter.acquire("k", quota)
    await permit.release(sent=False)
    await permit.release(sent=False)
    # Had the second release counted, a third slot would exist.
    a = await limiter.acquire("k", quota)
    b = await limiter.acquire("k", quota)
    third = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.02)
    assert not third.done()
    third.cancel()
    await a.release(sent=False)
    await b.release(sent=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
@virtual_time
async def test_no_window_ever_holds_more_than_the_limit(seed: int) -> None:
    """Requests reach the "provider" at a random moment between send and answer."""
    rng = random.Random(seed)
    limiter = LocalLimiter()
    quota = Quota(8, 0.05)
    arrivals: list[float] = []

    async def request() -> None:
        permit = await limiter.acquire("k", quota)
        try:
            latency = rng.uniform(0, 0.01)
            await asyncio.sleep(rng.uniform(0, latency))
            arrivals.append(asyncio.get_running_loop().time())
            await asyncio.sleep(latency)
        finally:
            await permit.release()

    await asyncio.gather(*(request() for _ in range(120)))
    assert len(arrivals) == 120
    assert max_in_window(sorted(arrivals), quota.period) <= quota.limit


@virtual_time
async def test_waiters_are_served_first_come_first_served() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 0.01)
    order: list[int] = []
    held = await limiter.acquire("k", quota)

    async def waiter(n: int) -> None:
        permit = await limiter.acquire("k", quota)
        order.append(n)
        await permit.release()

    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(waiter(n)))
        await asyncio.sleep(0)  # each one queues before the next starts
    await held.release()
    await asyncio.gather(*tasks)
    assert order == list(range(6))


@virtual_time
async def test_a_newcomer_does_not_jump_the_queue() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 0.02)
    order: list[str] = []
    held = await limiter.acquire("k", quota)

    async def take(name: str) -> None:
        permit = await limiter.acquire("k", quota)
        order.append(name)
        await permit.release()

    early = asyncio.create_task(take("early"))
    await asyncio.sleep(0)
    await held.release()
    # The slot is cooling; a newcomer arriving when it frees must queue behind "early".
    await asyncio.sleep(0.03)
    late = asyncio.create_task(take("late"))
    await asyncio.gather(early, late)
    assert order == ["early", "late"]


@virtual_time
async def test_a_cancelled_waiter_consumes_nothing_and_stalls_nobody() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 0.01)
    held = await limiter.acquire("k", quota)
    doomed = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0)
    survivor = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0)
    doomed.cancel()
    await held.release()
    permit = await asyncio.wait_for(survivor, 1.0)
    await permit.release()
    assert doomed.cancelled()


@virtual_time
async def test_a_waiter_cancelled_right_after_its_grant_gives_the_slot_back() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 60.0)
    held = await limiter.acquire("k", quota)
    granted_then_cancelled = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0)
    next_in_line = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0)
    # Unsent release grants the first waiter at once; cancel it before it runs.
    await held.release(sent=False)
    granted_then_cancelled.cancel()
    permit = await asyncio.wait_for(next_in_line, 1.0)
    assert granted_then_cancelled.cancelled()
    await permit.release(sent=False)


@virtual_time
async def test_pause_holds_every_slot() -> None:
    limiter = LocalLimiter()
    quota = Quota(10, 0.01)
    await (await limiter.acquire("k", quota)).release(sent=False)
    await limiter.pause("k", 0.1)
    started = asyncio.get_running_loop().time()
    permit = await limiter.acquire("k", quota)
    assert asyncio.get_running_loop().time() - started >= 0.09
    await permit.release()


@virtual_time
async def test_keys_pace_independently() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 60.0)
    await limiter.acquire("a", quota)
    other = await asyncio.wait_for(limiter.acquire("b", quota), 0.5)
    await other.release()


def test_works_across_event_loops() -> None:
    """pytest-asyncio makes a loop per test; one limiter must serve them all."""
    limiter = LocalLimiter()
    quota = Quota(2, 0.05)

    async def use() -> None:
        for _ in range(3):
            permit = await limiter.acquire("k", quota)
            await permit.release()

    asyncio.run(use())
    asyncio.run(use())


def test_requests_in_flight_on_a_dead_loop_still_count() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 60.0)

    async def hold_forever() -> None:
        await limiter.acquire("k", quota)  # never released: its loop ends

    asyncio.run(hold_forever())

    async def try_again() -> bool:
        try:
            await asyncio.wait_for(limiter.acquire("k", quota), 0.05)
        except asyncio.TimeoutError:
            return False
        return True

    assert asyncio.run(try_again()) is False


@virtual_time
async def test_repr_shows_live_state() -> None:
    limiter = LocalLimiter()
    permit = await limiter.acquire("tencent:1:get_room_stats", Quota(3, 1.0))
    text = repr(limiter)
    assert "tencent:1:get_room_stats" in text
    assert "1 in flight" in text
    await permit.release()
    assert "1 cooling" in repr(limiter)


@virtual_time
async def test_a_fail_fast_caller_gets_paused_at_once() -> None:
    limiter = LocalLimiter()
    quota = Quota(5, 0.01)
    await (await limiter.acquire("k", quota)).release()
    await limiter.pause("k", 30.0)
    with pytest.raises(Paused) as info:
        await limiter.acquire("k", quota, wait_if_paused=False)
    assert 29.0 < info.value.seconds <= 30.0


@virtual_time
async def test_a_pause_fails_fail_fast_waiters_and_holds_the_others() -> None:
    limiter = LocalLimiter()
    quota = Quota(1, 0.02)
    held = await limiter.acquire("k", quota)
    patient = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(limiter.acquire("k", quota, wait_if_paused=False))
    await asyncio.sleep(0)
    await limiter.pause("k", 0.1)
    with pytest.raises(Paused):
        await impatient
    await held.release()
    started = asyncio.get_running_loop().time()
    permit = await patient  # still served, in order, once the pause is over
    assert asyncio.get_running_loop().time() - started >= 0.05
    await permit.release()


def test_the_shared_limiter_is_one_per_process() -> None:
    assert shared_limiter() is shared_limiter()
    assert isinstance(shared_limiter(), LocalLimiter)
