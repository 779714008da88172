"""``OpenTelemetryCollector``: the events of every client as OpenTelemetry metrics and spans.

Needs the ``otel`` extra (``pip install 'livestats[otel]'``; the API only: the
application brings the SDK and its exporters)::

    collector = OpenTelemetryCollector()  # the global meter and tracer providers
    tencent = livestats.TencentClient(..., on_event=collector)
    collector.watch(tencent)  # the quotas in force, as livestats.effective_quota

Metrics, from the meter ``livestats`` (attributes in braces; ``p, o`` are
``livestats.provider`` and ``livestats.operation``, ``k`` is ``livestats.quota_key``)::

    http.client.request.duration  histogram      s   {http.response.status_code, error.type, p, o}
    livestats.requests            counter            {p, o, livestats.outcome}
    livestats.slot_wait.duration  histogram      s   {p, o}
    livestats.call.duration       histogram      s   {p, o}
    livestats.calls               counter            {p, o, livestats.outcome}
    livestats.retries             counter            {p, o, error.type}
    livestats.throttled           counter            {p, o}
    livestats.in_flight           updowncounter      {p, k}
    livestats.waiting             updowncounter      {p, k}
    livestats.effective_quota     gauge (async)      {p, k}  requests per second
    livestats.client.paused       counter        s   {p}  (overlapping pauses count once)
    livestats.client.pauses       counter            {p, livestats.reason}
    livestats.sweeps.late         counter            {p, o}

``http.client.request.duration`` follows the HTTP client semantic conventions
as far as the events allow: one measurement per attempt, the convention's
bucket advice, ``http.response.status_code`` when an answer came, ``error.type``
(the error's class name) when the attempt did not end ``ok``. The events carry
neither the method nor the host, so ``http.request.method`` and
``server.address`` are left out rather than guessed.

Spans: one per call, ``livestats.<provider>.<operation>`` (kind CLIENT, a child
of whatever span is current where the call was awaited), made when the call
ends, starting ``duration`` before that. Each attempt is an event
``livestats.attempt`` on it, at the time the attempt ended, with its number,
outcome, status, vendor code and latency. A call that failed has status ERROR
and ``error.type``; a cancelled one only ``error.type = "CancelledError"``
(cancelling is not the vendor failing).

Attempts wait in a buffer until their call ends: at most ``max_buffered_calls``
calls (the oldest is dropped first, counted in :attr:`dropped_calls`) and
:data:`MAX_ATTEMPT_EVENTS` attempts a call, so a call that never ends cannot
grow memory. A call is recognised by its provider, its ``call_id`` and the task
that runs it: ``call_id`` is numbered per client, and two clients sharing the
collector both have a call 1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
except ImportError as exc:
    raise ImportError(
        "livestats.metrics.otel needs opentelemetry-api: pip install 'livestats[otel]'",
        name=exc.name,
    ) from exc

from livestats import __version__
from livestats.errors import ConfigurationError
from livestats.events import (
    CallFinished,
    ClientPaused,
    Event,
    QuotaAdapted,
    RequestFinished,
    RequestSent,
    RetryScheduled,
    SlotWaited,
    SweepLate,
    Throttled,
    WaitStarted,
)
from livestats.metrics import WAIT_BUCKETS, Watchable, _configured_rates, _now, _PauseTotals

__all__ = ["MAX_ATTEMPT_EVENTS", "OpenTelemetryCollector"]

#: The semantic conventions' bucket advice for ``http.client.request.duration`` (seconds).
HTTP_CLIENT_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
#: Attempts of one call kept as span events; later ones only count in ``livestats.attempts``.
MAX_ATTEMPT_EVENTS = 64

PROVIDER = "livestats.provider"
OPERATION = "livestats.operation"
QUOTA_KEY = "livestats.quota_key"
OUTCOME = "livestats.outcome"
ERROR_TYPE = "error.type"
STATUS_CODE = "http.response.status_code"

Attributes = Mapping[str, Any]
#: Attempts of one call: each RequestFinished with the clock reading when it came.
_Attempts = list[tuple[RequestFinished, float]]


def _task_id() -> int:
    """The running task's identity (0 outside a loop): one task runs a call, start to end."""
    try:
        return id(asyncio.current_task())
    except RuntimeError:
        return 0


