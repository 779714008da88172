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

The figures are plain numbers, kept by label values as the events arrive (a
histogram's observation is a bisection into its bounds and two additions); the
metric families are built from them when the registry is collected, by one
custom collector registered in ``collector.registry``. So an event costs a
dictionary lookup and a few additions, and the work of building samples moves
to the scrape. The exposition is what ``Counter``, ``Gauge`` and
``Histogram`` of prometheus-client would give for the same events: the same
families in the same order, series in the order they first appeared, the
``*_created`` samples (times the series appeared; left out after
``prometheus_client.disable_created_metrics()``), gauges that stay at 0 rather
than disappear. One thing differs: prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) does not see these figures, as for any custom
collector; serve ``collector.registry`` from the process the clients run in.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client import metrics as _client_metrics
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
    from prometheus_client.utils import floatToGoString
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

_Labels = tuple[str, ...]
_INF = float("inf")
#: How prometheus-client writes a bucket's bound in ``le`` ("0.005", "1.0", "+Inf").
_le: Callable[[float], str] = floatToGoString


def _created_shown() -> bool:
    """Whether prometheus-client shows ``*_created`` samples (``disable_created_metrics()``)."""
    return bool(getattr(_client_metrics, "_use_created", True))


# -- a series of each kind: plain numbers, changed only under the collector's lock ---------


class _Value:
    """A gauge's value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class _Count:
    """A counter's value, and when its series appeared (its ``_created``)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()


class _Observations:
    """A histogram's series: how many observations fell in each bucket (not cumulated)."""

    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.sum += amount
        # The first bucket whose bound is at least ``amount`` (``le``); the last bound is
        # +Inf. NaN falls in no bucket (nor the count), as in prometheus-client.
        if amount == amount:
            self.counts[bisect_left(self.bounds, amount)] += 1.0


_S = TypeVar("_S", _Value, _Count, _Observations)


# -- a metric: its series by label values; its family, built when the registry collects -------


class _Metric(Generic[_S]):
    """Name, help, label names, and the series in the order they appeared."""

    __slots__ = ("documentation", "labelnames", "name", "series")

    def __init__(self, name: str, documentation: str, labelnames: _Labels) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.series: dict[_Labels, _S] = {}

    def child(self, *labels: object) -> _S:
        """The series of ``labels`` (their values as ``str``, as prometheus-client has them)."""
        key = tuple(map(str, labels))
        try:
            return self.series[key]
        except KeyError:
            series = self.series[key] = self._new()
            return series

    def _new(self) -> _S:
        raise NotImplementedError

    def snapshot(self) -> Callable[[bool], Metric]:
        """The figures of every series now (under the lock); the family comes from them."""
        raise NotImplementedError


class _Counter(_Metric[_Count]):
    __slots__ = ()

    def _new(self) -> _Count:
        return _Count()

    def snapshot(self) -> Callable[[bool], Metric]:
        rows = [(labels, s.value, s.created) for labels, s in self.series.items()]

        def family(created: bool) -> Metric:
            family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for labels, value, at in rows:  # _total, then _created
                family.add_metric(labels, value, created=at if created else None)
            return family

        return family


class _Gauge(_Metric[_Value]):
    __slots__ = ()

    def _new(self) -> _Value:
        return _Value()

    def snapshot(self) -> Callable[[bool], Metric]:
        rows = [(labels, s.value) for labels, s in self.series.items()]

        def family(created: bool) -> Metric:
            family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for labels, value in rows:
                family.add_metric(labels, value)
            return family

        return family

    def total(self) -> float:
        return sum(s.value for s in self.series.values())


