"""SQLiteLimiter and issue 11: priorities and the share, deadlines, learned limits, runtime quotas.

The rules are :mod:`livestats._core.sharing`'s; these tests check that the file
carries them between processes. The limiter's times are the file clock (the
host's monotonic clock), so they run on real time with short periods; where a
promise is about order or about what the file holds, they assert that, and
where it is about a wait, they bound it by what the rules say it must be. The
cross-process ones spawn workers (``tests/_sqlite_worker.py``), each with a
SQLiteLimiter of its own on one file.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import sqlite3
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from livestats import LimiterUnavailableError, Priority, Quota, SQLiteLimiter
from livestats._core import sharing, sqlite_limiter
from livestats._core.sharing import WaitExceeded, decreased, recovery_step
from livestats.testing import max_in_window
from tests._sqlite_worker import (
    bulk_batch,
    crowd_of_callers,
    interactive_calls,
    interactive_crowd,
    refuse,
    wait_in_line,
)

SPAWN = multiprocessing.get_context("spawn")
BULK = Priority.BULK


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "limiter.db")


@pytest.fixture
async def limiter(path: str) -> AsyncIterator[SQLiteLimiter]:
    async with SQLiteLimiter(path) as made:
        yield made


def query(path: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows read by a connection of the test's own."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


async def settled(limiter: SQLiteLimiter) -> None:
    """Every step queued so far (a leave handed off after a give-up) has run."""
    await limiter.pause("settle", 0.001)


async def taken(limiter: SQLiteLimiter, key: str, quota: Quota, n: int, **kwargs: Any) -> list[Any]:
    return [await asyncio.wait_for(limiter.acquire(key, quota, **kwargs), 2.0) for _ in range(n)]


async def no_free_slot(limiter: SQLiteLimiter, key: str, quota: Quota, **kwargs: Any) -> bool:
    """Whether a caller who takes only a free slot now is turned away."""
    try:
        permit = await limiter.acquire(key, quota, max_wait=0, **kwargs)
    except WaitExceeded:
        return True
    await permit.release(sent=False)
    return False


# -- priorities --------------------------------------------------------------------------


async def test_interactive_waiters_are_served_before_bulk_ones(limiter: SQLiteLimiter) -> None:
    """An interactive call goes before bulk calls that asked less than three periods before it."""
    quota = Quota(1, 0.1)
    held = await limiter.acquire("k", quota)
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        permit = await limiter.acquire("k", quota, priority=priority)
        order.append(name)
        await permit.release()

    tasks = []
    for name, priority in [("b1", BULK), ("b2", BULK), ("i1", Priority.INTERACTIVE)]:
        tasks.append(asyncio.create_task(take(name, priority)))
        await asyncio.sleep(0.02)  # each takes its ticket before the next
    tasks.append(asyncio.create_task(take("i2", Priority.INTERACTIVE)))
    await asyncio.sleep(0.02)
    await held.release(sent=False)
    await asyncio.gather(*tasks)
    assert order == ["i1", "i2", "b1", "b2"]


async def test_a_bulk_waiter_is_not_starved_by_later_interactive_ones(
    limiter: SQLiteLimiter,
) -> None:
    """Aging: after three periods in line a bulk call goes before interactive calls asking then."""
    quota = Quota(1, 0.1)  # a head start of 0.3 s
    held = await limiter.acquire("k", quota)
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        permit = await limiter.acquire("k", quota, priority=priority)
        order.append(name)
        await permit.release()

    bulk = asyncio.create_task(take("bulk", BULK))
    await asyncio.sleep(0.02)
    early = asyncio.create_task(take("early", Priority.INTERACTIVE))  # asked 0.02 s after it
    await asyncio.sleep(0.6)
    late = asyncio.create_task(take("late", Priority.INTERACTIVE))  # asked 0.62 s after it
    await asyncio.sleep(0.02)
    await held.release(sent=False)
    await asyncio.gather(bulk, early, late)
    assert order == ["early", "bulk", "late"]


async def test_bulk_callers_have_the_whole_quota_without_interactive_ones(
    limiter: SQLiteLimiter,
) -> None:
    quota = Quota(10, 60.0)
    permits = await taken(limiter, "k", quota, 10, priority=BULK)
    assert await no_free_slot(limiter, "k", quota, priority=BULK)
    for permit in permits:
        await permit.release(sent=False)


async def test_bulk_callers_leave_the_reserve_to_interactive_ones(limiter: SQLiteLimiter) -> None:
    """While interactive calls use the key, bulk calls leave a tenth of the slots to them."""
    quota = Quota(20, 60.0)
    await (await limiter.acquire("k", quota)).release(sent=False)  # an interactive ask
    permits = await taken(limiter, "k", quota, 18, priority=BULK)
    assert await no_free_slot(limiter, "k", quota, priority=BULK)  # 2 left: the reserve
    permits += await taken(limiter, "k", quota, 2)  # interactive calls wait for nothing
    assert await no_free_slot(limiter, "k", quota)
    [(until,)] = query(limiter.path, "SELECT interactive_until FROM livestats_keys")
    assert until > time.monotonic() + 59  # kept for an interactive window (60 s here)
    for permit in permits:
        await permit.release(sent=False)


async def test_an_ineligible_bulk_waiter_does_not_block_an_interactive_one(
    limiter: SQLiteLimiter,
) -> None:
    """A bulk call ahead in line that the reserve keeps out is passed by an interactive call."""
    quota = Quota(10, 0.05)  # reserve 1; a head start of 0.15 s
    permits = await taken(limiter, "k", quota, 9)
    waiting = asyncio.create_task(limiter.acquire("k", quota, priority=BULK))
    await asyncio.sleep(0.3)  # ahead of any interactive call asking from now on
    permits.append(await asyncio.wait_for(limiter.acquire("k", quota), 1.0))
    assert not waiting.done()
    assert query(limiter.path, "SELECT priority FROM livestats_queue") == [(int(BULK),)]
    await permits.pop().release(sent=False)
    await asyncio.sleep(0.05)
    assert not waiting.done()  # 9 used: the tenth is the reserve's
    for permit in permits:
        await permit.release(sent=False)
    await (await asyncio.wait_for(waiting, 2.0)).release(sent=False)


async def test_a_bulk_waiter_wakes_when_the_reserve_lapses(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its nap ends when interactive callers have gone quiet, not a ticket renewal later."""
    monkeypatch.setattr(sqlite_limiter, "interactive_window", lambda period: 0.3)
    quota = Quota(10, 60.0)
    async with SQLiteLimiter(path, ticket_ttl=30.0) as limiter:  # renewals 15 s apart
        await (await limiter.acquire("k", quota)).release(sent=False)
        asked = time.monotonic()
        permits = await taken(limiter, "k", quota, 9, priority=BULK)
        permits.append(await asyncio.wait_for(limiter.acquire("k", quota, priority=BULK), 5.0))
        assert time.monotonic() - asked >= 0.3
        for permit in permits:
            await permit.release(sent=False)


