"""SQLiteLimiter: the LocalLimiter's guarantee for the processes of one host, through one file.

Single-process tests run on the real clock with short periods and assert order,
counts and lower bounds on waits. The multi-process ones spawn workers, each with
its own SQLiteLimiter on one file: a shared quota against the simulator, and a
holder killed with SIGKILL. Where the file itself is the evidence (tickets left,
slots held), the test reads its tables.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import signal
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from livestats import (
    Clock,
    ConfigurationError,
    LimiterUnavailableError,
    Quota,
    SQLiteLimiter,
    TencentClient,
)
from livestats._core import sqlite_limiter
from livestats._core.limiter import Paused
from livestats.testing import Simulator, TencentSim, max_in_window, pacing_report
from tests._sqlite_worker import acquire_as, collect_room_stats, hold_and_hang

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "quotas" / "limiter.db")  # the directory does not exist yet


@pytest.fixture
async def limiter(path: str) -> AsyncIterator[SQLiteLimiter]:
    async with SQLiteLimiter(path) as made:
        yield made


def rows(path: str, table: str, where: str = "1") -> int:
    """Rows of one of the limiter's tables, read by a connection of the test's own."""
    db = sqlite3.connect(path)
    try:
        (count,) = db.execute(f"SELECT count(*) FROM livestats_{table} WHERE {where}").fetchone()
    finally:
        db.close()
    return int(count)


def edit(path: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            for sql, args in statements:
                db.execute(sql, args)
    finally:
        db.close()


# -- the slot model, in one process ------------------------------------------------------


async def test_a_free_window_allows_a_full_burst(limiter: SQLiteLimiter) -> None:
    quota = Quota(5, 60.0)
    permits = [await asyncio.wait_for(limiter.acquire("k", quota), 2.0) for _ in range(5)]
    sixth = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.1)
    assert not sixth.done()  # five slots in flight
    sixth.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sixth
    for permit in permits:
        await permit.release(sent=False)


async def test_a_slot_is_reusable_one_period_after_its_answer(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 0.1)
    first = await limiter.acquire("k", quota)
    waiting = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.15)
    assert not waiting.done()  # held until its outcome is known, however long that takes
    answered = time.monotonic()
    await first.release()
    permit = await asyncio.wait_for(waiting, 2.0)
    assert time.monotonic() - answered >= quota.period
    await permit.release()


@pytest.mark.parametrize("seed", [1, 2])
async def test_no_window_ever_holds_more_than_the_limit(limiter: SQLiteLimiter, seed: int) -> None:
    """Requests reach the "provider" at a random moment between grant and release."""
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

    await asyncio.gather(*(request() for _ in range(40)))
    assert len(arrivals) == 40
    assert max_in_window(sorted(arrivals), quota.period) <= quota.limit


async def test_waiters_are_served_first_come_first_served(limiter: SQLiteLimiter) -> None:
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


async def test_a_newcomer_does_not_jump_the_queue(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 0.1)
    order: list[str] = []
    held = await limiter.acquire("k", quota)

    async def take(name: str) -> None:
        permit = await limiter.acquire("k", quota)
        order.append(name)
        await permit.release()

    early = asyncio.create_task(take("early"))
    await asyncio.sleep(0.02)
    await held.release()
    await asyncio.sleep(0.11)  # the slot is free now; "early" may not have looked yet
    late = asyncio.create_task(take("late"))
    await asyncio.gather(early, late)
    assert order == ["early", "late"]


async def test_an_unsent_release_frees_the_slot_at_once(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 60.0)
    permit = await limiter.acquire("k", quota)
    waiting = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.05)  # it looked, found the slot in flight, and sleeps
    await permit.release(sent=False)
    again = await asyncio.wait_for(waiting, 1.0)  # woken, not a period later
    await again.release(sent=False)
    assert rows(limiter.path, "slots") == 0


async def test_unanswered_for_holds_the_slot_longer(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 0.1)
    permit = await limiter.acquire("k", quota)
    released = time.monotonic()
    await permit.release(unanswered_for=0.3)  # sent, never answered: may arrive 0.3 s late
    again = await asyncio.wait_for(limiter.acquire("k", quota), 2.0)
    assert time.monotonic() - released >= 0.4
    await again.release(sent=False)


async def test_release_is_idempotent(limiter: SQLiteLimiter) -> None:
    quota = Quota(2, 60.0)
    permit = await limiter.acquire("k", quota)
    await permit.release()  # cooling for 60 s
    await permit.release(sent=False)  # must not free it
    other = await limiter.acquire("k", quota)
    third = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.1)
    assert not third.done()
    third.cancel()
    await other.release(sent=False)


async def test_pause_holds_waiters_and_fails_fail_fast_callers(limiter: SQLiteLimiter) -> None:
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
    assert rows(limiter.path, "queue") == 0  # the fail-fast caller left no ticket


async def test_a_pause_fails_fail_fast_waiters_already_waiting(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 60.0)
    held = await limiter.acquire("k", quota)
    impatient = asyncio.create_task(limiter.acquire("k", quota, wait_if_paused=False))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await limiter.pause("k", 0.2)
    with pytest.raises(Paused):
        await asyncio.wait_for(impatient, 1.0)
    assert time.monotonic() - started < 0.5  # told at once, not at its next look
    await held.release(sent=False)


async def test_keys_pace_independently(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 60.0)
    a = await limiter.acquire("a", quota)
    b = await asyncio.wait_for(limiter.acquire("b", quota), 1.0)
    await a.release(sent=False)
    await b.release(sent=False)


# -- cancellation --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_waiters_cancelled_at_random_points_take_nothing(path: str, seed: int) -> None:
    rng = random.Random(seed)
    quota = Quota(3, 0.05)
    async with SQLiteLimiter(path) as limiter:

        async def use() -> None:
            permit = await limiter.acquire("k", quota)
            try:
                await asyncio.sleep(rng.uniform(0, 0.005))
            finally:
                await permit.release(sent=rng.random() < 0.5)

        tasks = [asyncio.create_task(use()) for _ in range(40)]
        for task in rng.sample(tasks, 20):
            await asyncio.sleep(rng.uniform(0, 0.01))  # in a step, napping, or just granted
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(o is None or isinstance(o, asyncio.CancelledError) for o in outcomes)
        # Later calls are served: the full burst, once the last cooling slot is free.
        await asyncio.sleep(quota.period)
        permits = [await asyncio.wait_for(limiter.acquire("k", quota), 1.0) for _ in range(3)]
        for permit in permits:
            await permit.release(sent=False)
        assert "0 held, 0 waiting here" in repr(limiter)
    assert rows(path, "queue") == 0
    assert rows(path, "slots", "in_flight") == 0


async def test_a_grant_that_lands_after_cancellation_is_handed_back(path: str) -> None:
    quota = Quota(1, 60.0)
    async with SQLiteLimiter(path) as limiter:
        await (await limiter.acquire("k", quota)).release(sent=False)  # the file is made
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            doomed = asyncio.create_task(limiter.acquire("k", quota))
            await asyncio.sleep(0.1)  # its step waits for the lock, in the worker thread
            started = time.monotonic()
            doomed.cancel()
            with pytest.raises(asyncio.CancelledError):
                await doomed
            assert time.monotonic() - started < 0.05  # prompt: the locked step is not awaited
        finally:
            other.execute("ROLLBACK")
            other.close()
        # The step then takes the slot, and the leave queued behind it gives it back.
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 2.0)
        await permit.release(sent=False)
    assert rows(path, "slots") == 0


async def test_a_cancelled_waiter_gives_up_its_place(limiter: SQLiteLimiter) -> None:
    quota = Quota(1, 0.05)
    held = await limiter.acquire("k", quota)
    doomed = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.05)
    survivor = asyncio.create_task(limiter.acquire("k", quota))
    await asyncio.sleep(0.05)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.sleep(0.05)  # its leave step has run
    assert rows(limiter.path, "queue") == 1  # only the survivor waits
    await held.release()
    permit = await asyncio.wait_for(survivor, 2.0)
    await permit.release()


async def test_a_ticket_nobody_renews_lapses(path: str) -> None:
    async with SQLiteLimiter(path, ticket_ttl=0.3) as limiter:
        quota = Quota(1, 0.05)
        held = await limiter.acquire("k", quota)
        # A waiter of a process that died: first in line, then never heard from again.
        edit(
            path,
            (
                "INSERT INTO livestats_queue (seq, key, token, alive_until, priority, ord) "
                "VALUES (0, 'k', 'ghost', ?, 0, 0.0)",
                (time.monotonic() + 0.3,),
            ),
        )
        await held.release()
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 3.0)
        await permit.release()
    assert rows(path, "queue") == 0


# -- time ----------------------------------------------------------------------------------


def _shift(path: str, seconds: float, boot: str | None) -> None:
    """Move every time in the file by ``seconds``, the clock's base staying put."""
    statements: list[tuple[str, tuple[Any, ...]]] = [
        ("UPDATE livestats_slots SET free_at = free_at + ?", (seconds,)),
        ("UPDATE livestats_queue SET alive_until = alive_until + ?", (seconds,)),
        ("UPDATE livestats_pauses SET until = until + ?", (seconds,)),
        ("UPDATE livestats_meta SET high = high + ?, swept = swept + ?", (seconds, seconds)),
    ]
    if boot is not None:
        statements.append(("UPDATE livestats_meta SET boot = ?", (boot,)))
    edit(path, *statements)


