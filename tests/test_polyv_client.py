"""PolyvClient against the simulator: results, bulk calls, input checks, clock skew, IP blocks."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web

from livestats import (
    AuthenticationError,
    BatchResult,
    Clock,
    ConfigurationError,
    CredentialsExpiredError,
    LiveStatsError,
    LocalLimiter,
    ProviderError,
    Quota,
    RateLimitedError,
    RetryPolicy,
    ValidationError,
)
from livestats.errors import ChannelNotLiveError
from livestats.providers.polyv import wire
from livestats.providers.polyv.client import PolyvClient
from livestats.providers.polyv.models import StreamInfoSample
from livestats.testing import PolyvCredentials, PolyvSim, Simulator, TencentSim
from tests.conftest import add_latency, collect, drain
from tests.virtual_time import virtual_time

OP = "get_stream_info"
BEIJING = timezone(timedelta(hours=8))
MakeClient = Callable[..., PolyvClient]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=11, tencent=TencentSim(rooms=1)) as simulator:
        yield simulator


@pytest.fixture
async def make_client(sim: Simulator) -> AsyncIterator[MakeClient]:
    """Clients for ``sim``: instant retries and a limiter of their own unless a test says.

    The process-wide default limiter would carry one test's slots and pauses into
    the next (every simulator is on 127.0.0.1, so they all share one quota key).
    """
    clients: list[PolyvClient] = []

    def make(**kwargs: Any) -> PolyvClient:
        kwargs.setdefault("retry", RetryPolicy.instant())
        kwargs.setdefault("limiter", LocalLimiter())
        app_id = kwargs.pop("app_id", sim.polyv.app_id)
        app_secret = kwargs.pop("app_secret", sim.polyv.app_secret)
        client = PolyvClient(app_id, app_secret, base_url=sim.url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- results -------------------------------------------------------------------------------


async def test_stream_info_returns_typed_samples_of_the_last_3_hours(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    channel = sim.channel_ids[0]
    samples = await client.get_stream_info(channel)
    assert 30 <= len(samples) <= 37  # one every 5 minutes
    assert all(isinstance(s, StreamInfoSample) for s in samples)
    first = samples[0]
    assert first.channel_id == channel
    assert first.stream_url
    assert all(
        isinstance(v, int) and v > 0
        for v in (first.bit_rate, first.audio_frame_rate, first.video_frame_rate)
    )
    assert first.time.utcoffset() == timedelta(hours=8)
    assert now() - timedelta(hours=3, minutes=1) <= first.time <= now()
    query = [sim.query_values(OP, name) for name in ("appId", "channelId", "startTime")]
    assert query == [[sim.polyv.app_id], [channel], [None]]  # the vendor's default window
    (timestamp,) = sim.query_values(OP, "timestamp")
    assert timestamp is not None
    assert len(timestamp) == 13
    assert abs(int(timestamp) / 1000 - time.time()) < 5


async def test_a_window_is_sent_as_epoch_milliseconds(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    end = now() - timedelta(days=2)
    start = end - timedelta(hours=1)
    samples = await client.get_stream_info(
        sim.channel_ids[1], start=start, end=end.astimezone(BEIJING)
    )
    assert 11 <= len(samples) <= 13
    assert all(start <= s.time <= end for s in samples)
    assert sim.query_values(OP, "startTime") == [str(wire.epoch_ms(start))]
    assert sim.query_values(OP, "endTime") == [str(wire.epoch_ms(end))]


async def test_only_start_or_only_end_leaves_the_other_to_the_vendor(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    await client.get_stream_info(sim.channel_ids[0], start=now() - timedelta(days=6))
    await client.get_stream_info(sim.channel_ids[0], end=now() - timedelta(hours=1))
    assert sim.query_values(OP, "endTime")[0] is None
    assert sim.query_values(OP, "startTime")[1] is None


async def test_a_channel_that_is_not_live_is_its_own_error(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    with pytest.raises(ChannelNotLiveError) as info:
        await client.get_stream_info(sim.offline_channel_ids[0])
    err = info.value
    assert (err.provider, err.operation, err.vendor_code) == ("polyv", OP, 400)
    assert err.vendor_message == "channel status not live"
    assert err.request_id is None
    assert len(sim.arrivals(OP)) == 1  # not retried


async def test_bulk_gives_one_result_per_input_and_goes_on_after_failures(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    live, offline = sim.channel_ids, sim.offline_channel_ids
    bad: list[Any] = ["", "   ", 3880533, None]
    results = await collect(client.get_stream_info_many([*live, *offline, "1", *bad]))
    assert len(results) == len(live) + len(offline) + 1 + len(bad)
    by_key = {repr(r.key): r for r in results}
    for channel in live:
        assert by_key[repr(channel)].unwrap()[0].channel_id == channel
    for channel in [*offline, "1"]:
        assert isinstance(by_key[repr(channel)].error, ChannelNotLiveError)
    for key in bad:
        assert isinstance(by_key[repr(key)].error, ValidationError)
    assert len(sim.arrivals(OP)) == len(live) + len(offline) + 1


async def test_bulk_refuses_a_bad_window_at_once(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(ValidationError, match="aware"):
        client.get_stream_info_many(sim.channel_ids, start=datetime.now())
    assert sim.arrivals(OP) == []


async def test_bulk_reads_an_async_input_lazily(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    taken: list[str] = []

    async def channels() -> AsyncIterator[str]:
        for channel in sim.channel_ids:
            taken.append(channel)
            yield channel

    batch = client.get_stream_info_many(channels(), concurrency=1)
    first = await batch.__anext__()
    assert first.ok
    assert len(taken) <= 2
    await batch.aclose()


# -- bad input ------------------------------------------------------------------------------


def _bad_windows() -> Iterator[tuple[str, dict[str, object], str]]:
    t = now()
    yield "naive start", {"start": datetime.now()}, "aware"
    yield "naive end", {"end": datetime.now()}, "aware"
    yield "date start", {"start": date.today()}, "must be a datetime"
    yield "epoch end", {"end": 1680831924443}, "must be a datetime"
    hour_ago, two_hours_ago = t - timedelta(hours=1), t - timedelta(hours=2)
    yield "start after end", {"start": hour_ago, "end": two_hours_ago}, "after end"
    yield "default start after end", {"end": t - timedelta(hours=4)}, "default start"
    yield "over 7 days", {"start": t - timedelta(days=9), "end": t - timedelta(days=1)}, "7 days"
    yield "start too old", {"start": t - timedelta(days=7, minutes=1)}, "last 7 days"
    yield "end in future", {"end": t + timedelta(minutes=5)}, "future"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [pytest.param(kwargs, fragment, id=name) for name, kwargs, fragment in _bad_windows()],
)
async def test_bad_windows_fail_before_sending(
    sim: Simulator, make_client: MakeClient, kwargs: dict[str, Any], fragment: str
) -> None:
    client = make_client()
    with pytest.raises(ValidationError, match=fragment):
        await client.get_stream_info(sim.channel_ids[0], **kwargs)
    assert sim.arrivals(OP) == []


@pytest.mark.parametrize("channel_id", ["", "  ", None, 3880533, b"3880533"])
async def test_bad_channel_ids_fail_before_sending(
    sim: Simulator, make_client: MakeClient, channel_id: object
) -> None:
    client = make_client()
    with pytest.raises(ValidationError, match="channel_id"):
        await client.get_stream_info(channel_id)  # type: ignore[arg-type]
    assert sim.arrivals(OP) == []


async def test_a_window_of_exactly_7_days_ending_now_is_accepted(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    end = now()
    samples = await client.get_stream_info(
        sim.channel_ids[0], start=end - timedelta(days=7) + timedelta(seconds=1), end=end
    )
    assert len(samples) > 2000


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (("", "secret"), {}, "app_id"),
        ((None, "secret"), {}, "app_id"),
        (("app", ""), {}, "app_secret"),
        (("app", 42), {}, "app_secret"),
        (("app", "secret"), {"on_block": "retry"}, "on_block"),
        (("app", "secret"), {"base_url": "ftp://x"}, "base_url"),
        (("app", "secret"), {"quotas": {"get_stream_infos": Quota(1, 1.0)}}, "get_stream_infos"),
        (("app", "secret"), {"timeout": 0}, "timeout"),
    ],
)
def test_bad_configuration_is_refused(
    args: tuple[object, ...], kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        PolyvClient(*args, **kwargs)  # type: ignore[arg-type]


def test_repr_shows_the_app_and_hides_the_secret() -> None:
    client = PolyvClient("g4rqgmmjuo", "fsq2k5weced1h8vui657xtdva66whf0g")
    text = repr(client)
    assert "g4rqgmmjuo" in text
    assert "https://api.polyv.net" in text
    assert "app_secret=[secure]" in text
    assert "fsq2k5weced1h8vui657xtdva66whf0g" not in text


# -- one quota for the whole host ------------------------------------------------------------


def test_every_app_and_operation_shares_the_hosts_quota_key() -> None:
    one = PolyvClient("app-one", "s1")
    other = PolyvClient("app-two", "s2", base_url="https://api.polyv.net/")
    assert one.quota_key(OP) == other.quota_key(OP) == "polyv:default:api.polyv.net"
    assert one.quotas == {OP: Quota(1500, 10.0, burst=150)}
    elsewhere = PolyvClient("app-one", "s1", source_ip="203.0.113.7")
    assert elsewhere.quota_key(OP) == "polyv:203.0.113.7:api.polyv.net"


@virtual_time
async def test_two_apps_on_one_host_together_stay_within_the_quota() -> None:
    quota = Quota(3, 0.4)
    limiter = LocalLimiter()
    simulator = Simulator(
        seed=11, clock=loop_time, tencent=TencentSim(rooms=1), polyv=PolyvSim(quotas={OP: quota})
    )
    async with add_latency(simulator, most=0.01, seed=11) as strict:
        first = PolyvClient(
            strict.polyv.app_id,
            strict.polyv.app_secret,
            base_url=strict.url,
            limiter=limiter,
            quotas={OP: quota},
            retry=RetryPolicy.instant(),
        )
        # Another app id: the simulator refuses its signature, but still counts its calls.
        second = PolyvClient(
            "otherapp01",
            "x" * 32,
            base_url=strict.url,
            limiter=limiter,
            quotas={OP: quota},
            retry=RetryPolicy.instant(),
        )

        async def refused(client: PolyvClient) -> list[BatchResult[str, list[StreamInfoSample]]]:
            taken: list[BatchResult[str, list[StreamInfoSample]]] = []
            with pytest.raises(AuthenticationError):
                await drain(client.get_stream_info_many(ids), taken)
            return taken

        async with first, second:
            ids = strict.channel_ids[:4]
            mine, theirs = await asyncio.gather(
                collect(first.get_stream_info_many(ids)), refused(second)
            )
        assert all(r.ok for r in mine)
        assert theirs
        assert all(isinstance(r.error, AuthenticationError) for r in theirs)
        # The refused app's batch stopped after its first answer: 4 calls and 1.
        assert len(strict.arrivals(OP)) == 5
        assert strict.violations(OP) == 0
        assert strict.max_in_window(OP) <= 3


# -- clock skew -------------------------------------------------------------------------------


def skewed(seconds: float) -> Clock:
    return Clock(wall=lambda: time.time() + seconds)


async def test_a_skewed_clock_is_corrected_from_the_date_header(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(clock=skewed(-600))
    await client.get_stream_info(sim.channel_ids[0])
    assert len(sim.arrivals(OP)) == 2  # refused, then accepted with the corrected time
    await client.get_stream_info(sim.channel_ids[1])
    assert len(sim.arrivals(OP)) == 3  # later calls are right the first time
    stamps = [int(t or 0) / 1000 for t in sim.query_values(OP, "timestamp")]
    assert stamps[0] == pytest.approx(time.time() - 600, abs=5)
    assert stamps[1] == pytest.approx(time.time(), abs=5)
    assert stamps[2] == pytest.approx(time.time(), abs=5)


async def test_a_timestamp_refused_twice_is_not_retried_again(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    sim.fail_next(OP, 400, times=2, message="invalid timestamp.")
    with pytest.raises(CredentialsExpiredError, match="clock"):
        await client.get_stream_info(sim.channel_ids[0])
    assert len(sim.arrivals(OP)) == 2


@asynccontextmanager
async def serve(handler: Callable[[web.Request], Any]) -> AsyncIterator[str]:
    """A one-route server on 127.0.0.1 answering the stream info path with ``handler``."""
    app = web.Application()
    app.router.add_get(wire.STREAM_INFO_PATH, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_without_a_usable_date_header_the_clock_error_surfaces() -> None:
    arrivals: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        arrivals.append(request.query["timestamp"])
        body = {"code": 400, "status": "error", "message": "invalid timestamp.", "data": ""}
        return web.json_response(body, status=400, headers={"Date": "not a date"})

    async with serve(refuse) as url:
        client = PolyvClient("app", "secret", base_url=url, limiter=LocalLimiter())
        async with client:
            with pytest.raises(CredentialsExpiredError) as info:
                await client.get_stream_info("3880533")
    assert info.value.vendor_message == "invalid timestamp."
    assert len(arrivals) == 1


# -- the IP block -----------------------------------------------------------------------------

BLOCK = 0.5


def loop_time() -> float:
    """The running loop's clock: on ``@virtual_time``, virtual seconds."""
    return asyncio.get_running_loop().time()