async def test_interactive_calls_wait_little_beside_a_saturating_batch_in_another_process(
    path: str,
) -> None:
    """Issue 11's promise across two real processes: p95 of interactive waits < half a period.

    One process runs a batch of bulk calls that keeps the quota full; another,
    already in use when the batch starts, makes an interactive call every half
    period. Every arrival of both stays
    within the quota, and the batch completes at about the rate the reserve
    leaves it.
    """
    quota = Quota(40, 0.4)  # reserve 4
    calls, interactive = 200, 8
    start, results = SPAWN.Barrier(2), SPAWN.Queue()
    common = {"path": path, "key": "k", "quota": (quota.limit, quota.period), "start": start}
    batch = SPAWN.Process(
        target=bulk_batch,
        kwargs={**common, "calls": calls, "concurrency": 60, "hold": 0.004, "results": results},
    )
    person = SPAWN.Process(
        target=interactive_calls,
        kwargs={
            **common,
            "calls": interactive,
            "every": quota.period / 2,
            "delay": 0.3,  # the batch fills the window first
            "hold": 0.004,
            "results": results,
        },
    )
    for worker in (batch, person):
        worker.start()
    outcomes = [await asyncio.to_thread(results.get, True, 60) for _ in range(2)]
    for worker in (batch, person):
        await asyncio.to_thread(worker.join, 10)
    bulk = next(o for o in outcomes if "elapsed" in o)
    people = next(o for o in outcomes if "waits" in o)
    assert len(bulk["arrivals"]) == calls
    assert len(people["waits"]) == interactive
    p95 = statistics.quantiles(people["waits"], n=20, method="inclusive")[18]
    assert p95 < quota.period / 2, people["waits"]
    assert max(people["arrivals"]) < max(bulk["arrivals"])  # all while the batch ran
    arrivals = sorted(bulk["arrivals"] + people["arrivals"])
    assert max_in_window(arrivals, quota.period) <= quota.limit
    # 36 slots a period for the batch (and every slot once the person is quiet):
    # it ends in about 200 / 36 periods.
    assert bulk["elapsed"] < calls / (quota.limit - 4) * quota.period * 1.5


# -- the share ----------------------------------------------------------------------------