async def test_after_a_reboot_cooling_slots_keep_what_they_had_left(path: str) -> None:
    """The new boot's monotonic clock reads far beyond the old one's: nothing frees early."""
    quota = Quota(1, 0.3)
    async with SQLiteLimiter(path) as limiter:
        await (await limiter.acquire("k", quota)).release()  # cooling for 0.3 s
        released = time.monotonic()
    # Written during an earlier boot whose clock was 10,000 s behind this boot's:
    # read with the stored base, every slot would look 10,000 s old.
    _shift(path, -10_000.0, boot="an-earlier-boot")
    async with SQLiteLimiter(path) as limiter:
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 3.0)
        assert time.monotonic() - released >= 0.25  # the downtime counted as zero
        await permit.release(sent=False)


async def test_without_a_boot_id_a_clock_behind_the_mark_means_a_reboot(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_limiter, "_boot", "")  # a system without /proc boot ids
    quota = Quota(1, 0.3)
    async with SQLiteLimiter(path) as limiter:
        await (await limiter.acquire("k", quota)).release()
        released = time.monotonic()
    # Written during a boot whose clock was 10,000 s ahead of this one's: the file
    # clock continues from its mark, so the slot waits what it had left, not 10,000 s.
    _shift(path, 10_000.0, boot="")
    async with SQLiteLimiter(path) as limiter:
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 3.0)
        assert time.monotonic() - released >= 0.25
        await permit.release(sent=False)


