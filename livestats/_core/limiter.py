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
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from livestats._core.clock import Clock
from livestats._core.quota import Quota
from livestats._core.sharing import Priority
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


class _Bucket:
    """The slots of one quota key. Mutated only from the event loop, so no locks."""

    __slots__ = (
        "cooling",
        "fail_fast",
        "generation",
        "in_use",
        "limit",
        "loop",
        "paused_until",
        "period",
        "timer",
        "waiters",
    )

    def __init__(self, quota: Quota) -> None:
        self.limit = quota.limit
        self.period = quota.period
        self.in_use = 0
        # Moments (limiter clock) at which released slots become free, sorted:
        # "now + period" appends in order; a longer hold is inserted in place.
        self.cooling: deque[float] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()
        # Waiters that asked to fail rather than wait out a pause.
        self.fail_fast: set[asyncio.Future[None]] = set()
        self.paused_until = 0.0
        self.timer: asyncio.TimerHandle | asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.generation = 0


class _LocalPermit:
    __slots__ = ("_bucket", "_generation", "_key", "_limiter", "_released")

    def __init__(self, limiter: LocalLimiter, key: str, bucket: _Bucket) -> None:
        self._limiter = limiter
        self._key = key
        self._bucket = bucket
        self._generation = bucket.generation
        self._released = False

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        self.release_nowait(sent=sent, unanswered_for=unanswered_for)

    def release_nowait(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        if self._released:
            return
        self._released = True
        if self._generation == self._bucket.generation:
            self._limiter._give_back(self._bucket, sent=sent, unanswered_for=unanswered_for)

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<Permit {self._key!r} {state}>"


class LocalLimiter:
    """The in-process limiter, and the default: exact, first come first served.

    One instance can serve many clients; keys keep their quotas apart. Clients of
    one account in one process should share an instance (by default each client
    has its own). Not thread-safe: use it from one event loop at a time.

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
            f"{key!r}: {b.limit}/{b.period:g}s, {b.in_use} in flight, "
            f"{sum(1 for t in b.cooling if t > now)} cooling, "
            f"{sum(1 for w in b.waiters if not w.done())} waiting"
            for key, b in self._buckets.items()
        )
        return f"<LocalLimiter {{{keys}}}>"

    async def acquire(self, key: str, quota: Quota, *, wait_if_paused: bool = True) -> _LocalPermit:
        bucket = self._bucket(key, quota)
        self._bind(bucket, asyncio.get_running_loop())
        self._expire(bucket)
        if not wait_if_paused and (left := bucket.paused_until - self._clock()) > 0:
            raise Paused(left)
        if not self._has_waiters(bucket) and self._can_grant(bucket):
            bucket.in_use += 1
            return _LocalPermit(self, key, bucket)
        assert bucket.loop is not None
        waiter: asyncio.Future[None] = bucket.loop.create_future()
        bucket.waiters.append(waiter)
        if not wait_if_paused:
            bucket.fail_fast.add(waiter)
        self._schedule(bucket)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted, then cancelled before it could run: the slot was never used.
                bucket.in_use -= 1
            self._drain(bucket)
            raise
        finally:
            bucket.fail_fast.discard(waiter)
        return _LocalPermit(self, key, bucket)

    async def pause(self, key: str, seconds: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return  # nothing was ever sent under this key
        bucket.paused_until = max(bucket.paused_until, self._clock() + seconds)
        left = bucket.paused_until - self._clock()
        for waiter in list(bucket.fail_fast):
            if not waiter.done():
                waiter.set_exception(Paused(left))
        if bucket.loop is not None and bucket.waiters:
            self._schedule(bucket)

    # -- bookkeeping --------------------------------------------------------------

    def _bucket(self, key: str, quota: Quota) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(quota)
        elif (bucket.limit, bucket.period) != (quota.limit, quota.period):
            bucket.limit, bucket.period = quota.limit, quota.period
        return bucket

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
        bucket.waiters.clear()
        bucket.fail_fast.clear()
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

    def _expire(self, bucket: _Bucket) -> None:
        now = self._clock()
        cooling = bucket.cooling
        while cooling and cooling[0] <= now:
            cooling.popleft()

    @staticmethod
    def _has_waiters(bucket: _Bucket) -> bool:
        waiters = bucket.waiters
        while waiters and waiters[0].done():
            waiters.popleft()  # cancelled waiters hold nothing and block nobody
        return bool(waiters)

    def _can_grant(self, bucket: _Bucket) -> bool:
        if self._clock() < bucket.paused_until:
            return False
        return bucket.in_use + len(bucket.cooling) < bucket.limit

    def _drain(self, bucket: _Bucket) -> None:
        """Serve waiters in arrival order while slots are free, then arm the timer."""
        self._expire(bucket)
        while self._has_waiters(bucket) and self._can_grant(bucket):
            bucket.in_use += 1
            bucket.waiters.popleft().set_result(None)
        self._schedule(bucket)

    def _schedule(self, bucket: _Bucket) -> None:
        """Arm one timer for the moment the first waiter can be served, if a clock can tell."""
        if bucket.timer is not None:
            bucket.timer.cancel()
            bucket.timer = None
        if not self._has_waiters(bucket) or bucket.loop is None:
            return
        now = self._clock()
        # Slots to wait for: cooling ones free in order; in-flight ones free only
        # when released, and a release drains the bucket itself.
        index = bucket.in_use + len(bucket.cooling) - bucket.limit
        when = bucket.cooling[index] if 0 <= index < len(bucket.cooling) else now
        if index >= len(bucket.cooling) and now >= bucket.paused_until:
            return
        when = max(when, bucket.paused_until)
        delay = max(0.0, when - now)
        if self._sleep is None:
            bucket.timer = bucket.loop.call_later(delay, self._drain, bucket)
        else:
            bucket.timer = bucket.loop.create_task(self._wake(bucket, delay, self._sleep))

    async def _wake(
        self, bucket: _Bucket, delay: float, sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        await sleep(delay)
        bucket.timer = None  # _drain re-arms; it must not cancel this task
        self._drain(bucket)


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
