"""What a provider makes of an answer: a value, or a refusal that says what to do.

A provider classifies every answer without side effects. A :class:`Refusal`
carries the typed error to raise if nothing helps, and the actions the vendor's
answer asks for; the engine carries them out, in one place:

==================== ==========================================================
``retry``            a retry may succeed (transient fault, rate limit)
``retry_after``      wait at least this long first (the vendor said so)
``pause_operation``  hand out no slot of this operation's quota key for this
                     long (every client sharing the limiter stops too)
``pause_client``     send nothing at all from this client for this long
``renew_credentials`` make new credentials and retry once (an expired UserSig)
``clock_offset``     the vendor's clock minus ours: date requests by it from
                     now on and retry once (Polyv's 3-minute timestamp window)
``credentials_refused`` the credentials are refused and renewing cannot help:
                     send nothing more with them
==================== ==========================================================
"""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

from livestats.errors import LiveStatsError

__all__ = ["Outcome", "Refusal", "Value"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Value(Generic[T]):
    """A successful answer, structured, with the vendor's request id where it gave one."""

    value: T
    request_id: str | None = None


@attrs.frozen(kw_only=True)
class Refusal:
    """An answer that is not a value, and what the engine should do about it."""

    error: LiveStatsError
    retry: bool = False
    retry_after: float | None = None
    pause_operation: float | None = None
    pause_client: float | None = None
    renew_credentials: bool = False
    clock_offset: float | None = None
    credentials_refused: bool = False

    @classmethod
    def of(cls, error: LiveStatsError, **actions: object) -> Refusal:
        """The refusal an error implies by itself: retried when it is retryable."""
        return cls(
            error=error,
            retry=error.retryable,
            retry_after=error.retry_after,
            **actions,  # type: ignore[arg-type]
        )


#: What classifying an answer gives.
Outcome = Value[T] | Refusal
