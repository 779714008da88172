"""Retry policy: bounded by attempts AND total time, with jittered exponential backoff.

Only failures marked ``retryable`` are retried (``LiveStatsError.retryable``);
the provider decides which of its answers are transient. Every attempt goes back
through the limiter for its own quota slot and is signed afresh.
"""

from __future__ import annotations

import random

import attrs

from livestats._core.validate import MAX_SECONDS, shown
from livestats.errors import ConfigurationError

__all__ = ["RetryPolicy"]


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    try:
        ok = (
            not isinstance(value, bool)
            and isinstance(value, (int, float))
            and 0 <= float(value) <= MAX_SECONDS
        )
    except OverflowError:
        ok = False
    if not ok:
        raise ConfigurationError(
            f"RetryPolicy.{attribute.name} must be a number of seconds from 0 to "
            f"{MAX_SECONDS:g}, not {shown(value)}"
        )


def _rng(instance: object, attribute: attrs.Attribute[random.Random], value: object) -> None:
    if not isinstance(value, random.Random):
        raise ConfigurationError(f"RetryPolicy.rng must be a random.Random, not {shown(value)}")


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    # At most 2**63 - 1: ``timeout`` ends the retries long before, and a larger int
    # could be past what repr() of the policy can show.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ConfigurationError(
            f"RetryPolicy.{attribute.name} must be an int from 1 to 2**63 - 1, not {shown(value)}"
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how long a call is retried.

    - ``attempts``: tries in all, the first included (1 = never retry).
    - ``timeout``: seconds from the first attempt after which no new attempt starts.
    - ``initial_wait``, ``max_wait``: the backoff before retry *n* is drawn from
      ``[b/2, b]`` with ``b = min(max_wait, initial_wait * 2**(n-1))`` ("equal
      jitter": never zero, so a fleet of clients spreads out but does not hammer).
    - ``max_retry_after``: the longest provider-requested wait that is honoured.

    ``RetryPolicy.instant()`` keeps the attempt count but waits zero, for tests.
    """

    attempts: int = attrs.field(default=4, validator=_at_least_one)
    timeout: float = attrs.field(default=30.0, validator=_non_negative)
    initial_wait: float = attrs.field(default=0.2, validator=_non_negative)
    max_wait: float = attrs.field(default=5.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    rng: random.Random = attrs.field(factory=random.Random, repr=False, eq=False, validator=_rng)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(attempts=1)

    @classmethod
    def instant(cls, attempts: int = 4) -> RetryPolicy:
        """Retries without waiting: the switch tests use to stay fast."""
        return cls(attempts=attempts, initial_wait=0.0, max_wait=0.0, max_retry_after=0.0)

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        ceiling: float = min(self.max_wait, self.initial_wait * 2.0 ** (retry - 1))
        wait = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait
