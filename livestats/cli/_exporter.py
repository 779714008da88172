"""``/metrics`` for the watch commands: the SDK's metrics and the latest sweep's figures.

One ``prometheus_client`` registry holds both: what the SDK reports of its own
work (requests, waits, retries, quotas: :class:`livestats.metrics.prometheus.PrometheusCollector`)
and a gauge per figure of every item the latest sweep read, labelled by the item
(``livestats_tencent_room_total_viewers{room_id="..."}``). A gauge series shows
the latest sweep only: an item that left it (a room closed, a channel no longer
live) or whose call failed has no series, rather than an old value that looks
current. Sweep gauges (``livestats_watch_*``) say when the last sweep ran, how
long it took and how many of its items failed, for alerts on staleness.

Importing this module needs ``prometheus-client`` (the ``prometheus`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from livestats import RoomStats, Sweep
from livestats.cli._config import UsageError
from livestats.metrics.prometheus import PrometheusCollector

__all__ = ["Exporter"]

Labels = tuple[str, ...]


@attrs.frozen(kw_only=True)
class _Figure:
    help: str
    value: Callable[[Any], float]


@attrs.frozen(kw_only=True)
class _Figures:
    """The gauges of one provider: their labels, and the series a sweep gives them."""

    labels: Labels
    gauges: Mapping[str, _Figure]
    series: Callable[[Sweep[Any, Any]], dict[Labels, Any]]


def _numeric_fields(cls: type) -> list[str]:
    return [field.name for field in attrs.fields(cls) if field.type in (int, "int")]


def _room_series(sweep: Sweep[Any, Any]) -> dict[Labels, Any]:
    return {(result.key,): result.value for result in sweep.results if result.ok}


def _latest_samples(sweep: Sweep[Any, Any]) -> dict[Labels, Any]:
    """Each live channel's latest sample (a channel with none in the window has no series)."""
    return {
        (result.key,): max(result.value, key=lambda sample: sample.time)
        for result in sweep.results
        if result.ok and result.value
    }


def _stream_series(sweep: Sweep[Any, Any]) -> dict[Labels, Any]:
    return {
        (duration.domain, duration.stream): duration
        for result in sweep.results
        if result.ok
        for duration in result.value or ()
    }


def _getter(name: str) -> Callable[[Any], float]:
    return lambda item: float(getattr(item, name))


FIGURES: dict[str, _Figures] = {
    "tencent": _Figures(
        labels=("room_id",),
        gauges={
            f"livestats_tencent_room_{name}": _Figure(
                help=f"RoomStats.{name} of the room, as of the latest sweep", value=_getter(name)
            )
            for name in _numeric_fields(RoomStats)
        },
        series=_room_series,
    ),
    "polyv": _Figures(
        labels=("channel_id",),
        gauges={
            "livestats_polyv_bit_rate": _Figure(
                help="Video bit rate of the channel's latest sample, in bits per second",
                value=_getter("bit_rate"),
            ),
            "livestats_polyv_video_frame_rate": _Figure(
                help="Video frames per second of the channel's latest sample",
                value=_getter("video_frame_rate"),
            ),
            "livestats_polyv_audio_frame_rate": _Figure(
                help="Audio frames per second of the channel's latest sample",
                value=_getter("audio_frame_rate"),
            ),
            "livestats_polyv_sample_timestamp_seconds": _Figure(
                help="When the channel's latest sample was taken, in Unix seconds",
                value=lambda sample: sample.time.timestamp(),
            ),
        },
        series=_latest_samples,
    ),
    "chinanetcenter": _Figures(
        labels=("domain", "stream"),
        gauges={
            "livestats_chinanetcenter_push_duration_seconds": _Figure(
                help="How long the stream has been pushed today, in the client's time zone",
                value=lambda duration: duration.total.total_seconds(),
            ),
            "livestats_chinanetcenter_push_sessions": _Figure(
                help="Push sessions of the stream today",
                value=lambda duration: float(len(duration.sessions)),
            ),
        },
        series=_stream_series,
    ),
}


class _Gauges:
    """One provider's figure gauges, holding the latest sweep's series and no other."""

    __slots__ = ("_figures", "_gauges", "_shown")

    def __init__(self, figures: _Figures, registry: CollectorRegistry) -> None:
        self._figures = figures
        self._gauges = [
            (Gauge(name, figure.help, figures.labels, registry=registry), figure.value)
            for name, figure in figures.gauges.items()
        ]
        self._shown: set[Labels] = set()

    def show(self, sweep: Sweep[Any, Any]) -> None:
        series = self._figures.series(sweep)
        for labels, item in series.items():
            for gauge, value in self._gauges:
                gauge.labels(*labels).set(value(item))
        for gone in self._shown - series.keys():
            for gauge, _ in self._gauges:
                gauge.remove(*gone)
        self._shown = set(series)


class _SweepGauges:
    __slots__ = ("_duration", "_failed", "_items", "_started", "_sweeps")

    def __init__(self, provider: str, registry: CollectorRegistry) -> None:
        labels = ("provider",)

        def gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, labels, registry=registry).labels(provider)

        self._started = gauge(
            "livestats_watch_sweep_started_timestamp_seconds",
            "When the latest sweep started, in Unix seconds",
        )
        self._duration = gauge(
            "livestats_watch_sweep_duration_seconds", "How long the latest sweep took"
        )
        self._items = gauge("livestats_watch_sweep_items", "Items in the latest sweep")
        self._failed = gauge(
            "livestats_watch_sweep_failed_items", "Items of the latest sweep that failed"
        )
        self._sweeps = Counter(
            "livestats_watch_sweeps", "Sweeps completed", labels, registry=registry
        ).labels(provider)

    def record(self, sweep: Sweep[Any, Any]) -> None:
        self._started.set(sweep.started_at.timestamp())
        self._duration.set((sweep.finished_at - sweep.started_at).total_seconds())
        self._items.set(len(sweep.results))
        self._failed.set(sweep.failed)
        self._sweeps.inc()


class Exporter:
    """The registry ``/metrics`` serves, the SDK's collector writing to it, and the server."""

    __slots__ = ("_figures", "_runner", "_sweeps", "collector", "registry")

    def __init__(self, provider: str) -> None:
        self.registry = CollectorRegistry()
        #: The client's ``on_event`` handler: the SDK's own metrics.
        self.collector = PrometheusCollector(registry=self.registry)
        self._figures = _Gauges(FIGURES[provider], self.registry)
        self._sweeps = _SweepGauges(provider, self.registry)
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        serving = "serving" if self._runner is not None else "not serving"
        return f"<Exporter {serving}>"

    def record(self, sweep: Sweep[Any, Any]) -> None:
        """Show ``sweep``'s figures (and no older ones)."""
        self._figures.show(sweep)
        self._sweeps.record(sweep)

    async def serve(self, host: str, port: int) -> str:
        """Start serving ``/metrics``; the URL it is served at (``port`` 0: a free port)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise UsageError(f"cannot serve metrics on {host}:{port}: {reason}") from None
        self._runner = runner
        return _url(runner.addresses)

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _url(addresses: Sequence[Any]) -> str:
    host, port = addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/metrics"