#: 40 slots (a reserve of 4) a period of 0.2 s: a head start of 0.6 s.
SHARE_QUOTA = Quota(40, 0.2)
#: Twice the limit of interactive callers, answers of 0 to 50 ms: the window stays full.
CROWD = 2 * SHARE_QUOTA.limit
LONGEST_ANSWER = 0.05


def assert_served_by_its_share(asked: float, got: float, grants: list[float]) -> None:
    """The bounds of a bulk call asked at ``asked`` and served at ``got`` among a crowd.

    Its head start runs out after HEAD_START periods (0.6 s); then the crowd's calls
    already ahead of it (at most one each: CROWD calls, about 2.25 periods of
    answers) and AGED_SHARE - 1 passes go first, and it takes its share. Without the
    share it waits until the crowd stops.
    """
    period = SHARE_QUOTA.period
    assert got - asked <= 2 * sharing.HEAD_START * period + period
    # The same counted in grants, whatever the machine's speed: after its head start,
    # the crowd's calls ahead of it and the passes (a few more while it wakes).
    after = [t for t in grants if asked + sharing.HEAD_START * period < t < got]
    assert len(after) <= CROWD + 2 * sharing.AGED_SHARE
    # Grants of one slot are a period apart at least: the share kept the quota.
    assert max_in_window(sorted([*grants, got]), period) <= SHARE_QUOTA.limit


async def test_bulk_is_never_starved_by_a_saturating_interactive_load(path: str) -> None:
    """A crowd of interactive callers keeps the window full; one bulk call waits among them.

    Promise: the share (sharing.AGED_SHARE) serves it within about two head starts,
    not when the crowd stops: the reserve (4 slots) holds bulk back all the while.
    ``max_jitter=0``: the crowd looks the moment a slot can free, so the window is
    really full (with jitter, a slot can sit free for a few ms, and a bulk call
    that looks then takes it under the reserve's own rule).
    """
    stopped = False
    grants: list[float] = []
    async with SQLiteLimiter(path, max_jitter=0) as limiter:
        crowd = asyncio.create_task(
            crowd_of_callers(
                limiter,
                "k",
                SHARE_QUOTA,
                callers=CROWD,
                longest_answer=LONGEST_ANSWER,
                seed=5,
                stop=lambda: stopped,
                grants=grants,
            )
        )
        await asyncio.sleep(2 * SHARE_QUOTA.period)
        asked = time.monotonic()
        try:  # starved, it would wait until the crowd stops: give up after 5 s
            permit = await asyncio.wait_for(limiter.acquire("k", SHARE_QUOTA, priority=BULK), 5.0)
            got = time.monotonic()
        finally:
            stopped = True
        await permit.release()
        await crowd
    assert_served_by_its_share(asked, got, grants)


async def test_bulk_is_never_starved_by_an_interactive_load_in_another_process(
    path: str,
) -> None:
    """The same across two real processes: the crowd in one, the bulk call in this one.

    Promise: the share's count and the slot it keeps for the bulk ticket are in the
    file, and the bulk call, asleep in another process, wakes for its share in time.
    """
    stop, results = SPAWN.Event(), SPAWN.Queue()
    crowd = SPAWN.Process(
        target=interactive_crowd,
        kwargs={
            "path": path,
            "key": "k",
            "quota": (SHARE_QUOTA.limit, SHARE_QUOTA.period),
            "callers": CROWD,
            "longest_answer": LONGEST_ANSWER,
            "seed": 5,
            "max_jitter": 0.0,
            "stop": stop,
            "results": results,
        },
    )
    crowd.start()
    try:
        assert await asyncio.to_thread(results.get, True, 60) == "busy"
        async with SQLiteLimiter(path) as limiter:
            asked = time.monotonic()
            try:  # starved, it would wait until the crowd stops: give up after 5 s
                permit = await asyncio.wait_for(
                    limiter.acquire("k", SHARE_QUOTA, priority=BULK), 5.0
                )
                got = time.monotonic()
            finally:
                stop.set()
            await permit.release()
        grants = await asyncio.to_thread(results.get, True, 30)
    finally:
        stop.set()
        await asyncio.to_thread(crowd.join, 10)
        if crowd.is_alive():
            crowd.kill()
    assert_served_by_its_share(asked, got, grants)


