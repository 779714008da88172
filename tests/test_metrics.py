"""The collectors: exact metrics and spans from real clients, driven only by their events.

Every test runs a ``TencentClient`` over ``MockTransport`` on virtual time, so
waits, pauses and durations are exact; latencies are the ``elapsed`` each
scripted answer carries. The scripted run (:func:`mixed_run`) is six calls:

    A  ok
    B  100001 (transient), retried, ok
    C  HTTP 429, the key pauses 1 s (its quota period), retried, ok
    D  60007 (Tencent's rate limit), the key pauses 1 s, retried, ok
    E  70050, the lockout: the client pauses 60 s and the call fails
    F  waits out the 60 s, ok

nine attempts in all.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

import livestats
from livestats import HttpRequest, HttpResponse, LocalLimiter, Quota, RetryPolicy
from livestats.events import (
    CallFinished,
    ClientPaused,
    Event,
    EventHandler,
    QuotaAdapted,
    RequestFinished,
    RequestSent,
    RetryScheduled,
    SlotWaited,
    SweepLate,
    Throttled,
    WaitStarted,
    chain,
)
from livestats.metrics import REQUEST_BUCKETS, WAIT_BUCKETS
from livestats.metrics.otel import MAX_ATTEMPT_EVENTS, OpenTelemetryCollector
from livestats.metrics.prometheus import PrometheusCollector
from livestats.testing import MockTransport
from tests.virtual_time import virtual_time

SECRET = "metrics-test-secret-key-0123456789"
SDKAPPID = 1400000000
OP = "get_room_stats"
KEY = f"tencent:{SDKAPPID}:{OP}"
STATS = {
    "TotalViewers": 1,
    "TotalGiftsSent": 0,
    "TotalGiftCoins": 0,
    "TotalUniqueGiftSenders": 0,
    "TotalLikesReceived": 0,
    "TotalMsgCount": 0,
}


def ok(elapsed: float = 0.02) -> HttpResponse:
    doc = {"ActionStatus": "OK", "ErrorCode": 0, "RequestId": "r", "Response": STATS}
    return HttpResponse(status=200, body=json.dumps(doc).encode(), elapsed=elapsed)


def fail(code: int, elapsed: float = 0.05) -> HttpResponse:
    doc = {"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": "no"}
    return HttpResponse(status=200, body=json.dumps(doc).encode(), elapsed=elapsed)


def too_many() -> HttpResponse:
    return HttpResponse(status=429, body=b"slow down", elapsed=0.01)


def scripted(answers: list[HttpResponse]) -> MockTransport:
    def vendor(request: HttpRequest) -> HttpResponse:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return MockTransport(vendor)


class FixedLimiter:
    """A limiter of the interface before learned limits (acquire and pause only).

    A rate refusal with no length then pauses the key one quota period, which keeps
    the scripted run's waits whole seconds; learned limits have their own tests.
    """

    def __init__(self) -> None:
        self._inner = LocalLimiter()

    async def acquire(self, key: str, quota: Quota, *, wait_if_paused: bool = True) -> Any:
        return await self._inner.acquire(key, quota, wait_if_paused=wait_if_paused)

    async def pause(self, key: str, seconds: float) -> None:
        await self._inner.pause(key, seconds)


def tencent(
    transport: MockTransport, on_event: EventHandler, *, sdkappid: int = SDKAPPID, **kwargs: Any
) -> livestats.TencentClient:
    kwargs.setdefault("limiter", FixedLimiter())
    # Backoff 0: a call's duration is its waits alone, exactly.
    kwargs.setdefault("retry", RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0))
    return livestats.TencentClient(
        sdkappid, "admin", secret_key=SECRET, transport=transport, on_event=on_event, **kwargs
    )


async def mixed_run(on_event: EventHandler) -> tuple[livestats.TencentClient, MockTransport]:
    """Calls A to F of the module docstring."""
    transport = scripted(
        [ok(), fail(100001), ok(), too_many(), ok(), fail(60007), ok(), fail(70050), ok()]
    )
    client = tencent(transport, on_event)
    for _ in range(4):  # A, B, C, D
        await client.get_room_stats("room-1")
    with pytest.raises(livestats.AuthenticationError):  # E
        await client.get_room_stats("room-1")
    started = asyncio.get_running_loop().time()
    await client.get_room_stats("room-1")  # F
    assert asyncio.get_running_loop().time() - started == 60.0
    assert len(transport.requests) == 9
    return client, transport


async def cancelled_run(on_event: EventHandler, during: Callable[[], None]) -> None:
    """Three calls on a 1-per-10 s quota against a vendor that never answers, then cancelled.

    ``during`` runs while the first is in flight and the two others wait for a slot.
    """
    hang = asyncio.Event()

    async def vendor(request: HttpRequest) -> HttpResponse:
        await hang.wait()
        return ok()

    client = tencent(MockTransport(vendor), on_event, quotas={OP: Quota(1, 10.0)})
    calls = [asyncio.create_task(client.get_room_stats(f"room-{i}")) for i in range(3)]
    await asyncio.sleep(1)
    during()
    for task in calls:
        task.cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert client.event_failures == 0


def secrets_sent(transport: MockTransport) -> list[str]:
    """The secret key and every secret a request carried (each UserSig)."""
    return [SECRET, *(value for r in transport.requests for value in r.secret_values())]


# -- Prometheus ------------------------------------------------------------------------------


class Prom:
    """Reads one collector's registry."""

    def __init__(self, collector: PrometheusCollector) -> None:
        self.registry = collector.registry

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def op(self, name: str, **labels: str) -> float | None:
        return self(name, provider="tencent", operation=OP, **labels)

    def key(self, name: str, quota_key: str = KEY) -> float | None:
        return self(name, provider="tencent", quota_key=quota_key)


