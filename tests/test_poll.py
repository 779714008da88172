"""Pollers: sweeps on a drift-free schedule, on virtual time over MockTransport.

Every test runs on a loop whose clock jumps to its next timer (``@virtual_time``),
and the clients' wall clock is that same clock plus an epoch, so a sweep's
``started_at`` says exactly where on the schedule it began.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
from collections.abc import AsyncGenerator, Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

import livestats
from livestats import (
    ChannelNotLiveError,
    ChinaNetCenterClient,
    Clock,
    HttpRequest,
    HttpResponse,
    LocalLimiter,
    PolyvClient,
    Quota,
    RetryPolicy,
    RoomStats,
    Sweep,
    TencentClient,
    ValidationError,
)
from livestats.events import Event, RequestFinished, RequestSent, SweepLate
from livestats.testing import MockTransport
from tests.virtual_time import virtual_time

K = TypeVar("K")
V = TypeVar("V")

SECRET = "poll-test-secret-key-0123456789"
#: The clients' wall clock reads the loop's virtual clock plus this (2026-11-14, UTC).
EPOCH = 1_794_614_400.0


def loop_wall() -> float:
    return asyncio.get_running_loop().time() + EPOCH


def at(moment: datetime) -> float:
    """A sweep's datetime as a reading of the loop's clock."""
    return moment.timestamp() - EPOCH


def clock() -> Clock:
    """The loop's own clock, with a wall clock that moves with it."""
    return Clock(wall=loop_wall)


class TencentVendor:
    """Tencent's two endpoints over a set of rooms the test changes between sweeps.

    ``delay(room_id)`` is how long an answer of ``get_room_stats`` takes, in loop
    seconds; ``hang`` holds every answer until set.
    """

    def __init__(self, rooms: list[str]) -> None:
        self.rooms = list(rooms)
        self.delay: Callable[[str], float] = lambda room: 0.0
        self.hang: asyncio.Event | None = None
        #: (loop time, room, sweep number) of each stats request; the test numbers sweeps.
        self.stats_at: list[tuple[float, str, int]] = []
        self.sweep = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        body = json.loads(request.body or b"{}")
        operation = request.url.rsplit("/", 1)[-1]
        if operation == "get_room_list":
            start = int(body["Next"] or 0)
            page = self.rooms[start : start + body["Count"]]
            end = start + len(page)
            payload: dict[str, Any] = {
                "Next": str(end) if end < len(self.rooms) else "",
                "RoomList": [listing(room) for room in page],
            }
            return tencent_ok(payload)
        room = body["RoomId"]
        self.stats_at.append((asyncio.get_running_loop().time(), room, self.sweep))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.hang is not None:
                await self.hang.wait()
            await asyncio.sleep(self.delay(room))
        finally:
            self.in_flight -= 1
        return tencent_ok(stats(room))


def tencent_ok(payload: dict[str, Any]) -> HttpResponse:
    doc = {"ActionStatus": "OK", "ErrorCode": 0, "RequestId": "r", "Response": payload}
    return HttpResponse(status=200, body=json.dumps(doc).encode())


def stats(room: str) -> dict[str, int]:
    return {
        "TotalViewers": len(room),
        "TotalGiftsSent": 0,
        "TotalGiftCoins": 0,
        "TotalUniqueGiftSenders": 0,
        "TotalLikesReceived": 0,
        "TotalMsgCount": 0,
    }


def listing(room: str) -> dict[str, Any]:
    return {
        "RoomId": room,
        "RoomName": room,
        "Owner_Account": "owner",
        "CreateTime": 1_700_000_000,
        "ActivityStatus": 1,
        "ViewCount": 1,
    }


def tencent(vendor: Any, **kwargs: Any) -> tuple[TencentClient, MockTransport]:
    transport = MockTransport(vendor)
    kwargs.setdefault("limiter", LocalLimiter())
    kwargs.setdefault("retry", RetryPolicy.disabled())
    client = TencentClient(
        1400000000, "admin", secret_key=SECRET, transport=transport, clock=clock(), **kwargs
    )
    return client, transport


def rooms(n: int) -> list[str]:
    return [f"room-{i:03d}" for i in range(n)]


