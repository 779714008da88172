"""Running one call: the engine does, in one place, everything the vendor's answer asks for.

A provider describes a call as a :class:`Call`, without I/O: which quota it
spends, how to sign it (afresh on every attempt, inside the attempt's quota slot,
so a signed request is never replayed) and how to classify an answer into a
:class:`~livestats._core.outcome.Value` or a
:class:`~livestats._core.outcome.Refusal`. The engine runs each attempt as

    client pause -> credentials gate -> quota slot -> sign -> send -> classify

and then carries out what a refusal says: pause the quota key or the whole
client, renew the credentials, correct the clock, retry (bounded by the retry
policy's attempts and total time) or raise. Provider-neutral facts are applied
here too, for every provider and any gateway in front of it: HTTP 429 is a
rate limit and its ``Retry-After`` is honoured (up to the policy's cap) as the
pause of that quota key; a 3xx is a :class:`~livestats.RedirectError`.

The credentials gate: until an answer has shown that the vendor accepts the
client's credentials, one attempt at a time goes out, and the others wait for
its answer. Credentials refused for good (a wrong key) then cost one request,
not one per waiting call: Tencent locks an account for 60 s after repeated bad
signatures. From then on the client sends nothing more with those credentials;
every call fails at once with an error that ``dooms_batch``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

import attrs
from aiolimiter import AsyncLimiter

from livestats._core.answers import retry_after_seconds
from livestats._core.clock import Clock
from livestats._core.http import HttpRequest, HttpResponse, Transport
from livestats._core.limiter import Limiter, Paused, Permit
from livestats._core.outcome import Outcome, Refusal, Value
from livestats._core.quota import Quota
from livestats._core.redact import Redactor
from livestats._core.retry import RetryPolicy
from livestats._core.sharing import Priority, WaitExceeded
from livestats.errors import (
    AuthenticationError,
    ClientClosedError,
    LiveStatsError,
    RateLimitedError,
    RedirectError,
    ResponseDecodingError,
)
from livestats.events import (
    CallFinished,
    ClientPaused,
    EventHandler,
    EventSink,
    QuotaAdapted,
    RequestFinished,
    RequestSent,
    RetryScheduled,
    SlotWaited,
    Throttled,
    WaitStarted,
)

__all__ = ["INTERACTIVE", "Call", "Engine", "Signing", "Wait"]

T = TypeVar("T")
logger = logging.getLogger("livestats")


@attrs.frozen
class Signing:
    """What a signature may depend on: the vendor's time, as well as the client knows it."""

    #: Epoch seconds: the local wall clock corrected by the offset the vendor taught us.
    now: float


@attrs.frozen
class Wait:
    """How one call waits for its quota slot: its priority and its bound (``None``: none).

    ``max_wait`` is the seconds an attempt may wait for its slot, pauses included.
    """

    priority: Priority
    max_wait: float | None


#: The common case, made once: an interactive call with no bound.
INTERACTIVE = Wait(Priority.INTERACTIVE, None)


@attrs.frozen(kw_only=True)
class Call(Generic[T]):
    """One provider call, described without I/O."""

    operation: str
    #: The limiter key of the quota this call spends, e.g. ``tencent:1400000000:get_room_stats``.
    quota_key: str
    #: ``None`` turns pacing off for this call.
    quota: Quota | None
    #: Builds the signed request; called once per attempt.
    sign: Callable[[Signing], HttpRequest]
    #: Classifies and structures an answer; never raises, never acts.
    classify: Callable[[HttpResponse], Outcome[T]]
    #: While the quota key or the client is paused, wait (``True``) or fail at once
    #: with a RateLimitedError that says until when (``False``).
    wait_if_paused: bool = True
    #: How it waits for its slot: who waits, and for how long at most.
    wait: Wait = attrs.field(factory=lambda: INTERACTIVE)