@virtual_time
async def test_prometheus_counts_every_attempt_call_retry_throttle_and_pause_exactly() -> None:
    collector = PrometheusCollector()
    client, _ = await mixed_run(collector)
    assert client.event_failures == 0
    prom = Prom(collector)
    requests = "livestats_requests_total"
    assert prom.op(requests, outcome="ok") == 5
    assert prom.op(requests, outcome="ProviderError") == 1
    assert prom.op(requests, outcome="RateLimitedError") == 2  # the 429 and 60007
    assert prom.op(requests, outcome="AuthenticationError") == 1
    calls = "livestats_calls_total"
    assert prom.op(calls, outcome="ok") == 5
    assert prom.op(calls, outcome="AuthenticationError") == 1
    retries = "livestats_retries_total"
    assert prom.op(retries, error_type="ProviderError") == 1
    assert prom.op(retries, error_type="RateLimitedError") == 2
    assert prom.op("livestats_throttled_total") == 2
    assert prom("livestats_client_paused_seconds_total", provider="tencent") == 60.0
    assert prom("livestats_client_pauses_total", provider="tencent", reason="70050") == 1

    # Latencies: 0.02 for each ok, 0.05 for each vendor error, 0.01 for the 429.
    duration = "livestats_request_duration_seconds"
    assert prom.op(f"{duration}_count") == 9
    assert prom.op(f"{duration}_sum") == pytest.approx(5 * 0.02 + 3 * 0.05 + 0.01)
    assert prom.op(f"{duration}_bucket", le="0.01") == 1
    assert prom.op(f"{duration}_bucket", le="0.025") == 6
    assert prom.op(f"{duration}_bucket", le="0.05") == 9
    # Slot waits: 1 s after the 429 and after 60007 (the key's pause), 60 s for F
    # (the client's pause), nothing for the six others.
    wait = "livestats_slot_wait_seconds"
    assert prom.op(f"{wait}_count") == 9
    assert prom.op(f"{wait}_sum") == 62.0
    assert prom.op(f"{wait}_bucket", le="0.001") == 6
    assert prom.op(f"{wait}_bucket", le="1.0") == 8
    assert prom.op(f"{wait}_bucket", le="60.0") == 9
    call = "livestats_call_duration_seconds"
    assert prom.op(f"{call}_count") == 6
    assert prom.op(f"{call}_sum") == 62.0

    assert prom.key("livestats_in_flight") == 0
    assert prom.key("livestats_waiting") == 0
    assert repr(collector) == "<PrometheusCollector in flight 0, waiting 0>"


@virtual_time
async def test_prometheus_gauges_follow_live_calls_and_return_to_zero_when_cancelled() -> None:
    collector = PrometheusCollector()
    prom = Prom(collector)
    seen: list[tuple[float | None, float | None]] = []

    def during() -> None:
        seen.append((prom.key("livestats_in_flight"), prom.key("livestats_waiting")))

    await cancelled_run(collector, during)
    assert seen == [(1, 2)]  # one sent, two waiting for the 1-per-10 s quota
    assert prom.key("livestats_in_flight") == 0
    assert prom.key("livestats_waiting") == 0
    assert prom.op("livestats_calls_total", outcome="CancelledError") == 3
    assert prom.op("livestats_requests_total", outcome="CancelledError") == 1
    assert prom.op("livestats_slot_wait_seconds_count") == 3  # each wait ended, one granted