async def test_a_wall_clock_jump_frees_nothing(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    quota = Quota(1, 0.3)
    async with SQLiteLimiter(path) as limiter:
        permit = await limiter.acquire("k", quota)
        await permit.release()
        released = time.monotonic()
        wall = time.time
        monkeypatch.setattr(time, "time", lambda: wall() + 3600.0)  # NTP steps an hour
        again = await asyncio.wait_for(limiter.acquire("k", quota), 2.0)
        assert time.monotonic() - released >= quota.period
        await again.release(sent=False)


# -- the file --------------------------------------------------------------------------------


async def test_the_directory_and_file_are_made_private(path: str) -> None:
    async with SQLiteLimiter(path) as limiter:
        await (await limiter.acquire("k", Quota(1, 1.0))).release(sent=False)
        assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
        assert os.stat(path).st_mode & 0o777 == 0o600


async def test_the_file_stays_bounded(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_limiter, "_SWEEP_EVERY", 0.0)  # sweep every key at every step
    quota = Quota(2, 0.05)
    async with SQLiteLimiter(path) as limiter:
        for round_ in range(3):
            for n in range(10):
                for _ in range(2):
                    await (await limiter.acquire(f"key-{n}", quota)).release()
            assert rows(path, "slots", "key = 'key-0'") <= quota.limit
            if round_ < 2:
                await asyncio.sleep(quota.period)
        assert rows(path, "slots") <= 10 * quota.limit
        await asyncio.sleep(quota.period)
        await limiter.pause("other", 0.01)  # any step sweeps the expired rows of every key
    assert rows(path, "slots") == 0


async def test_a_slot_whose_holder_vanished_frees_after_lease_plus_period(path: str) -> None:
    async with SQLiteLimiter(path, lease=0.3) as limiter:
        quota = Quota(1, 0.1)
        taken = time.monotonic()
        await limiter.acquire("k", quota)  # never released
        permit = await asyncio.wait_for(limiter.acquire("k", quota), 3.0)
        assert time.monotonic() - taken >= 0.3 + 0.1
        await permit.release()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: p.mkdir(parents=True), id="a directory"),
        pytest.param(lambda p: p.write_bytes(b"not a database, " * 512), id="not a database"),
        pytest.param(lambda p: p.write_text("x"), id="text"),
    ],
)
async def test_an_unusable_path_is_a_typed_error(tmp_path: Path, make: Any) -> None:
    target = tmp_path / "limiter.db"
    make(target)
    before = target.read_bytes() if target.is_file() else None
    async with SQLiteLimiter(target) as limiter:
        with pytest.raises(LimiterUnavailableError, match="unusable") as info:
            await limiter.acquire("k", Quota(1, 1.0))
        assert "unusable" in repr(limiter)
    assert info.value.dooms_batch
    assert not isinstance(info.value, sqlite3.Error)
    if before is not None:
        assert target.read_bytes() == before  # someone else's file is left as it was