class Engine:
    """Runs calls for one client: paces, signs, sends, classifies, acts, retries.

    ``renew_credentials`` makes new credentials when a refusal asks for it and
    returns whether it could (a UserSig given by the caller cannot be renewed).
    ``secrets`` are the client's own secrets, scrubbed from every error text.
    """

    __slots__ = (
        "_clock",
        "_clock_offset",
        "_closed",
        "_known",
        "_learn",
        "_limiter",
        "_max_bytes",
        "_paused_until",
        "_probe",
        "_probe_up",
        "_provider",
        "_ranks",
        "_read_quota",
        "_redactor",
        "_refused",
        "_renew",
        "_retry",
        "_verified",
        "sink",
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
        max_response_bytes: int,
        secrets: Iterable[str] = (),
        renew_credentials: Callable[[], bool] | None = None,
        on_event: EventHandler | None = None,
        probe_up: bool = True,
    ) -> None:
        self._provider = provider
        #: Whether a limit lowered after a refusal grows back by itself. ``False`` for
        #: a provider whose refusal blocks for minutes: its quota is never probed upward.
        self._probe_up = probe_up
        #: Where events go; None (no handler) costs one comparison per step.
        self.sink = EventSink(on_event) if on_event is not None else None

        self.transport = transport
        self._limiter = limiter
        self._retry = retry
        self._clock = clock
        self._max_bytes = max_response_bytes
        self._redactor = Redactor(secrets)
        self._renew = renew_credentials
        self._paused_until = 0.0
        #: Seconds to add to the local wall clock to read the vendor's.
        self._clock_offset = 0.0
        #: Whether an answer has shown that the vendor accepts the credentials.
        self._verified = False
        #: Resolved when the attempt that is testing the credentials has its outcome.
        self._probe: asyncio.Future[None] | None = None
        #: The refusal that ended the credentials' use, once there is one.
        self._refused: LiveStatsError | None = None
        self._closed = False
        #: The effective quota last reported per key (QuotaAdapted on a change).
        self._known: dict[str, Quota | None] = {}
        #: Whether the limiter takes ``priority`` and ``max_wait`` (a limiter of the
        #: interface before them still works, first come first served).
        self._ranks = _takes(limiter.acquire, "priority")
        #: The limiter's learned limits, if it has them (looked up once, not per call).
        self._learn: Callable[..., Awaitable[Quota | None]] | None = getattr(
            limiter, "refused", None
        )
        self._read_quota: Callable[[str, Quota], Quota | None] | None = getattr(
            limiter, "effective_quota", None
        )

    def __repr__(self) -> str:
        state = (
            "credentials refused"
            if self._refused is not None
            else "credentials accepted"
            if self._verified
            else "credentials untested"
        )
        return f"<Engine {self._provider} {state}, clock offset {self._clock_offset:+.3f} s>"

    @property
    def limiter(self) -> Limiter:
        return self._limiter

    @property
    def clock_offset(self) -> float:
        """Seconds added to the local wall clock to date requests (learned from the vendor)."""
        return self._clock_offset

    def close(self) -> None:
        """Refuse every later call with ClientClosedError (the transport is closed apart)."""
        self._closed = True

    def signing(self) -> Signing:
        return Signing(now=self._clock.wall() + self._clock_offset)

    async def run(self, call: Call[T]) -> T:
        started = self._clock.monotonic()
        if self.sink is None:
            return await self._run(call, started, _Trace(0))
        trace = _Trace(next(_call_ids))
        outcome = "ok"
        try:
            return await self._run(call, started, trace)
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self.sink.emit(
                CallFinished(
                    provider=self._provider,
                    operation=call.operation,
                    quota_key=call.quota_key,
                    call_id=trace.call_id,
                    outcome=outcome,
                    attempts=trace.tries,
                    duration=self._clock.monotonic() - started,
                )
            )

    async def _run(self, call: Call[T], started: float, trace: _Trace) -> T:
        attempt = 0
        renewed = corrected = False
        while True:
            attempt += 1
            outcome = await self._attempt(call, trace)
            if isinstance(outcome, Value):
                return outcome.value
            refusal = outcome
            key_paused = await self._act(call, refusal, trace)
            if refusal.renew_credentials and not renewed:
                renewed = True
                if self._renew is not None and self._renew():
                    attempt -= 1  # a renewal is not a failed attempt
                    logger.info(
                        "%s.%s: credentials expired, renewed", self._provider, call.operation
                    )
                    continue
                # Nothing can renew them: they are refused for good.
                self._refuse(refusal.error)
            if refusal.clock_offset is not None and not corrected:
                corrected = True
                self._clock_offset = refusal.clock_offset
                attempt -= 1
                logger.info(
                    "%s.%s: the vendor's clock is %+.3f s off ours; dating requests by it",
                    self._provider,
                    call.operation,
                    refusal.clock_offset,
                )
                continue
            wait = self._plan_retry(call, refusal, attempt, started, key_paused)
            if wait is None:
                raise self._final(call, refusal.error)
            logger.debug(
                "%s.%s attempt %d failed (%s), retrying in %.3f s",
                self._provider,
                call.operation,
                attempt,
                type(refusal.error).__name__,
                wait,
            )
            if self.sink is not None:
                self.sink.emit(
                    RetryScheduled(
                        provider=self._provider,
                        operation=call.operation,
                        call_id=trace.call_id,
                        attempt=trace.tries,
                        error_type=type(refusal.error).__name__,
                        delay=wait,
                    )
                )
            if wait > 0:
                await self._clock.sleep(wait)

    # -- one attempt ---------------------------------------------------------------------

    async def _attempt(self, call: Call[T], trace: _Trace) -> Outcome[T]:
        """Slot, credentials gate, then the exchange.

        The gate comes after the slot, so the attempt that tests the credentials
        never waits for a slot behind calls that wait for it.
        """
        if self._closed:
            raise ClientClosedError(
                "the client is closed", provider=self._provider, operation=call.operation
            )
        while True:
            if self._refused is not None:
                raise self._refused_error(call)
            permit = await self._take_slot(call, trace)
            probe: asyncio.Future[None] | None = None
            outcome: Outcome[T] | None = None
            try:
                try:
                    probe = await self._credentials_gate(call)
                except BaseException:
                    if permit is not None:
                        await permit.release(sent=False)
                    raise
                if self._paused():
                    # The client was paused while this call waited at the gate (the
                    # attempt it waited for met a lockout or a block): send nothing now.
                    if permit is not None:
                        await permit.release(sent=False)
                    continue
                outcome = await self._exchange(call, permit, trace)
                return outcome
            finally:
                if probe is not None:
                    self._end_probe(probe, outcome)

    async def _exchange(self, call: Call[T], permit: Permit | None, trace: _Trace) -> Outcome[T]:
        """Sign, send, release the slot: the answer classified, or a refusal for a failure."""
        sent = answered = False
        request: HttpRequest | None = None
        sent_at = self._clock.monotonic() if self.sink is not None else 0.0
        try:
            request = call.sign(self.signing())
            sent = True
            trace.tries += 1
            if self.sink is not None:
                self.sink.emit(
                    RequestSent(
                        provider=self._provider,
                        operation=call.operation,
                        call_id=trace.call_id,
                        quota_key=call.quota_key,
                        attempt=trace.tries,
                    )
                )
            response = await self.transport.send(
                request, operation=call.operation, max_bytes=self._max_bytes
            )
            answered = True
        except LiveStatsError as err:
            # A transport failure, an answer over the size limit, a closed client.
            sent = sent and getattr(err, "request_sent", True)
            answered = err.http_status is not None
            secrets = request.secret_values() if request is not None else ()
            refusal = Refusal.of(self._redactor.error(err, secrets))
            if self.sink is not None and sent:
                latency = self._clock.monotonic() - sent_at
                self._finished(call, refusal, err.http_status, latency, trace)
            return refusal
        except BaseException as exc:  # cancelled, or a transport's own bug
            if self.sink is not None and sent:  # every RequestSent has its RequestFinished
                latency = self._clock.monotonic() - sent_at
                self._finished(call, type(exc).__name__, None, latency, trace)
            raise
        finally:
            if permit is not None:
                # Sent but unanswered (cancelled, timed out, connection lost): the request
                # may still be on its way, so its slot is held one attempt timeout longer.
                late = self.transport.timeout if sent and not answered else 0.0
                await permit.release(sent=sent, unanswered_for=late)
        outcome = self._classify(call, response)
        if isinstance(outcome, Refusal):
            # The request's own secrets are gathered only when an error may echo them.
            scrubbed = self._redactor.error(outcome.error, request.secret_values())
            outcome = attrs.evolve(outcome, error=scrubbed)
        if self.sink is not None:
            self._finished(call, outcome, response.status, response.elapsed, trace)
        return outcome

    def _finished(
        self,
        call: Call[T],
        outcome: Outcome[T] | str,
        status: int | None,
        latency: float,
        trace: _Trace,
    ) -> None:
        """Report an attempt's end; ``outcome`` a string: the exception that ended it."""
        assert self.sink is not None
        error = outcome.error if isinstance(outcome, Refusal) else None
        if isinstance(outcome, str):
            label = outcome
        else:
            label = "ok" if error is None else type(error).__name__
        self.sink.emit(
            RequestFinished(
                provider=self._provider,
                operation=call.operation,
                call_id=trace.call_id,
                quota_key=call.quota_key,
                outcome=label,
                http_status=status,
                vendor_code=None if error is None else error.vendor_code,
                latency=latency,
                attempt=trace.tries,
            )
        )

    def _end_probe(self, probe: asyncio.Future[None], outcome: Outcome[T] | None) -> None:
        if outcome is not None and _proves_credentials(outcome):
            self._verified = True
        if self._probe is probe:
            self._probe = None
        if not probe.done():
            probe.set_result(None)

    def _classify(self, call: Call[T], response: HttpResponse) -> Outcome[T]:
        """The provider's reading of the answer, with the provider-neutral facts applied."""
        context: dict[str, Any] = {"operation": call.operation, "http_status": response.status}
        if 300 <= response.status < 400:
            location = response.header("Location")
            return Refusal(
                error=RedirectError(
                    f"HTTP {response.status}: a redirect{f' to {location}' if location else ''}"
                    " was not followed (livestats follows no redirect)",
                    **context,
                )
            )
        try:
            outcome = call.classify(response)
        except LiveStatsError as err:  # a provider should return a Refusal; tolerate a raise
            outcome = Refusal.of(err)
        except Exception as exc:  # a decoder bug must not escape as a stray exception
            outcome = Refusal(
                error=ResponseDecodingError(
                    f"the answer could not be read ({type(exc).__name__})", **context
                )
            )
        if response.status == 429 and not (
            isinstance(outcome, Refusal) and isinstance(outcome.error, RateLimitedError)
        ):
            # Whatever the body says (a gateway's page, even something that reads as a
            # value), HTTP 429 means "too many requests".
            said = outcome.error if isinstance(outcome, Refusal) else None
            outcome = Refusal(
                error=RateLimitedError(
                    "HTTP 429: too many requests",
                    vendor_code=said.vendor_code if said else None,
                    vendor_message=said.vendor_message if said else None,
                    request_id=said.request_id if said else None,
                    **context,
                ),
                retry=True,
            )
        if isinstance(outcome, Refusal) and isinstance(outcome.error, RateLimitedError):
            asked = retry_after_seconds(response, now=self._clock.wall())
            if asked is not None:
                seconds = min(asked, self._retry.max_retry_after)
                outcome = attrs.evolve(
                    outcome,
                    error=outcome.error._evolve(retry_after=seconds),
                    retry_after=seconds,
                    pause_operation=seconds,
                )
        return outcome

    # -- acting on a refusal -------------------------------------------------------------

    async def _act(self, call: Call[T], refusal: Refusal, trace: _Trace) -> bool:
        """Carry out what the refusal asks; whether the quota key is now paused."""
        error = refusal.error
        key_paused = False
        if refusal.pause_client is not None:
            already = self._paused_until > self._clock.monotonic()
            self.pause(refusal.pause_client)
            if self.sink is not None and not already:  # one event per pause, not per call
                reason = error.vendor_code if error.vendor_code is not None else type(error)
                self.sink.emit(
                    ClientPaused(
                        provider=self._provider,
                        seconds=refusal.pause_client,
                        reason=getattr(reason, "__name__", str(reason)),
                    )
                )
        if isinstance(error, RateLimitedError):
            seconds = 0.0
            if call.quota is not None:
                seconds = await self._rate_refused(call, refusal)
                key_paused = seconds > 0
            if self.sink is not None:
                code = error.vendor_code
                self.sink.emit(
                    Throttled(
                        provider=self._provider,
                        operation=call.operation,
                        call_id=trace.call_id,
                        quota_key=call.quota_key,
                        signal=f"HTTP {error.http_status}" if code is None else str(code),
                        pause=seconds,
                    )
                )
        elif refusal.pause_operation is not None and call.quota is not None:
            await self._limiter.pause(call.quota_key, refusal.pause_operation)
            key_paused = True
        if refusal.credentials_refused:
            self._refuse(refusal.error)
        return key_paused

    async def _rate_refused(self, call: Call[T], refusal: Refusal) -> float:
        """The provider refused for rate although the quota was kept: learn, or pause.

        What the vendor asked for (a ``Retry-After``, a block's length) is a pause
        of the quota key. Besides, the key's effective limit is lowered (see
        :mod:`livestats._core.sharing`), and that is all the backing off a refusal
        with no length needs: the slots already taken make the next calls wait
        until the window has room at the lower limit. A limiter that cannot learn
        pauses the key one period instead. Returns the pause, in seconds.
        """
        assert call.quota is not None
        asked = next(
            (s for s in (refusal.pause_operation, refusal.retry_after) if s is not None), None
        )
        if self._learn is not None:
            adapted = await self._learn(call.quota_key, call.quota, recover=self._probe_up)
            if adapted is not None:
                logger.info(
                    "%s: refused for rate at %s; the effective quota is now %s",
                    call.quota_key,
                    call.quota,
                    adapted,
                )
                self._known[call.quota_key] = adapted
                if self.sink is not None:
                    self._adapted(call, adapted)
        elif asked is None:
            asked = call.quota.period
        if asked is not None and asked > 0:
            await self._limiter.pause(call.quota_key, asked)
            return asked
        return 0.0

    def _adapted(self, call: Call[T], quota: Quota | None) -> None:
        assert self.sink is not None
        assert call.quota is not None
        configured = call.quota.limit
        self.sink.emit(
            QuotaAdapted(
                provider=self._provider,
                quota_key=call.quota_key,
                limit=configured if quota is None else quota.limit,
                configured=configured,
                period=call.quota.period if quota is None else quota.period,
            )
        )

    def _paused(self) -> bool:
        """Whether the client is paused now (no clock read until it has ever been)."""
        return bool(self._paused_until) and self._paused_until > self._clock.monotonic()

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds``: calls wait until then before taking a slot."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def _refuse(self, error: LiveStatsError) -> None:
        if self._refused is None:
            self._refused = error
            logger.warning(
                "%s: the credentials were refused (%s); this client sends nothing more with them",
                self._provider,
                error.vendor_code if error.vendor_code is not None else type(error).__name__,
            )

    def _plan_retry(
        self, call: Call[T], refusal: Refusal, attempt: int, started: float, key_paused: bool
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up and raise.

        After a rate refusal that paused the quota key or the client, the pause
        does the waiting, for every caller; one that lowered the learned limit
        instead waits the policy's backoff (the lower limit paces the key).
        """
        if not refusal.retry or self._refused is not None or attempt >= self._retry.attempts:
            return None
        paused = self._paused_until > self._clock.monotonic()
        if isinstance(refusal.error, RateLimitedError) and (key_paused or paused):
            wait = 0.0
        else:
            wait = self._retry.backoff(attempt, refusal.retry_after)
        if self._clock.monotonic() + wait - started > self._retry.timeout:
            return None
        return wait

    def _final(self, call: Call[T], error: LiveStatsError) -> LiveStatsError:
        """The error to raise: with provider and operation, fatal if it ended the credentials."""
        changes: dict[str, object] = {}
        if error.provider is None:
            changes["provider"] = self._provider
        if error.operation is None:
            changes["operation"] = call.operation
        if self._refused is error and not error.dooms_batch:
            changes["dooms_batch"] = True
        if (
            isinstance(error, RateLimitedError)
            and error.until is None
            and error.retry_after is not None
        ):
            changes["until"] = datetime.fromtimestamp(
                self._clock.wall() + error.retry_after, tz=timezone.utc
            )
        return error._evolve(**changes) if changes else error

    # -- gates before the slot -----------------------------------------------------------

    async def _credentials_gate(self, call: Call[T]) -> asyncio.Future[None] | None:
        """Wait while another attempt tests the credentials; the future if this one does."""
        while True:
            if self._refused is not None:
                raise self._refused_error(call)
            if self._verified:
                return None
            probe = self._probe
            loop = asyncio.get_running_loop()
            if probe is None or probe.done() or probe.get_loop() is not loop:
                self._probe = loop.create_future()
                return self._probe
            await asyncio.wait([probe])

    def _refused_error(self, call: Call[T]) -> LiveStatsError:
        first = self._refused
        assert first is not None
        cls = type(first) if isinstance(first, AuthenticationError) else AuthenticationError
        return cls(
            "the vendor refused this client's credentials earlier; nothing more is sent with them"
            " (fix the credentials and make a new client)",
            provider=self._provider,
            operation=call.operation,
            vendor_code=first.vendor_code,
            vendor_message=first.vendor_message,
            http_status=first.http_status,
            dooms_batch=True,
        )

    async def _take_slot(self, call: Call[T], trace: _Trace) -> Permit | None:
        """Wait out a client pause, then for a quota slot; a pause that began meanwhile wins.

        A call with ``wait_if_paused=False`` fails instead of waiting out either pause.
        """
        sink = self.sink
        if sink is None:
            return await self._wait_for_slot(call)
        provider, operation, key, call_id = (
            self._provider,
            call.operation,
            call.quota_key,
            trace.call_id,
        )
        sink.emit(
            WaitStarted(provider=provider, operation=operation, quota_key=key, call_id=call_id)
        )
        asked = self._clock.monotonic()
        granted = False
        try:
            permit = await self._wait_for_slot(call)
            granted = True
            return permit
        finally:  # every WaitStarted has its SlotWaited: a gauge of waiters stays true
            sink.emit(
                SlotWaited(
                    provider=provider,
                    operation=operation,
                    quota_key=key,
                    call_id=call_id,
                    seconds=self._clock.monotonic() - asked,
                    granted=granted,
                )
            )

    async def _wait_for_slot(self, call: Call[T]) -> Permit | None:
        wait = call.wait
        bound = wait.max_wait
        deadline = None if bound is None else self._clock.monotonic() + bound
        while True:
            if self._paused():
                await self._wait_while_paused(call, deadline)
            quota = call.quota
            if quota is None:
                return None
            if quota.burst is not None:
                await self._paced(call, quota, deadline)
            left = None if deadline is None else max(0.0, deadline - self._clock.monotonic())
            try:
                if wait is INTERACTIVE:
                    permit = await self._limiter.acquire(
                        call.quota_key, quota, wait_if_paused=call.wait_if_paused
                    )
                elif not self._ranks:
                    # A limiter of the older interface: no priorities, no deadline of its own.
                    permit = await asyncio.wait_for(
                        self._limiter.acquire(
                            call.quota_key, quota, wait_if_paused=call.wait_if_paused
                        ),
                        left,
                    )
                else:
                    permit = await self._limiter.acquire(
                        call.quota_key,
                        quota,
                        wait_if_paused=call.wait_if_paused,
                        priority=wait.priority,
                        max_wait=left,
                    )
            except Paused as paused:
                raise self._paused_error(call, paused.seconds) from None
            except WaitExceeded as late:
                raise self._late_error(call, late.retry_after) from None
            except asyncio.TimeoutError:
                raise self._late_error(call, None) from None
            if self.sink is not None:
                self._check_adapted(call)
            if not self._paused():
                return permit
            await permit.release(sent=False)

    async def _paced(self, call: Call[T], quota: Quota, deadline: float | None) -> None:
        """Wait for the smoothing leaky bucket of ``quota.burst`` (one per key and loop)."""
        pacer = _pacer(call.quota_key, self.effective_quota(call.quota_key, quota) or quota)
        if deadline is None:
            await pacer.acquire()
            return
        try:
            await asyncio.wait_for(pacer.acquire(), max(0.0, deadline - self._clock.monotonic()))
        except asyncio.TimeoutError:
            raise self._late_error(call, None) from None

    def effective_quota(self, key: str, quota: Quota) -> Quota | None:
        """The quota ``key`` is paced by now (lowered by learning, or set at run time;
        ``None``: not paced), as the limiter knows it; ``quota`` for a limiter that
        cannot tell."""
        if self._read_quota is None:
            return quota
        effective: Quota | None = self._read_quota(key, quota)
        return effective

    def _check_adapted(self, call: Call[T]) -> None:
        """Report a change of the key's effective quota (a learned limit growing back)."""
        assert call.quota is not None
        if self._read_quota is None:
            return
        now = self.effective_quota(call.quota_key, call.quota)
        known = self._known.get(call.quota_key, call.quota)
        if now != known:
            self._known[call.quota_key] = now
            if now is not None and known is not None and now.limit != known.limit:
                self._adapted(call, now)

    async def _wait_while_paused(self, call: Call[T], deadline: float | None = None) -> None:
        while (left := self._paused_until - self._clock.monotonic()) > 0:
            if not call.wait_if_paused:
                raise self._paused_error(call, left)
            if deadline is not None and self._paused_until > deadline:
                raise self._late_error(call, left)
            await self._clock.sleep(left)

    def _late_error(self, call: Call[T], retry_after: float | None) -> RateLimitedError:
        wait = "" if retry_after is None else f" (one is expected in {retry_after:.3f} s)"
        until = (
            None
            if retry_after is None
            else datetime.fromtimestamp(self._clock.wall() + retry_after, tz=timezone.utc)
        )
        return RateLimitedError(
            f"no quota slot within max_wait={call.wait.max_wait:g} s{wait}; nothing was sent",
            provider=self._provider,
            operation=call.operation,
            retryable=False,
            retry_after=retry_after,
            until=until,
        )

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


#: The smoothing leaky buckets, per event loop and quota key (with the quota they pace).
_pacers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[Quota, AsyncLimiter]]
] = weakref.WeakKeyDictionary()