async def take(poller: AsyncGenerator[Sweep[K, V], None], n: int) -> list[Sweep[K, V]]:
    """The first ``n`` sweeps, the poller closed after them."""
    sweeps: list[Sweep[K, V]] = []
    async with contextlib.aclosing(poller):
        async for sweep in poller:
            sweeps.append(sweep)
            if len(sweeps) == n:
                break
    return sweeps


async def drain(poller: AsyncGenerator[Sweep[K, V], None], into: list[Sweep[K, V]]) -> None:
    async for sweep in poller:
        into.append(sweep)


def keys(sweep: Sweep[K, Any]) -> list[K]:
    return [result.key for result in sweep.results]


def others() -> set[asyncio.Task[Any]]:
    """Tasks of the loop besides the test's own."""
    return asyncio.all_tasks() - {asyncio.current_task()}


# -- the schedule ---------------------------------------------------------------------------


@virtual_time
async def test_sweep_k_starts_at_k_times_every_however_long_sweeps_take() -> None:
    vendor = TencentVendor(rooms(5))
    lengths = iter([0.3, 4.2, 0.01, 2.9, 1.7, 0.0, 3.3])
    sweep_length = {"now": 0.0}

    def delay(room: str) -> float:
        if room == "room-000":  # the first room of a sweep sets how long that sweep takes
            sweep_length["now"] = next(lengths)
        return sweep_length["now"]

    vendor.delay = delay
    client, _ = tencent(vendor)
    first = asyncio.get_running_loop().time()

    sweeps = await take(client.poll_room_stats(rooms(5), every=5), 7)

    starts = [at(sweep.started_at) - first for sweep in sweeps]
    assert starts == pytest.approx([5.0 * k for k in range(7)], abs=1e-6)
    # The first sweep takes twice its length: one request tests the credentials first.
    for sweep, length in zip(sweeps, [0.6, 4.2, 0.01, 2.9, 1.7, 0.0, 3.3], strict=True):
        taken = (sweep.finished_at - sweep.started_at).total_seconds()
        assert taken == pytest.approx(length, abs=1e-5)
        assert sweep.started_at.tzinfo is not None
        assert sorted(keys(sweep)) == rooms(5)  # one result per room, every sweep
        assert sweep.failed == 0
    await client.close()


@virtual_time
async def test_a_slow_caller_does_not_move_the_schedule() -> None:
    """Time the caller spends between sweeps is part of the interval, not added to it."""
    client, _ = tencent(TencentVendor(rooms(3)))
    first = asyncio.get_running_loop().time()
    starts: list[float] = []
    poller = client.poll_room_stats(rooms(3), every=10)
    async with contextlib.aclosing(poller):
        async for sweep in poller:
            starts.append(at(sweep.started_at) - first)
            if len(starts) == 4:
                break
            await asyncio.sleep(7.5)  # the caller's own work
    assert starts == pytest.approx([0.0, 10.0, 20.0, 30.0], abs=1e-6)
    await client.close()


@virtual_time
async def test_an_overrun_sweep_is_followed_at_once_and_the_grid_resumes() -> None:
    """Slots a sweep overran entirely are skipped, not made up by a burst of sweeps."""
    vendor = TencentVendor(["room-000"])
    lengths = iter([1.0, 12.5, 1.0, 1.0])
    vendor.delay = lambda room: next(lengths)
    client, _ = tencent(vendor)
    first = asyncio.get_running_loop().time()

    sweeps = await take(client.poll_room_stats(["room-000"], every=5), 4)

    starts = [at(sweep.started_at) - first for sweep in sweeps]
    # Sweep 1 (due at 5) runs to 17.5: sweep 2 starts then, and sweep 3 is due at 20.
    assert starts == pytest.approx([0.0, 5.0, 17.5, 20.0], abs=1e-6)
    await client.close()


# -- rooms joining and leaving ----------------------------------------------------------------


