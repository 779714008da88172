"""Metrics from the events: every figure comes from :mod:`livestats.events`, nothing else.

Two collectors, each an optional extra, each a plain function of an event, so it
is what a client's ``on_event=`` takes (several clients may share one; beside
another handler, use :func:`livestats.events.chain`)::

    livestats.metrics.prometheus.PrometheusCollector     pip install 'livestats[prometheus]'
    livestats.metrics.otel.OpenTelemetryCollector         pip install 'livestats[otel]'

Importing ``livestats`` (or this package) imports neither library; importing a
collector's module without its library raises an ``ImportError`` that names the
extra to install.

The histograms' bucket boundaries, in seconds, are chosen for what they measure:

- :data:`REQUEST_BUCKETS`, one HTTP attempt: the OpenTelemetry HTTP client
  convention's advice (5 ms to 10 s, so a dashboard can put livestats beside any
  other HTTP client), then 20, 30 and 60 s, so attempts that ran into a timeout
  (10 s by default) land in a bucket of their own instead of ``+Inf``.
- :data:`WAIT_BUCKETS`, a slot wait or a whole call (waits and retries included):
  1 ms (the slot was free: no wait) up to 300 s, the longest a vendor makes a
  client wait (ChinaNetCenter's 300 s quota period, Polyv's 5-minute block);
  60 s is Tencent's lockout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from typing import Protocol

from livestats._core.quota import Quota

__all__ = ["REQUEST_BUCKETS", "WAIT_BUCKETS", "Watchable"]

#: One attempt, send to last byte (seconds).
REQUEST_BUCKETS: tuple[float, ...] = (
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
    20.0,
    30.0,
    60.0,
)

#: A wait for a quota slot, or a whole call with its waits and retries (seconds).
WAIT_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)


class Watchable(Protocol):
    """What ``collector.watch(client)`` reads: any livestats client."""

    @property
    def provider(self) -> str: ...

    @property
    def quotas(self) -> Mapping[str, Quota | None]: ...

    def quota_key(self, operation: str) -> str: ...


def _configured_rates(client: Watchable) -> Iterator[tuple[str, float]]:
    """Each paced quota key of ``client`` and its rate in requests per second."""
    for operation, quota in client.quotas.items():
        if quota is not None:  # None: pacing off, no quota to show
            yield client.quota_key(operation), quota.rate


def _now() -> float:
    """The running loop's clock (what the engine reads by default), else the monotonic one."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class _PauseTotals:
    """Seconds during which a client of each provider was paused, overlaps counted once.

    A lockout answered to ten calls in flight is ten ``ClientPaused`` events of the
    same 60 s; summing them would report ten minutes of pause for one. Pauses are
    counted when they begin, in full.
    """

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<_PauseTotals {len(self._until)} providers>"

    def add(self, provider: str, seconds: float) -> float:
        """Record a pause of ``seconds`` from now; return the seconds it adds to the total."""
        now = _now()
        seconds = max(seconds, 0.0)
        until = self._until.get(provider, now)
        # Not paused: all of it is new (``seconds`` exactly, not ``now + seconds - now``).
        added = seconds if until <= now else max(0.0, now + seconds - until)
        if added > 0:
            self._until[provider] = now + seconds
        return added