def _pacer(key: str, quota: Quota) -> AsyncLimiter:
    """The leaky bucket that smooths ``key``: ``quota.burst`` at once, then the quota's rate.

    One per key and event loop, shared by every client of the key in the process
    (``aiolimiter`` binds to a loop). A changed effective quota gets a new bucket.
    """
    loop = asyncio.get_running_loop()
    pacers = _pacers.get(loop)
    if pacers is None:
        pacers = _pacers[loop] = {}
    entry = pacers.get(key)
    if entry is not None and entry[0] == quota:
        return entry[1]
    burst = quota.burst or quota.limit
    pacer = AsyncLimiter(burst, burst * quota.period / quota.limit)
    pacers[key] = (quota, pacer)
    return pacer


#: Numbers every call of the process in its events, so clients sharing a handler differ.
_call_ids = itertools.count(1)


class _Trace:
    """What the events of one call share: its number and the attempts it has sent."""

    __slots__ = ("call_id", "tries")

    def __init__(self, call_id: int) -> None:
        self.call_id = call_id
        self.tries = 0


def _takes(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return True
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _proves_credentials(outcome: Outcome[T]) -> bool:
    """Whether an answer shows the vendor accepted the credentials.

    A value does, and so does a final business refusal (an unknown room, a channel
    that is not live): the vendor checks credentials before anything else. A
    transient fault, a rate limit or an expired signature proves nothing.
    """
    if isinstance(outcome, Value):
        return True
    error = outcome.error
    return not (
        outcome.retry
        or outcome.credentials_refused
        or outcome.renew_credentials
        or outcome.clock_offset is not None
        or isinstance(error, AuthenticationError)
        or error.http_status is None
        or isinstance(error, RateLimitedError)
    )
