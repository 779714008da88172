"""``PrometheusCollector``: the events of every client as Prometheus metrics.

Needs the ``prometheus`` extra (``pip install 'livestats[prometheus]'``)::

    collector = PrometheusCollector()  # its own CollectorRegistry, as collector.registry
    tencent = livestats.TencentClient(..., on_event=collector)
    collector.watch(tencent)  # the quotas in force, as livestats_effective_quota
    prometheus_client.start_http_server(9108, registry=collector.registry)

One collector serves any number of clients; ``PrometheusCollector(prometheus_client.REGISTRY)``
registers its metrics globally instead (once: a second collector on the same
registry is refused by prometheus-client as a duplicate). Every figure comes
from an event, as the event arrives (labels in braces; ``outcome`` is ``ok`` or
the error's class name)::

    livestats_requests_total{provider,operation,outcome}     counter    RequestFinished
    livestats_request_duration_seconds{provider,operation}   histogram  RequestFinished.latency
    livestats_slot_wait_seconds{provider,operation}          histogram  SlotWaited.seconds
    livestats_call_duration_seconds{provider,operation}      histogram  CallFinished.duration
    livestats_calls_total{provider,operation,outcome}        counter    CallFinished
    livestats_retries_total{provider,operation,error_type}   counter    RetryScheduled
    livestats_throttled_total{provider,operation}            counter    Throttled
    livestats_in_flight{provider,quota_key}                  gauge      RequestSent/Finished
    livestats_waiting{provider,quota_key}                    gauge      WaitStarted/SlotWaited
    livestats_effective_quota{provider,quota_key}            gauge      watch(), QuotaAdapted
    livestats_client_paused_seconds_total{provider}          counter    ClientPaused
    livestats_client_pauses_total{provider,reason}           counter    ClientPaused
    livestats_sweeps_late_total{provider,operation}          counter    SweepLate

The gauges go up on the first event of a pair and down on the second (every
``WaitStarted`` has its ``SlotWaited``, every ``RequestSent`` its
``RequestFinished``, cancelled or not). ``livestats_effective_quota`` is in
requests per second. Pauses that overlap count once in
``livestats_client_paused_seconds_total`` (a lockout answered to ten calls in
flight is one 60 s pause, not ten), added when the pause begins.

Bucket boundaries: :data:`livestats.metrics.REQUEST_BUCKETS` for requests,
:data:`livestats.metrics.WAIT_BUCKETS` for slot waits and calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:
    raise ImportError(
        "livestats.metrics.prometheus needs prometheus-client: pip install 'livestats[prometheus]'",
        name=exc.name,
    ) from exc

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
from livestats.metrics import (
    REQUEST_BUCKETS,
    WAIT_BUCKETS,
    Watchable,
    _configured_rates,
    _PauseTotals,
)

__all__ = ["PrometheusCollector"]


def _total(gauge: Gauge) -> float:
    """The sum of a gauge's series (for a repr)."""
    return sum(sample.value for family in gauge.collect() for sample in family.samples)