@pytest.fixture
def strict_sim(monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """3 calls per 0.5 s, and a 0.5 s block; the client's block is scaled to match.

    Not started: the tests start it on their own loop, on virtual time, where the
    block takes no real time and the simulator's windows follow the loop's clock.
    """
    monkeypatch.setattr(PolyvClient, "block_seconds", BLOCK)
    return Simulator(
        seed=11,
        clock=loop_time,
        tencent=TencentSim(rooms=1),
        polyv=PolyvSim(quotas={OP: Quota(3, 0.5)}, block_seconds=BLOCK),
    )


def strict_client(sim: Simulator, **kwargs: Any) -> PolyvClient:
    kwargs.setdefault("quotas", {OP: Quota(4, 0.5)})  # one more than the simulator allows
    return PolyvClient(
        sim.polyv.app_id,
        sim.polyv.app_secret,
        base_url=sim.url,
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
        **kwargs,
    )


def assert_until_block_end(err: BaseException, started: float) -> None:
    assert isinstance(err, RateLimitedError)
    assert not err.retryable
    assert err.until is not None
    assert err.until.tzinfo is not None
    ends = err.until.timestamp() - started
    assert BLOCK - 0.2 <= ends <= BLOCK + 0.2


@virtual_time
async def test_on_block_fail_fails_pending_and_new_calls_at_once(strict_sim: Simulator) -> None:
    async with strict_sim as sim, strict_client(sim) as client:
        started = time.time()
        outcomes = await asyncio.gather(
            *(client.get_stream_info(sim.channel_ids[i % 5]) for i in range(8)),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        # The refused call and the 4 waiting for a slot; had they waited, they would
        # have succeeded after the block.
        assert len(errors) == 5
        for err in errors:
            assert_until_block_end(err, started)
        assert len(sim.arrivals(OP)) == 4
        assert sim.violations(OP) == 1

        with pytest.raises(RateLimitedError) as info:
            await client.get_stream_info(sim.channel_ids[0])  # arriving during the block
        assert_until_block_end(info.value, started)
        assert len(sim.arrivals(OP)) == 4

        await asyncio.sleep(BLOCK + 0.05)
        assert await client.get_stream_info(sim.channel_ids[0])  # the block is over
        assert sim.violations(OP) == 1


@virtual_time
async def test_on_block_fail_stops_an_unpaced_client_too(strict_sim: Simulator) -> None:
    async with strict_sim as sim, strict_client(sim, quotas={OP: None}) as client:
        for channel in sim.channel_ids[:3]:
            await client.get_stream_info(channel)
        started = time.time()
        with pytest.raises(RateLimitedError) as first:
            await client.get_stream_info(sim.channel_ids[3])
        with pytest.raises(RateLimitedError) as second:
            await client.get_stream_info(sim.channel_ids[4])
    assert_until_block_end(first.value, started)
    assert_until_block_end(second.value, started)
    assert first.value.vendor_message == "qps exceeds number of calls"
    assert first.value.http_status == 403
    assert second.value.http_status is None  # refused here, never sent
    assert len(sim.arrivals(OP)) == 4


@virtual_time
async def test_on_block_wait_waits_out_the_block_and_succeeds(strict_sim: Simulator) -> None:
    async with strict_sim as sim, strict_client(sim, on_block="wait") as client:
        started = loop_time()
        results = await collect(client.get_stream_info_many(sim.channel_ids[:4] * 2))
        elapsed = loop_time() - started
        # The block lowered the limit for good (Polyv's is never probed upward).
        assert client.effective_quota(OP) == Quota(2, 0.5)
    assert all(r.ok for r in results)
    assert len(results) == 8
    # The first round of 4 has one call refused; it is sent again after the block,
    # and the lowered limit keeps the second round within the vendor's 3.
    assert sim.violations(OP) == 1
    assert len(sim.arrivals(OP)) == 9
    assert elapsed >= BLOCK


@virtual_time
async def test_on_block_wait_holds_an_unpaced_client_too(strict_sim: Simulator) -> None:
    async with strict_sim as sim, strict_client(sim, quotas={OP: None}, on_block="wait") as client:
        for channel in sim.channel_ids[:3]:
            await client.get_stream_info(channel)
        started = loop_time()
        assert await client.get_stream_info(sim.channel_ids[3])  # refused, waits, retried
        assert loop_time() - started >= BLOCK
    assert sim.violations(OP) == 1
    assert len(sim.arrivals(OP)) == 5


# -- retries ---------------------------------------------------------------------------------


async def test_server_failures_are_retried_and_signed_afresh(
    sim: Simulator, make_client: MakeClient
) -> None:
    ticks = itertools.count()
    client = make_client(clock=Clock(wall=lambda: time.time() + next(ticks) / 1000))
    sim.fail_next(OP, 500, times=2)
    await client.get_stream_info(sim.channel_ids[0])
    assert len(sim.arrivals(OP)) == 3
    assert len(set(sim.query_values(OP, "timestamp"))) == 3
    assert len(set(sim.query_values(OP, "sign"))) == 3


async def test_html_gateway_pages_are_retried(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    sim.reply_next(OP, body=page, status=502, content_type="text/html")
    await client.get_stream_info(sim.channel_ids[0])
    assert len(sim.arrivals(OP)) == 2


async def test_a_wrong_secret_is_an_authentication_error(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(app_secret="0" * 32)
    with pytest.raises(AuthenticationError) as info:
        await client.get_stream_info(sim.channel_ids[0])
    assert info.value.vendor_message == "invalid signature."
    assert len(sim.arrivals(OP)) == 1


async def test_malformed_answers_are_decoding_errors(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    body = b'{"code": 200, "status": "success", "message": "", "data": [{"streamUrl": "x"}]}'
    sim.reply_next(OP, body=body)
    with pytest.raises(LiveStatsError, match="bitRate") as info:
        await client.get_stream_info(sim.channel_ids[0])
    assert info.value.operation == OP
    assert not isinstance(info.value, ProviderError)


# -- secrets ----------------------------------------------------------------------------------


async def test_no_secret_or_sign_escapes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    creds = PolyvCredentials(app_id="leakyapp01", app_secret="s3cr3t" * 5 + "xy")
    async with Simulator(
        seed=3, tencent=TencentSim(rooms=1), polyv=PolyvSim(credentials=creds)
    ) as sim:
        client = PolyvClient(
            creds.app_id,
            creds.app_secret,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RetryPolicy.instant(attempts=2),
            clock=skewed(-600),
        )
        texts = [repr(client), str(client)]
        async with client:
            sim.fail_next(OP, 500, times=3)
            ids = [*sim.channel_ids, *sim.offline_channel_ids, ""]
            results = await collect(client.get_stream_info_many(ids))
        signs = {s for s in sim.query_values(OP, "sign") if s}
    errors = [r.error for r in results if r.error is not None]
    assert errors
    for err in errors:
        texts.append("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        texts.append(repr(err))
    texts += [record.getMessage() for record in caplog.records]
    assert any(OP in record.getMessage() for record in caplog.records)
    assert signs
    for text in texts:
        assert creds.app_secret not in text
        assert not any(sign in text for sign in signs)