@virtual_time
async def test_every_room_is_listed_again_for_each_sweep() -> None:
    vendor = TencentVendor(rooms(45))  # three pages of the room list
    client, _ = tencent(vendor)
    changes = [
        [*rooms(45), "room-new", "room-newer"],  # two rooms open
        rooms(30),  # seventeen close
        ["room-solo"],
        [],  # every room closed: an empty sweep, and the poller goes on
        rooms(2),
    ]
    seen: list[list[str]] = []
    poller = client.poll_room_stats(every=60)
    async with contextlib.aclosing(poller):
        async for sweep in poller:
            assert all(result.ok for result in sweep.results)
            values = [result.unwrap() for result in sweep.results]
            assert all(isinstance(value, RoomStats) for value in values)
            assert {value.room_id for value in values} == set(keys(sweep))
            seen.append(sorted(keys(sweep)))
            if not changes:
                break
            vendor.rooms = changes.pop(0)

    assert seen == [
        rooms(45),
        sorted([*rooms(45), "room-new", "room-newer"]),
        rooms(30),
        ["room-solo"],
        [],
        rooms(2),
    ]
    await client.close()


@virtual_time
async def test_a_room_listed_twice_is_swept_once() -> None:
    vendor = TencentVendor(["room-a", "room-b", "room-a"])  # the list shifted while paging
    client, _ = tencent(vendor)
    [sweep] = await take(client.poll_room_stats(every=60), 1)
    assert sorted(keys(sweep)) == ["room-a", "room-b"]
    await client.close()


@virtual_time
async def test_ids_given_are_swept_each_once_in_every_sweep() -> None:
    vendor = TencentVendor([])
    client, transport = tencent(vendor)
    sweeps = await take(client.poll_room_stats(["r1", "r2", "r1", "r3"], every=1), 3)
    assert [sorted(keys(sweep)) for sweep in sweeps] == [["r1", "r2", "r3"]] * 3
    assert not any(request.url.endswith("get_room_list") for request in transport.requests)
    await client.close()


# -- when the quota cannot fit a sweep --------------------------------------------------------


@virtual_time
async def test_a_sweep_the_quota_cannot_fit_is_reported_and_sweeps_run_back_to_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """100 rooms at 10/s cannot be swept every 5 s: 20/s would be needed."""
    events: list[Event] = []
    vendor = TencentVendor(rooms(100))
    client, _ = tencent(vendor, quotas={"get_room_stats": Quota(10, 1.0)}, on_event=events.append)
    first = asyncio.get_running_loop().time()

    sweeps: list[Sweep[str, RoomStats]] = []
    poller = client.poll_room_stats(rooms(100), every=5)
    with caplog.at_level(logging.WARNING, logger="livestats"):
        async with contextlib.aclosing(poller):
            async for sweep in poller:
                sweeps.append(sweep)
                vendor.sweep = len(sweeps)  # what the vendor sees next belongs to the next
                if len(sweeps) == 3:
                    break

    late = [event for event in events if isinstance(event, SweepLate)]
    assert late == [
        SweepLate(
            provider="tencent",
            operation="get_room_stats",
            items=100,
            every=5.0,
            needed_rate=20.0,
            quota_rate=10.0,
        )
    ]  # said once: the room count never changed
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "20/s" in warnings[0].getMessage()
    assert "10/s" in warnings[0].getMessage()

    assert at(sweeps[0].started_at) == pytest.approx(first)
    for before, after in itertools.pairwise(sweeps):
        # Back to back: each starts the moment the last ends, never before.
        assert after.started_at == before.finished_at
        assert (before.finished_at - before.started_at).total_seconds() > 5
    for number, sweep in enumerate(sweeps):
        assert sorted(keys(sweep)) == rooms(100)
        # Every request of a sweep was sent within it: sweeps never overlap.
        sent = [t for t, _, n in vendor.stats_at if n == number]
        assert len(sent) == 100
        assert all(at(sweep.started_at) <= t <= at(sweep.finished_at) for t in sent)
    assert len(vendor.stats_at) == 300
    await client.close()


@virtual_time
async def test_the_fit_is_worked_out_again_when_the_room_count_changes() -> None:
    events: list[Event] = []
    vendor = TencentVendor(rooms(40))
    client, _ = tencent(vendor, quotas={"get_room_stats": Quota(10, 1.0)}, on_event=events.append)
    counts = [40, 60, 60, 70]  # 40 fit in 5 s at 10/s; 60 and 70 do not
    poller = client.poll_room_stats(every=5)
    async with contextlib.aclosing(poller):
        async for _ in poller:
            counts.pop(0)
            if not counts:
                break
            vendor.rooms = rooms(counts[0])

    late = [(e.items, e.needed_rate) for e in events if isinstance(e, SweepLate)]
    assert late == [(60, 12.0), (70, 14.0)]
    await client.close()