async def test_the_share_is_counted_in_the_file_and_its_slot_kept(path: str) -> None:
    """Promise: every process counts the passes in one place, and once AGED_SHARE - 1
    interactive grants have passed a bulk ticket the reserve keeps out, the next slot
    is that ticket's: an interactive call does not get it, the bulk ticket (waiting
    through another limiter, as another process would) does, past the reserve, and
    the count starts again."""
    quota = Quota(20, 0.1)  # reserve 2; slots are handed back unsent: nothing cools
    async with SQLiteLimiter(path) as crowd, SQLiteLimiter(path) as batch:
        held = await taken(crowd, "k", quota, 20)  # the first asks: the reserve is on
        waiting = asyncio.create_task(batch.acquire("k", quota, priority=BULK))
        await asyncio.sleep(3.5 * quota.period)  # past its head start: ahead of new asks

        def passed() -> int:
            [(count,)] = query(path, "SELECT passed FROM livestats_keys WHERE key = 'k'")
            return int(count)

        assert passed() == 0
        for count in range(1, sharing.AGED_SHARE):
            await held.pop(0).release(sent=False)  # 19 in use: the reserve keeps bulk out
            held.append(await crowd.acquire("k", quota, max_wait=0))
            assert passed() == count
            assert not waiting.done()
        await held.pop(0).release(sent=False)
        assert await no_free_slot(crowd, "k", quota)  # the slot is the bulk ticket's
        shared = await asyncio.wait_for(waiting, 1.0)  # at its next look (0.1 s naps)
        assert passed() == 0
        assert query(path, "SELECT count(*) FROM livestats_slots") == [(20,)]
        for permit in [*held, shared]:
            await permit.release(sent=False)


@pytest.mark.parametrize("waiting_behind", [1, 0])
async def test_the_share_goes_early_only_for_passes_that_will_come(
    limiter: SQLiteLimiter, waiting_behind: int
) -> None:
    """One pass still due and two free slots: the bulk ticket first in line takes one
    at once if an interactive ticket waits behind it to take the other (its pass),
    and the pass it went before counts towards the next share. With nobody
    waiting, the reserve still holds it back: the share never hands bulk the reserve
    for passes nobody makes."""
    quota = Quota(20, 60.0)  # reserve 2
    held = await taken(limiter, "k", quota, 18)  # the first asks: the reserve is on
    db = sqlite3.connect(limiter.path)
    with db:
        db.execute(
            "UPDATE livestats_keys SET passed = ? WHERE key = 'k'", (sharing.AGED_SHARE - 2,)
        )
        # Interactive tickets that asked after the bulk call will (far behind it in line).
        db.executemany(
            "INSERT INTO livestats_queue (key, token, alive_until, priority, ord) "
            "VALUES ('k', ?, ?, 0, ?)",
            [
                (f"behind-{n}", time.monotonic() + 30, time.monotonic() + 3600)
                for n in range(waiting_behind)
            ],
        )
    db.close()
    if waiting_behind:
        held.append(await limiter.acquire("k", quota, priority=BULK, max_wait=0))
        assert query(limiter.path, "SELECT passed FROM livestats_keys") == [(-1,)]
    else:
        assert await no_free_slot(limiter, "k", quota, priority=BULK)
        assert query(limiter.path, "SELECT passed FROM livestats_keys") == [
            (sharing.AGED_SHARE - 2,)
        ]
    for permit in held:
        await permit.release(sent=False)


# -- deadlines --------------------------------------------------------------------------


async def test_max_wait_raises_at_once_when_the_slot_needed_frees_later(
    limiter: SQLiteLimiter,
) -> None:
    quota = Quota(1, 60.0)
    await (await limiter.acquire("k", quota)).release()  # cooling for 60 s
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=5.0)
    assert time.monotonic() - started < 1.0  # not at the deadline
    assert info.value.retry_after is not None
    assert 59.0 < info.value.retry_after <= 60.0
    await settled(limiter)
    assert query(limiter.path, "SELECT count(*) FROM livestats_queue") == [(0,)]


async def test_max_wait_raises_at_once_for_a_longer_pause(limiter: SQLiteLimiter) -> None:
    quota = Quota(5, 1.0)
    await (await limiter.acquire("k", quota)).release(sent=False)
    await limiter.pause("k", 30.0)
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=2.0)
    assert info.value.retry_after is not None
    assert 29.0 < info.value.retry_after <= 30.0


async def test_max_wait_counts_a_slot_in_flight_as_free_a_period_from_now(
    limiter: SQLiteLimiter,
) -> None:
    quota = Quota(1, 30.0)
    held = await limiter.acquire("k", quota)
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=1.0)
    assert info.value.retry_after is not None
    assert 29.0 < info.value.retry_after <= 30.0
    await held.release(sent=False)


async def test_max_wait_gives_up_once_the_slot_cannot_come_in_time(
    limiter: SQLiteLimiter,
) -> None:
    """Each look predicts again: a slot still in flight frees a period later at the earliest."""
    quota = Quota(1, 0.2)
    held = await limiter.acquire("k", quota)
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=0.5)
    waited = time.monotonic() - started
    assert waited < 0.5 + 0.1  # by the deadline, once a period no longer fits before it
    assert info.value.max_wait == 0.5
    assert info.value.retry_after is not None
    assert waited + info.value.retry_after > 0.5
    await settled(limiter)
    assert query(limiter.path, "SELECT count(*) FROM livestats_queue") == [(0,)]
    await held.release(sent=False)