async def test_a_path_under_a_file_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    async with SQLiteLimiter(tmp_path / "file" / "limiter.db") as limiter:
        with pytest.raises(LimiterUnavailableError):
            await limiter.acquire("k", Quota(1, 1.0))


def _scribble(path: str) -> None:
    """Garbage over every page but the first (the header stays valid)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        file.seek(4096)
        file.write(random.Random(0).randbytes(size - 4096))


async def test_a_corrupt_file_is_a_typed_error(path: str) -> None:
    async with SQLiteLimiter(path) as limiter:
        for n in range(50):
            await (await limiter.acquire(f"key-{n}", Quota(5, 60.0))).release()
    _scribble(path)
    async with SQLiteLimiter(path) as limiter:
        with pytest.raises(LimiterUnavailableError, match="unusable"):
            await limiter.acquire("key-1", Quota(5, 60.0))


async def test_a_file_locked_beyond_busy_timeout_is_a_typed_error(path: str) -> None:
    async with SQLiteLimiter(path, busy_timeout=0.2) as limiter:
        await (await limiter.acquire("k", Quota(1, 1.0))).release(sent=False)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(LimiterUnavailableError, match="busy_timeout"):
                await limiter.acquire("k", Quota(1, 1.0))
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Usable again once the lock is gone: the next step opens the file afresh.
        permit = await asyncio.wait_for(limiter.acquire("k", Quota(1, 1.0)), 2.0)
        await permit.release(sent=False)


@pytest.fixture
def read_only_dir() -> Iterator[Path]:
    # Under /tmp (not tmp_path, whose parents only root may enter): an unprivileged
    # worker must reach it.
    made = Path(tempfile.mkdtemp(prefix="livestats-ro-"))
    try:
        yield made
    finally:
        made.chmod(0o700)
        for child in made.iterdir():
            child.unlink()
        made.rmdir()


def _limiter_file(path: Path, mode: int) -> None:
    """A valid limiter file (its -wal and -shm gone with the last connection), chmod ``mode``."""

    async def make() -> None:
        async with SQLiteLimiter(path) as limiter:
            await (await limiter.acquire("k", Quota(1, 1.0))).release(sent=False)

    asyncio.run(make())
    path.chmod(mode)


def test_a_read_only_location_is_a_typed_error(read_only_dir: Path) -> None:
    read_only_file = read_only_dir / "read-only.db"
    writable_file = read_only_dir / "writable.db"  # but its -wal cannot be made
    _limiter_file(read_only_file, 0o444)
    _limiter_file(writable_file, 0o666)
    read_only_dir.chmod(0o555)
    results = SPAWN.Queue()
    worker = SPAWN.Process(
        target=acquire_as,
        kwargs={
            "paths": [str(read_only_dir / "new.db"), str(read_only_file), str(writable_file)],
            # Root writes anywhere: the worker drops to "nobody" for the attempts.
            "uid": 65534 if os.geteuid() == 0 else None,
            "results": results,
        },
    )
    worker.start()
    try:
        outcomes = results.get(True, 60)
    finally:
        worker.join(10)
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert outcome.startswith("LimiterUnavailableError"), outcome


async def test_a_batch_stops_at_an_unusable_file(tmp_path: Path, sim: Simulator) -> None:
    creds = sim.tencent
    async with (
        SQLiteLimiter(tmp_path) as limiter,  # a directory
        TencentClient(
            creds.sdkappid, creds.identifier, secret_key=creds.secret_key, base_url=sim.url,
            limiter=limiter,
        ) as client,
    ):  # fmt: skip
        with pytest.raises(LimiterUnavailableError):
            async for _ in client.get_room_stats_many(sim.room_ids):
                pass
    assert sim.arrivals("get_room_stats") == []  # nothing went out unpaced


# -- the object ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((None,), {}),
        ((b"/tmp/x.db",), {}),
        (("",), {}),
        (("  ",), {}),
        (("a\x00b",), {}),
        ((":memory:",), {}),
        (("x.db",), {"lease": 0}),
        (("x.db",), {"ticket_ttl": float("nan")}),
        (("x.db",), {"busy_timeout": -1}),
        (("x.db",), {"durable": "yes"}),
        (("x.db",), {"max_jitter": 2}),
        (("x.db",), {"max_jitter": True}),
        (("x.db",), {"clock": time.monotonic}),
    ],
)
def test_bad_arguments_are_configuration_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteLimiter(*args, **kwargs)


async def test_repr_shows_the_path_and_state(path: str) -> None:
    limiter = SQLiteLimiter(path)
    assert repr(limiter) == f"<SQLiteLimiter {path!r} not open, 0 held, 0 waiting here, lease=60s>"
    permit = await limiter.acquire("k", Quota(1, 60.0))
    waiter = asyncio.create_task(limiter.acquire("k", Quota(1, 60.0)))
    await asyncio.sleep(0.05)
    assert "open, 1 held, 1 waiting here" in repr(limiter)
    waiter.cancel()
    await permit.release(sent=False)
    await limiter.aclose()
    assert "not open, 0 held, 0 waiting here" in repr(limiter)
    assert repr(permit) == "<SQLitePermit 'k' released>"


def test_one_limiter_serves_several_event_loops_and_closes_with_each(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = SQLiteLimiter(path)

    async def use() -> None:
        permit = await limiter.acquire("k", Quota(5, 0.05))
        await permit.release()
        assert "open" in repr(limiter)

    asyncio.run(use())
    assert "not open" in repr(limiter)  # closed as its loop ended: no aclose() needed
    asyncio.run(use())
    asyncio.run(limiter.aclose())
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


async def test_an_injected_clock_does_the_sleeping(path: str) -> None:
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        await asyncio.sleep(seconds)

    async with SQLiteLimiter(path, clock=Clock(sleep=sleep), max_jitter=0) as limiter:
        quota = Quota(1, 0.1)
        await (await limiter.acquire("k", quota)).release()
        permit = await limiter.acquire("k", quota)
        await permit.release()
    assert naps
    assert all(0 < nap <= 0.1 for nap in naps)  # until the slot frees: no tight poll


# -- several processes ---------------------------------------------------------------------


async def test_four_processes_share_one_quota_exactly(path: str) -> None:
    """Four workers, each with its own client and SQLiteLimiter on one file, at once."""
    quota = Quota(20, 0.3)
    per_worker = 25
    async with Simulator(tencent=TencentSim(rooms=40, quotas={"get_room_stats": quota})) as sim:
        creds = (sim.tencent.sdkappid, sim.tencent.identifier, sim.tencent.secret_key)
        start = SPAWN.Barrier(4)
        results = SPAWN.Queue()
        workers = [
            SPAWN.Process(
                target=collect_room_stats,
                kwargs={
                    "base_url": sim.url,
                    "path": path,
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
    assert report.ratio >= 0.85, str(report)
    assert rows(path, "slots", "in_flight") == 0
    assert rows(path, "queue") == 0


async def test_a_killed_holder_frees_its_slots_after_lease_plus_period(path: str) -> None:
    lease, quota = 0.3, Quota(2, 0.2)
    results = SPAWN.Queue()
    holder = SPAWN.Process(
        target=hold_and_hang,
        kwargs={
            "path": path,
            "key": "k",
            "quota": (quota.limit, quota.period),
            "lease": lease,
            "results": results,
        },
    )
    holder.start()
    try:
        before = await asyncio.to_thread(results.get, True, 60)  # every slot taken after this
        os.kill(holder.pid or 0, signal.SIGKILL)
        await asyncio.to_thread(holder.join, 10)
        assert holder.exitcode == -signal.SIGKILL
        assert rows(path, "slots", "in_flight") == quota.limit  # still counted
        async with SQLiteLimiter(path) as limiter:
            permits = [
                await asyncio.wait_for(limiter.acquire("k", quota), 5.0) for _ in range(quota.limit)
            ]
            got = time.monotonic()  # one clock for every process on the host
            for permit in permits:
                await permit.release(sent=False)
    finally:
        if holder.is_alive():
            holder.kill()
    assert got - before >= lease + quota.period  # not before
    assert got - before < lease + quota.period + 1.5  # but then