@virtual_time
async def test_a_sweep_that_fits_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    events: list[Event] = []
    client, _ = tencent(
        TencentVendor([]), quotas={"get_room_stats": Quota(10, 1.0)}, on_event=events.append
    )
    first = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING, logger="livestats"):
        sweeps = await take(client.poll_room_stats(rooms(50), every=5), 3)
    assert not any(isinstance(event, SweepLate) for event in events)
    assert caplog.records == []
    assert [at(s.started_at) - first for s in sweeps] == pytest.approx([0, 5, 10], abs=1e-6)
    await client.close()


# -- stopping ---------------------------------------------------------------------------------


@virtual_time
async def test_breaking_out_leaves_no_task_and_sends_nothing_more() -> None:
    vendor = TencentVendor(rooms(20))
    client, transport = tencent(vendor)
    async for sweep in client.poll_room_stats(every=5):  # no aclosing: a plain break
        assert len(sweep.results) == 20
        break
    assert others() == set()
    sent = len(transport.requests)
    await asyncio.sleep(60)
    assert len(transport.requests) == sent
    await client.close()


@virtual_time
async def test_cancelling_during_a_sweep_ends_every_call_and_leaves_no_task() -> None:
    events: list[Event] = []
    vendor = TencentVendor(rooms(20))
    client, transport = tencent(vendor, on_event=events.append)
    got: list[Sweep[str, RoomStats]] = []

    async def watch() -> None:
        async for sweep in client.poll_room_stats(every=5):
            got.append(sweep)
            vendor.hang = asyncio.Event()  # the second sweep never gets an answer

    task = asyncio.create_task(watch())
    await asyncio.sleep(6)  # the second sweep is due at 5 and all its calls hang
    assert vendor.in_flight == 20
    assert len(got) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert others() == set()
    assert vendor.in_flight == 0
    sent = [e for e in events if isinstance(e, RequestSent)]
    finished = [e for e in events if isinstance(e, RequestFinished)]
    assert len(sent) == len(finished)  # every request sent has ended: none in flight
    assert {e.outcome for e in finished[-20:]} == {"CancelledError"}
    count = len(transport.requests)
    await asyncio.sleep(60)
    assert len(transport.requests) == count
    await client.close()


@virtual_time
async def test_cancelling_between_sweeps_leaves_no_task() -> None:
    client, transport = tencent(TencentVendor(rooms(3)))
    got: list[Sweep[str, RoomStats]] = []

    async def watch() -> None:
        async for sweep in client.poll_room_stats(every=30):
            got.append(sweep)

    task = asyncio.create_task(watch())
    await asyncio.sleep(10)  # the poller waits for its next slot
    assert len(got) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert others() == set()
    count = len(transport.requests)
    await asyncio.sleep(60)
    assert len(transport.requests) == count
    await client.close()


@virtual_time
async def test_refused_credentials_end_the_poller_after_their_sweep() -> None:
    """An error that dooms the batch: its sweep comes back with what it has, then it raises."""

    def refuse(request: HttpRequest) -> HttpResponse:
        doc = {"ActionStatus": "FAIL", "ErrorCode": 70003, "ErrorInfo": "bad usersig"}
        return HttpResponse(status=200, body=json.dumps(doc).encode())

    client, transport = tencent(refuse)
    sweeps: list[Sweep[str, RoomStats]] = []
    with pytest.raises(livestats.AuthenticationError):
        await drain(client.poll_room_stats(rooms(10), every=5), sweeps)
    [sweep] = sweeps
    assert sweep.results
    assert all(isinstance(result.error, livestats.AuthenticationError) for result in sweep.results)
    assert len(transport.requests) == 1
    await client.close()


@virtual_time
async def test_a_room_list_that_fails_ends_the_poller_with_its_error() -> None:
    def down(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=503, body=b"<html>unavailable</html>")

    client, _ = tencent(down)
    with pytest.raises(livestats.ProviderError):
        async for _ in client.poll_room_stats(every=5):
            pass
    assert others() == set()
    await client.close()