class OpenTelemetryCollector:
    """Turns the events of any number of clients into OpenTelemetry metrics and spans.

    Give it as ``on_event=``. ``meter_provider`` and ``tracer_provider`` default
    to the global ones (``opentelemetry.metrics.get_meter("livestats", version)``
    and the like), so an application that sets its providers later still gets
    everything.
    """

    __slots__ = (
        "_attributes",
        "_call_duration",
        "_calls",
        "_handlers",
        "_http_duration",
        "_in_flight",
        "_late",
        "_lock",
        "_max_calls",
        "_pause_totals",
        "_paused",
        "_pauses",
        "_pending",
        "_quotas",
        "_requests",
        "_retries",
        "_slot_wait",
        "_throttled",
        "_tracer",
        "_waiting",
        "dropped_calls",
    )

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        *,
        max_buffered_calls: int = 10_000,
    ) -> None:
        if (
            isinstance(max_buffered_calls, bool)
            or not isinstance(max_buffered_calls, int)
            or max_buffered_calls < 1
        ):
            raise ConfigurationError(
                f"max_buffered_calls must be an int of at least 1, not {max_buffered_calls!r}"
            )
        meter = metrics.get_meter("livestats", __version__, meter_provider=meter_provider)
        self._tracer = trace.get_tracer("livestats", __version__, tracer_provider=tracer_provider)
        self._http_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=HTTP_CLIENT_BUCKETS,
        )
        self._requests = meter.create_counter(
            "livestats.requests",
            unit="{request}",
            description="HTTP attempts that ended, by outcome: ok or the error's class name.",
        )
        self._slot_wait = meter.create_histogram(
            "livestats.slot_wait.duration",
            unit="s",
            description="Seconds an attempt waited for its quota slot, pauses included.",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS,
        )
        self._call_duration = meter.create_histogram(
            "livestats.call.duration",
            unit="s",
            description="Seconds from a call's start to its end, waits and retries included.",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS,
        )
        self._calls = meter.create_counter(
            "livestats.calls", unit="{call}", description="Calls that ended, by outcome."
        )
        self._retries = meter.create_counter(
            "livestats.retries",
            unit="{retry}",
            description="Retries scheduled, by the error the failed attempt ended in.",
        )
        self._throttled = meter.create_counter(
            "livestats.throttled",
            unit="{refusal}",
            description="Refusals for rate (HTTP 429 or the vendor's rate-limit code).",
        )
        self._in_flight = meter.create_up_down_counter(
            "livestats.in_flight",
            unit="{request}",
            description="Attempts sent and not yet ended, per quota key.",
        )
        self._waiting = meter.create_up_down_counter(
            "livestats.waiting",
            unit="{call}",
            description="Calls waiting for a quota slot, per quota key.",
        )
        meter.create_observable_gauge(
            "livestats.effective_quota",
            callbacks=[self._observe_quotas],
            unit="{request}/s",
            description="Requests per second the quota key allows now.",
        )
        self._paused = meter.create_counter(
            "livestats.client.paused",
            unit="s",
            description="Seconds a client of the provider was told to send nothing "
            "(a lockout, a block); overlapping pauses count once.",
        )
        self._pauses = meter.create_counter(
            "livestats.client.pauses",
            unit="{pause}",
            description="Times a client was paused, by the vendor code or signal that paused it.",
        )
        self._late = meter.create_counter(
            "livestats.sweeps.late",
            unit="{sweep}",
            description="Poller sweeps that could not fit in their interval at the quota.",
        )
        #: Attribute mappings by their values, made once: the label sets are few.
        self._attributes: dict[tuple[Any, ...], Attributes] = {}
        #: The effective quota of each (provider, quota key), requests per second.
        self._quotas: dict[tuple[str, str], float] = {}
        self._pause_totals = _PauseTotals()
        self._pending: dict[tuple[int, str, int], _Attempts] = {}
        self._max_calls = max_buffered_calls
        self._lock = threading.Lock()  # clients on other threads may share the collector
        #: Calls whose attempts were dropped from the buffer to keep it in bounds.
        self.dropped_calls = 0
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            WaitStarted: self._wait_started,
            SlotWaited: self._slot_waited,
            RequestSent: self._request_sent,
            RequestFinished: self._request_finished,
            CallFinished: self._call_finished,
            RetryScheduled: self._retry_scheduled,
            Throttled: self._throttled_event,
            ClientPaused: self._client_paused,
            QuotaAdapted: self._quota_adapted,
            SweepLate: self._sweep_late,
        }

    def __repr__(self) -> str:
        return (
            f"<OpenTelemetryCollector {len(self._pending)} calls buffered, "
            f"{self.dropped_calls} dropped>"
        )

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:  # an event added later is ignored, not an error
            handler(event)

    @property
    def buffered_calls(self) -> int:
        """Calls whose attempts wait in the buffer for the call to end."""
        return len(self._pending)

    def watch(self, client: Watchable) -> None:
        """Show ``client``'s quotas as ``livestats.effective_quota`` (its starting values).

        Operations with pacing off (quota ``None``) have no quota to show.
        ``QuotaAdapted`` events move the values from there.
        """
        for quota_key, rate in _configured_rates(client):
            self._quotas[client.provider, quota_key] = rate

    # -- attributes ----------------------------------------------------------------------

    def _attrs(self, *values: Any) -> Attributes:
        """The mapping for ``values`` (pairs of name and value, flattened), made once."""
        found = self._attributes.get(values)
        if found is None:
            pairs = zip(values[::2], values[1::2], strict=True)
            found = self._attributes[values] = {k: v for k, v in pairs if v is not None}
        return found

    def _observe_quotas(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(rate, self._attrs(PROVIDER, provider, QUOTA_KEY, key))
            for (provider, key), rate in list(self._quotas.items())
        ]

    # -- one method per event ------------------------------------------------------------

    def _wait_started(self, e: WaitStarted) -> None:
        self._waiting.add(1, self._attrs(PROVIDER, e.provider, QUOTA_KEY, e.quota_key))

    def _slot_waited(self, e: SlotWaited) -> None:
        self._waiting.add(-1, self._attrs(PROVIDER, e.provider, QUOTA_KEY, e.quota_key))
        self._slot_wait.record(e.seconds, self._attrs(PROVIDER, e.provider, OPERATION, e.operation))

    def _request_sent(self, e: RequestSent) -> None:
        self._in_flight.add(1, self._attrs(PROVIDER, e.provider, QUOTA_KEY, e.quota_key))

    def _request_finished(self, e: RequestFinished) -> None:
        self._in_flight.add(-1, self._attrs(PROVIDER, e.provider, QUOTA_KEY, e.quota_key))
        failed = None if e.outcome == "ok" else e.outcome
        self._http_duration.record(
            e.latency,
            self._attrs(
                STATUS_CODE,
                e.http_status,
                ERROR_TYPE,
                failed,
                PROVIDER,
                e.provider,
                OPERATION,
                e.operation,
            ),
        )
        self._requests.add(
            1, self._attrs(PROVIDER, e.provider, OPERATION, e.operation, OUTCOME, e.outcome)
        )
        self._buffer(e)

    def _call_finished(self, e: CallFinished) -> None:
        self._calls.add(
            1, self._attrs(PROVIDER, e.provider, OPERATION, e.operation, OUTCOME, e.outcome)
        )
        self._call_duration.record(
            e.duration, self._attrs(PROVIDER, e.provider, OPERATION, e.operation)
        )
        with self._lock:
            attempts = self._pending.pop((_task_id(), e.provider, e.call_id), [])
        self._span(e, attempts)

    def _retry_scheduled(self, e: RetryScheduled) -> None:
        self._retries.add(
            1, self._attrs(PROVIDER, e.provider, OPERATION, e.operation, ERROR_TYPE, e.error_type)
        )

    def _throttled_event(self, e: Throttled) -> None:
        self._throttled.add(1, self._attrs(PROVIDER, e.provider, OPERATION, e.operation))

    def _client_paused(self, e: ClientPaused) -> None:
        self._pauses.add(1, self._attrs(PROVIDER, e.provider, "livestats.reason", e.reason))
        self._paused.add(
            self._pause_totals.add(e.provider, e.seconds), self._attrs(PROVIDER, e.provider)
        )

    def _quota_adapted(self, e: QuotaAdapted) -> None:
        if e.period > 0:
            self._quotas[e.provider, e.quota_key] = e.limit / e.period

    def _sweep_late(self, e: SweepLate) -> None:
        self._late.add(1, self._attrs(PROVIDER, e.provider, OPERATION, e.operation))

    # -- spans ---------------------------------------------------------------------------

    def _buffer(self, e: RequestFinished) -> None:
        """Keep the attempt until its call ends, within the buffer's bounds."""
        key = (_task_id(), e.provider, e.call_id)
        with self._lock:
            attempts = self._pending.get(key)
            if attempts is None:
                if len(self._pending) >= self._max_calls:
                    del self._pending[next(iter(self._pending))]  # the oldest call
                    self.dropped_calls += 1
                attempts = self._pending[key] = []
            if len(attempts) < MAX_ATTEMPT_EVENTS:
                attempts.append((e, _now()))

    def _span(self, e: CallFinished, attempts: _Attempts) -> None:
        """The call's span, started ``duration`` ago, with an event per attempt."""
        end = time.time_ns()
        now = _now()
        start = end - round(e.duration * 1e9)
        attributes: dict[str, Any] = {
            PROVIDER: e.provider,
            OPERATION: e.operation,
            QUOTA_KEY: e.quota_key,
            OUTCOME: e.outcome,
            "livestats.call_id": e.call_id,
            "livestats.attempts": e.attempts,
        }
        if e.outcome != "ok":
            attributes[ERROR_TYPE] = e.outcome
        span = self._tracer.start_span(
            f"livestats.{e.provider}.{e.operation}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if span.is_recording():
            for attempt, at in attempts:
                span.add_event(
                    "livestats.attempt",
                    _attempt_attributes(attempt),
                    timestamp=max(start, end - round((now - at) * 1e9)),
                )
            if e.outcome not in ("ok", "CancelledError"):
                span.set_status(Status(StatusCode.ERROR, e.outcome))
        span.end(end_time=end)


def _attempt_attributes(e: RequestFinished) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "livestats.attempt": e.attempt,
        OUTCOME: e.outcome,
        "livestats.latency_s": e.latency,
    }
    if e.http_status is not None:
        attributes[STATUS_CODE] = e.http_status
    if e.vendor_code is not None:
        attributes["livestats.vendor_code"] = str(e.vendor_code)
    if e.outcome != "ok":
        attributes[ERROR_TYPE] = e.outcome
    return attributes
