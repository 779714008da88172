"""What a client reports as it works: typed, frozen events for metrics, logs and alerts.

Every client takes ``on_event=`` (a function, plain or ``async``; several with
:func:`chain`) and calls it with these events::

    WaitStarted       a call starts waiting for its quota slot
    SlotWaited        ... and stops: how long, pauses included, and whether it got one
    RequestSent       one HTTP attempt leaves
    RequestFinished   ... and ends: outcome, status, vendor code, latency
    CallFinished      one call ended (after its retries): outcome, attempts, duration
    RetryScheduled    an attempt failed and another follows after ``delay`` seconds
    Throttled         the vendor (or a gateway) refused for rate: the key's pause
    ClientPaused      the whole client sends nothing for ``seconds`` (a lockout, a block)
    QuotaAdapted      the effective limit of a quota key changed
    SweepLate         a poller's sweep cannot fit in its interval at the quota

Every ``WaitStarted`` is followed by its ``SlotWaited`` and every ``RequestSent``
by its ``RequestFinished`` (``outcome="CancelledError"`` for a cancelled one), so
gauges of waiting and in-flight calls built from them stay true. No event carries
a secret: only provider, operation, quota key, counts, codes and
times. ``outcome`` is ``"ok"`` or the error's class name (``"RateLimitedError"``),
a small fixed set, fit for a metric label.

A handler never breaks a call: an exception it raises is counted
(``client.event_failures``) and logged once; an ``async`` handler runs as a task
of its own, so a slow one holds nothing up. A plain handler runs inline,
so keep it quick (a metric update); hand slow work to a queue.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

import attrs

__all__ = [
    "CallFinished",
    "ClientPaused",
    "Event",
    "EventHandler",
    "EventSink",
    "QuotaAdapted",
    "RequestFinished",
    "RequestSent",
    "RetryScheduled",
    "SlotWaited",
    "SweepLate",
    "Throttled",
    "WaitStarted",
    "chain",
]

logger = logging.getLogger("livestats")


@attrs.frozen(kw_only=True)
class WaitStarted:
    """A call starts waiting for a slot of ``quota_key`` (ends with :class:`SlotWaited`)."""

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    quota_key: str


@attrs.frozen(kw_only=True)
class RequestSent:
    """An attempt leaves for the vendor (ends with :class:`RequestFinished`)."""

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    quota_key: str
    attempt: int


@attrs.frozen(kw_only=True)
class RequestFinished:
    """One HTTP attempt ended, answered or not."""

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    quota_key: str
    #: ``"ok"``, or the class name of the error the attempt ended in.
    outcome: str
    #: ``None`` when no answer came (connection refused, timeout).
    http_status: int | None
    vendor_code: int | str | None
    #: Seconds from send to the last byte (or to the failure).
    latency: float
    #: 1 for the first attempt of a call.
    attempt: int


@attrs.frozen(kw_only=True)
class CallFinished:
    """One call ended, after every attempt it made."""

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    quota_key: str
    outcome: str
    attempts: int
    #: Seconds from the call's start to its end, waits included.
    duration: float


@attrs.frozen(kw_only=True)
class SlotWaited:
    """A call stopped waiting for its slot after ``seconds`` (client and key pauses included).

    ``granted`` is False when the wait ended without a slot (cancelled, paused with
    ``wait_if_paused=False``, the limiter unavailable).
    """

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    quota_key: str
    seconds: float
    granted: bool = True


@attrs.frozen(kw_only=True)
class RetryScheduled:
    """Attempt ``attempt`` failed with ``error_type``; the next starts after ``delay`` seconds."""

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    attempt: int
    error_type: str
    delay: float


@attrs.frozen(kw_only=True)
class Throttled:
    """The vendor or a gateway refused for rate; the quota key pauses ``pause`` seconds.

    ``signal`` says what was seen: ``"HTTP 429"``, or the vendor's code.
    """

    provider: str
    operation: str
    #: Which call (numbered per client) the event belongs to: its attempts share it.
    call_id: int
    quota_key: str
    signal: str
    pause: float


@attrs.frozen(kw_only=True)
class ClientPaused:
    """The whole client sends nothing for ``seconds``; ``reason`` is the vendor code or signal."""

    provider: str
    seconds: float
    reason: str


@attrs.frozen(kw_only=True)
class QuotaAdapted:
    """The effective limit of ``quota_key`` is now ``limit`` (``configured`` is the ceiling)."""

    provider: str
    quota_key: str
    limit: int
    configured: int
    period: float


@attrs.frozen(kw_only=True)
class SweepLate:
    """A poller's sweep of ``items`` cannot fit in ``every`` seconds at the quota.

    ``needed_rate`` is the requests per second a sweep would need; ``quota_rate`` what
    the quota allows. The next sweep starts as soon as the last one ends.
    """

    provider: str
    operation: str
    items: int
    every: float
    needed_rate: float
    quota_rate: float


Event = (
    WaitStarted
    | RequestSent
    | RequestFinished
    | CallFinished
    | SlotWaited
    | RetryScheduled
    | Throttled
    | ClientPaused
    | QuotaAdapted
    | SweepLate
)
EventHandler = Callable[[Event], Awaitable[None] | None]


class EventSink:
    """Gives events to one handler without ever letting it break the caller.

    An exception from the handler is counted in :attr:`failures` and logged once;
    an ``async`` handler's coroutine runs as a task of its own (kept until done).
    """

    __slots__ = ("_handler", "_tasks", "failures")

    def __init__(self, handler: EventHandler) -> None:
        self._handler = handler
        self._tasks: set[asyncio.Future[None]] = set()
        self.failures = 0

    def __repr__(self) -> str:
        return f"<EventSink {getattr(self._handler, '__qualname__', self._handler)!r}>"

    def emit(self, event: Event) -> None:
        try:
            result = self._handler(event)
            if result is not None and inspect.isawaitable(result):
                task = asyncio.ensure_future(self._awaited(result))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:
            self._failed()

    async def _awaited(self, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            self._failed()

    def _failed(self) -> None:
        self.failures += 1
        if self.failures == 1:
            logger.warning(
                "livestats: the on_event handler %r raised; later failures are only counted",
                getattr(self._handler, "__qualname__", self._handler),
                exc_info=True,
            )


def chain(*handlers: EventHandler) -> EventHandler:
    """One handler that gives every event to each of ``handlers``, in order.

    Each is called even when one before it raised; the first exception is raised
    again afterwards, so the client counts the failure.
    """
    for handler in handlers:
        if isinstance(handler, type) or not callable(handler):
            from livestats.errors import ConfigurationError

            raise ConfigurationError(
                f"an event handler must be a function, not a {type(handler).__name__}"
            )
    sinks = tuple(EventSink(handler) for handler in handlers)

    def each(event: Event) -> None:
        failures = sum(sink.failures for sink in sinks)
        for sink in sinks:
            sink.emit(event)
        if sum(sink.failures for sink in sinks) > failures:
            raise RuntimeError("an event handler in the chain raised (logged once)")

    return each