# -- what is refused before anything is sent --------------------------------------------------

BAD_EVERY = [0, -1, 0.0, float("nan"), float("inf"), "5", None, True, 10**400, 366 * 86400]


@pytest.mark.parametrize("every", BAD_EVERY, ids=repr)
@virtual_time
async def test_a_bad_every_is_refused_before_anything_is_sent(every: Any) -> None:
    client, transport = tencent(TencentVendor(rooms(3)))
    polyv, polyv_transport = polyv_client(lambda request: polyv_samples([]))
    cnc, cnc_transport = cnc_client(lambda request: cnc_ok())
    with pytest.raises(ValidationError, match="every"):
        client.poll_room_stats(every=every)
    with pytest.raises(ValidationError, match="every"):
        client.poll_room_stats(rooms(3), every=every)
    with pytest.raises(ValidationError, match="every"):
        polyv.poll_stream_info(["1"], every=every)
    with pytest.raises(ValidationError, match="every"):
        cnc.poll_stream_durations({"d.example.com": ["live/s"]}, every=every)
    assert transport.requests == polyv_transport.requests == cnc_transport.requests == []
    for each in (client, polyv, cnc):
        await each.close()


@pytest.mark.parametrize(
    "room_ids",
    [[], "room-1", ["ok", ""], ["ok", 7], ["x" * 49], ["line\nbreak"]],
    ids=repr,
)
@virtual_time
async def test_bad_room_ids_are_refused_before_anything_is_sent(room_ids: Any) -> None:
    client, transport = tencent(TencentVendor([]))
    with pytest.raises(ValidationError):
        client.poll_room_stats(room_ids, every=5)
    assert transport.requests == []
    await client.close()


@virtual_time
async def test_bad_channels_windows_and_streams_are_refused_before_anything_is_sent() -> None:
    polyv, transport = polyv_client(lambda request: polyv_samples([]))
    cases: list[tuple[Any, Any]] = [
        ([], timedelta(minutes=10)),
        ("2477096", timedelta(minutes=10)),
        ([""], timedelta(minutes=10)),
        (["1"], timedelta(0)),
        (["1"], timedelta(days=2)),
        (["1"], 600),
    ]
    for channels, window in cases:
        with pytest.raises(ValidationError):
            polyv.poll_stream_info(channels, every=5, window=window)
    cnc, cnc_transport = cnc_client(lambda request: cnc_ok())
    bad_streams: list[Any] = [{}, {"d.example.com": []}, {"d.example.com": ["no-slash"]}]
    for streams in bad_streams:
        with pytest.raises(ValidationError):
            cnc.poll_stream_durations(streams, every=5)
    assert transport.requests == cnc_transport.requests == []
    await polyv.close()
    await cnc.close()


# -- Polyv and ChinaNetCenter ----------------------------------------------------------------


def polyv_samples(items: list[dict[str, Any]]) -> HttpResponse:
    doc = {"code": 200, "status": "success", "message": "", "data": items}
    return HttpResponse(status=200, body=json.dumps(doc).encode())


def polyv_client(vendor: Any, **kwargs: Any) -> tuple[PolyvClient, MockTransport]:
    transport = MockTransport(vendor)
    kwargs.setdefault("limiter", LocalLimiter())
    kwargs.setdefault("retry", RetryPolicy.disabled())
    client = PolyvClient("app", "polyv-secret", transport=transport, clock=clock(), **kwargs)
    return client, transport


@virtual_time
async def test_polyv_sweeps_ask_for_the_window_before_each_sweep() -> None:
    sample = {
        "streamUrl": "recordf",
        "bitRate": "1157120",
        "audioFrameRate": "46",
        "videoFrameRate": "13",
        "time": "2026-11-14 08:00:00",
    }

    def vendor(request: HttpRequest) -> HttpResponse:
        if request.params["channelId"] == "offline":
            doc = {"code": 400, "status": "error", "message": "channel status not live"}
            return HttpResponse(status=200, body=json.dumps(doc).encode())
        return polyv_samples([sample])

    client, transport = polyv_client(vendor)
    sweeps = await take(
        client.poll_stream_info(["1", "2", "offline", "1"], every=30, window=timedelta(minutes=5)),
        2,
    )
    for sweep in sweeps:
        assert sorted(keys(sweep)) == ["1", "2", "offline"]
        by_key = {result.key: result for result in sweep.results}
        assert isinstance(by_key["offline"].error, ChannelNotLiveError)
        assert by_key["1"].unwrap()[0].bit_rate == 1157120
    starts = sorted({int(request.params["startTime"]) for request in transport.requests})
    expected = [
        round((sweep.started_at - timedelta(minutes=5)).timestamp() * 1000) for sweep in sweeps
    ]
    assert starts == expected
    assert all("endTime" not in request.params for request in transport.requests)
    assert (sweeps[1].started_at - sweeps[0].started_at).total_seconds() == pytest.approx(30)
    await client.close()