async def test_max_wait_gives_up_at_the_deadline_and_strands_nothing(
    limiter: SQLiteLimiter,
) -> None:
    """A wait nothing can predict ends at max_wait; the ticket is handed back, no slot kept."""
    quota = Quota(20, 0.2)  # reserve 2
    await (await limiter.acquire("k", quota)).release(sent=False)  # an interactive ask
    # First in line, 18 bulk waiters that never look again (until their tickets
    # lapse): the 18 slots bulk calls may take are theirs, at their next look, and
    # an interactive call taking one now would leave one of them without.
    ghosts = time.monotonic() + 30
    db = sqlite3.connect(limiter.path)
    with db:
        db.executemany(
            "INSERT INTO livestats_queue (key, token, alive_until, priority, ord) "
            "VALUES ('k', ?, ?, 1, 0.0)",
            [(f"ghost-{n}", ghosts) for n in range(18)],
        )
    db.close()
    started = time.monotonic()
    with pytest.raises(WaitExceeded) as info:
        await limiter.acquire("k", quota, max_wait=0.5)
    assert 0.5 <= time.monotonic() - started < 1.0
    assert info.value.retry_after == 0.0  # slots are free: only the line kept it out
    await settled(limiter)
    assert query(limiter.path, "SELECT count(*) FROM livestats_queue") == [(18,)]
    assert query(limiter.path, "SELECT count(*) FROM livestats_slots") == [(0,)]


async def test_max_wait_zero_takes_only_a_free_slot(limiter: SQLiteLimiter) -> None:
    quota = Quota(2, 60.0)
    permits = await taken(limiter, "k", quota, 2, max_wait=0)
    assert await no_free_slot(limiter, "k", quota)
    await permits[0].release(sent=False)
    assert not await no_free_slot(limiter, "k", quota)
    await permits[1].release(sent=False)


async def test_max_wait_bounds_a_wait_for_a_locked_file(path: str) -> None:
    """A file another process keeps locked is out of time at max_wait, not at busy_timeout."""
    async with SQLiteLimiter(path, busy_timeout=30.0) as limiter:
        await (await limiter.acquire("k", Quota(1, 1.0))).release(sent=False)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(WaitExceeded) as info:
                await limiter.acquire("k", Quota(1, 1.0), max_wait=0.3)
            assert time.monotonic() - started < 2.0
            assert info.value.retry_after is None
        finally:
            other.execute("ROLLBACK")
            other.close()
        await settled(limiter)
        assert query(path, "SELECT count(*) FROM livestats_slots") == [(0,)]


@pytest.mark.parametrize("seed", [1, 2])
async def test_callers_out_of_time_leave_no_slot_or_ticket(path: str, seed: int) -> None:
    """Deadlines at random points of the wait: every grant is used or handed back."""
    rng = random.Random(seed)
    quota = Quota(3, 0.05)
    async with SQLiteLimiter(path) as limiter:

        async def use() -> str:
            try:
                permit = await limiter.acquire(
                    "k", quota, max_wait=rng.uniform(0, 0.1), priority=rng.choice(list(Priority))
                )
            except WaitExceeded:
                return "late"
            await asyncio.sleep(rng.uniform(0, 0.005))
            await permit.release(sent=rng.random() < 0.5)
            return "served"

        outcomes = await asyncio.gather(*(use() for _ in range(40)))
        assert set(outcomes) <= {"late", "served"}
        assert "late" in outcomes
        await settled(limiter)
    assert query(path, "SELECT count(*) FROM livestats_queue") == [(0,)]
    assert query(path, "SELECT count(*) FROM livestats_slots WHERE in_flight") == [(0,)]


# -- learned limits ----------------------------------------------------------------------


async def test_a_refusal_lowers_the_limit_once_a_period(limiter: SQLiteLimiter) -> None:
    quota = Quota(100, 0.3)
    lowered = await limiter.refused("k", quota)
    assert lowered == Quota(70, 0.3)
    assert await limiter.refused("k", quota) is None  # the same window: one signal
    assert limiter.effective_quota("k", quota) == Quota(70, 0.3)
    permits = await taken(limiter, "k", quota, 70)
    assert await no_free_slot(limiter, "k", quota)  # every grant uses the effective limit
    for permit in permits:
        await permit.release(sent=False)
    await asyncio.sleep(0.3)
    again = await limiter.refused("k", quota)
    assert again is not None
    assert again.limit in (decreased(70), decreased(70 + 4))


