"""Events: what a client reports as it works, and that a handler can never break a call."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

import livestats
from livestats import HttpRequest, HttpResponse, LocalLimiter, Quota, RetryPolicy
from livestats.events import (
    CallFinished,
    ClientPaused,
    Event,
    QuotaAdapted,
    RequestFinished,
    RequestSent,
    RetryScheduled,
    SlotWaited,
    Throttled,
    WaitStarted,
    chain,
)
from livestats.testing import MockTransport
from tests.virtual_time import virtual_time

SECRET = "events-test-secret-key-0123456789"
STATS = {
    "TotalViewers": 1,
    "TotalGiftsSent": 0,
    "TotalGiftCoins": 0,
    "TotalUniqueGiftSenders": 0,
    "TotalLikesReceived": 0,
    "TotalMsgCount": 0,
}


def ok() -> HttpResponse:
    doc = {"ActionStatus": "OK", "ErrorCode": 0, "RequestId": "r", "Response": STATS}
    return HttpResponse(status=200, body=json.dumps(doc).encode())


def fail(code: int) -> HttpResponse:
    doc = {"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": "no"}
    return HttpResponse(status=200, body=json.dumps(doc).encode())


def client(answers: list[HttpResponse], **kwargs: Any) -> livestats.TencentClient:
    def vendor(request: HttpRequest) -> HttpResponse:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    kwargs.setdefault("limiter", LocalLimiter())
    kwargs.setdefault("retry", RetryPolicy(attempts=3, initial_wait=0.5, max_wait=0.5))
    return livestats.TencentClient(
        1400000000, "admin", secret_key=SECRET, transport=MockTransport(vendor), **kwargs
    )


@virtual_time
async def test_a_call_reports_its_slot_wait_attempts_retries_and_end() -> None:
    events: list[Event] = []
    tencent = client([fail(100001), ok()], on_event=events.append)
    await tencent.get_room_stats("room-1")
    kinds = [type(event) for event in events]
    assert kinds == [
        WaitStarted,
        SlotWaited,
        RequestSent,
        RequestFinished,
        RetryScheduled,
        WaitStarted,
        SlotWaited,
        RequestSent,
        RequestFinished,
        CallFinished,
    ]
    first, second = (e for e in events if isinstance(e, RequestFinished))
    assert (first.outcome, first.vendor_code, first.attempt) == ("ProviderError", 100001, 1)
    assert (second.outcome, second.http_status, second.attempt) == ("ok", 200, 2)
    assert second.quota_key == "tencent:1400000000:get_room_stats"
    retry = next(e for e in events if isinstance(e, RetryScheduled))
    assert retry.error_type == "ProviderError"
    assert 0.25 <= retry.delay <= 0.5
    assert len({getattr(event, "call_id", None) for event in events}) == 1  # one call
    done = events[-1]
    assert isinstance(done, CallFinished)
    assert (done.outcome, done.attempts) == ("ok", 2)
    assert done.duration == pytest.approx(retry.delay)


@virtual_time
async def test_slot_waits_are_measured_on_the_clock() -> None:
    """The second call of a 1-per-second quota waits one second for its slot."""
    events: list[Event] = []
    tencent = client([ok()], on_event=events.append, quotas={"get_room_stats": Quota(1, 1.0)})
    await tencent.get_room_stats("room-1")
    await tencent.get_room_stats("room-2")
    waits = [e.seconds for e in events if isinstance(e, SlotWaited)]
    assert waits == [0.0, pytest.approx(1.0)]


@virtual_time
async def test_a_rate_limit_and_a_lockout_are_reported() -> None:
    events: list[Event] = []
    tencent = client([fail(60007), ok(), fail(70050)], on_event=events.append)
    await tencent.get_room_stats("room-1")
    with pytest.raises(livestats.AuthenticationError):
        await tencent.get_room_stats("room-1")
    throttled = [e for e in events if isinstance(e, Throttled)]
    # No length given: the learned limit is lowered instead of pausing the key.
    assert [(t.signal, t.pause) for t in throttled] == [("60007", 0.0)]
    adapted = [e for e in events if isinstance(e, QuotaAdapted)]
    assert [(a.quota_key, a.limit, a.configured, a.period) for a in adapted] == [
        ("tencent:1400000000:get_room_stats", 70, 100, 1.0)
    ]
    paused = [e for e in events if isinstance(e, ClientPaused)]
    assert [(p.seconds, p.reason) for p in paused] == [(60.0, "70050")]
    outcomes = [e.outcome for e in events if isinstance(e, CallFinished)]
    assert outcomes == ["ok", "AuthenticationError"]


@virtual_time
async def test_every_wait_and_request_is_closed_even_when_cancelled() -> None:
    """Gauges of waiting and in-flight calls stay true: a cancelled call closes both."""
    events: list[Event] = []
    hang = asyncio.Event()

    async def vendor(request: HttpRequest) -> HttpResponse:
        await hang.wait()
        return ok()

    tencent = livestats.TencentClient(
        1400000000,
        "admin",
        secret_key=SECRET,
        transport=MockTransport(vendor),
        limiter=LocalLimiter(),
        quotas={"get_room_stats": Quota(1, 10.0)},
        on_event=events.append,
    )
    calls = [asyncio.create_task(tencent.get_room_stats(f"room-{i}")) for i in range(3)]
    await asyncio.sleep(1)
    for task in calls:
        task.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    count = {kind: sum(isinstance(e, kind) for e in events) for kind in (WaitStarted, SlotWaited)}
    assert count[WaitStarted] == count[SlotWaited] == 3
    sent = sum(isinstance(e, RequestSent) for e in events)
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert sent == len(finished) == 1
    assert finished[0].outcome == "CancelledError"


@virtual_time
async def test_no_event_carries_a_secret() -> None:
    events: list[Event] = []
    tencent = client([fail(70003)], on_event=events.append)
    with pytest.raises(livestats.AuthenticationError):
        await tencent.get_room_stats("room-1")
    assert events
    assert all(SECRET not in repr(event) for event in events)


@virtual_time
async def test_a_failing_handler_never_breaks_a_call_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Event) -> None:
        raise ValueError("handler bug")

    tencent = client([ok()], on_event=broken)
    with caplog.at_level(logging.WARNING, logger="livestats"):
        for _ in range(3):
            await tencent.get_room_stats("room-1")
    assert tencent.event_failures == 15  # five events a call, each raised
    assert sum("on_event handler" in r.getMessage() for r in caplog.records) == 1


@virtual_time
async def test_a_slow_async_handler_holds_nothing_up() -> None:
    """An async handler runs as its own task: the call ends before the handler does."""
    seen: list[Event] = []
    release = asyncio.Event()

    async def slow(event: Event) -> None:
        await release.wait()
        seen.append(event)

    tencent = client([ok()], on_event=slow)
    await tencent.get_room_stats("room-1")
    assert seen == []
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(seen) == 5


@virtual_time
async def test_chain_gives_every_event_to_each_handler() -> None:
    first: list[Event] = []
    second: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    tencent = client([ok()], on_event=chain(first.append, broken, second.append))
    await tencent.get_room_stats("room-1")
    assert len(first) == len(second) == 5
    assert tencent.event_failures == 5


def test_a_handler_that_is_not_a_function_is_refused() -> None:
    with pytest.raises(livestats.ConfigurationError):
        client([ok()], on_event="print")
    with pytest.raises(livestats.ConfigurationError):
        chain(print, 42)  # type: ignore[arg-type]


@virtual_time
async def test_a_transport_bug_still_closes_its_request_event() -> None:
    """A transport that raises something of its own (a bug) leaves no request open."""
    events: list[Event] = []

    def vendor(request: HttpRequest) -> HttpResponse:
        raise KeyError("transport bug")

    tencent = livestats.TencentClient(
        1400000000,
        "admin",
        secret_key=SECRET,
        transport=MockTransport(vendor),
        limiter=LocalLimiter(),
        on_event=events.append,
    )
    with pytest.raises(KeyError):
        await tencent.get_room_stats("room-1")
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert [e.outcome for e in finished] == ["KeyError"]
    assert isinstance(events[-1], CallFinished)
    assert events[-1].outcome == "KeyError"


@virtual_time
async def test_one_lockout_is_one_client_paused_event_however_many_calls_meet_it() -> None:
    """Five calls in flight meet one 70050 lockout together: one pause, one event."""
    events: list[Event] = []
    all_sent = asyncio.Event()
    seen = 0

    async def vendor(request: HttpRequest) -> HttpResponse:
        nonlocal seen
        seen += 1
        if seen == 1:
            return ok()  # the credentials are accepted first
        if seen == 6:
            all_sent.set()
        await all_sent.wait()
        return fail(70050)

    tencent = livestats.TencentClient(
        1400000000,
        "admin",
        secret_key=SECRET,
        transport=MockTransport(vendor),
        limiter=LocalLimiter(),
        on_event=events.append,
    )
    await tencent.get_room_stats("room-0")
    results = await asyncio.gather(
        *(tencent.get_room_stats(f"room-{i}") for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, livestats.AuthenticationError) for r in results)
    assert sum(isinstance(e, ClientPaused) for e in events) == 1


@virtual_time
async def test_a_rate_limit_is_reported_with_pacing_off_too() -> None:
    events: list[Event] = []
    tencent = client([fail(60007), ok()], on_event=events.append, quotas={"get_room_stats": None})
    await tencent.get_room_stats("room-1")
    assert [(e.signal, e.pause) for e in events if isinstance(e, Throttled)] == [("60007", 0.0)]
