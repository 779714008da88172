"""Running one call: quota slot, signing, sending, decoding and retrying, in that order.

A provider describes a call as a :class:`Call`: which quota it spends, how to
sign it (called afresh on every attempt, inside the attempt's quota slot, so a
signed request is never replayed) and how to turn the answer into a value or a
:class:`~livestats.errors.LiveStatsError`. The engine never looks inside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Generic, TypeVar

import attrs

from livestats._core.clock import Clock
from livestats._core.limiter import Limiter, Paused, Permit
from livestats._core.quota import Quota
from livestats._core.retry import RetryPolicy
from livestats._core.transport import HttpRequest, HttpResponse, Transport
from livestats.errors import CredentialsExpiredError, LiveStatsError, RateLimitedError

__all__ = ["Call", "Engine"]

T = TypeVar("T")
logger = logging.getLogger("livestats")


@attrs.frozen(kw_only=True)
class Call(Generic[T]):
    """One provider call, described without I/O."""

    operation: str
    #: The limiter key of the quota this call spends, e.g. ``tencent:1400000000:get_room_stats``.
    quota_key: str
    #: ``None`` turns pacing off for this call.
    quota: Quota | None
    #: Builds the signed request; called once per attempt.
    sign: Callable[[], HttpRequest]
    #: Classifies and structures the answer; raises a LiveStatsError for an error answer.
    decode: Callable[[HttpResponse], T]
    #: While the quota key is paused, wait (``True``) or fail at once with a
    #: RateLimitedError that says until when (``False``).
    wait_if_paused: bool = True


class Engine:
    """Runs calls for one client: paces them, retries them, and can pause the whole client.

    ``renew_credentials`` is called when the provider says the signature expired;
    it returns ``True`` if it made new credentials (the call is then retried once,
    outside the retry budget) and ``False`` if it cannot.
    """

    __slots__ = (
        "_clock",
        "_limiter",
        "_paused_until",
        "_provider",
        "_renew",
        "_retry",
        "transport",
    )

    def __init__(
        self,
        *,
        provider: str,
        transport: Transport,
        limiter: Limiter,
        retry: RetryPolicy,
        clock: Clock,
        renew_credentials: Callable[[], bool] | None = None,
    ) -> None:
        self._provider = provider
        self.transport = transport
        self._limiter = limiter
        self._retry = retry
        self._clock = clock
        self._renew = renew_credentials
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds``: calls wait until then before taking a slot."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    async def run(self, call: Call[T]) -> T:
        started = self._clock.monotonic()
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            try:
                return await self._attempt(call)
            except CredentialsExpiredError:
                if renewed or self._renew is None or not self._renew():
                    raise
                renewed = True
                attempt -= 1  # a renewal is not a failed attempt
                logger.info("%s.%s: signature expired, renewed it", self._provider, call.operation)
            except LiveStatsError as err:
                wait = await self._plan_retry(call, err, attempt, started)
                if wait is None:
                    raise
                logger.debug(
                    "%s.%s attempt %d failed (%s), retrying in %.3f s",
                    self._provider,
                    call.operation,
                    attempt,
                    type(err).__name__,
                    wait,
                )
                if wait > 0:
                    await self._clock.sleep(wait)

    async def _attempt(self, call: Call[T]) -> T:
        permit = await self._take_slot(call)
        sent = answered = False
        try:
            request = call.sign()
            sent = True
            response = await self.transport.send(request, operation=call.operation)
            answered = True
        finally:
            if permit is not None:
                # Sent but unanswered (cancelled, timed out, connection lost): the request
                # may still be on its way, so its slot is held one attempt timeout longer.
                late = self.transport.timeout if sent and not answered else 0.0
                await permit.release(sent=sent, unanswered_for=late)
        return call.decode(response)

    async def _take_slot(self, call: Call[T]) -> Permit | None:
        """Wait out a client pause, then for a quota slot; a pause that began meanwhile wins.

        A call with ``wait_if_paused=False`` fails instead of waiting out either pause.
        """
        while True:
            await self._wait_while_paused(call)
            if call.quota is None:
                return None
            try:
                permit = await self._limiter.acquire(
                    call.quota_key, call.quota, wait_if_paused=call.wait_if_paused
                )
            except Paused as paused:
                raise self._paused_error(call, paused.seconds) from None
            if self._paused_until <= self._clock.monotonic():
                return permit
            await permit.release(sent=False)

    async def _wait_while_paused(self, call: Call[T]) -> None:
        while (left := self._paused_until - self._clock.monotonic()) > 0:
            if not call.wait_if_paused:
                raise self._paused_error(call, left)
            await self._clock.sleep(left)

    def _paused_error(self, call: Call[T], seconds: float) -> RateLimitedError:
        until = datetime.fromtimestamp(self._clock.wall() + seconds, tz=timezone.utc)
        return RateLimitedError(
            f"sending is paused until {until:%Y-%m-%d %H:%M:%S} UTC "
            "after the provider refused calls for exceeding its quota",
            provider=self._provider,
            operation=call.operation,
            retryable=False,
            retry_after=seconds,
            until=until,
        )

    async def _plan_retry(
        self, call: Call[T], err: LiveStatsError, attempt: int, started: float
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise."""
        if isinstance(err, RateLimitedError) and call.quota is not None:
            # The provider counted more than we sent, or its window is not ours:
            # let its window empty before this operation sends again.
            await self._limiter.pause(call.quota_key, err.retry_after or call.quota.period)
        if not err.retryable or attempt >= self._retry.attempts:
            return None
        paused = self._paused_until > self._clock.monotonic()
        if isinstance(err, RateLimitedError) and (call.quota is not None or paused):
            wait = 0.0  # the pause (limiter's or client's) does the waiting, for every caller
        else:
            wait = self._retry.backoff(attempt, err.retry_after)
        if self._clock.monotonic() + wait - started > self._retry.timeout:
            return None
        return wait
