"""A limiter shared by the processes of one host through one SQLite file: no server.

Two cron jobs that overlap on one machine, or a few workers started side by side,
each with its own :class:`~livestats.LocalLimiter`, would each spend the whole
quota. :class:`SQLiteLimiter` keeps the quota's N slots in one file they all open
(the standard library's ``sqlite3``), with the rules of the other limiters (see
``limiter.py`` for why a quota is N slots, and ``sharing.py`` for priorities,
deadlines, learned limits and quotas set at run time):

- a request holds a slot from before it is sent until its outcome is known; the
  slot is free again one period (plus ``unanswered_for``) after that, at once if
  nothing was sent. Every slot in flight or not yet free counts against the limit,
  so no window of T seconds sees more than N arrivals, whichever process sent them;
- a slot whose holder vanished (a killed process) frees itself ``lease`` seconds
  plus one period after it was taken: ``lease`` must exceed the longest attempt;
- waiters take a ticket in the file, stamped with the file time it first asked
  (SQLite runs one writer at a time, so the file's order is the only one there
  is). A waiter renews its ticket at least every ``ticket_ttl / 2``; one not
  renewed for ``ticket_ttl`` (its process died) is dropped.

**Priorities, across processes.** A ticket's place in line is its file time, an
interactive one's :data:`~livestats._core.sharing.HEAD_START` periods earlier
(ties by the order the file saw them). While an interactive call asked on the
key within :func:`~livestats._core.sharing.interactive_window` (the file keeps
that time per key), a bulk ticket may take a slot only while fewer than
``limit - reserve(limit)`` slots are in flight or cooling; an interactive one
while fewer than ``limit``. A slot goes to a ticket only when every earlier
ticket that may take one now can still have one after it, so a bulk ticket
ahead that the reserve keeps out does not block an interactive one behind it,
and an interactive ticket never takes the last slot a bulk ticket ahead of it is
owed. Each step decides for its own ticket from counts of the line before it
(an index on the line's order): no step walks the whole line. The reserve begins
with an interactive ask, so the first one after a quiet spell may wait for a
window a batch filled to turn over (at most a period; it is first in line).
Tickets keep the head start they were given when they first asked, whatever
quota is set later.

**The share, across processes.** The count behind
:data:`~livestats._core.sharing.AGED_SHARE` is a column of the key's settings
row (``passed``), read and written by the step that grants. A grant to an
interactive ticket with a bulk ticket ahead of it that the reserve keeps out adds
one; a grant to a bulk ticket within the reserve's rule sets it back to zero. The
first bulk ticket in line is owed the slot after the interactive tickets ahead of
it and the ``AGED_SHARE - 1 - passed`` passes still due:

- an interactive step leaves that slot free: once ``passed`` plus the interactive
  tickets ahead of it reach ``AGED_SHARE - 1``, the share is one more claim ahead;
- the bulk ticket's own step takes it, past the reserve, as soon as it is free,
  if interactive tickets waiting behind it will make the passes still due (it
  counts up to that many, on an index of the interactive tickets). Otherwise the
  reserve would go to bulk with nobody passing it. The grant takes
  ``AGED_SHARE - 1`` off the count, so passes it went before count towards the
  next share.

That bulk ticket may sleep in another process. Its nap ends by the moment the
slot of its share can first free: every pass still due takes a slot that frees
before it, and a slot in flight counts as freeing a period from now, so it wakes
early rather than late. While free slots would cover the passes due but too few
interactive tickets wait to make them, it looks again within ``period /
AGED_SHARE``. So it takes its share within ``max_jitter`` and one step of the
moment the slot frees, or within ``period / AGED_SHARE`` when the interactive
callers that pass it were not yet in line; the slot stays free for it meanwhile.
It also counts the interactive tickets waiting behind it (up to the passes due)
as taking the slots that free before the reserve lets it have one, so under an
interactive load it does not look at every slot that frees.

The reserve is counted at each step, and waiters wake up to ``max_jitter`` after
their slot frees. A bulk ticket that looks in that gap may find more than the
reserve free, and takes a slot by the reserve's own rule before its share: under a
saturating interactive load with jitter, the share is not all that moves bulk.

**Deadlines.** With ``max_wait``, a step that predicts a longer wait (a pause
that lasts longer; the slot its place in line needs frees later, a slot in
flight counted as freeing a period from now) raises
:class:`~livestats._core.sharing.WaitExceeded` at once with that prediction as
``retry_after``; otherwise the waiter looks for the last time at the deadline.
Its ticket is handed back like a cancelled waiter's. ``max_wait`` is measured on
the file clock, as every wait of this limiter is (a locked file counts too).

**Learned limits and quotas set at run time** are rows of the file (one per key):
:meth:`~SQLiteLimiter.refused` applies
:func:`~livestats._core.sharing.decreased` to the limit in force in the same
transaction that reads it, at most once a period whichever process was refused,
and every process grants under :func:`~livestats._core.sharing.effective_limit`
of that row at the file's time. A quota set with :meth:`~SQLiteLimiter.set_quota`
replaces the one callers pass in every step of every process; this process's
waiters look again at once, another process's at their next look (a nap ends
within ``ticket_ttl / 2``, 5 s by default). :meth:`~SQLiteLimiter.effective_quota`
reads no file: it works from what this process's last step of the key read.

**Time.** Slot times must mean the same in every process and outlive each of them.
The wall clock (``time.time``) is shared but jumps (an NTP step, a hand-set
clock), and a jump forward would free every cooling slot at once. So slot times
are on a *file clock*, ``time.monotonic() + base``: ``CLOCK_MONOTONIC`` is one
clock for every process of a host and never jumps (it stops during suspend, which
only lengthens waits). It restarts at boot while the file stays, so the file also
keeps the boot's id (``/proc/sys/kernel/random/boot_id``) and a mark: the latest
file time a step used (written at most ``_MARK_EVERY`` apart). The first step of a
new boot moves ``base`` so that the file clock resumes at the mark: the downtime
counts as zero, the one guess that can only lengthen a wait. Where the system has
no boot id, a monotonic reading behind the mark means a reboot; one that is not
behind it, after a reboot, has counted less time than really passed, so it too
frees nothing early. Within a boot the file clock never goes backwards. No wall
clock is read at all: a wall clock with a guard would need the same boot id and
mark, and would still have to trust the wall clock across a reboot. The
processes must share one monotonic clock: one host and one time namespace
(containers share the host's unless given a time namespace of their own).

**Steps.** Every check-and-record is one short ``BEGIN IMMEDIATE`` transaction
(the write lock first, so two processes never both read "free" and both take the
slot) in WAL mode, where readers never block and a commit is an append to the
log. A file another process holds locked is tried again after sleeps of 50 µs
doubling to 2 ms, jittered, for up to ``busy_timeout`` (SQLite's own busy handler
sleeps up to 100 ms between tries, leaving the lock idle under contention). The
steps run on one worker thread per limiter, never on the event loop, so a locked
or slow file cannot stall the loop; the thread keeps the connection (a
``sqlite3`` connection belongs to its thread) and runs the limiter's steps in the
order they were asked for, so a cancelled waiter's "leave" always comes after its
last "acquire".

**Waiting is cheap.** A waiter sleeps until the slot its place in line needs can
free under the rules above (a cooling slot at its time; one in flight a period
from now at the earliest, or when its lease lapses; deeper in line, whole periods
later; a bulk waiter also when the reserve lapses or its share can come, any
waiter when a learned limit grows back), plus a little jitter so processes do
not ask at the same instant, and never longer than ``ticket_ttl / 2``. Releasing
without sending, a pause, a quota set or a waiter leaving wakes the limiter's own
waiters at once; one in another process is seen at the next look. Eight
processes of 64 callers each sharing 100/s take about 3.5 steps per call: the
grant, the release, and one or two looks that found the slot still busy.

**Cancellation** returns at once, even while a step waits for the file: the
waiter's ticket, and a grant that landed after the cancellation, are handed back
by a step queued behind the one in progress.

**Crashes.** WAL with ``synchronous=NORMAL`` loses no committed step when a
process dies, however it dies. An OS crash or power cut may forget the last steps
before it (the log is synced at checkpoints); ``durable=True`` syncs every step
(``synchronous=FULL``) at the cost of an fsync each.

**Bounded file.** A key holds at most its limit of slots plus one ticket per
waiter and one row of settings; every step drops its key's expired rows, and a
step every ``_SWEEP_EVERY`` seconds those of every key (a key's settings row goes
once nothing is set, learned or reserved, and the share's count with it: without
the reserve it counts for nothing). The log is truncated back to 4 MiB after
checkpoints.

**Schema.** The file says which layout it has (``PRAGMA user_version``, and the
``schema`` of its clock row, which earlier versions check). The first step of a
newer livestats moves an older file on in place, in one transaction
(``ALTER TABLE ... ADD COLUMN``, ``CREATE TABLE IF NOT EXISTS``), keeping its
slots, tickets and pauses; an earlier livestats then refuses the file when it
next opens it (a process that already had it open keeps first come, first
served until then). A file of a newer layout than this version knows is a
:class:`~livestats.LimiterUnavailableError`.

A file that cannot be used (a directory, not a database, read-only, corrupt, on a
filesystem without the shared memory WAL needs, locked for longer than
``busy_timeout``) is a :class:`~livestats.LimiterUnavailableError` at the first
step, never "unlimited" and never a raw ``sqlite3`` error. A file that is not an
SQLite database is left as it is.

Which limiter: :class:`~livestats.LocalLimiter` for one process (it costs a few
µs per call); this one for several processes of one host (a few hundred µs: two
transactions and two thread hops), and :class:`~livestats.RedisLimiter` when the
processes are on several hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import random
import secrets
import sqlite3
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import attrs

from livestats._core.clock import Clock
from livestats._core.limiter import Paused, Permit
from livestats._core.loops import close_at_loop_shutdown
from livestats._core.quota import Quota
from livestats._core.sharing import (
    AGED_SHARE,
    HEAD_START,
    Learned,
    Priority,
    WaitExceeded,
    decreased,
    effective_limit,
    interactive_window,
    reserve,
)
from livestats._core.validate import MAX_SECONDS, check_seconds, shown
from livestats.errors import ConfigurationError, LimiterUnavailableError

__all__ = ["SQLiteLimiter"]

logger = logging.getLogger("livestats")

T = TypeVar("T")

_GRANTED, _WAIT, _PAUSED, _OFF = 1, 0, 2, 3
#: The file layout this version writes (``PRAGMA user_version``; see _MIGRATIONS).
_SCHEMA = 3
#: Seconds of file time between sweeps of every key's expired rows.
_SWEEP_EVERY = 10.0
#: Seconds the file's mark of its latest time may lag (it is written no more often).
_MARK_EVERY = 0.1
#: The shortest nap: a prediction of "now" must not become a tight loop.
_MIN_NAP = 0.001
_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_MAGIC = b"SQLite format 3\x00"
#: Sleeps between tries of a locked file: from 50 µs, doubling, at most 2 ms (jittered).
_MIN_BACKOFF, _MAX_BACKOFF = 0.000025, 0.002
#: The place in line of a ticket not yet in the file: after every ticket there.
_LAST = 2**62

#: The first layout (schema 1), as the first version made it: every file starts
#: here, then goes through _MIGRATIONS, so a new file and an upgraded one are alike.
_TABLES = (
    """CREATE TABLE IF NOT EXISTS livestats_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        schema INTEGER NOT NULL,
        boot TEXT NOT NULL,    -- the boot the file clock's base belongs to ('' unknown)
        base REAL NOT NULL,    -- file time = time.monotonic() + base, during that boot
        high REAL NOT NULL,    -- the latest file time a step used
        swept REAL NOT NULL    -- file time of the last sweep of every key
    )""",
    """CREATE TABLE IF NOT EXISTS livestats_slots (
        key TEXT NOT NULL,
        token TEXT NOT NULL,
        free_at REAL NOT NULL,        -- file time the slot is free again
        in_flight INTEGER NOT NULL,   -- 1 from grant to release
        PRIMARY KEY (key, token)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS livestats_slots_free ON livestats_slots (key, free_at)",
    """CREATE TABLE IF NOT EXISTS livestats_queue (
        seq INTEGER PRIMARY KEY,      -- the order the file saw tickets in
        key TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        alive_until REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS livestats_queue_key ON livestats_queue (key)",
    """CREATE TABLE IF NOT EXISTS livestats_pauses (
        key TEXT PRIMARY KEY,
        until REAL NOT NULL
    ) WITHOUT ROWID""",
)

#: (schema, statements that move a file of the schema before it to this one).
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        2,
        (
            # Priorities: a ticket's place in line is `ord` (its file time, an
            # interactive one's a head start earlier), ties by `seq`. Tickets of a
            # process of the first version, still running, get ord 0: first.
            "ALTER TABLE livestats_queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE livestats_queue ADD COLUMN ord REAL NOT NULL DEFAULT 0",
            "DROP INDEX IF EXISTS livestats_queue_key",
            "CREATE INDEX IF NOT EXISTS livestats_queue_order "
            "ON livestats_queue (key, ord, priority)",
            """CREATE TABLE IF NOT EXISTS livestats_keys (
                key TEXT PRIMARY KEY,
                quota_set INTEGER NOT NULL DEFAULT 0,  -- 1: set_quota chose the quota below
                set_limit INTEGER,            -- with quota_set, NULL: not paced
                set_period REAL,
                set_burst INTEGER,
                low INTEGER,                  -- learned: `low` slots from `since` on
                since REAL,
                recover INTEGER,
                interactive_until REAL NOT NULL DEFAULT 0  -- bulk keeps the reserve free until
            ) WITHOUT ROWID""",
        ),
    ),
    (
        3,
        (
            # The share: interactive grants that passed a bulk ticket the reserve kept
            # out, since the last bulk grant (see _acquire_step).
            "ALTER TABLE livestats_keys ADD COLUMN passed INTEGER NOT NULL DEFAULT 0",
            # The interactive tickets alone, so a bulk ticket counts those behind it
            # without walking a line of bulk ones.
            "CREATE INDEX IF NOT EXISTS livestats_queue_interactive "
            "ON livestats_queue (key, ord) WHERE priority = 0",
        ),
    ),
)


@attrs.frozen
class _Known:
    """What a step read of one key: the quota set at run time and what was learned.

    ``offset`` is the file clock minus ``time.monotonic()`` at that step, so the
    learned limit's growth can be followed without reading the file again.
    """

    quota: Quota | None = None  # set at run time; None: the one callers pass
    off: bool = False  # set to "not paced"
    learned: Learned | None = None
    offset: float = 0.0

    def configured(self, quota: Quota) -> Quota:
        return quota if self.quota is None else self.quota

    def effective(self, quota: Quota) -> Quota | None:
        """The quota in force now, as far as this process knows (no I/O)."""
        if self.off:
            return None
        configured = self.configured(quota)
        if self.learned is None:
            return configured
        limit = effective_limit(configured, self.learned, time.monotonic() + self.offset)
        return _lowered(configured, limit)


def _lowered(quota: Quota, limit: int) -> Quota:
    """``quota`` with ``limit`` slots (and a burst no larger)."""
    if limit == quota.limit:
        return quota
    burst = None if quota.burst is None else min(quota.burst, limit)
    return attrs.evolve(quota, limit=limit, burst=burst)


class _Late(Exception):
    """A step could not begin before the caller's deadline (the file was locked)."""


class _SQLitePermit:
    __slots__ = ("_key", "_limiter", "_period", "_released", "_token")

    def __init__(self, limiter: SQLiteLimiter, key: str, token: str | None, period: float) -> None:
        self._limiter = limiter
        self._key = key
        #: None for a key that is not paced: nothing to give back.
        self._token = token
        self._period = period
        self._released = False

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        if self._released:
            return
        self._released = True
        if self._token is None:
            return
        hold = self._period + self._limiter._extra_hold(unanswered_for)
        await self._limiter._release(self._key, self._token, hold, sent=sent)

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        if self._token is None:
            state += ", not paced"
        return f"<SQLitePermit {self._key!r} {state}>"


class _Worker:
    """One thread, its connection, and the process that made them."""

    __slots__ = ("closed", "db", "pid", "pool")

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livestats-sqlite")
        self.db: sqlite3.Connection | None = None
        self.pid = os.getpid()
        #: Set by aclose: a step that still lands here closes the connection after it.
        self.closed = False


class SQLiteLimiter:
    """The :class:`~livestats.Limiter` for quotas shared by the processes of one host.

    ``path`` is the SQLite file every process that shares the quotas opens (a file
    of its own: the limiter makes its tables in it). Its directory is made if
    missing (mode 0700) and the file if missing (mode 0600); the file must be on a
    local filesystem (WAL needs shared memory: no NFS). Nothing is opened until the
    first step, where a file that cannot be used is a
    :class:`~livestats.LimiterUnavailableError`.

    ``lease``: seconds a slot may stay in flight before it counts as abandoned
    (longer than any attempt: a client's ``timeout``, retries apart). ``ticket_ttl``:
    seconds a waiter's place in line survives without it asking again.
    ``busy_timeout``: seconds a step waits for another process's write lock before
    the file counts as unusable. ``durable``: sync every step to disk
    (``synchronous=FULL``), so even a power cut forgets no grant. ``max_jitter``:
    at most this many seconds are added to every wait. ``clock``: the
    :class:`~livestats.Clock` waits sleep on. Slot times are always the file's own
    clock, so on a virtual clock the limiter looks at the file as often as that
    clock lets it sleep, and waits as long as real time says (``max_wait`` too).

    Priorities, deadlines, learned limits and quotas set at run time follow
    :mod:`livestats._core.sharing` across every process of the file (see the
    module docstring for how).

    Use it as ``async with SQLiteLimiter(path) as limiter:`` or call
    :meth:`aclose`; a limiter closed (or whose event loop ended) opens the file
    again when used.
    """

    __slots__ = (
        "_busy_timeout",
        "_durable",
        "_follows_loop",
        "_guard",
        "_held",
        "_known",
        "_lease",
        "_loop",
        "_max_jitter",
        "_orphans",
        "_path",
        "_problem",
        "_sleep",
        "_ticket_ttl",
        "_waiting",
        "_wakers",
        "_worker",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float = 60.0,
        ticket_ttl: float = 10.0,
        busy_timeout: float = 10.0,
        durable: bool = False,
        max_jitter: float = 0.01,
        clock: Clock | None = None,
    ) -> None:
        self._path = _check_path(path)
        self._lease = check_seconds(lease, "lease")
        self._ticket_ttl = check_seconds(ticket_ttl, "ticket_ttl")
        self._busy_timeout = check_seconds(busy_timeout, "busy_timeout")
        if not isinstance(durable, bool):
            raise ConfigurationError(f"durable must be True or False, not {type(durable).__name__}")
        self._durable = durable
        if (
            isinstance(max_jitter, bool)
            or not isinstance(max_jitter, (int, float))
            or not 0 <= max_jitter < 1
        ):
            raise ConfigurationError("max_jitter must be a number of seconds from 0 to 1")
        self._max_jitter = float(max_jitter)
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError(f"clock must be a livestats.Clock, not {type(clock).__name__}")
        clock = clock or Clock()
        self._sleep = clock.sleep
        # The default clock wakes naps with the loop's own timers (no task per nap).
        self._follows_loop = clock.follows_loop
        self._worker: _Worker | None = None
        self._orphans: list[_Worker] = []  # inherited through fork: never touched again
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._wakers: dict[str, set[asyncio.Future[None]]] = {}
        #: What this process's last step of each key read (for effective_quota).
        self._known: dict[str, _Known] = {}
        self._held = 0
        self._waiting = 0
        self._problem: str | None = None

    @property
    def path(self) -> str:
        """The absolute path of the file."""
        return self._path

    def __repr__(self) -> str:
        if self._problem is not None:
            state = f"unusable ({self._problem})"
        elif self._worker is None or self._worker.db is None:
            state = "not open"
        else:
            state = "open"
        return (
            f"<SQLiteLimiter {self._path!r} {state}, {self._held} held, "
            f"{self._waiting} waiting here, lease={self._lease:g}s>"
        )

    async def aclose(self) -> None:
        """Close the file once the steps already queued have run (they always run)."""
        worker, self._worker = self._worker, None
        guard, self._guard = self._guard, None
        self._loop = None
        if worker is not None and worker.pid == os.getpid():
            worker.closed = True
            closing = worker.pool.submit(self._close_db, worker)
            try:
                await asyncio.shield(asyncio.wrap_future(closing))
            finally:
                # Only now: a step queued meanwhile (a cancelled waiter's leave) still
                # lands behind the steps it follows.
                worker.pool.shutdown(wait=False)
        if guard is not None:
            await guard.aclose()

    async def __aenter__(self) -> SQLiteLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the Limiter interface ---------------------------------------------------------

    async def acquire(
        self,
        key: str,
        quota: Quota,
        *,
        wait_if_paused: bool = True,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> Permit:
        bulk = priority == Priority.BULK
        longest = _check_max_wait(max_wait)
        deadline = None if longest is None else time.monotonic() + longest
        token = secrets.token_hex(12)
        fail_fast = not wait_if_paused
        worker: _Worker | None = None
        asked = looked = False  # a step was asked for; one went through
        try:
            while True:
                worker = await self._bind()
                asked = True
                try:
                    status, wait, expected, known = await self._step(
                        worker, self._acquire_step, key, token, quota, bulk, fail_fast,
                        deadline=deadline,
                    )  # fmt: skip
                except _Late:
                    assert longest is not None
                    raise WaitExceeded(longest, None) from None
                looked = True
                self._known[key] = known
                if status == _GRANTED:
                    self._held += 1
                    return _SQLitePermit(self, key, token, known.configured(quota).period)
                if status == _OFF:
                    return _SQLitePermit(self, key, None, quota.period)
                if status == _PAUSED and fail_fast:
                    raise Paused(wait)  # the step itself gave the ticket up
                left = None
                if deadline is not None:
                    assert longest is not None
                    left = deadline - time.monotonic()
                    if expected > left or left <= 0:
                        # Predicted beyond the deadline, or this was the last look.
                        raise WaitExceeded(longest, expected)
                await self._nap(key, wait, left)
        except BaseException as exc:
            # Cancelled (at any point, even while a step runs or after a grant landed),
            # out of time, or the file failed after an earlier look left a ticket: give
            # back what this token holds, without waiting. A failed step wrote nothing,
            # and a fail-fast caller's step gave its ticket up itself.
            failed = isinstance(exc, LimiterUnavailableError)
            if not isinstance(exc, Paused) and (looked if failed else asked):
                self._leave_later(worker, key, token)
            raise

    async def pause(self, key: str, seconds: float) -> None:
        if not seconds > 0:
            return
        worker = await self._bind()
        await self._step(worker, self._pause_step, key, min(float(seconds), MAX_SECONDS))
        self._wake(key)

    async def refused(self, key: str, quota: Quota, *, recover: bool = True) -> Quota | None:
        """Lower ``key``'s effective limit for every process of the file (see the Limiter).

        The limit in force is read, lowered and written back in one step, so two
        processes refused in one period lower it once.
        """
        worker = await self._bind()
        lowered, known = await self._step(worker, self._refused_step, key, quota, bool(recover))
        self._known[key] = known
        return lowered

    async def set_quota(self, key: str, quota: Quota | None) -> None:
        """Pace ``key`` by ``quota`` (``None``: not at all) in every process of the file.

        This process's waiters look again at once; those of other processes at their
        next look, within ``ticket_ttl / 2``. What was learned of the key is forgotten.
        """
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(f"quota must be a livestats.Quota or None, not {shown(quota)}")
        worker = await self._bind()
        self._known[key] = await self._step(worker, self._set_quota_step, key, quota)
        self._wake(key)

    def effective_quota(self, key: str, quota: Quota) -> Quota | None:
        """The quota ``key`` is paced by, from this process's last step of it (no I/O)."""
        known = self._known.get(key)
        return quota if known is None else known.effective(quota)

    # -- waiting -----------------------------------------------------------------------

    async def _nap(self, key: str, wait: float, left: float | None = None) -> None:
        """Sleep until the slot can free (renewing the ticket in time), or a local wake-up.

        ``left``: seconds to the caller's deadline, which the nap, jitter included,
        does not pass.
        """
        seconds = max(_MIN_NAP, min(wait, self._ticket_ttl / 2))
        seconds += random.uniform(0, self._max_jitter)
        if left is not None:
            seconds = max(0.0, min(seconds, left))
        loop = asyncio.get_running_loop()
        waker: asyncio.Future[None] = loop.create_future()
        wakers = self._wakers.setdefault(key, set())
        wakers.add(waker)
        self._waiting += 1
        try:
            if self._follows_loop:
                timer = loop.call_later(seconds, _settle, waker)
                try:
                    await waker
                finally:
                    timer.cancel()
            else:
                sleeper = asyncio.ensure_future(self._sleep(seconds))
                try:
                    await asyncio.wait((waker, sleeper), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
        finally:
            self._waiting -= 1
            wakers.discard(waker)
            if not wakers and self._wakers.get(key) is wakers:
                del self._wakers[key]

    def _wake(self, key: str) -> None:
        """Let this limiter's waiters of ``key`` look again now (a slot may be free)."""
        for waker in self._wakers.get(key, ()):
            if not waker.done() and not waker.get_loop().is_closed():
                waker.set_result(None)

    # -- running steps -----------------------------------------------------------------

    async def _bind(self) -> _Worker:
        """The worker of this process, and a guard that closes it when this loop ends."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Closed with the loop if nobody calls aclose(): no thread or file left open.
            self._loop = loop
            self._guard = close_at_loop_shutdown(lambda: self._close_with(loop))
            await self._guard.__anext__()
        worker = self._worker
        if worker is not None and worker.pid != os.getpid():
            # Forked: the thread did not come along, and the connection must not be
            # used (or closed) here. Keep it referenced so nothing closes it.
            self._orphans.append(worker)
            worker = None
        if worker is None:
            worker = self._worker = _Worker()
        return worker

    async def _close_with(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            self._guard = None  # the guard running this: aclose must not close it again
            await self.aclose()

    async def _step(
        self, worker: _Worker, step: Callable[..., T], *args: Any, deadline: float | None = None
    ) -> T:
        loop = asyncio.get_running_loop()
        run = functools.partial(self._run, worker, step, *args, deadline=deadline)
        return await loop.run_in_executor(worker.pool, run)

    def _submit(
        self, worker: _Worker | None, step: Callable[..., object], *args: Any
    ) -> Future[Any]:
        """Queue a step without waiting for it: behind ``worker``'s steps if it still runs."""
        if worker is not None and worker.pid == os.getpid():
            try:
                return worker.pool.submit(self._run_quietly, worker, step, *args)
            except RuntimeError:
                pass  # shut down: every step queued there has run
        current = self._worker
        if current is None or current.pid != os.getpid():
            current = self._worker = _Worker()
        return current.pool.submit(self._run_quietly, current, step, *args)

    def _leave_later(self, worker: _Worker | None, key: str, token: str) -> None:
        done = self._submit(worker, self._leave_step, key, token)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def woken(_: Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone, and its waiters too
                loop.call_soon_threadsafe(self._wake, key)

        done.add_done_callback(woken)

    def _extra_hold(self, unanswered_for: float) -> float:
        """Seconds a sent, unanswered request keeps its slot beyond the period."""
        try:
            extra = float(unanswered_for)
        except (TypeError, ValueError, OverflowError):
            return 0.0
        if math.isnan(extra):
            return self._lease  # unknown: as long as an abandoned slot
        return min(max(extra, 0.0), MAX_SECONDS)

    async def _release(self, key: str, token: str, hold: float, *, sent: bool) -> None:
        """Free the slot ``hold`` seconds from now (file time), or at once if unsent."""
        self._held -= 1
        try:
            worker = await self._bind()
            # Shielded: a release runs to its end even if the caller is cancelled.
            await asyncio.shield(
                asyncio.get_running_loop().run_in_executor(
                    worker.pool, self._run, worker, self._release_step, key, token, hold, sent
                )
            )
        except LimiterUnavailableError as err:
            # The slot stays taken in the file until its lease lapses: the safe side. A
            # failed release must not hide the outcome of the request it paced.
            logger.warning("livestats: could not release a slot of %s: %s", key, err)
        finally:
            if not sent:
                self._wake(key)  # their next look queues behind this release

    # -- in the worker thread ----------------------------------------------------------

    def _run(
        self, worker: _Worker, step: Callable[..., T], *args: Any, deadline: float | None = None
    ) -> T:
        """One transaction: the one place a sqlite3 or OS error becomes a typed error.

        A file another process has locked is tried again after a short, growing,
        jittered sleep until ``busy_timeout`` has passed. SQLite's own busy handler
        sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, far longer than a step
        holds the lock (tens of µs): under contention it would leave the lock idle
        while waiters sleep. ``deadline`` (``time.monotonic()``): the caller's, past
        which a locked file is :class:`_Late` instead.
        """
        give_up: float | None = None
        tries = 0
        try:
            while True:
                try:
                    result = self._transaction(worker, step, args)
                    break
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                    now = time.monotonic()
                    if give_up is None:
                        give_up = now + self._busy_timeout
                    elif now >= give_up:
                        raise
                    if deadline is not None and now >= deadline:
                        raise _Late from None
                    tries += 1
                    pause = min(_MAX_BACKOFF, _MIN_BACKOFF * 2 ** min(tries, 16))
                    until = give_up if deadline is None else min(give_up, deadline)
                    time.sleep(min(pause * random.uniform(0.5, 1.5), max(0.0, until - now)))
        except (sqlite3.Error, OSError) as exc:
            self._close_db(worker)
            self._problem = _describe(exc)
            raise self._unusable(exc) from exc
        except LimiterUnavailableError as err:
            self._close_db(worker)
            self._problem = err.message
            raise
        finally:
            if worker.closed:
                self._close_db(worker)
        self._problem = None
        return result

    def _transaction(self, worker: _Worker, step: Callable[..., T], args: tuple[Any, ...]) -> T:
        db = worker.db if worker.db is not None else self._open(worker)
        db.execute("BEGIN IMMEDIATE")
        try:
            result = step(db, *args)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _run_quietly(self, worker: _Worker, step: Callable[..., object], *args: Any) -> None:
        try:
            self._run(worker, step, *args)
        except Exception as exc:
            logger.debug("livestats: a queued SQLite step failed: %s", exc)

    def _unusable(self, exc: BaseException) -> LimiterUnavailableError:
        return LimiterUnavailableError(
            f"the SQLite limiter file {self._path!r} is unusable: {_describe(exc)}",
            retryable=False,
        )

    def _open(self, worker: _Worker) -> sqlite3.Connection:
        directory = os.path.dirname(self._path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        # Made here with 0600 (SQLite would use 0644); its -wal and -shm files take
        # the same mode. An existing file keeps the mode its owner gave it.
        if os.path.isdir(self._path):
            raise IsADirectoryError(f"{self._path} is a directory")
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            header = os.read(fd, len(_MAGIC))
        finally:
            os.close(fd)
        if header and header != _MAGIC:
            # SQLite would take a file shorter than a page for an empty database and
            # write over it: someone else's file is refused, and left as it is.
            raise sqlite3.DatabaseError("file is not a database (it was left as it is)")
        # No busy handler of SQLite's own: _run retries a locked file, sooner.
        db = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=True)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LimiterUnavailableError(
                    f"the SQLite limiter file {self._path!r} is unusable: it cannot be put "
                    f"in WAL mode (journal mode {mode!r}); use a local filesystem",
                    retryable=False,
                )
            db.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
            db.execute("PRAGMA journal_size_limit=4194304")  # the WAL shrinks back after use
            db.execute("BEGIN IMMEDIATE")
            self._lay_out(db)
            db.execute("COMMIT")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")
        except BaseException:
            db.close()
            raise
        worker.db = db
        return db

    def _lay_out(self, db: sqlite3.Connection) -> None:
        """Make the tables of a new file, or move an older file's on to this layout.

        In the open transaction, so two processes opening an old file at once
        migrate it once. The first version set no ``user_version``; its clock row's
        ``schema`` (1) says what it made, and is what earlier versions check.
        """
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version == 0:
            for statement in _TABLES:
                db.execute(statement)
            row = db.execute("SELECT schema FROM livestats_meta WHERE id = 1").fetchone()
            if row is None:
                mono = time.monotonic()
                db.execute(
                    "INSERT INTO livestats_meta VALUES (1, 1, ?, 0.0, ?, ?)",
                    (_boot_id(), mono, mono),
                )
                version = 1
            else:
                version = row[0]
        if not isinstance(version, int) or not 1 <= version <= _SCHEMA:
            raise LimiterUnavailableError(
                f"the SQLite limiter file {self._path!r} is unusable: it was made by "
                f"another version of livestats (schema {version!r}, this one knows 1 "
                f"to {_SCHEMA})",
                retryable=False,
            )
        if version == _SCHEMA:
            return
        for target, statements in _MIGRATIONS:
            if version < target:
                for statement in statements:
                    db.execute(statement)
        db.execute("UPDATE livestats_meta SET schema = ? WHERE id = 1", (_SCHEMA,))
        db.execute(f"PRAGMA user_version = {_SCHEMA:d}")

    @staticmethod
    def _close_db(worker: _Worker) -> None:
        db, worker.db = worker.db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    # -- the steps (each one transaction, in the worker thread) --------------------------

    def _now(self, db: sqlite3.Connection) -> float:
        """The file clock (see the module docstring), moved on past the latest mark."""
        row = db.execute(
            "SELECT boot, base, high, swept FROM livestats_meta WHERE id = 1"
        ).fetchone()
        if row is None:
            raise sqlite3.DatabaseError("the file's clock row is missing")
        boot, base, high, swept = row
        mono = time.monotonic()
        mine = _boot_id()
        restarted = boot != mine if boot and mine else mono + base < high
        if restarted:
            base = high - mono  # continue from the mark: the downtime counts as zero
        now = max(mono + base, high)
        sweep = now - swept >= _SWEEP_EVERY
        if sweep:
            db.execute("DELETE FROM livestats_slots WHERE free_at <= ?", (now,))
            db.execute("DELETE FROM livestats_queue WHERE alive_until <= ?", (now,))
            db.execute("DELETE FROM livestats_pauses WHERE until <= ?", (now,))
            db.execute(
                "DELETE FROM livestats_keys "
                "WHERE quota_set = 0 AND low IS NULL AND interactive_until <= ?",
                (now,),
            )
            swept = now
        # The mark may lag the clock by up to _MARK_EVERY: after a reboot the clock then
        # resumes a little earlier, which only makes waits longer.
        if restarted or sweep or (mine and boot != mine) or now - high >= _MARK_EVERY:
            db.execute(
                "UPDATE livestats_meta SET boot = ?, base = ?, high = ?, swept = ? WHERE id = 1",
                (mine or boot, base, now, swept),
            )
        return float(now)

    def _key_state(
        self, db: sqlite3.Connection, key: str, quota: Quota, now: float, *, interactive: bool
    ) -> tuple[_Known, int, float, int]:
        """What the file holds of ``key``: the settings, the limit in force, the reserve's
        end, and the interactive grants that passed a bulk ticket since its last grant.

        An interactive caller's ask is recorded here: bulk callers keep the reserve
        free for an interactive window from now.
        """
        row = db.execute(
            "SELECT quota_set, set_limit, set_period, set_burst, low, since, recover, "
            "interactive_until, passed FROM livestats_keys WHERE key = ?",
            (key,),
        ).fetchone()
        offset = now - time.monotonic()
        if row is None:
            known, until, passed = _Known(offset=offset), -math.inf, 0
        else:
            known, until, passed = _decode(row, offset), float(row[7]), int(row[8])
        if known.off:
            return known, 0, until, passed
        configured = known.configured(quota)
        limit = configured.limit
        if known.learned is not None:
            limit = effective_limit(configured, known.learned, now)
            if known.learned.recover and limit >= configured.limit:
                # Grown back: forgotten, so the row can go.
                db.execute(
                    "UPDATE livestats_keys SET low = NULL, since = NULL, recover = NULL "
                    "WHERE key = ?",
                    (key,),
                )
                known = attrs.evolve(known, learned=None)
        if interactive:
            later = now + interactive_window(configured.period)
            if row is None:
                db.execute(
                    "INSERT INTO livestats_keys (key, interactive_until) VALUES (?, ?)",
                    (key, later),
                )
            elif later - until >= _MARK_EVERY:  # a window at most that much shorter
                db.execute(
                    "UPDATE livestats_keys SET interactive_until = ? WHERE key = ?", (later, key)
                )
            until = max(until, later)
        return known, limit, until, passed

    def _acquire_step(
        self,
        db: sqlite3.Connection,
        key: str,
        token: str,
        quota: Quota,
        bulk: bool,
        fail_fast: bool,
    ) -> tuple[int, float, float, _Known]:
        """Grant ``token`` a slot, or say how long to nap and how long the wait looks.

        Returns ``(status, nap, expected, known)``: ``expected`` is the wait the
        rules predict (for ``max_wait``); ``nap`` may be shorter, to look again when
        a learned limit grows back.
        """
        now = self._now(db)
        db.execute("DELETE FROM livestats_slots WHERE key = ? AND free_at <= ?", (key, now))
        db.execute("DELETE FROM livestats_queue WHERE key = ? AND alive_until <= ?", (key, now))
        known, limit, reserved_until, passed = self._key_state(
            db, key, quota, now, interactive=not bulk
        )
        if known.off:
            db.execute("DELETE FROM livestats_queue WHERE token = ?", (token,))
            return _OFF, 0.0, 0.0, known
        period = known.configured(quota).period

        ticket = db.execute(
            "SELECT seq, ord FROM livestats_queue WHERE token = ?", (token,)
        ).fetchone()
        if ticket is None:
            seq, order = _LAST, now if bulk else now - HEAD_START * period
        else:
            seq, order = ticket
        # The line before this ticket: every ticket placed earlier, ties by seq.
        ahead, interactive_ahead = db.execute(
            "SELECT count(*), total(priority = 0) FROM livestats_queue "
            "WHERE key = ? AND ord <= ? AND (ord < ? OR seq < ?)",
            (key, order, order, seq),
        ).fetchone()
        ahead, interactive_ahead = int(ahead), int(interactive_ahead)

        def keep() -> None:
            self._keep_ticket(db, key, token, ticket, now, order, bulk)

        paused = db.execute("SELECT until FROM livestats_pauses WHERE key = ?", (key,)).fetchone()
        if paused is not None and paused[0] > now:
            if fail_fast:
                db.execute("DELETE FROM livestats_queue WHERE token = ?", (token,))
            else:
                keep()
            left = paused[0] - now
            return _PAUSED, left, left, known

        (used,) = db.execute(
            "SELECT count(*) FROM livestats_slots WHERE key = ?", (key,)
        ).fetchone()
        spare = reserve(limit) if reserved_until > now else 0
        free_bulk = max(0, limit - spare - used)  # slots a bulk ticket may take now
        free = max(0, limit - used)  # slots an interactive ticket may take now
        # Everyone before this ticket fits in what bulk tickets may take: the first
        # `free_bulk` tickets in line can all be served, whatever their priority.
        grant = ahead < free_bulk
        claims, ready = ahead, False
        # Interactive: a bulk ticket ahead is kept out by the reserve, so a grant here
        # passes it. Bulk: this ticket takes its share past the reserve.
        passes = share = False
        share_at = look_at = math.inf  # bulk: when its share's slot can free; when to look
        if not grant and not bulk:
            last_interactive = True
            if free_bulk == 0:
                # No bulk ticket may take a slot: only the interactive ones ahead count.
                claims = interactive_ahead
                passes = spare > 0 and ahead > interactive_ahead
            elif free_bulk < free:
                claims, last_interactive, only_interactive = self._claims_ahead(
                    db, key, order, seq, free_bulk, interactive_ahead
                )
                passes = only_interactive and ahead > interactive_ahead
                ready = not last_interactive and claims < free
            if passes and passed + claims >= AGED_SHARE - 1:
                # The share of the first bulk ticket comes before this grant: leave its slot.
                claims += 1
            grant = last_interactive and claims < free
        elif not grant and spare and ahead == interactive_ahead:
            # The first bulk ticket in line, kept out by the reserve. Its share is the
            # slot after the interactive tickets ahead and the passes still due; it
            # takes it as soon as that slot is free if interactive tickets waiting
            # behind it will make those passes (else the reserve would go to bulk with
            # nobody passing it).
            due = max(0, AGED_SHARE - 1 - passed)
            behind = self._interactive_behind(db, key, order, seq, due) if due else 0
            if ahead + due < free and behind >= due:
                grant = share = True
            else:
                # The interactive tickets waiting behind it take the slots that free
                # before the reserve lets it have one: it need not look before then.
                claims = ahead + behind
                if ahead + due >= free:
                    share_at = self._ready_at(db, key, now, period, ahead + due, limit, used)
                else:
                    # The passes due have free slots but nobody in line to make them:
                    # look again soon, for interactive callers still to come.
                    look_at = now + period / AGED_SHARE
        if grant:
            db.execute(
                "INSERT INTO livestats_slots VALUES (?, ?, ?, 1)",
                (key, token, math.nextafter(now + self._lease + period, math.inf)),
            )
            if ticket is not None:
                db.execute("DELETE FROM livestats_queue WHERE token = ?", (token,))
            if passes:
                db.execute("UPDATE livestats_keys SET passed = passed + 1 WHERE key = ?", (key,))
            elif bulk and passed:
                # The passes it went before count towards the next share (they come
                # after it); any other bulk grant starts the count afresh.
                db.execute(
                    "UPDATE livestats_keys SET passed = ? WHERE key = ?",
                    (passed - (AGED_SHARE - 1) if share else 0, key),
                )
            return _GRANTED, 0.0, 0.0, known

        keep()
        if ready:
            # Only bulk tickets ahead that may take a slot now keep this one out:
            # they are served at their next look.
            return _WAIT, 0.0, 0.0, known
        when = self._ready_at(db, key, now, period, claims, limit - (spare if bulk else 0), used)
        if bulk and spare:
            # A bulk ticket may also go once interactive callers have gone quiet.
            quiet = max(self._ready_at(db, key, now, period, claims, limit, used), reserved_until)
            when = min(when, quiet)
        when = min(when, share_at)
        expected = max(0.0, when - now)
        when = min(when, look_at)
        learned = known.learned
        if learned is not None and learned.recover:
            # The learned limit grows back a step each quiet period: look again then.
            steps = math.floor((now - learned.since) / period) + 1
            when = min(when, learned.since + steps * period)
        return _WAIT, max(0.0, when - now), expected, known

    @staticmethod
    def _claims_ahead(
        db: sqlite3.Connection,
        key: str,
        order: float,
        seq: int,
        free_bulk: int,
        interactive_ahead: int,
    ) -> tuple[int, bool, bool]:
        """Slots the tickets ahead are owed, whether this interactive one may take one,
        and whether those first ``free_bulk`` are all interactive.

        Served in line order, the first ``free_bulk`` tickets ahead take a slot
        each, and after them only the interactive ones (the rest are bulk, kept out
        by the reserve). Taking a slot now must leave those first ``free_bulk``
        theirs: so the last of them must be interactive (it can use the reserve).
        """
        front = db.execute(
            "SELECT priority FROM livestats_queue "
            "WHERE key = ? AND ord <= ? AND (ord < ? OR seq < ?) ORDER BY ord, seq LIMIT ?",
            (key, order, order, seq, free_bulk),
        ).fetchall()
        interactive_front = sum(1 for (priority,) in front if priority == Priority.INTERACTIVE)
        claims = free_bulk + interactive_ahead - interactive_front
        last_interactive = front[-1][0] == Priority.INTERACTIVE
        return claims, last_interactive, interactive_front == len(front)

    @staticmethod
    def _interactive_behind(
        db: sqlite3.Connection, key: str, order: float, seq: int, most: int
    ) -> int:
        """Interactive tickets behind this one in line, counted up to ``most``.

        On the partial index of interactive tickets: a line of bulk ones costs nothing.
        """
        (count,) = db.execute(
            "SELECT count(*) FROM (SELECT 1 FROM livestats_queue "
            "INDEXED BY livestats_queue_interactive "
            "WHERE key = ? AND priority = 0 AND (ord, seq) > (?, ?) LIMIT ?)",
            (key, order, seq, most),
        ).fetchone()
        return int(count)

    @staticmethod
    def _ready_at(
        db: sqlite3.Connection,
        key: str,
        now: float,
        period: float,
        claims: int,
        cap: int,
        used: int,
    ) -> float:
        """When a ticket with ``claims`` slots owed before it fits under ``cap``.

        Places below the cap take the free slots, the next ones the used slots in
        the order they can free (one in flight a period from now at the earliest,
        or when its lease lapses), and every ``cap`` places further back one more
        whole period.
        """
        cycles, index = divmod(claims, cap)
        when = now
        offset = index + used - cap
        if offset >= 0:
            # In the order of the index (no sort): slots in flight mostly come last, as
            # their lease is long; the cap at a period wakes early rather than late.
            row = db.execute(
                "SELECT free_at FROM livestats_slots WHERE key = ? "
                "ORDER BY free_at LIMIT 1 OFFSET ?",
                (key, offset),
            ).fetchone()
            when = min(row[0], now + period) if row is not None else now + period
        return float(when + cycles * period)

    def _keep_ticket(
        self,
        db: sqlite3.Connection,
        key: str,
        token: str,
        ticket: Any,
        now: float,
        order: float,
        bulk: bool,
    ) -> None:
        alive_until = now + self._ticket_ttl
        if ticket is None:
            db.execute(
                "INSERT INTO livestats_queue (key, token, alive_until, priority, ord) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    token,
                    alive_until,
                    int(Priority.BULK if bulk else Priority.INTERACTIVE),
                    order,
                ),
            )
        else:
            db.execute(
                "UPDATE livestats_queue SET alive_until = ? WHERE seq = ?", (alive_until, ticket[0])
            )

    def _refused_step(
        self, db: sqlite3.Connection, key: str, quota: Quota, recover: bool
    ) -> tuple[Quota | None, _Known]:
        now = self._now(db)
        known, limit, _, _ = self._key_state(db, key, quota, now, interactive=False)
        if known.off:
            return None, known
        configured = known.configured(quota)
        learned = known.learned
        if learned is not None and now - learned.since < configured.period:
            return None, known  # this window's refusals are one signal
        lowered = decreased(limit)
        db.execute("INSERT OR IGNORE INTO livestats_keys (key) VALUES (?)", (key,))
        db.execute(
            "UPDATE livestats_keys SET low = ?, since = ?, recover = ? WHERE key = ?",
            (lowered, now, int(recover), key),
        )
        known = attrs.evolve(known, learned=Learned(lowered, now, recover))
        return (None if lowered == limit else _lowered(configured, lowered)), known

    def _set_quota_step(self, db: sqlite3.Connection, key: str, quota: Quota | None) -> _Known:
        now = self._now(db)
        db.execute("INSERT OR IGNORE INTO livestats_keys (key) VALUES (?)", (key,))
        db.execute(
            "UPDATE livestats_keys SET quota_set = 1, set_limit = ?, set_period = ?, "
            "set_burst = ?, low = NULL, since = NULL, recover = NULL WHERE key = ?",
            (
                None if quota is None else quota.limit,
                None if quota is None else quota.period,
                None if quota is None else quota.burst,
                key,
            ),
        )
        return _Known(quota=quota, off=quota is None, offset=now - time.monotonic())

    def _release_step(
        self, db: sqlite3.Connection, key: str, token: str, hold: float, sent: bool
    ) -> None:
        if not sent:
            db.execute("DELETE FROM livestats_slots WHERE key = ? AND token = ?", (key, token))
            return
        # One float above the sum: rounding must never free a slot before a full hold.
        free_at = math.nextafter(self._now(db) + hold, math.inf)
        updated = db.execute(
            "UPDATE livestats_slots SET free_at = ?, in_flight = 0 WHERE key = ? AND token = ?",
            (free_at, key, token),
        ).rowcount
        if not updated:
            # Its lease lapsed meanwhile (an attempt longer than `lease`): counting it
            # again is the safe side.
            db.execute("INSERT INTO livestats_slots VALUES (?, ?, ?, 0)", (key, token, free_at))

    def _pause_step(self, db: sqlite3.Connection, key: str, seconds: float) -> None:
        until = self._now(db) + seconds
        db.execute("INSERT OR IGNORE INTO livestats_pauses VALUES (?, ?)", (key, until))
        db.execute("UPDATE livestats_pauses SET until = max(until, ?) WHERE key = ?", (until, key))

    @staticmethod
    def _leave_step(db: sqlite3.Connection, key: str, token: str) -> None:
        """A waiter that gave up, or a grant nobody took."""
        db.execute("DELETE FROM livestats_queue WHERE token = ?", (token,))
        db.execute("DELETE FROM livestats_slots WHERE key = ? AND token = ?", (key, token))


def _decode(row: Any, offset: float) -> _Known:
    """A ``livestats_keys`` row as a :class:`_Known`; a row no version wrote is corruption."""
    quota_set, limit, period, burst, low, since, recover = row[:7]
    try:
        quota = None
        if quota_set and limit is not None:
            quota = Quota(int(limit), float(period), None if burst is None else int(burst))
        learned = None if low is None else Learned(int(low), float(since), bool(recover))
    except (TypeError, ValueError, ConfigurationError) as exc:
        raise sqlite3.DatabaseError(f"a key's settings row is malformed ({exc})") from None
    off = bool(quota_set) and limit is None
    return _Known(quota=quota, off=off, learned=learned, offset=offset)


def _check_max_wait(value: object) -> float | None:
    """Seconds, or None for no deadline; below zero is zero (only a free slot now)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigurationError(
            f"max_wait must be a number of seconds or None, not {shown(value)}"
        )
    return min(max(float(value), 0.0), MAX_SECONDS)


def _settle(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)


_boot: str | None = None


def _boot_id() -> str:
    """This boot's id on Linux; '' where the system does not say. Read once per process."""
    global _boot
    if _boot is None:
        try:
            with open(_BOOT_ID, encoding="ascii") as file:
                _boot = file.read().strip()
        except (OSError, ValueError):
            _boot = ""
    return _boot


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock; try again."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF in (5, 6)
    return "locked" in str(exc)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return f"{text} (another process held it for longer than busy_timeout)"
    return f"{type(exc).__name__}: {text}"


def _check_path(path: object) -> str:
    """An absolute path of a file of its own (made absolute now: a later chdir moves nothing)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise ConfigurationError(
            f"path must be a str or os.PathLike naming a file, not {type(path).__name__}"
        )
    try:
        text = os.fspath(path)
    except TypeError as exc:
        raise ConfigurationError(f"path is not a usable path: {exc}") from None
    if not isinstance(text, str):
        raise ConfigurationError("path must be text, not bytes")
    if not text.strip():
        raise ConfigurationError("path must not be empty")
    if "\x00" in text:
        raise ConfigurationError("path must not hold a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("path is not valid text (it holds a lone surrogate)") from None
    if text == ":memory:":
        raise ConfigurationError(
            "path must name a file on disk that every process opens (a memory database "
            "is one process's own: use LocalLimiter for that)"
        )
    return os.path.abspath(text)