class PrometheusCollector:
    """Turns the events of any number of clients into Prometheus metrics.

    Give it as ``on_event=`` (the collector is a function of the event). With
    ``registry=None`` it makes its own :class:`prometheus_client.CollectorRegistry`,
    exposed as :attr:`registry`; pass ``prometheus_client.REGISTRY`` to register
    globally. A plain handler runs inline in the call, so each event costs one
    dictionary lookup and its metric updates, nothing more.
    """

    __slots__ = (
        "_call_seconds",
        "_calls",
        "_ended",
        "_finished",
        "_handlers",
        "_in_flight",
        "_late",
        "_pause_totals",
        "_paused",
        "_pauses",
        "_quota",
        "_request_seconds",
        "_requests",
        "_retries",
        "_sent",
        "_slot_wait",
        "_started",
        "_throttled",
        "_waited",
        "_waiting",
        "registry",
    )

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        #: Where the metrics are registered (scrape or push this one).
        self.registry = CollectorRegistry() if registry is None else registry
        on = self.registry
        op = ("provider", "operation")
        key = ("provider", "quota_key")
        self._requests = Counter(
            "livestats_requests_total",
            "HTTP attempts that ended, by outcome: ok or the error's class name.",
            (*op, "outcome"),
            registry=on,
        )
        self._request_seconds = Histogram(
            "livestats_request_duration_seconds",
            "Seconds from sending an attempt to its last byte (or its failure).",
            op,
            registry=on,
            buckets=REQUEST_BUCKETS,
        )
        self._slot_wait = Histogram(
            "livestats_slot_wait_seconds",
            "Seconds an attempt waited for its quota slot, pauses included.",
            op,
            registry=on,
            buckets=WAIT_BUCKETS,
        )
        self._call_seconds = Histogram(
            "livestats_call_duration_seconds",
            "Seconds from a call's start to its end, waits and retries included.",
            op,
            registry=on,
            buckets=WAIT_BUCKETS,
        )
        self._calls = Counter(
            "livestats_calls_total",
            "Calls that ended (after their retries), by outcome.",
            (*op, "outcome"),
            registry=on,
        )
        self._retries = Counter(
            "livestats_retries_total",
            "Retries scheduled, by the error the failed attempt ended in.",
            (*op, "error_type"),
            registry=on,
        )
        self._throttled = Counter(
            "livestats_throttled_total",
            "Refusals for rate (HTTP 429 or the vendor's rate-limit code).",
            op,
            registry=on,
        )
        self._in_flight = Gauge(
            "livestats_in_flight",
            "Attempts sent and not yet ended, per quota key.",
            key,
            registry=on,
        )
        self._waiting = Gauge(
            "livestats_waiting",
            "Calls waiting for a quota slot, per quota key.",
            key,
            registry=on,
        )
        self._quota = Gauge(
            "livestats_effective_quota",
            "Requests per second the quota key allows now.",
            key,
            registry=on,
        )
        self._paused = Counter(
            "livestats_client_paused_seconds_total",
            "Seconds a client of the provider was told to send nothing "
            "(a lockout, a block); overlapping pauses count once.",
            ("provider",),
            registry=on,
        )
        self._pauses = Counter(
            "livestats_client_pauses_total",
            "Times a client was paused, by the vendor code or signal that paused it.",
            ("provider", "reason"),
            registry=on,
        )
        self._late = Counter(
            "livestats_sweeps_late_total",
            "Poller sweeps that could not fit in their interval at the quota.",
            op,
            registry=on,
        )
        self._pause_totals = _PauseTotals()
        # The series each frequent event updates, by the label values it carries.
        # ``metric.labels(...)`` checks its arguments and takes a lock on every call;
        # one dictionary lookup per event is a fraction of that. The label sets are few
        # (providers x operations x quota keys x outcomes), so these stay small.
        self._started: dict[tuple[str, str], Gauge] = {}
        self._waited: dict[tuple[str, str, str], tuple[Gauge, Histogram]] = {}
        self._sent: dict[tuple[str, str], Gauge] = {}
        self._finished: dict[tuple[str, str, str, str], tuple[Gauge, Counter, Histogram]] = {}
        self._ended: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
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
            f"<PrometheusCollector in flight {_total(self._in_flight):g}, "
            f"waiting {_total(self._waiting):g}>"
        )

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:  # an event added later is ignored, not an error
            handler(event)

    def watch(self, client: Watchable) -> None:
        """Show ``client``'s quotas as ``livestats_effective_quota`` (its starting values).

        Operations with pacing off (quota ``None``) have no quota to show.
        ``QuotaAdapted`` events move the values from there.
        """
        for quota_key, rate in _configured_rates(client):
            self._quota.labels(client.provider, quota_key).set(rate)

    # -- the frequent events: a few per call -----------------------------------------------

    def _wait_started(self, e: WaitStarted) -> None:
        key = (e.provider, e.quota_key)
        try:
            waiting = self._started[key]
        except KeyError:
            waiting = self._started[key] = self._waiting.labels(*key)
        waiting.inc()

    def _slot_waited(self, e: SlotWaited) -> None:
        key = (e.provider, e.operation, e.quota_key)
        try:
            waiting, waits = self._waited[key]
        except KeyError:
            waiting, waits = self._waited[key] = (
                self._waiting.labels(e.provider, e.quota_key),
                self._slot_wait.labels(e.provider, e.operation),
            )
        waiting.dec()
        waits.observe(e.seconds)

    def _request_sent(self, e: RequestSent) -> None:
        key = (e.provider, e.quota_key)
        try:
            in_flight = self._sent[key]
        except KeyError:
            in_flight = self._sent[key] = self._in_flight.labels(*key)
        in_flight.inc()

    def _request_finished(self, e: RequestFinished) -> None:
        key = (e.provider, e.operation, e.quota_key, e.outcome)
        try:
            in_flight, requests, seconds = self._finished[key]
        except KeyError:
            in_flight, requests, seconds = self._finished[key] = (
                self._in_flight.labels(e.provider, e.quota_key),
                self._requests.labels(e.provider, e.operation, e.outcome),
                self._request_seconds.labels(e.provider, e.operation),
            )
        in_flight.dec()
        requests.inc()
        seconds.observe(e.latency)

    def _call_finished(self, e: CallFinished) -> None:
        key = (e.provider, e.operation, e.outcome)
        try:
            calls, seconds = self._ended[key]
        except KeyError:
            calls, seconds = self._ended[key] = (
                self._calls.labels(*key),
                self._call_seconds.labels(e.provider, e.operation),
            )
        calls.inc()
        seconds.observe(e.duration)

    # -- the rare ones -----------------------------------------------------------------------

    def _retry_scheduled(self, e: RetryScheduled) -> None:
        self._retries.labels(e.provider, e.operation, e.error_type).inc()

    def _throttled_event(self, e: Throttled) -> None:
        self._throttled.labels(e.provider, e.operation).inc()

    def _client_paused(self, e: ClientPaused) -> None:
        self._pauses.labels(e.provider, e.reason).inc()
        # inc(0) for a pause inside another still makes the series, so it reads 0.
        self._paused.labels(e.provider).inc(self._pause_totals.add(e.provider, e.seconds))

    def _quota_adapted(self, e: QuotaAdapted) -> None:
        if e.period > 0:
            self._quota.labels(e.provider, e.quota_key).set(e.limit / e.period)

    def _sweep_late(self, e: SweepLate) -> None:
        self._late.labels(e.provider, e.operation).inc()