async def test_a_learned_limit_grows_back_a_step_each_quiet_period(limiter: SQLiteLimiter) -> None:
    quota = Quota(100, 0.1)
    before = time.monotonic()
    await limiter.refused("k", quota)
    after = time.monotonic()
    await asyncio.sleep(0.35)
    await (await limiter.acquire("k", quota)).release(sent=False)
    now = time.monotonic()
    effective = limiter.effective_quota("k", quota)
    assert effective is not None
    step = recovery_step(100)
    # Quiet periods since the refusal, counted from somewhere between before and after.
    assert 70 + int((now - after) / 0.1) * step <= effective.limit
    assert effective.limit <= 70 + int((now - before) / 0.1 + 1) * step


async def test_a_refusal_without_recovery_is_never_probed_upward(limiter: SQLiteLimiter) -> None:
    quota = Quota(150, 0.05)
    assert await limiter.refused("k", quota, recover=False) == Quota(105, 0.05)
    await asyncio.sleep(0.2)
    await (await limiter.acquire("k", quota)).release(sent=False)
    assert limiter.effective_quota("k", quota) == Quota(105, 0.05)


async def test_processes_share_what_was_learned(path: str) -> None:
    """A refusal in one process lowers the limit for another, once a period for both,
    and it grows back for both."""
    quota = Quota(100, 1.0)
    results = SPAWN.Queue()
    worker = SPAWN.Process(
        target=refuse,
        kwargs={"path": path, "key": "k", "quota": (quota.limit, quota.period), "results": results},
    )
    worker.start()
    told = await asyncio.to_thread(results.get, True, 60)
    refused_by = time.monotonic()  # the worker's refusal was before this
    assert told == (70, 1.0)
    async with SQLiteLimiter(path) as limiter:
        assert limiter.effective_quota("k", quota) == quota  # nothing read yet
        assert await limiter.refused("k", quota) is None  # the other's window
        assert limiter.effective_quota("k", quota) == Quota(70, 1.0)
        permits = await taken(limiter, "k", quota, 70, priority=BULK)
        assert await no_free_slot(limiter, "k", quota)
        for permit in permits:
            await permit.release(sent=False)
        await asyncio.sleep(max(0.0, refused_by + quota.period - time.monotonic()))
        await (await limiter.acquire("k", quota)).release(sent=False)
        grown = limiter.effective_quota("k", quota)
        assert grown is not None
        assert grown.limit >= 70 + recovery_step(100)  # a quiet period: one step back up
    await asyncio.to_thread(worker.join, 10)


# -- quotas set at run time --------------------------------------------------------------


async def test_a_set_quota_replaces_the_callers_and_forgets_what_was_learned(
    limiter: SQLiteLimiter,
) -> None:
    await limiter.refused("k", Quota(100, 1.0))
    await limiter.set_quota("k", Quota(3, 60.0))
    assert limiter.effective_quota("k", Quota(100, 1.0)) == Quota(3, 60.0)
    permits = await taken(limiter, "k", Quota(100, 1.0), 3)
    assert await no_free_slot(limiter, "k", Quota(100, 1.0))
    await permits[0].release()  # held for the set quota's period, not the caller's
    (free_at,) = query(limiter.path, "SELECT max(free_at) FROM livestats_slots")[0]
    assert free_at > time.monotonic() + 59
    for permit in permits[1:]:
        await permit.release(sent=False)


async def test_a_set_quota_wakes_this_process_waiters_at_once(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 60.0)
    held = await limiter.acquire("k", quota)
    waiters = [asyncio.create_task(limiter.acquire("k", quota)) for _ in range(3)]
    await asyncio.sleep(0.1)  # each looked, and naps for ticket_ttl / 2 (5 s)
    started = time.monotonic()
    await limiter.set_quota("k", Quota(4, 60.0))
    permits = await asyncio.wait_for(asyncio.gather(*waiters), 2.0)
    assert time.monotonic() - started < 1.0
    for permit in [held, *permits]:
        await permit.release(sent=False)


async def test_a_quota_set_to_none_stops_pacing(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 60.0)
    held = await limiter.acquire("k", quota)
    waiting = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.1)
    await limiter.set_quota("k", None)
    freed = await asyncio.wait_for(waiting, 2.0)
    permits = await taken(limiter, "k", quota, 5)
    assert limiter.effective_quota("k", quota) is None
    assert "not paced" in repr(freed)
    assert query(limiter.path, "SELECT count(*) FROM livestats_slots") == [(1,)]  # `held`
    for permit in [freed, *permits]:
        await permit.release()  # no step: nothing to give back
    assert query(limiter.path, "SELECT count(*) FROM livestats_slots") == [(1,)]
    await held.release(sent=False)
    assert await limiter.refused("k", quota) is None