@virtual_time
async def test_polyv_reports_a_sweep_its_quota_cannot_fit() -> None:
    events: list[Event] = []
    client, _ = polyv_client(
        lambda request: polyv_samples([]),
        quotas={"get_stream_info": Quota(15, 10.0)},
        on_event=events.append,
    )
    await take(client.poll_stream_info([str(i) for i in range(4)], every=2), 1)
    assert [
        (e.provider, e.items, e.needed_rate, e.quota_rate)
        for e in events
        if isinstance(e, SweepLate)
    ] == [("polyv", 4, 2.0, 1.5)]
    await client.close()


def cnc_ok() -> HttpResponse:
    return HttpResponse(status=200, body=json.dumps({"code": "0", "data": []}).encode())


def cnc_client(vendor: Any, **kwargs: Any) -> tuple[ChinaNetCenterClient, MockTransport]:
    transport = MockTransport(vendor)
    kwargs.setdefault("limiter", LocalLimiter())
    kwargs.setdefault("retry", RetryPolicy.disabled())
    client = ChinaNetCenterClient(
        "user", "cnc-api-key", transport=transport, clock=clock(), **kwargs
    )
    return client, transport


@virtual_time
async def test_chinanetcenter_sweeps_ask_for_today_one_result_per_domain() -> None:
    bodies: list[dict[str, Any]] = []

    def vendor(request: HttpRequest) -> HttpResponse:
        bodies.append(json.loads(request.body or b"{}"))
        return cnc_ok()

    # GMT-10:00: the virtual wall clock (2026-11-14 00:00 UTC onwards) is still the 13th there.
    client, _ = cnc_client(vendor, time_zone="GMT-10:00")
    streams = {"a.example.com": ["live/1", "live/2"], "b.example.com": ["live/3"]}
    sweeps = await take(client.poll_stream_durations(streams, every=60), 2)

    for sweep in sweeps:
        assert sorted(keys(sweep)) == ["a.example.com", "b.example.com"]
        durations = {result.key: result.unwrap() for result in sweep.results}
        assert [d.stream for d in durations["a.example.com"]] == ["live/1", "live/2"]
        assert all(d.total == timedelta(0) for ds in durations.values() for d in ds)
    assert len(bodies) == 4
    assert {(body["dateFrom"], body["dateTo"]) for body in bodies} == {("2026-11-13", "2026-11-13")}
    assert client.today() == date(2026, 11, 13)
    await client.close()


@virtual_time
async def test_chinanetcenter_reports_more_domains_than_its_quota_allows_in_every() -> None:
    events: list[Event] = []
    client, _ = cnc_client(lambda request: cnc_ok(), on_event=events.append)
    streams = {f"d{i}.example.com": ["live/s"] for i in range(3)}
    await take(client.poll_stream_durations(streams, every=2), 1)
    late = [e for e in events if isinstance(e, SweepLate)]
    assert [(e.operation, e.items, e.needed_rate, e.quota_rate) for e in late] == [
        ("get_stream_durations", 3, 1.5, 1.0)
    ]
    await client.close()


def test_sweep_is_exported_and_frozen() -> None:
    now = datetime.now(timezone.utc)
    sweep: Sweep[str, int] = Sweep(started_at=now, finished_at=now, results=[])
    assert livestats.Sweep is Sweep
    with pytest.raises(AttributeError):
        sweep.started_at = now  # type: ignore[misc]
    assert sweep.failed == 0
    assert math.isclose((sweep.finished_at - sweep.started_at).total_seconds(), 0.0)
