"""Quota limiters: at most N requests in ANY window of T seconds, as the provider sees them.

Why not a token or leaky bucket: a bucket that starts full lets N through at once
and then N more per T, so about 2N can land in one window. And a send-time log
with a margin is not enough either: a request reaches the provider some unknown
time after it leaves, and not always in order.

What the client does know is that the provider has seen a request by the time its
answer arrives. So a quota of N per T is N *slots*: a request holds a slot from
before it is sent until its outcome is known (answer, error or cancellation), and
the slot becomes free again T seconds after that moment. Two requests that use the
same slot therefore arrive at least T apart, and N slots can never put more than N
arrivals into any window of T seconds. A free window allows a full burst of N.
The cost is one round trip per slot per period: a 100/s quota with 5 ms answers
sustains 100 / 1.005 = 99.5 requests per second.

A limiter is anything with the :class:`Limiter` interface, so a shared one (Redis)
can replace the in-process :class:`LocalLimiter`.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from livestats._core.clock import Clock
from livestats._core.quota import MAX_LIMIT, Quota
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
from livestats._core.validate import shown
from livestats.errors import ConfigurationError

__all__ = ["Limiter", "LocalLimiter", "Paused", "Permit", "shared_limiter"]


class Paused(Exception):
    """Raised by ``acquire(..., wait_if_paused=False)`` while the key is paused.

    ``seconds`` is how long the pause has left. The engine turns it into a
    :class:`~livestats.RateLimitedError` that says until when.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"paused for {seconds:.3f} s more")
        self.seconds = seconds


class Permit(Protocol):
    """One acquired slot. Release it exactly once, when the request's outcome is known."""

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        """Give the slot back.

        ``sent=True`` (the request may have reached the provider): the slot is free
        again one quota period from now. ``sent=False`` (nothing left the client):
        the slot is free at once. ``unanswered_for``: the request was sent but no
        answer came (cancelled, timed out, connection lost), so it may still reach
        the provider for up to that many seconds; the slot stays taken that much
        longer.
        """