async def test_a_bad_quota_is_a_configuration_error(limiter: SQLiteLimiter) -> None:
    from livestats import ConfigurationError

    with pytest.raises(ConfigurationError):
        await limiter.set_quota("k", (10, 1.0))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        await limiter.acquire("k", Quota(1, 1.0), max_wait=float("nan"))


@pytest.mark.parametrize("quota", [Quota(5, 60.0), None], ids=["raised", "off"])
async def test_a_set_quota_reaches_waiters_queued_in_another_process(
    path: str, quota: Quota | None
) -> None:
    """Waiters of another process see the new quota at their next look: ticket_ttl / 2."""
    held_quota = Quota(1, 60.0)
    async with SQLiteLimiter(path) as limiter:
        held = await limiter.acquire("k", held_quota)
        results = SPAWN.Queue()
        worker = SPAWN.Process(
            target=wait_in_line,
            kwargs={
                "path": path,
                "key": "k",
                "quota": (held_quota.limit, held_quota.period),
                "waiters": 3,
                "ticket_ttl": 1.0,  # naps end within 0.5 s
                "results": results,
            },
        )
        worker.start()
        try:
            assert await asyncio.to_thread(results.get, True, 60) == "queued"
            assert query(path, "SELECT count(*) FROM livestats_queue") == [(3,)]
            await limiter.set_quota("k", quota)
            outcomes = await asyncio.to_thread(results.get, True, 30)
        finally:
            await asyncio.to_thread(worker.join, 10)
            if worker.is_alive():
                worker.kill()
        await held.release(sent=False)
    assert len(outcomes) == 3
    for waited, permit in outcomes:
        assert waited < 0.5 + 0.5  # a nap and a step, far from the held slot's 60 s
        assert ("not paced" in permit) is (quota is None)


# -- the file's layout -----------------------------------------------------------------


#: The tables exactly as livestats 0.x (schema 1, before issue 11) made them.
_SCHEMA_1 = (
    """CREATE TABLE livestats_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1), schema INTEGER NOT NULL, boot TEXT NOT NULL,
        base REAL NOT NULL, high REAL NOT NULL, swept REAL NOT NULL)""",
    """CREATE TABLE livestats_slots (
        key TEXT NOT NULL, token TEXT NOT NULL, free_at REAL NOT NULL,
        in_flight INTEGER NOT NULL, PRIMARY KEY (key, token)) WITHOUT ROWID""",
    "CREATE INDEX livestats_slots_free ON livestats_slots (key, free_at)",
    """CREATE TABLE livestats_queue (
        seq INTEGER PRIMARY KEY, key TEXT NOT NULL, token TEXT NOT NULL UNIQUE,
        alive_until REAL NOT NULL)""",
    "CREATE INDEX livestats_queue_key ON livestats_queue (key)",
    "CREATE TABLE livestats_pauses (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID",
)


#: What livestats 0.x made of those tables for schema 2 (issue 11, before the share).
_SCHEMA_2 = (
    "ALTER TABLE livestats_queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE livestats_queue ADD COLUMN ord REAL NOT NULL DEFAULT 0",
    "DROP INDEX livestats_queue_key",
    "CREATE INDEX livestats_queue_order ON livestats_queue (key, ord, priority)",
    """CREATE TABLE livestats_keys (
        key TEXT PRIMARY KEY, quota_set INTEGER NOT NULL DEFAULT 0, set_limit INTEGER,
        set_period REAL, set_burst INTEGER, low INTEGER, since REAL, recover INTEGER,
        interactive_until REAL NOT NULL DEFAULT 0) WITHOUT ROWID""",
)


def _old_file(path: str, schema: int = 1) -> None:
    """A file as an earlier version left it: a slot cooling for 60 s, a pause, WAL mode;
    for schema 2 also a learned limit (7 of 10, for good) and a bulk ticket in line."""
    now = time.monotonic()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN")
        for statement in _SCHEMA_1:
            db.execute(statement)
        db.execute(
            "INSERT INTO livestats_meta VALUES (1, 1, ?, 0.0, ?, ?)",
            (sqlite_limiter._boot_id(), now, now),
        )
        db.execute("INSERT INTO livestats_slots VALUES ('cooling', 'old', ?, 0)", (now + 60,))
        db.execute("INSERT INTO livestats_pauses VALUES ('paused', ?)", (now + 60,))
        if schema == 2:
            for statement in _SCHEMA_2:
                db.execute(statement)
            db.execute(
                "INSERT INTO livestats_keys (key, low, since, recover, interactive_until) "
                "VALUES ('k', 7, ?, 0, ?)",
                (now, now + 60),
            )
            db.execute(
                "INSERT INTO livestats_queue (key, token, alive_until, priority, ord) "
                "VALUES ('k', 'waiting', ?, 1, ?)",
                (now + 60, now),
            )
            db.execute("UPDATE livestats_meta SET schema = 2")
            db.execute("PRAGMA user_version = 2")
        db.execute("COMMIT")
    finally:
        db.close()