@virtual_time
async def test_prometheus_exposition_parses_with_the_documented_names_types_and_labels() -> None:
    collector = PrometheusCollector()
    client, transport = await mixed_run(collector)
    collector.watch(client)
    collector(
        SweepLate(
            provider="tencent", operation=OP, items=500, every=1.0, needed_rate=500, quota_rate=100
        )
    )
    text = prometheus_client.generate_latest(collector.registry).decode()
    op, key = {"provider", "operation"}, {"provider", "quota_key"}
    expected = {
        "livestats_requests": ("counter", op | {"outcome"}),
        "livestats_request_duration_seconds": ("histogram", op),
        "livestats_slot_wait_seconds": ("histogram", op),
        "livestats_call_duration_seconds": ("histogram", op),
        "livestats_calls": ("counter", op | {"outcome"}),
        "livestats_retries": ("counter", op | {"error_type"}),
        "livestats_throttled": ("counter", op),
        "livestats_in_flight": ("gauge", key),
        "livestats_waiting": ("gauge", key),
        "livestats_effective_quota": ("gauge", key),
        "livestats_client_paused_seconds": ("counter", {"provider"}),
        "livestats_client_pauses": ("counter", {"provider", "reason"}),
        "livestats_sweeps_late": ("counter", op),
    }
    # prometheus-client adds a ``*_created`` timestamp beside each counter and histogram.
    families = {
        family.name: family
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")
    }
    assert set(families) == set(expected)
    for name, (kind, labels) in expected.items():
        family = families[name]
        assert family.type == kind, name
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                assert set(sample.labels) == labels | {"le"}, sample
            else:
                assert set(sample.labels) == labels, sample
    buckets = [
        float(s.labels["le"])
        for s in families["livestats_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert buckets == [*REQUEST_BUCKETS, float("inf")]
    waits = families["livestats_slot_wait_seconds"].samples
    assert [float(s.labels["le"]) for s in waits if s.name.endswith("_bucket")] == [
        *WAIT_BUCKETS,
        float("inf"),
    ]
    quotas = {s.labels["quota_key"]: s.value for s in families["livestats_effective_quota"].samples}
    assert quotas == {
        KEY: 100.0,
        f"tencent:{SDKAPPID}:get_gift_count": 200.0,
        f"tencent:{SDKAPPID}:get_room_list": 10.0,
    }
    sweeps = families["livestats_sweeps_late"].samples
    assert [s.value for s in sweeps if s.name == "livestats_sweeps_late_total"] == [1.0]
    for secret in secrets_sent(transport):
        assert secret not in text


@virtual_time
async def test_one_prometheus_collector_serves_several_clients_and_a_chain() -> None:
    collector = PrometheusCollector()
    events: list[Event] = []
    handler = chain(events.append, collector)
    first = tencent(scripted([ok()]), handler, sdkappid=1400000001)
    second = tencent(scripted([fail(100001), ok()]), handler, sdkappid=1400000002)
    await asyncio.gather(first.get_room_stats("room-1"), second.get_room_stats("room-2"))
    assert first.event_failures == second.event_failures == 0
    prom = Prom(collector)
    assert prom.op("livestats_calls_total", outcome="ok") == 2
    assert prom.op("livestats_requests_total", outcome="ok") == 2
    assert prom.op("livestats_requests_total", outcome="ProviderError") == 1
    for sdkappid in (1400000001, 1400000002):
        assert prom.key("livestats_in_flight", f"tencent:{sdkappid}:{OP}") == 0
    assert sum(isinstance(e, CallFinished) for e in events) == 2  # the chain's other handler


@virtual_time
async def test_quota_changes_late_sweeps_and_overlapping_pauses() -> None:
    collector = PrometheusCollector()
    prom = Prom(collector)
    collector(QuotaAdapted(provider="tencent", quota_key=KEY, limit=50, configured=100, period=1))
    assert prom.key("livestats_effective_quota") == 50.0
    collector(
        QuotaAdapted(provider="polyv", quota_key="polyv:x", limit=1500, configured=1500, period=10)
    )
    assert prom("livestats_effective_quota", provider="polyv", quota_key="polyv:x") == 150.0

    paused = "livestats_client_paused_seconds_total"
    # Ten calls in flight meet the lockout together: one 60 s pause, not ten minutes.
    for _ in range(10):
        collector(ClientPaused(provider="tencent", seconds=60.0, reason="70050"))
    assert prom(paused, provider="tencent") == 60.0
    assert prom("livestats_client_pauses_total", provider="tencent", reason="70050") == 10
    await asyncio.sleep(30)  # half way through, another 60 s: 30 more
    collector(ClientPaused(provider="tencent", seconds=60.0, reason="70050"))
    assert prom(paused, provider="tencent") == 90.0
    await asyncio.sleep(100)  # long after: a fresh pause counts whole
    collector(ClientPaused(provider="tencent", seconds=5.0, reason="RateLimitedError"))
    assert prom(paused, provider="tencent") == 95.0
    collector(ClientPaused(provider="polyv", seconds=300.0, reason="RateLimitedError"))
    assert prom(paused, provider="polyv") == 300.0  # per provider


def test_the_collector_registers_where_it_is_told() -> None:
    own = PrometheusCollector()
    assert own.registry is not prometheus_client.REGISTRY
    mine = prometheus_client.CollectorRegistry()
    assert PrometheusCollector(mine).registry is mine
    # The global registry, in a process of its own so this one's stays clean.
    script = """
import prometheus_client
from livestats.events import CallFinished
from livestats.metrics.prometheus import PrometheusCollector
collector = PrometheusCollector(prometheus_client.REGISTRY)
collector(CallFinished(provider="polyv", operation="get_stream_info", call_id=1,
                       quota_key="k", outcome="ok", attempts=1, duration=0.5))
labels = {"provider": "polyv", "operation": "get_stream_info", "outcome": "ok"}
print(prometheus_client.REGISTRY.get_sample_value("livestats_calls_total", labels))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "1.0"


# The exposition prometheus-client's own Counter, Gauge and Histogram gave for the events of
# test_prometheus_exposition_is_exactly_what_it_was (recorded before the collector kept its
# figures itself); ``$OP`` and ``$KEY`` stand for the labels of OP and KEY, ``<time>`` for
# each series' creation time.
EXPOSITION = """\
# HELP livestats_requests_total HTTP attempts that ended, by outcome: ok or the error's class name.
# TYPE livestats_requests_total counter
livestats_requests_total{operation="get_room_stats",outcome="RateLimitedError",provider="tencent"} 1.0
livestats_requests_total{operation="get_room_stats",outcome="ok",provider="tencent"} 1.0
# HELP livestats_requests_created HTTP attempts that ended, by outcome: ok or the error's class name.
# TYPE livestats_requests_created gauge
livestats_requests_created{operation="get_room_stats",outcome="RateLimitedError",provider="tencent"} <time>
livestats_requests_created{operation="get_room_stats",outcome="ok",provider="tencent"} <time>
# HELP livestats_request_duration_seconds Seconds from sending an attempt to its last byte (or its failure).
# TYPE livestats_request_duration_seconds histogram
livestats_request_duration_seconds_bucket{le="0.005",$OP} 0.0
livestats_request_duration_seconds_bucket{le="0.01",$OP} 1.0
livestats_request_duration_seconds_bucket{le="0.025",$OP} 2.0
livestats_request_duration_seconds_bucket{le="0.05",$OP} 2.0
livestats_request_duration_seconds_bucket{le="0.075",$OP} 2.0
livestats_request_duration_seconds_bucket{le="0.1",$OP} 2.0
livestats_request_duration_seconds_bucket{le="0.25",$OP} 2.0
livestats_request_duration_seconds_bucket{le="0.5",$OP} 2.0
livestats_request_duration_seconds_bucket{le="0.75",$OP} 2.0
livestats_request_duration_seconds_bucket{le="1.0",$OP} 2.0
livestats_request_duration_seconds_bucket{le="2.5",$OP} 2.0
livestats_request_duration_seconds_bucket{le="5.0",$OP} 2.0
livestats_request_duration_seconds_bucket{le="7.5",$OP} 2.0
livestats_request_duration_seconds_bucket{le="10.0",$OP} 2.0
livestats_request_duration_seconds_bucket{le="20.0",$OP} 2.0
livestats_request_duration_seconds_bucket{le="30.0",$OP} 2.0
livestats_request_duration_seconds_bucket{le="60.0",$OP} 2.0
livestats_request_duration_seconds_bucket{le="+Inf",$OP} 2.0
livestats_request_duration_seconds_count{$OP} 2.0
livestats_request_duration_seconds_sum{$OP} 0.035
# HELP livestats_request_duration_seconds_created Seconds from sending an attempt to its last byte (or its failure).
# TYPE livestats_request_duration_seconds_created gauge
livestats_request_duration_seconds_created{$OP} <time>
# HELP livestats_slot_wait_seconds Seconds an attempt waited for its quota slot, pauses included.
# TYPE livestats_slot_wait_seconds histogram
livestats_slot_wait_seconds_bucket{le="0.001",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.005",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.01",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.025",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.05",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.1",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.25",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="0.5",$OP} 1.0
livestats_slot_wait_seconds_bucket{le="1.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="2.5",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="5.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="10.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="30.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="60.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="120.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="300.0",$OP} 2.0
livestats_slot_wait_seconds_bucket{le="+Inf",$OP} 2.0
livestats_slot_wait_seconds_count{$OP} 2.0
livestats_slot_wait_seconds_sum{$OP} 1.0005
# HELP livestats_slot_wait_seconds_created Seconds an attempt waited for its quota slot, pauses included.
# TYPE livestats_slot_wait_seconds_created gauge
livestats_slot_wait_seconds_created{$OP} <time>
# HELP livestats_call_duration_seconds Seconds from a call's start to its end, waits and retries included.
# TYPE livestats_call_duration_seconds histogram
livestats_call_duration_seconds_bucket{le="0.001",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.005",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.01",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.025",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.05",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.1",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.25",$OP} 0.0
livestats_call_duration_seconds_bucket{le="0.5",$OP} 0.0
livestats_call_duration_seconds_bucket{le="1.0",$OP} 0.0
livestats_call_duration_seconds_bucket{le="2.5",$OP} 1.0
livestats_call_duration_seconds_bucket{le="5.0",$OP} 1.0
livestats_call_duration_seconds_bucket{le="10.0",$OP} 1.0
livestats_call_duration_seconds_bucket{le="30.0",$OP} 1.0
livestats_call_duration_seconds_bucket{le="60.0",$OP} 1.0
livestats_call_duration_seconds_bucket{le="120.0",$OP} 1.0
livestats_call_duration_seconds_bucket{le="300.0",$OP} 1.0
livestats_call_duration_seconds_bucket{le="+Inf",$OP} 1.0
livestats_call_duration_seconds_count{$OP} 1.0
livestats_call_duration_seconds_sum{$OP} 1.0255
# HELP livestats_call_duration_seconds_created Seconds from a call's start to its end, waits and retries included.
# TYPE livestats_call_duration_seconds_created gauge
livestats_call_duration_seconds_created{$OP} <time>
# HELP livestats_calls_total Calls that ended (after their retries), by outcome.
# TYPE livestats_calls_total counter
livestats_calls_total{operation="get_room_stats",outcome="ok",provider="tencent"} 1.0
# HELP livestats_calls_created Calls that ended (after their retries), by outcome.
# TYPE livestats_calls_created gauge
livestats_calls_created{operation="get_room_stats",outcome="ok",provider="tencent"} <time>
# HELP livestats_retries_total Retries scheduled, by the error the failed attempt ended in.
# TYPE livestats_retries_total counter
livestats_retries_total{error_type="RateLimitedError",$OP} 1.0
# HELP livestats_retries_created Retries scheduled, by the error the failed attempt ended in.
# TYPE livestats_retries_created gauge
livestats_retries_created{error_type="RateLimitedError",$OP} <time>
# HELP livestats_throttled_total Refusals for rate (HTTP 429 or the vendor's rate-limit code).
# TYPE livestats_throttled_total counter
livestats_throttled_total{$OP} 1.0
# HELP livestats_throttled_created Refusals for rate (HTTP 429 or the vendor's rate-limit code).
# TYPE livestats_throttled_created gauge
livestats_throttled_created{$OP} <time>
# HELP livestats_in_flight Attempts sent and not yet ended, per quota key.
# TYPE livestats_in_flight gauge
livestats_in_flight{$KEY} 1.0
# HELP livestats_waiting Calls waiting for a quota slot, per quota key.
# TYPE livestats_waiting gauge
livestats_waiting{$KEY} 0.0
# HELP livestats_effective_quota Requests per second the quota key allows now.
# TYPE livestats_effective_quota gauge
livestats_effective_quota{$KEY} 50.0
livestats_effective_quota{provider="polyv",quota_key="polyv:x"} 150.0
# HELP livestats_client_paused_seconds_total Seconds a client of the provider was told to send nothing (a lockout, a block); overlapping pauses count once.
# TYPE livestats_client_paused_seconds_total counter
livestats_client_paused_seconds_total{provider="tencent"} 60.0
# HELP livestats_client_paused_seconds_created Seconds a client of the provider was told to send nothing (a lockout, a block); overlapping pauses count once.
# TYPE livestats_client_paused_seconds_created gauge
livestats_client_paused_seconds_created{provider="tencent"} <time>
# HELP livestats_client_pauses_total Times a client was paused, by the vendor code or signal that paused it.
# TYPE livestats_client_pauses_total counter
livestats_client_pauses_total{provider="tencent",reason="70050"} 2.0
# HELP livestats_client_pauses_created Times a client was paused, by the vendor code or signal that paused it.
# TYPE livestats_client_pauses_created gauge
livestats_client_pauses_created{provider="tencent",reason="70050"} <time>
# HELP livestats_sweeps_late_total Poller sweeps that could not fit in their interval at the quota.
# TYPE livestats_sweeps_late_total counter
livestats_sweeps_late_total{$OP} 1.0
# HELP livestats_sweeps_late_created Poller sweeps that could not fit in their interval at the quota.
# TYPE livestats_sweeps_late_created gauge
livestats_sweeps_late_created{$OP} <time>
"""  # noqa: E501
disable_created: Callable[[], None] = prometheus_client.disable_created_metrics
enable_created: Callable[[], None] = prometheus_client.enable_created_metrics
CREATED = re.compile(r"^(\S+_created\{[^}]*\}) (\S+)$", re.MULTILINE)


def exposition(collector: PrometheusCollector) -> tuple[str, list[float]]:
    """The text format, with every ``*_created`` value put as ``<time>``; and those values."""
    text = prometheus_client.generate_latest(collector.registry).decode()
    times = [float(m.group(2)) for m in CREATED.finditer(text)]
    return CREATED.sub(r"\1 <time>", text), times


def started(call: int, quota_key: str = KEY) -> WaitStarted:
    return WaitStarted(provider="tencent", operation=OP, call_id=call, quota_key=quota_key)


def waited(call: int, seconds: float, quota_key: str = KEY) -> SlotWaited:
    return SlotWaited(
        provider="tencent", operation=OP, call_id=call, quota_key=quota_key, seconds=seconds
    )


def sent(call: int, attempt: int = 1, quota_key: str = KEY) -> RequestSent:
    return RequestSent(
        provider="tencent", operation=OP, call_id=call, quota_key=quota_key, attempt=attempt
    )


def answered(
    call: int, outcome: str, latency: float, attempt: int = 1, quota_key: str = KEY
) -> RequestFinished:
    return RequestFinished(
        provider="tencent",
        operation=OP,
        call_id=call,
        quota_key=quota_key,
        outcome=outcome,
        http_status=200,
        vendor_code=0,
        latency=latency,
        attempt=attempt,
    )


def ended(call: int, outcome: str, duration: float, quota_key: str = KEY) -> CallFinished:
    return CallFinished(
        provider="tencent",
        operation=OP,
        call_id=call,
        quota_key=quota_key,
        outcome=outcome,
        attempts=1,
        duration=duration,
    )


@virtual_time
async def test_prometheus_exposition_is_exactly_what_it_was() -> None:
    events: list[Event] = [
        started(1),
        started(2),
        waited(1, 0.0005),
        sent(1),
        answered(1, "RateLimitedError", 0.01),  # on a bound: in its bucket (le), not the next
        Throttled(
            provider="tencent", operation=OP, call_id=1, quota_key=KEY, signal="429", pause=1.0
        ),
        RetryScheduled(
            provider="tencent",
            operation=OP,
            call_id=1,
            attempt=1,
            error_type="RateLimitedError",
            delay=0.0,
        ),
        waited(2, 1.0),
        sent(2),  # still in flight at the end
        sent(1, attempt=2),
        answered(1, "ok", 0.025, attempt=2),
        ended(1, "ok", 1.0255),
        ClientPaused(provider="tencent", seconds=60.0, reason="70050"),
        ClientPaused(provider="tencent", seconds=60.0, reason="70050"),  # the same pause
        QuotaAdapted(provider="tencent", quota_key=KEY, limit=50, configured=100, period=1.0),
        QuotaAdapted(provider="tencent", quota_key=KEY, limit=9, configured=100, period=0.0),
        QuotaAdapted(provider="polyv", quota_key="polyv:x", limit=1500, configured=1500, period=10),
        SweepLate(
            provider="tencent", operation=OP, items=500, every=1.0, needed_rate=500, quota_rate=100
        ),
    ]
    before = time.time()
    collector = PrometheusCollector()
    for event in events:
        collector(event)
    text, times = exposition(collector)
    expected = EXPOSITION.replace("$OP", f'operation="{OP}",provider="tencent"').replace(
        "$KEY", f'provider="tencent",quota_key="{KEY}"'
    )
    assert text == expected
    assert len(times) == 11  # one per counter and histogram series
    assert all(before <= t <= time.time() for t in times)
    assert repr(collector) == "<PrometheusCollector in flight 1, waiting 0>"

    # Before any event: each family's HELP and TYPE (and no sample), in the same order.
    empty, _ = exposition(PrometheusCollector())
    assert empty.splitlines() == [
        line
        for line in expected.splitlines()
        if line.startswith("#") and not line.split()[2].endswith("_created")
    ]
    # prometheus_client.disable_created_metrics() leaves the *_created samples out.
    disable_created()
    try:
        text, times = exposition(collector)
    finally:
        enable_created()
    assert times == []
    assert "_created" not in text
    assert text.splitlines() == [line for line in expected.splitlines() if "_created" not in line]


def test_a_collector_shared_by_threads_loses_no_update_and_scrapes_one_moment() -> None:
    collector = PrometheusCollector()
    threads, calls = 4, 2000
    torn: list[tuple[float, float, float]] = []

    def client() -> None:
        for call in range(calls):
            quota_key = f"k{call % 3}"
            collector(started(call, quota_key))
            collector(waited(call, 0.002, quota_key))
            collector(sent(call, quota_key=quota_key))
            collector(answered(call, "ok", 0.02, quota_key=quota_key))
            collector(ended(call, "ok", 0.03, quota_key))

    def scrape(stop: threading.Event) -> None:
        # One RequestFinished adds to the counter and the histogram at once: every scrape
        # sees both or neither.
        while not stop.is_set():
            figures = {
                sample.name: sample.value
                for family in collector.registry.collect()
                for sample in family.samples
                if sample.labels.get("outcome", "ok") == "ok" and "le" not in sample.labels
            }
            requests = figures.get("livestats_requests_total", 0.0)
            count = figures.get("livestats_request_duration_seconds_count", 0.0)
            total = figures.get("livestats_request_duration_seconds_sum", 0.0)
            if requests != count or total != pytest.approx(0.02 * count):
                torn.append((requests, count, total))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    stop = threading.Event()
    try:
        scraper = threading.Thread(target=scrape, args=(stop,))
        scraper.start()
        workers = [threading.Thread(target=client) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stop.set()
        scraper.join()
    finally:
        sys.setswitchinterval(interval)
    assert torn == []
    prom = Prom(collector)
    total = threads * calls
    assert prom.op("livestats_requests_total", outcome="ok") == total
    assert prom.op("livestats_calls_total", outcome="ok") == total
    assert prom.op("livestats_request_duration_seconds_count") == total
    assert prom.op("livestats_request_duration_seconds_bucket", le="0.025") == total
    assert prom.op("livestats_slot_wait_seconds_bucket", le="0.005") == total
    assert prom.op("livestats_call_duration_seconds_bucket", le="0.05") == total
    for quota_key in ("k0", "k1", "k2"):
        assert prom.key("livestats_in_flight", quota_key) == 0
        assert prom.key("livestats_waiting", quota_key) == 0


# -- OpenTelemetry ---------------------------------------------------------------------------


class Otel:
    """One collector on an SDK meter provider and tracer provider, read back in memory."""

    def __init__(self, **kwargs: Any) -> None:
        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.collector = OpenTelemetryCollector(
            MeterProvider(metric_readers=[self.reader]), self.tracers, **kwargs
        )

    def points(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        out: dict[str, list[Any]] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "livestats"
                assert scope.scope.version == livestats.__version__
                for metric in scope.metrics:
                    out[metric.name] = list(metric.data.data_points)
        return out

    def value(self, name: str, **attributes: Any) -> float:
        point = self.point(name, **attributes)
        assert isinstance(point, NumberDataPoint)
        return point.value

    def point(self, name: str, **attributes: Any) -> Any:
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        found = [p for p in self.points()[name] if attrs_of(p) == wanted]
        assert len(found) == 1, (name, wanted, [attrs_of(p) for p in self.points()[name]])
        return found[0]

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


def attrs_of(item: Any) -> dict[str, Any]:
    """A span's or a span event's attributes (``None`` when it has none)."""
    return dict(item.attributes or {})


def tencent_op(**more: Any) -> dict[str, Any]:
    """Keyword arguments for :meth:`Otel.point`: provider and operation, and ``more``."""
    return {"livestats__provider": "tencent", "livestats__operation": OP, **more}


def tencent_key() -> dict[str, Any]:
    return {"livestats__provider": "tencent", "livestats__quota_key": KEY}


@virtual_time
async def test_otel_http_client_duration_follows_the_semantic_conventions() -> None:
    otel = Otel()
    client, _ = await mixed_run(otel.collector)
    assert client.event_failures == 0
    name = "http.client.request.duration"
    ok_point = otel.point(name, http__response__status_code=200, **tencent_op())
    assert isinstance(ok_point, HistogramDataPoint)
    assert ok_point.count == 5
    assert ok_point.sum == pytest.approx(0.1)
    assert list(ok_point.explicit_bounds) == [
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
    ]  # fmt: skip
    gateway = otel.point(
        name, http__response__status_code=429, error__type="RateLimitedError", **tencent_op()
    )
    assert (gateway.count, gateway.sum) == (1, 0.01)
    vendor = otel.point(
        name, http__response__status_code=200, error__type="RateLimitedError", **tencent_op()
    )
    assert vendor.count == 1  # 60007 comes with HTTP 200
    for point in otel.points()[name]:
        assert "http.request.method" not in point.attributes  # not in the events: left out
        assert "server.address" not in point.attributes
    assert sum(p.count for p in otel.points()[name]) == 9


@virtual_time
async def test_otel_counters_histograms_and_gauges_mirror_prometheus() -> None:
    otel = Otel()
    client, transport = await mixed_run(otel.collector)
    otel.collector.watch(client)
    assert otel.value("livestats.requests", **tencent_op(livestats__outcome="ok")) == 5
    assert otel.value("livestats.requests", **tencent_op(livestats__outcome="ProviderError")) == 1
    assert otel.value("livestats.calls", **tencent_op(livestats__outcome="ok")) == 5
    assert (
        otel.value("livestats.calls", **tencent_op(livestats__outcome="AuthenticationError")) == 1
    )
    assert otel.value("livestats.retries", **tencent_op(error__type="RateLimitedError")) == 2
    assert otel.value("livestats.retries", **tencent_op(error__type="ProviderError")) == 1
    assert otel.value("livestats.throttled", **tencent_op()) == 2
    assert otel.value("livestats.client.paused", livestats__provider="tencent") == 60.0
    pauses = otel.value(
        "livestats.client.pauses", livestats__provider="tencent", livestats__reason="70050"
    )
    assert pauses == 1
    waits = otel.point("livestats.slot_wait.duration", **tencent_op())
    assert (waits.count, waits.sum) == (9, 62.0)
    assert list(waits.explicit_bounds) == list(WAIT_BUCKETS)
    calls = otel.point("livestats.call.duration", **tencent_op())
    assert (calls.count, calls.sum) == (6, 62.0)
    assert otel.value("livestats.in_flight", **tencent_key()) == 0
    assert otel.value("livestats.waiting", **tencent_key()) == 0
    assert otel.value("livestats.effective_quota", **tencent_key()) == 100.0
    otel.collector(
        QuotaAdapted(provider="tencent", quota_key=KEY, limit=30, configured=100, period=1)
    )
    assert otel.value("livestats.effective_quota", **tencent_key()) == 30.0

    seen = [
        str(v) for points in otel.points().values() for p in points for v in p.attributes.values()
    ]
    for secret in secrets_sent(transport):
        assert all(secret not in value for value in seen)


@virtual_time
async def test_otel_a_span_per_call_with_an_event_per_attempt() -> None:
    otel = Otel()
    _, transport = await mixed_run(otel.collector)
    spans = otel.spans()
    assert [s.name for s in spans] == [f"livestats.tencent.{OP}"] * 6
    assert all(s.kind is SpanKind.CLIENT for s in spans)
    ids = [attrs_of(s)["livestats.call_id"] for s in spans]
    assert ids == list(range(ids[0], ids[0] + 6))  # numbered in order, process-wide
    assert [len(s.events) for s in spans] == [1, 2, 2, 2, 1, 1]
    a, b, c, d, e, f = spans

    def ns(seconds: float) -> int:
        return round(seconds * 1e9)

    assert attrs_of(a) == {
        "livestats.provider": "tencent",
        "livestats.operation": OP,
        "livestats.quota_key": KEY,
        "livestats.outcome": "ok",
        "livestats.call_id": ids[0],
        "livestats.attempts": 1,
    }
    assert a.status.status_code is StatusCode.UNSET
    first, second = b.events
    assert first.name == "livestats.attempt"
    assert attrs_of(first) == {
        "livestats.attempt": 1,
        "livestats.outcome": "ProviderError",
        "livestats.latency_s": 0.05,
        "http.response.status_code": 200,
        "livestats.vendor_code": "100001",
        "error.type": "ProviderError",
    }
    assert attrs_of(second) == {
        "livestats.attempt": 2,
        "livestats.outcome": "ok",
        "livestats.latency_s": 0.02,
        "http.response.status_code": 200,
    }
    # C: the 429 at the start, then a 1 s pause, then the answer at the end.
    assert c.end_time - c.start_time == ns(1.0)  # type: ignore[operator]
    throttled, answered = c.events
    assert throttled.timestamp == c.start_time
    assert answered.timestamp == c.end_time
    assert attrs_of(throttled)["http.response.status_code"] == 429
    assert attrs_of(d.events[0])["livestats.vendor_code"] == "60007"
    # E: the lockout fails the call.
    assert e.status.status_code is StatusCode.ERROR
    assert e.status.description == "AuthenticationError"
    assert attrs_of(e)["error.type"] == "AuthenticationError"
    assert attrs_of(e.events[0])["livestats.vendor_code"] == "70050"
    # F: 60 s of the client's pause, then one attempt at the end.
    assert f.end_time - f.start_time == ns(60.0)  # type: ignore[operator]
    assert f.events[0].timestamp == f.end_time
    assert f.status.status_code is StatusCode.UNSET
    assert otel.collector.buffered_calls == 0

    texts = [s.name for s in spans]
    texts += [str(v) for s in spans for v in attrs_of(s).values()]
    texts += [str(v) for s in spans for ev in s.events for v in attrs_of(ev).values()]
    for secret in secrets_sent(transport):
        assert all(secret not in text for text in texts)


@virtual_time
async def test_otel_a_call_span_is_a_child_of_the_span_it_was_awaited_in() -> None:
    otel = Otel()
    client = tencent(scripted([ok()]), otel.collector)
    with otel.tracers.get_tracer("app").start_as_current_span("job") as job:
        await client.get_room_stats("room-1")
    call, parent = otel.spans()
    assert parent.name == "job"
    assert call.parent is not None
    assert call.parent.span_id == job.get_span_context().span_id
    assert call.context.trace_id == job.get_span_context().trace_id


@virtual_time
async def test_otel_gauges_return_to_zero_and_spans_end_when_cancelled() -> None:
    otel = Otel()
    seen: list[tuple[float, float]] = []

    def during() -> None:
        seen.append(
            (
                otel.value("livestats.in_flight", **tencent_key()),
                otel.value("livestats.waiting", **tencent_key()),
            )
        )

    await cancelled_run(otel.collector, during)
    assert seen == [(1, 2)]
    assert otel.value("livestats.in_flight", **tencent_key()) == 0
    assert otel.value("livestats.waiting", **tencent_key()) == 0
    cancelled = otel.point(
        "http.client.request.duration", error__type="CancelledError", **tencent_op()
    )
    assert cancelled.count == 1  # no status: no answer came
    spans = otel.spans()
    assert len(spans) == 3
    for span in spans:
        assert attrs_of(span)["error.type"] == "CancelledError"
        assert span.status.status_code is StatusCode.UNSET  # cancelling is no vendor failure
    assert sorted(len(s.events) for s in spans) == [0, 0, 1]
    assert otel.collector.buffered_calls == 0


@virtual_time
async def test_otel_two_clients_call_1_are_told_apart() -> None:
    """Both clients number their first call 1; each span gets its own attempts."""
    otel = Otel()
    slow = asyncio.Event()

    async def first_vendor(request: HttpRequest) -> HttpResponse:
        await slow.wait()
        return ok()

    first = tencent(MockTransport(first_vendor), otel.collector, sdkappid=1400000001)
    second = tencent(scripted([fail(100001), ok()]), otel.collector, sdkappid=1400000002)
    pending = asyncio.create_task(first.get_room_stats("room-1"))
    await asyncio.sleep(0.1)
    await second.get_room_stats("room-2")  # call 1 of the second ends while the first's runs
    slow.set()
    await pending
    by_key = {attrs_of(s)["livestats.quota_key"]: s for s in otel.spans()}
    one, two = by_key[f"tencent:1400000001:{OP}"], by_key[f"tencent:1400000002:{OP}"]
    assert attrs_of(one)["livestats.call_id"] != attrs_of(two)["livestats.call_id"]
    assert [attrs_of(ev)["livestats.outcome"] for ev in one.events] == ["ok"]
    assert [attrs_of(ev)["livestats.outcome"] for ev in two.events] == ["ProviderError", "ok"]


def attempt(call_id: int, number: int = 1) -> RequestFinished:
    return RequestFinished(
        provider="tencent",
        operation=OP,
        call_id=call_id,
        quota_key=KEY,
        outcome="ok",
        http_status=200,
        vendor_code=None,
        latency=0.01,
        attempt=number,
    )


def finished(call_id: int, attempts: int = 1) -> CallFinished:
    return CallFinished(
        provider="tencent",
        operation=OP,
        call_id=call_id,
        quota_key=KEY,
        outcome="ok",
        attempts=attempts,
        duration=0.01,
    )


@virtual_time
async def test_otel_buffered_attempts_are_bounded() -> None:
    """Calls that never end cannot grow memory: the oldest are dropped, attempts capped."""
    otel = Otel(max_buffered_calls=2)
    collector = otel.collector
    for call_id in (1, 2, 3, 4):  # four calls start; none ends
        collector(attempt(call_id))
    assert collector.buffered_calls == 2
    assert collector.dropped_calls == 2
    for call_id in (1, 2, 3, 4):
        collector(finished(call_id))
    assert [len(s.events) for s in otel.spans()] == [0, 0, 1, 1]  # 1 and 2 were dropped
    assert collector.buffered_calls == 0

    for number in range(1, 1001):  # one call with a thousand attempts
        collector(attempt(9, number))
    collector(finished(9, attempts=1000))
    span = otel.spans()[-1]
    assert len(span.events) == MAX_ATTEMPT_EVENTS
    assert attrs_of(span)["livestats.attempts"] == 1000
    assert repr(collector) == "<OpenTelemetryCollector 0 calls buffered, 2 dropped>"


def test_otel_buffer_bound_is_checked() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(livestats.ConfigurationError):
            OpenTelemetryCollector(max_buffered_calls=bad)  # type: ignore[arg-type]


@virtual_time
async def test_otel_without_providers_uses_the_global_no_op_ones() -> None:
    """No SDK configured: nothing is recorded, and nothing breaks or piles up."""
    collector = OpenTelemetryCollector()
    client, _ = await mixed_run(collector)
    assert client.event_failures == 0
    assert collector.buffered_calls == 0


# -- optional imports ------------------------------------------------------------------------


def test_import_livestats_imports_neither_library() -> None:
    script = (
        "import sys, livestats, livestats.events, livestats.metrics\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'prometheus_client', 'opentelemetry'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.fixture
def hidden() -> Iterator[Callable[[str, str], None]]:
    """Make ``library`` unimportable and ``module`` not yet imported, for one test."""
    with pytest.MonkeyPatch.context() as patch:

        def hide(library: str, module: str) -> None:
            patch.setitem(sys.modules, library, None)
            if module in sys.modules:
                patch.delitem(sys.modules, module)

        yield hide


@pytest.mark.parametrize(
    ("library", "module", "extra"),
    [
        ("prometheus_client", "livestats.metrics.prometheus", "prometheus"),
        ("opentelemetry", "livestats.metrics.otel", "otel"),
    ],
)
def test_a_missing_library_names_the_extra(
    hidden: Callable[[str, str], None], library: str, module: str, extra: str
) -> None:
    hidden(library, module)
    with pytest.raises(ImportError, match=rf"pip install 'livestats\[{extra}\]'"):
        importlib.import_module(module)