class Limiter(Protocol):
    """What a client needs from a limiter; keys name one quota (provider, account, operation).

    The rules for priorities, deadlines, learned limits and runtime quotas are in
    :mod:`livestats._core.sharing`; every limiter here follows them alike.
    """

    async def acquire(
        self,
        key: str,
        quota: Quota,
        *,
        wait_if_paused: bool = True,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> Permit:
        """Wait for a free slot of ``key`` and take it.

        Waiters are served by priority, then first come first served (see
        :mod:`~livestats._core.sharing`). A quota set with :meth:`set_quota` is
        used instead of ``quota``. While the key is paused, a caller with
        ``wait_if_paused=False`` gets :class:`Paused` instead of waiting, at once
        or as soon as a pause begins. With ``max_wait`` (seconds, pauses
        included), :class:`~livestats._core.sharing.WaitExceeded` is raised at
        once when the limiter can tell no slot comes in time, else once
        ``max_wait`` has passed.
        """

    async def pause(self, key: str, seconds: float) -> None:
        """Hand out no slot of ``key`` for ``seconds`` (the provider asked us to stop)."""

    async def refused(self, key: str, quota: Quota, *, recover: bool = True) -> Quota | None:
        """The provider refused a call of ``key`` for rate although its quota was kept.

        Lowers the key's effective limit (at most once a period); returns the new
        effective quota when it changed, else ``None``. ``recover=False``: it is
        never raised again by itself (a refusal that blocks for minutes).
        """

    async def set_quota(self, key: str, quota: Quota | None) -> None:
        """From now on ``key`` is paced by ``quota`` (``None``: not at all), for every user
        of the limiter's state and for the waiters already queued; what was learned
        is forgotten."""

    def effective_quota(self, key: str, quota: Quota) -> Quota | None:
        """The quota ``key`` is paced by now, as far as this process knows: ``quota``,
        or the one set at run time, lowered by what was learned; ``None``: not paced."""


class _Waiter:
    """One caller in a bucket's line; its future is resolved with whether the slot counts."""

    __slots__ = ("fail_fast", "future", "interactive", "order", "seq")

    def __init__(
        self, future: asyncio.Future[bool], order: float, fail_fast: bool, interactive: bool
    ) -> None:
        self.future = future
        self.interactive = interactive
        #: Arrival order, which breaks ties of ``order`` (one clock reading for many).
        self.seq = next(_arrivals)
        #: Where it stands in line: its arrival, an interactive one's moved a head start earlier.
        self.order = order
        self.fail_fast = fail_fast


_arrivals = itertools.count()

#: What ``set_quota(key, None)`` stores: the key is not paced.
_OFF = Quota(MAX_LIMIT, 1.0)


class _Bucket:
    """The slots of one quota key. Mutated only from the event loop, so no locks."""

    __slots__ = (
        "bulk",
        "configured",
        "cooling",
        "generation",
        "in_use",
        "interactive",
        "interactive_at",
        "learned",
        "loop",
        "override",
        "passed",
        "paused_until",
        "timer",
    )

    def __init__(self, quota: Quota) -> None:
        #: The quota the latest caller passed; ``override`` (set at run time) wins over it.
        self.configured = quota
        self.override: Quota | None = None
        self.learned: Learned | None = None
        self.in_use = 0
        # Moments (limiter clock) at which released slots become free, sorted:
        # "now + period" appends in order; a longer hold is inserted in place.
        self.cooling: deque[float] = deque()
        self.interactive: deque[_Waiter] = deque()
        self.bulk: deque[_Waiter] = deque()
        self.interactive_at = -math.inf
        #: Grants that went to interactive callers past a bulk one ahead of them in line.
        self.passed = 0
        self.paused_until = 0.0
        self.timer: asyncio.TimerHandle | asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.generation = 0

    @property
    def quota(self) -> Quota:
        """The quota in force before learning: the one set at run time, else the caller's."""
        return self.configured if self.override is None else self.override

    @property
    def off(self) -> bool:
        return self.override is _OFF

    @property
    def period(self) -> float:
        return self.quota.period

    def limit(self, now: float) -> int:
        """The effective limit at ``now``; a learned limit grown back to the quota is forgotten."""
        learned = self.learned
        quota = self.quota
        if learned is None:
            return quota.limit
        limit = effective_limit(quota, learned, now)
        if learned.recover and limit >= quota.limit:
            self.learned = None
        return limit

    def reserve(self, now: float, limit: int) -> int:
        """Slots bulk callers leave free now: a reserve while interactive callers are about."""
        if now - self.interactive_at < interactive_window(self.period):
            return reserve(limit)
        return 0

    def heads(self) -> tuple[_Waiter | None, _Waiter | None]:
        """The first live waiter of each priority (waiters that left are dropped)."""
        for line in (self.interactive, self.bulk):
            while line and line[0].future.done():
                line.popleft()
        return (
            self.interactive[0] if self.interactive else None,
            self.bulk[0] if self.bulk else None,
        )

    def waiting(self) -> int:
        return sum(1 for line in (self.interactive, self.bulk) for w in line if not w.future.done())


class _LocalPermit:
    __slots__ = ("_bucket", "_counted", "_generation", "_key", "_limiter", "_released")

    def __init__(
        self, limiter: LocalLimiter, key: str, bucket: _Bucket, *, counted: bool = True
    ) -> None:
        self._limiter = limiter
        self._key = key
        self._bucket = bucket
        self._generation = bucket.generation
        #: False for a slot of a key that is not paced: nothing to give back.
        self._counted = counted
        self._released = False

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        self.release_nowait(sent=sent, unanswered_for=unanswered_for)

    def release_nowait(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        if self._released:
            return
        self._released = True
        if self._counted and self._generation == self._bucket.generation:
            self._limiter._give_back(self._bucket, sent=sent, unanswered_for=unanswered_for)

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<Permit {self._key!r} {state}>"


class LocalLimiter:
    """The in-process limiter, and the default: exact, interactive calls first.

    One instance can serve many clients; keys keep their quotas apart. Clients of
    one account in one process should share an instance (by default each client
    has its own). Not thread-safe: use it from one event loop at a time.

    Priorities, deadlines, learned limits and quotas set at run time follow the
    rules of :mod:`livestats._core.sharing`.

    ``clock`` is the :class:`~livestats.Clock` it reads and sleeps on; give the
    clients that use the limiter the same one. By default it is the running
    loop's, and wake-ups are the loop's own timers (so a loop on virtual time
    runs the limiter on virtual time). A bare callable is taken as the monotonic
    clock, with the loop's timers for waking up.
    """

    __slots__ = ("_buckets", "_clock", "_sleep")

    def __init__(self, *, clock: Clock | Callable[[], float] | None = None) -> None:
        if clock is None:
            clock = Clock()
        if isinstance(clock, Clock):
            self._clock = clock.monotonic
            # An injected clock also decides how long a wake-up takes.
            self._sleep = None if clock.follows_loop else clock.sleep
        elif callable(clock) and not isinstance(clock, type):
            _check_reads_seconds(clock)
            self._clock = clock
            self._sleep = None
        else:
            raise ConfigurationError(
                f"clock must be a livestats.Clock, not a {type(clock).__name__}"
            )
        self._buckets: dict[str, _Bucket] = {}

    def __repr__(self) -> str:
        now = self._clock()
        keys = ", ".join(
            f"{key!r}: {b.limit(now)}/{b.period:g}s, {b.in_use} in flight, "
            f"{sum(1 for t in b.cooling if t > now)} cooling, {b.waiting()} waiting"
            for key, b in self._buckets.items()
        )
        return f"<LocalLimiter {{{keys}}}>"

    async def acquire(
        self,
        key: str,
        quota: Quota,
        *,
        wait_if_paused: bool = True,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> _LocalPermit:
        bucket = self._bucket(key, quota)
        self._bind(bucket, asyncio.get_running_loop())
        if bucket.off:
            return _LocalPermit(self, key, bucket, counted=False)
        now = self._clock()
        self._expire(bucket, now)
        interactive = priority is not Priority.BULK
        if interactive:
            bucket.interactive_at = now
        if not wait_if_paused and (left := bucket.paused_until - now) > 0:
            raise Paused(left)
        if bucket.heads() == (None, None) and self._room(bucket, now, interactive):
            bucket.in_use += 1
            return _LocalPermit(self, key, bucket)
        assert bucket.loop is not None
        order = now - HEAD_START * bucket.period if interactive else now
        waiter = _Waiter(bucket.loop.create_future(), order, not wait_if_paused, interactive)
        (bucket.interactive if interactive else bucket.bulk).append(waiter)
        self._drain(bucket)
        deadline: asyncio.TimerHandle | asyncio.Task[None] | None = None
        if not waiter.future.done() and max_wait is not None:
            expected = self._expected_wait(bucket, waiter, now)
            if expected is not None and expected > max_wait:
                waiter.future.cancel()
                self._drain(bucket)
                raise WaitExceeded(max_wait, expected)
            deadline = self._later(bucket, max_wait, self._give_up, bucket, waiter, max_wait)
        try:
            counted = await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.result():
                # Granted, then cancelled before it could run: the slot was never used.
                bucket.in_use -= 1
            elif not future.done():
                future.cancel()
            self._drain(bucket)
            raise
        finally:
            if deadline is not None:
                deadline.cancel()
        return _LocalPermit(self, key, bucket, counted=counted)

    async def pause(self, key: str, seconds: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return  # nothing was ever sent under this key
        now = self._clock()
        bucket.paused_until = max(bucket.paused_until, now + seconds)
        left = bucket.paused_until - now
        for line in (bucket.interactive, bucket.bulk):
            for waiter in line:
                if waiter.fail_fast and not waiter.future.done():
                    waiter.future.set_exception(Paused(left))
        if bucket.loop is not None:
            self._drain(bucket)

    async def refused(self, key: str, quota: Quota, *, recover: bool = True) -> Quota | None:
        bucket = self._bucket(key, quota)
        if bucket.off:
            return None
        now = self._clock()
        learned = bucket.learned
        if learned is not None and now - learned.since < bucket.period:
            return None  # this window's refusals are one signal
        current = bucket.limit(now)
        lowered = decreased(current)
        bucket.learned = Learned(lowered, now, recover)
        if lowered == current:
            return None
        return self._effective(bucket, lowered)

    async def set_quota(self, key: str, quota: Quota | None) -> None:
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(f"quota must be a livestats.Quota or None, not {shown(quota)}")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(quota or _OFF)
        bucket.override = _OFF if quota is None else quota
        bucket.learned = None
        if bucket.loop is not None:
            self._drain(bucket)

    def effective_quota(self, key: str, quota: Quota) -> Quota | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return quota
        if bucket.off:
            return None
        return self._effective(bucket, bucket.limit(self._clock()))

    # -- bookkeeping --------------------------------------------------------------

    def _bucket(self, key: str, quota: Quota) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(quota)
        elif bucket.configured != quota:
            bucket.configured = quota
        return bucket

    @staticmethod
    def _effective(bucket: _Bucket, limit: int) -> Quota:
        quota = bucket.quota
        if limit == quota.limit:
            return quota
        burst = None if quota.burst is None else min(quota.burst, limit)
        return attrs.evolve(quota, limit=limit, burst=burst)

    def _bind(self, bucket: _Bucket, loop: asyncio.AbstractEventLoop) -> None:
        # Bound lazily to whichever loop uses the key: pytest-asyncio makes a loop
        # per test, web apps make theirs late. Waiters and timers of an earlier
        # loop are dead, and so are its in-flight requests: their outcome will
        # never be reported, so count each as answered now (free one period later).
        if bucket.loop is loop:
            return
        if bucket.timer is not None:
            bucket.timer.cancel()
            bucket.timer = None
        bucket.interactive.clear()
        bucket.bulk.clear()
        # A learned limit is dated by the old loop's clock, which a new loop (virtual
        # time in tests) may not share: start afresh from the configured quota.
        bucket.learned = None
        now = self._clock()
        bucket.cooling.extend(_after(now, bucket.period) for _ in range(bucket.in_use))
        bucket.in_use = 0
        bucket.generation += 1
        bucket.loop = loop

    def _give_back(self, bucket: _Bucket, *, sent: bool, unanswered_for: float) -> None:
        bucket.in_use -= 1
        if sent:
            free_at = _after(self._clock(), bucket.period + unanswered_for)
            if bucket.cooling and free_at < bucket.cooling[-1]:
                bisect.insort(bucket.cooling, free_at)  # a longer hold came before: keep order
            else:
                bucket.cooling.append(free_at)
        self._drain(bucket)

    @staticmethod
    def _expire(bucket: _Bucket, now: float) -> None:
        cooling = bucket.cooling
        while cooling and cooling[0] <= now:
            cooling.popleft()

    @staticmethod
    def _room(bucket: _Bucket, now: float, interactive: bool) -> bool:
        """Whether a caller of this priority may take a slot now."""
        if now < bucket.paused_until:
            return False
        limit = bucket.limit(now)
        if not interactive:
            limit -= bucket.reserve(now, limit)
        return bucket.in_use + len(bucket.cooling) < limit

    def _drain(self, bucket: _Bucket) -> None:
        """Serve waiters while slots are free, in line order among those allowed one."""
        now = self._clock()
        self._expire(bucket, now)
        while True:
            first, bulk = bucket.heads()
            if first is None and bulk is None:
                break
            if bucket.off:
                for line in (bucket.interactive, bucket.bulk):
                    for waiter in line:
                        if not waiter.future.done():
                            waiter.future.set_result(False)
                    line.clear()
                break
            if first is not None and not self._room(bucket, now, True):
                break  # no slot for anyone
            if bulk is not None and (
                (first is None or bulk.order < first.order) and self._room(bucket, now, False)
            ):
                chosen = bulk
            elif first is not None:
                chosen = first
                if bulk is not None and bulk.order < first.order:
                    # A bulk call ahead in line, held back by the reserve: interactive
                    # calls fill the window. It takes one grant in AGED_SHARE.
                    bucket.passed += 1
                    if bucket.passed >= AGED_SHARE:
                        chosen = bulk
            else:
                break
            if chosen is bulk:
                bucket.passed = 0
            (bucket.interactive if chosen is first else bucket.bulk).popleft()
            bucket.in_use += 1
            chosen.future.set_result(True)
        self._schedule(bucket, now)

    def _ready_at(self, bucket: _Bucket, now: float, ahead: int, interactive: bool) -> float | None:
        """When a caller with ``ahead`` others before it can be served, from the cooling
        slots; ``None`` when that depends on slots still in flight (their release drains)."""
        limit = bucket.limit(now)
        spare = 0 if interactive else bucket.reserve(now, limit)
        when = self._cooling_time(bucket, ahead, limit - spare)
        if spare:
            # A bulk caller may also be served once interactive callers have gone quiet.
            full = self._cooling_time(bucket, ahead, limit)
            if full is not None:
                full = max(full, bucket.interactive_at + interactive_window(bucket.period))
                when = full if when is None else min(when, full)
        if when is None:
            return None
        return max(when, bucket.paused_until)

    @staticmethod
    def _cooling_time(bucket: _Bucket, ahead: int, limit: int) -> float | None:
        # Slots to wait for: cooling ones free in order; in-flight ones free only
        # when released.
        index = bucket.in_use + len(bucket.cooling) + ahead - limit
        if index < 0:
            return -math.inf
        if index < len(bucket.cooling):
            return bucket.cooling[index]
        return None

    def _schedule(self, bucket: _Bucket, now: float) -> None:
        """Arm one timer for the first moment a head of line may be served, if a clock can tell."""
        if bucket.timer is not None:
            bucket.timer.cancel()
            bucket.timer = None
        first, bulk = bucket.heads()
        if bucket.loop is None or (first is None and bulk is None):
            return
        times = []
        for head, interactive in ((first, True), (bulk, False)):
            if head is not None:
                when = self._ready_at(bucket, now, 0, interactive)
                if when is not None:
                    times.append(when)
        if bucket.learned is not None and bucket.learned.recover:
            # The learned limit grows back a step each quiet period.
            quiet = math.floor((now - bucket.learned.since) / bucket.period) + 1
            times.append(bucket.learned.since + quiet * bucket.period)
        if not times:
            return
        delay = max(0.0, min(times) - now)
        bucket.timer = self._later(bucket, delay, self._drain, bucket)

    def _expected_wait(self, bucket: _Bucket, waiter: _Waiter, now: float) -> float | None:
        """How long ``waiter`` will likely wait, from what is ahead of it and the cooling slots.

        Slots in flight are taken to free a period from now (a sent request's
        slot), the earliest that is likely, and each limit's worth of callers
        beyond those waits a period more (as the shared limiters count).
        """
        interactive = waiter.interactive

        def before(line: deque[_Waiter]) -> int:
            return sum(
                1
                for other in line
                if other is not waiter
                and not other.future.done()
                and (other.order, other.seq) < (waiter.order, waiter.seq)
            )

        ahead = before(bucket.interactive)
        bulk = before(bucket.bulk)
        if interactive and bulk:
            # Bulk waiters ahead take only the slots below the reserve.
            limit = bucket.limit(now)
            room = limit - bucket.reserve(now, limit) - bucket.in_use - len(bucket.cooling)
            bulk = min(bulk, max(0, room))
        ahead += bulk
        when = self._ready_at(bucket, now, ahead, interactive)
        if when is None:
            # The slot it needs is one in flight, or one that such a slot frees for a
            # caller further on: a period per limit's worth of callers past the cooling.
            limit = bucket.limit(now)
            beyond = bucket.in_use + ahead - limit  # >= 0: no cooling slot is left for it
            periods = 1 + max(0, beyond) // limit
            when = max(now + periods * bucket.period, bucket.paused_until)
        return max(0.0, when - now)

    def _give_up(self, bucket: _Bucket, waiter: _Waiter, max_wait: float) -> None:
        if waiter.future.done():
            return
        now = self._clock()
        expected = self._expected_wait(bucket, waiter, now)
        waiter.future.set_exception(WaitExceeded(max_wait, expected))
        self._drain(bucket)

    def _later(
        self, bucket: _Bucket, delay: float, callback: Callable[..., None], *args: Any
    ) -> asyncio.TimerHandle | asyncio.Task[None]:
        """Run ``callback(*args)`` after ``delay`` on the limiter's clock."""
        assert bucket.loop is not None
        if self._sleep is None:
            return bucket.loop.call_later(delay, callback, *args)
        return bucket.loop.create_task(self._wake(bucket, delay, self._sleep, callback, args))

    @staticmethod
    async def _wake(
        bucket: _Bucket,
        delay: float,
        sleep: Callable[[float], Awaitable[None]],
        callback: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        await sleep(delay)
        if bucket.timer is asyncio.current_task():
            bucket.timer = None  # _drain re-arms; it must not cancel this task
        callback(*args)


def _after(now: float, seconds: float) -> float:
    """``now + seconds``, rounded up: the slot is never free a rounding error early.

    In floating point ``(t + p) - t`` can come out just below ``p``; a provider
    that compares arrival times would then see two requests on one slot inside
    one window.
    """
    when = now + seconds
    while when - now < seconds:
        when = math.nextafter(when, math.inf)
    return when


def _check_reads_seconds(clock: Callable[[], float]) -> None:
    """A bare monotonic clock must be callable with no argument and give a number."""
    try:
        now = clock()
    except Exception:
        raise ConfigurationError(
            "clock must be callable with no argument (like time.monotonic)"
        ) from None
    if isinstance(now, bool) or not isinstance(now, (int, float)):
        raise ConfigurationError(f"clock() must return seconds, not a {type(now).__name__}")


_shared: LocalLimiter | None = None


def shared_limiter() -> LocalLimiter:
    """The process-wide limiter clients use when given none.

    A quota belongs to an account (or, for Polyv, a source IP), not to a client
    object, so every client of one account in this process shares its slots.
    """
    global _shared
    if _shared is None:
        _shared = LocalLimiter()
    return _shared