async def test_a_file_of_the_first_layout_is_moved_on_in_place(path: str) -> None:
    _old_file(path)
    assert query(path, "PRAGMA user_version") == [(0,)]
    async with SQLiteLimiter(path) as limiter:
        # What the old file held still holds: its cooling slot, its pause.
        assert await no_free_slot(limiter, "cooling", Quota(1, 60.0))
        with pytest.raises(WaitExceeded):
            await limiter.acquire("paused", Quota(5, 1.0), max_wait=1.0)
        # And the new rules work on it.
        assert await limiter.refused("k", Quota(10, 1.0)) == Quota(7, 1.0)
        held = await limiter.acquire("k", Quota(10, 1.0))
        waiting = asyncio.create_task(limiter.acquire("k", Quota(10, 1.0), priority=BULK))
        await asyncio.sleep(0.05)
        assert query(path, "SELECT priority FROM livestats_queue") in ([], [(int(BULK),)])
        waiting.cancel()
        await held.release(sent=False)
    assert query(path, "PRAGMA user_version") == [(sqlite_limiter._SCHEMA,)]
    assert query(path, "SELECT schema FROM livestats_meta") == [(sqlite_limiter._SCHEMA,)]
    columns = {row[1] for row in query(path, "PRAGMA table_info(livestats_queue)")}
    assert {"priority", "ord"} <= columns
    # Opened again, it is left as it is.
    async with SQLiteLimiter(path) as limiter:
        assert limiter.effective_quota("k", Quota(10, 1.0)) == Quota(10, 1.0)
        await (await limiter.acquire("k", Quota(10, 1.0))).release(sent=False)
        assert limiter.effective_quota("k", Quota(10, 1.0)) == Quota(7, 1.0)


async def test_a_file_of_the_second_layout_is_moved_on_in_place(path: str) -> None:
    """Promise: a file of the layout before the share (schema 2, such as the command
    line's cache file) keeps its slots, pauses, learned limits and tickets, and gains
    the share's count."""
    _old_file(path, schema=2)
    async with SQLiteLimiter(path) as limiter:
        assert await no_free_slot(limiter, "cooling", Quota(1, 60.0))
        with pytest.raises(WaitExceeded):
            await limiter.acquire("paused", Quota(5, 1.0), max_wait=1.0)
        await (await limiter.acquire("k", Quota(10, 1.0))).release(sent=False)
        assert limiter.effective_quota("k", Quota(10, 1.0)) == Quota(7, 1.0)
    assert query(path, "PRAGMA user_version") == [(sqlite_limiter._SCHEMA,)]
    assert query(path, "SELECT schema FROM livestats_meta") == [(sqlite_limiter._SCHEMA,)]
    assert query(path, "SELECT passed FROM livestats_keys WHERE key = 'k'") == [(0,)]
    assert query(path, "SELECT token FROM livestats_queue") == [("waiting",)]
    indexes = query(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    assert ("livestats_queue_interactive",) in indexes


@pytest.mark.parametrize("schema", [1, 2])
async def test_a_new_file_and_a_moved_on_one_have_one_layout(tmp_path: Path, schema: int) -> None:
    old, new = str(tmp_path / "old.db"), str(tmp_path / "new.db")
    _old_file(old, schema)
    for made in (old, new):
        async with SQLiteLimiter(made) as limiter:
            await (await limiter.acquire("k", Quota(1, 1.0))).release(sent=False)

    def layout(file: str) -> list[tuple[Any, ...]]:
        return query(
            file,
            "SELECT m.name, p.name, p.type, p.dflt_value FROM sqlite_master m, "
            "pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY 1, p.cid",
        ) + query(file, "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY 1")

    assert layout(old) == layout(new)


async def test_a_file_of_a_newer_layout_is_a_typed_error(path: str) -> None:
    async with SQLiteLimiter(path) as limiter:
        await (await limiter.acquire("k", Quota(1, 1.0))).release(sent=False)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {sqlite_limiter._SCHEMA + 1}")
    db.close()
    async with SQLiteLimiter(path) as limiter:
        with pytest.raises(LimiterUnavailableError, match="another version"):
            await limiter.acquire("k", Quota(1, 1.0))
