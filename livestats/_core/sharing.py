"""How many consumers share one quota: priorities, deadlines, learned limits, runtime quotas.

The rules here are the same for every limiter (local, SQLite, Redis); each
implements them on its own state, and the Redis one in Lua, with these numbers.

**Priorities.** A caller asks with :class:`Priority` ``INTERACTIVE`` (a person
is waiting: single calls, by default) or ``BULK`` (a batch, an iterator, a
poller). Three rules, each needed:

- *Order*: waiters are served in the order of their arrival time, an
  interactive one counted :data:`HEAD_START` quota periods earlier than it
  arrived. So an interactive call goes before every bulk call that arrived less
  than three periods before it; once a bulk call has waited three periods,
  interactive calls that arrive after that go behind it.
- *Reserve*: while interactive calls use a key (one asked in the last
  :func:`interactive_window`), bulk calls leave :func:`reserve` slots (a tenth
  of the limit) of the window to them: a bulk call takes a slot only while fewer
  than ``limit - reserve`` are in flight or cooling. The order alone would not
  do: a batch that fills the window leaves no slot free until the window turns
  over, so an interactive call would wait up to a whole period behind it. With
  the reserve it waits for nothing while interactive use stays within a tenth of
  the quota. Without interactive use the batch has the whole quota.
- *Share*: so that bulk work is never starved, a bulk call ahead in line that
  the reserve holds back (interactive calls fill the window) takes one grant in
  :data:`AGED_SHARE`: with interactive calls saturating the quota, a batch still
  moves at a tenth of it.

**Deadlines.** ``max_wait`` bounds how long ``acquire`` waits, pauses included.
A limiter that can tell no slot comes in time raises :class:`WaitExceeded` at
once, with ``retry_after`` (its prediction); otherwise it waits up to
``max_wait`` and then raises it.

**Learned limits** (additive increase, multiplicative decrease, as TCP does;
boto3's adaptive retry mode does the like with CUBIC's growth). When the
provider refuses a call for rate although the limiter kept the quota, the quota
is wrong (the vendor lowered it, or someone else spends it): :func:`decreased`
cuts the effective limit to 70%, at most once a period (the refusals of one
window are one signal), and it grows back by :func:`recovery_step` for each
quota period without a refusal, never above the configured limit. A key whose
refusal blocks for minutes (Polyv) learns with ``recover=False``: it drops and
is never probed upward again.

**Runtime quotas.** ``set_quota(key, quota)`` replaces the quota every
``acquire`` of the key uses, whatever quota the caller passes, in every process
the limiter's state reaches, waiters already queued included; ``None`` turns
pacing off for the key. Setting a quota also forgets what was learned.
"""

from __future__ import annotations

import enum
import math

import attrs

from livestats._core.quota import Quota

__all__ = [
    "AGED_SHARE",
    "HEAD_START",
    "Learned",
    "Priority",
    "WaitExceeded",
    "decreased",
    "effective_limit",
    "interactive_window",
    "recovery_step",
    "reserve",
]


class Priority(enum.IntEnum):
    """Who waits for a quota slot: a person (``INTERACTIVE``) or a batch (``BULK``)."""

    #: Served first; the default of single calls.
    INTERACTIVE = 0
    #: Served after interactive calls, never starved; the default of ``*_many``,
    #: iterators and pollers.
    BULK = 1


class WaitExceeded(Exception):
    """Raised by ``acquire(..., max_wait=)``: no slot within ``max_wait``.

    ``retry_after`` is the limiter's prediction of the wait (``None`` when it cannot
    tell: the slots needed are in flight). The engine turns it into a
    :class:`~livestats.RateLimitedError`.
    """

    def __init__(self, max_wait: float, retry_after: float | None) -> None:
        told = "" if retry_after is None else f"; one is expected in {retry_after:.3f} s"
        super().__init__(f"no quota slot within max_wait={max_wait:g} s{told}")
        self.max_wait = max_wait
        self.retry_after = retry_after


#: Quota periods by which an interactive waiter counts as having arrived earlier.
HEAD_START = 3.0
#: A bulk waiter ahead in line but held back by the reserve takes one grant in this many.
AGED_SHARE = 10
#: The factor a refusal multiplies the effective limit by.
DECREASE = 0.7


def reserve(limit: int) -> int:
    """Slots bulk calls leave to interactive ones while those are active: a tenth."""
    return limit // 10


def interactive_window(period: float) -> float:
    """How long after an interactive call its key keeps the reserve: two periods, 60 s at least."""
    return max(2 * period, 60.0)


def recovery_step(limit: int) -> int:
    """Slots the effective limit grows back by per quiet period: 4% of the configured limit."""
    return max(1, math.ceil(limit * 0.04))


def decreased(current: int) -> int:
    """The effective limit after a refusal: 70% of ``current``, at least 1."""
    return max(1, math.floor(current * DECREASE))


@attrs.frozen
class Learned:
    """A key's learned limit: ``low`` slots from ``since`` (limiter time) on, then growing."""

    low: int
    since: float
    recover: bool = True


def effective_limit(configured: Quota, learned: Learned | None, now: float) -> int:
    """The limit in force at ``now``: what was learned, grown back, never above the configured."""
    if learned is None:
        return configured.limit
    if not learned.recover:
        return min(configured.limit, learned.low)
    quiet = max(0, math.floor((now - learned.since) / configured.period))
    return min(configured.limit, learned.low + quiet * recovery_step(configured.limit))