class _Histogram(_Metric[_Observations]):
    __slots__ = ("bounds", "les")

    def __init__(
        self, name: str, documentation: str, labelnames: _Labels, buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = [float(b) for b in buckets]
        if bounds[-1] != _INF:
            bounds.append(_INF)
        self.bounds = tuple(bounds)
        self.les = tuple(_le(b) for b in bounds)

    def _new(self) -> _Observations:
        return _Observations(self.bounds)

    def snapshot(self) -> Callable[[bool], Metric]:
        rows = [(labels, s.counts[:], s.sum, s.created) for labels, s in self.series.items()]

        def family(created: bool) -> Metric:
            family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for labels, counts, total, at in rows:
                buckets = []
                below = 0.0  # the exposition's buckets are cumulated
                for le, count in zip(self.les, counts, strict=True):
                    below += count
                    buckets.append((le, below))
                family.add_metric(labels, buckets, total)  # the buckets, _count, _sum
                if created:
                    family.add_sample(
                        f"{family.name}_created",
                        dict(zip(self.labelnames, labels, strict=True)),
                        at,
                    )
            return family

        return family


class _Exposition(Collector):
    """What the registry collects: the families, built from one snapshot of every series."""

    __slots__ = ("_lock", "_metrics")

    def __init__(self, lock: threading.Lock, metrics: Sequence[_Metric[Any]]) -> None:
        self._lock = lock
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<PrometheusCollector's {len(self._metrics)} metrics>"

    def collect(self) -> list[Metric]:
        created = _created_shown()
        # One moment for every series (a histogram's count is the sum of its buckets);
        # the families are built after the lock is released.
        with self._lock:
            snapshots = [metric.snapshot() for metric in self._metrics]
        return [family(created) for family in snapshots]

    def describe(self) -> list[Metric]:
        """The families without samples: their names, for the registry's check of duplicates."""
        with self._lock:
            snapshots = [metric.snapshot() for metric in self._metrics]
        families = [family(False) for family in snapshots]
        for family in families:
            family.samples = []
        return families


class PrometheusCollector:
    """Turns the events of any number of clients into Prometheus metrics.

    Give it as ``on_event=`` (the collector is a function of the event). With
    ``registry=None`` it makes its own :class:`prometheus_client.CollectorRegistry`,
    exposed as :attr:`registry`; pass ``prometheus_client.REGISTRY`` to register
    globally. A plain handler runs inline in the call, so an event costs one
    dictionary lookup and a few additions under a lock; the metric families are
    built when the registry is collected (a scrape).

    Clients on event loops in different threads may share one collector: every
    update, and the snapshot a scrape takes, holds one :class:`threading.Lock`
    (held for a few additions; a scrape builds the families after releasing it).
    """

    __slots__ = (
        "_call_seconds",
        "_calls",
        "_ended",
        "_exposition",
        "_finished",
        "_handlers",
        "_in_flight",
        "_late",
        "_lock",
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
        op = ("provider", "operation")
        key = ("provider", "quota_key")
        self._requests = _Counter(
            "livestats_requests_total",
            "HTTP attempts that ended, by outcome: ok or the error's class name.",
            (*op, "outcome"),
        )
        self._request_seconds = _Histogram(
            "livestats_request_duration_seconds",
            "Seconds from sending an attempt to its last byte (or its failure).",
            op,
            REQUEST_BUCKETS,
        )
        self._slot_wait = _Histogram(
            "livestats_slot_wait_seconds",
            "Seconds an attempt waited for its quota slot, pauses included.",
            op,
            WAIT_BUCKETS,
        )
        self._call_seconds = _Histogram(
            "livestats_call_duration_seconds",
            "Seconds from a call's start to its end, waits and retries included.",
            op,
            WAIT_BUCKETS,
        )
        self._calls = _Counter(
            "livestats_calls_total",
            "Calls that ended (after their retries), by outcome.",
            (*op, "outcome"),
        )
        self._retries = _Counter(
            "livestats_retries_total",
            "Retries scheduled, by the error the failed attempt ended in.",
            (*op, "error_type"),
        )
        self._throttled = _Counter(
            "livestats_throttled_total",
            "Refusals for rate (HTTP 429 or the vendor's rate-limit code).",
            op,
        )
        self._in_flight = _Gauge(
            "livestats_in_flight", "Attempts sent and not yet ended, per quota key.", key
        )
        self._waiting = _Gauge(
            "livestats_waiting", "Calls waiting for a quota slot, per quota key.", key
        )
        self._quota = _Gauge(
            "livestats_effective_quota", "Requests per second the quota key allows now.", key
        )
        self._paused = _Counter(
            "livestats_client_paused_seconds_total",
            "Seconds a client of the provider was told to send nothing "
            "(a lockout, a block); overlapping pauses count once.",
            ("provider",),
        )
        self._pauses = _Counter(
            "livestats_client_pauses_total",
            "Times a client was paused, by the vendor code or signal that paused it.",
            ("provider", "reason"),
        )
        self._late = _Counter(
            "livestats_sweeps_late_total",
            "Poller sweeps that could not fit in their interval at the quota.",
            op,
        )
        self._pause_totals = _PauseTotals()
        # Guards every series, the caches below and the pause totals: clients on loops in
        # other threads may share the collector. Uncontended, it costs about as much as one
        # dictionary update; ``acquire``/``release`` cost half of ``with``.
        self._lock = threading.Lock()
        # The series each frequent event updates, by the label values it carries: one
        # dictionary lookup instead of one per metric. The label sets are few (providers x
        # operations x quota keys x outcomes), so these stay small.
        self._started: dict[tuple[str, str], _Value] = {}
        self._waited: dict[tuple[str, str, str], tuple[_Value, _Observations]] = {}
        self._sent: dict[tuple[str, str], _Value] = {}
        self._finished: dict[tuple[str, str, str, str], tuple[_Value, _Count, _Observations]] = {}
        self._ended: dict[tuple[str, str, str], tuple[_Count, _Observations]] = {}
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
        # In the order prometheus-client's own metrics had (the order they were made in).
        self._exposition = _Exposition(
            self._lock,
            (
                self._requests,
                self._request_seconds,
                self._slot_wait,
                self._call_seconds,
                self._calls,
                self._retries,
                self._throttled,
                self._in_flight,
                self._waiting,
                self._quota,
                self._paused,
                self._pauses,
                self._late,
            ),
        )
        self.registry.register(self._exposition)

    def __repr__(self) -> str:
        with self._lock:
            in_flight, waiting = self._in_flight.total(), self._waiting.total()
        return f"<PrometheusCollector in flight {in_flight:g}, waiting {waiting:g}>"

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:  # an event added later is ignored, not an error
            handler(event)

    def watch(self, client: Watchable) -> None:
        """Show ``client``'s quotas as ``livestats_effective_quota`` (its starting values).

        Operations with pacing off (quota ``None``) have no quota to show.
        ``QuotaAdapted`` events move the values from there.
        """
        rates = list(_configured_rates(client))
        with self._lock:
            for quota_key, rate in rates:
                self._quota.child(client.provider, quota_key).value = float(rate)

    # -- the frequent events: a few per call -----------------------------------------------
    # ``lock.acquire()`` / ``try`` / ``finally: lock.release()`` rather than ``with``: these
    # run five times a call.

    def _wait_started(self, e: WaitStarted) -> None:
        key = (e.provider, e.quota_key)
        lock = self._lock
        lock.acquire()
        try:
            try:
                waiting = self._started[key]
            except KeyError:
                waiting = self._started[key] = self._waiting.child(*key)
            waiting.value += 1.0
        finally:
            lock.release()

    def _slot_waited(self, e: SlotWaited) -> None:
        key = (e.provider, e.operation, e.quota_key)
        lock = self._lock
        lock.acquire()
        try:
            try:
                waiting, waits = self._waited[key]
            except KeyError:
                waiting, waits = self._waited[key] = (
                    self._waiting.child(e.provider, e.quota_key),
                    self._slot_wait.child(e.provider, e.operation),
                )
            waiting.value -= 1.0
            waits.observe(e.seconds)
        finally:
            lock.release()

    def _request_sent(self, e: RequestSent) -> None:
        key = (e.provider, e.quota_key)
        lock = self._lock
        lock.acquire()
        try:
            try:
                in_flight = self._sent[key]
            except KeyError:
                in_flight = self._sent[key] = self._in_flight.child(*key)
            in_flight.value += 1.0
        finally:
            lock.release()

    def _request_finished(self, e: RequestFinished) -> None:
        key = (e.provider, e.operation, e.quota_key, e.outcome)
        lock = self._lock
        lock.acquire()
        try:
            try:
                in_flight, requests, seconds = self._finished[key]
            except KeyError:
                in_flight, requests, seconds = self._finished[key] = (
                    self._in_flight.child(e.provider, e.quota_key),
                    self._requests.child(e.provider, e.operation, e.outcome),
                    self._request_seconds.child(e.provider, e.operation),
                )
            in_flight.value -= 1.0
            requests.value += 1.0
            seconds.observe(e.latency)
        finally:
            lock.release()

    def _call_finished(self, e: CallFinished) -> None:
        key = (e.provider, e.operation, e.outcome)
        lock = self._lock
        lock.acquire()
        try:
            try:
                calls, seconds = self._ended[key]
            except KeyError:
                calls, seconds = self._ended[key] = (
                    self._calls.child(*key),
                    self._call_seconds.child(e.provider, e.operation),
                )
            calls.value += 1.0
            seconds.observe(e.duration)
        finally:
            lock.release()

    # -- the rare ones -----------------------------------------------------------------------

    def _retry_scheduled(self, e: RetryScheduled) -> None:
        with self._lock:
            self._retries.child(e.provider, e.operation, e.error_type).value += 1.0

    def _throttled_event(self, e: Throttled) -> None:
        with self._lock:
            self._throttled.child(e.provider, e.operation).value += 1.0

    def _client_paused(self, e: ClientPaused) -> None:
        with self._lock:
            self._pauses.child(e.provider, e.reason).value += 1.0
            # Adding 0 for a pause inside another still makes the series, so it reads 0.
            self._paused.child(e.provider).value += self._pause_totals.add(e.provider, e.seconds)

    def _quota_adapted(self, e: QuotaAdapted) -> None:
        if e.period > 0:
            with self._lock:
                self._quota.child(e.provider, e.quota_key).value = e.limit / e.period

    def _sweep_late(self, e: SweepLate) -> None:
        with self._lock:
            self._late.child(e.provider, e.operation).value += 1.0
