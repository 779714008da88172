"""The hardened boundary: what every client promises when the other side is hostile.

Each test names the promise it protects in its docstring; the numbers are the
promises of the boundary spec:

1. HTTP 429 is a RateLimitedError; ``Retry-After`` (seconds or HTTP date) pauses the
   quota key for that long, up to ``RetryPolicy.max_retry_after``.
2. HTTP 200 with an unreadable body is transient; a readable one that does not fit
   the model is not.
3. Answers are capped by ``max_response_bytes``, counting decompressed bytes.
4. Redirects are neither followed nor retried.
5. A request that never left the client hands its quota slot back; one that
   reached a server keeps it.
6. Secrets a gateway echoes back are redacted everywhere.
7. Refused credentials stop the client.
8. Bad input and bad settings are refused before anything is sent.
9. Implausible numbers are decoding errors naming the field.

Everything runs against :mod:`tests.hostile` servers on 127.0.0.1 or the built-in
simulator, through the public API only. Waits are on an injected fake clock; the
real-time ``GUARD`` only turns a hang into a failure, it asserts nothing.
Errors and settings that the boundary work adds (``RedirectError``,
``ResponseTooLargeError``, ``max_response_bytes=``) are looked up at run time, so
this module imports (and type-checks) before and after that work lands.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import random
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from email.utils import formatdate
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import aiohttp
import attrs
import pytest

import livestats
from livestats import (
    AuthenticationError,
    ChinaNetCenterClient,
    ClientClosedError,
    LiveStatsError,
    LocalLimiter,
    PolyvClient,
    ProviderError,
    Quota,
    RateLimitedError,
    ResponseDecodingError,
    RetryPolicy,
    TencentClient,
    TransportError,
    ValidationError,
)
from livestats.testing import Simulator
from tests.conftest import FakeTime
from tests.hostile import (
    ECHO_MARKER,
    HUGE_BYTES,
    HostileServer,
    Reply,
    chinanetcenter_ok,
    echo_html,
    echo_json,
    echo_redirect,
    empty_body,
    gzip_bomb,
    gzip_bomb_bytes,
    hang,
    html_reply,
    json_reply,
    polyv_ok,
    redirect,
    refused_url,
    reply,
    streamed,
    tencent_ok,
    truncated_json,
)

T = TypeVar("T")
AnyClient = TencentClient | ChinaNetCenterClient | PolyvClient

#: Real seconds after which a call that should have finished at once counts as hung.
GUARD = 5.0
#: The fake wall clock's "now" (epoch seconds), where a test fixes it.
WALL = 1_700_000_000.0
SECURE = "[secure]"

SDKAPPID = 1_400_000_000
IDENTIFIER = "administrator"
TENCENT_SECRET = "7e1f0c3a9b2d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789ab"
ROOM = "room-1"
CNC_USER = "hostile-user"
CNC_KEY = "hostile-api-key-5f2b9c0d81e64a7b"
DOMAIN = "live1.example.com"
STREAM = "live/show-1"
POLYV_APP = "g4rqgmmjuo"
POLYV_SECRET = "3kq8v1x0pz7m2n5b4c6d9f0g1h2j3k4l"
CHANNEL = "2477096"

ROOM_STATS = {
    "TotalViewers": 10,
    "TotalGiftsSent": 2,
    "TotalGiftCoins": 30,
    "TotalUniqueGiftSenders": 1,
    "TotalLikesReceived": 5,
    "TotalMsgCount": 7,
}
SESSION = {"startTime": "1699999000", "endTime": "1699999060", "duration": 60_000}
STREAM_ENTRY = {"stream": f"{DOMAIN}/{STREAM}", "sumTime": 60_000, "durationDetailList": [SESSION]}
SAMPLE = {
    "streamUrl": "recordf",
    "bitRate": "1500000",
    "audioFrameRate": "44",
    "videoFrameRate": "25",
    "time": "2023-11-14 22:13:20.000",
    "timestamp": None,
}


def tencent_doc(**fields: Any) -> dict[str, Any]:
    return tencent_ok({**ROOM_STATS, **fields})


def chinanetcenter_doc(session: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    entry = {**STREAM_ENTRY, "durationDetailList": [session or SESSION], **fields}
    return chinanetcenter_ok([{"domain": DOMAIN, "streamList": [entry]}])


def polyv_doc(**fields: Any) -> dict[str, Any]:
    return polyv_ok([{**SAMPLE, **fields}])


# -- clients ------------------------------------------------------------------------------


def _settings(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("limiter", LocalLimiter())  # the process-wide one would leak state
    kwargs.setdefault("retry", RetryPolicy.instant(3))
    return kwargs


def tencent(base_url: str | None = None, **kwargs: Any) -> TencentClient:
    if base_url is not None:
        kwargs["base_url"] = base_url
    return TencentClient(SDKAPPID, IDENTIFIER, secret_key=TENCENT_SECRET, **_settings(kwargs))


def chinanetcenter(base_url: str | None = None, **kwargs: Any) -> ChinaNetCenterClient:
    if base_url is not None:
        kwargs["base_url"] = base_url
    return ChinaNetCenterClient(CNC_USER, CNC_KEY, **_settings(kwargs))


def polyv(base_url: str | None = None, **kwargs: Any) -> PolyvClient:
    if base_url is not None:
        kwargs["base_url"] = base_url
    return PolyvClient(POLYV_APP, POLYV_SECRET, **_settings(kwargs))


async def _tencent_call(client: AnyClient) -> object:
    assert isinstance(client, TencentClient)
    return await client.get_room_stats(ROOM)


async def _chinanetcenter_call(client: AnyClient) -> object:
    assert isinstance(client, ChinaNetCenterClient)
    return await client.get_stream_durations({DOMAIN: [STREAM]})


async def _polyv_call(client: AnyClient) -> object:
    assert isinstance(client, PolyvClient)
    return await client.get_stream_info(CHANNEL)


@attrs.frozen
class Provider:
    """One provider as these tests drive it: a client factory, one call, its success answer."""

    name: str
    make: Callable[..., AnyClient]
    call: Callable[[AnyClient], Awaitable[object]]
    ok: dict[str, Any]

    def __str__(self) -> str:
        return self.name


TENCENT = Provider("tencent", tencent, _tencent_call, tencent_doc())
CHINANETCENTER = Provider(
    "chinanetcenter", chinanetcenter, _chinanetcenter_call, chinanetcenter_doc()
)
POLYV = Provider("polyv", polyv, _polyv_call, polyv_doc())
PROVIDERS = [TENCENT, CHINANETCENTER, POLYV]
each_provider = pytest.mark.parametrize("provider", PROVIDERS, ids=str)


# -- helpers ------------------------------------------------------------------------------


async def bounded(awaitable: Awaitable[T], what: str = "the call", guard: float = GUARD) -> T:
    """``await awaitable``, failing the test (not hanging it) if it waits in real time."""
    try:
        return await asyncio.wait_for(awaitable, guard)
    except asyncio.TimeoutError:
        pytest.fail(
            f"{what} did not finish within {guard:g} s of real time: it waited in real time "
            "(or, on the fake clock, forever) for a slot, a pause or a body, where the "
            "promise says it must not"
        )


def public_error(name: str) -> type[LiveStatsError]:
    """``livestats.<name>``, an error class the boundary work adds."""
    cls = getattr(livestats, name, None)
    if not (isinstance(cls, type) and issubclass(cls, LiveStatsError)):
        pytest.fail(f"livestats.{name} does not exist (yet): the boundary promise needs it")
    return cls


async def require_size_cap(provider: Provider) -> None:
    """Refuse to send a huge answer at a client that cannot cap one: it would read it all."""
    try:
        client = provider.make(refused_url(), max_response_bytes=10**6)
    except TypeError:
        pytest.fail(
            f"{provider} clients take no max_response_bytes: not sending 200 MB or a gzip "
            "bomb at a client that would read it whole"
        )
    await client.close()


def padded(doc: dict[str, Any], size: int) -> bytes:
    """``doc`` as JSON followed by spaces, exactly ``size`` bytes: still valid JSON."""
    text = json.dumps(doc).encode()
    assert len(text) <= size, "the document alone is larger than the size wanted"
    return text + b" " * (size - len(text))


def rate_limited(body: str, retry_after: str | None = None, **headers: str) -> Reply:
    """HTTP 429 with one of the bodies a gateway or vendor sends, and maybe Retry-After."""
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if body == "html":
        page = "<html><head><title>429 Too Many Requests</title></head><body></body></html>"
        return reply(429, page, headers=headers, content_type="text/html")
    if body == "json":
        text = json.dumps({"code": "429", "message": "Too Many Requests"})
        return reply(429, text, headers=headers, content_type="application/json")
    return reply(429, b"", headers=headers)


def small_waits(max_retry_after: float = 60.0) -> RetryPolicy:
    """Three attempts, 10 ms backoff, Retry-After honoured up to ``max_retry_after``."""
    return RetryPolicy(
        attempts=3,
        timeout=3600.0,
        initial_wait=0.01,
        max_wait=0.01,
        max_retry_after=max_retry_after,
        rng=random.Random(0),
    )


# -- 1. HTTP 429 and Retry-After ----------------------------------------------------------


@each_provider
@pytest.mark.parametrize("body", ["empty", "html", "json"])
async def test_a_429_without_retry_after_is_rate_limited(provider: Provider, body: str) -> None:
    """Promise 1: HTTP 429 from any provider or gateway, whatever its body, is a
    RateLimitedError."""
    async with (
        HostileServer(rate_limited(body)) as server,
        provider.make(server.url, retry=RetryPolicy.disabled()) as client,
    ):
        with pytest.raises(RateLimitedError) as info:
            await bounded(provider.call(client))
    assert info.value.http_status == 429
    assert len(server.requests) == 1


@each_provider
async def test_retry_after_in_seconds_is_on_the_error(provider: Provider) -> None:
    """Promise 1: the RateLimitedError of a 429 with ``Retry-After: 7`` has
    ``retry_after == 7``."""
    async with (
        HostileServer(rate_limited("json", "7")) as server,
        provider.make(server.url, retry=RetryPolicy.disabled()) as client,
    ):
        with pytest.raises(RateLimitedError) as info:
            await bounded(provider.call(client))
    assert info.value.retry_after == pytest.approx(7.0)


@each_provider
async def test_an_http_date_retry_after_is_converted_to_seconds(
    provider: Provider, fake_time: FakeTime
) -> None:
    """Promise 1: ``Retry-After: <HTTP date>`` 20 s ahead becomes ``retry_after`` of 20 s.

    The answer's ``Date`` and the client's wall clock agree, so either is a fair
    reference for "ahead".
    """
    headers = {"Date": formatdate(WALL, usegmt=True)}
    answer = rate_limited("empty", formatdate(WALL + 20, usegmt=True), **headers)
    async with HostileServer(answer) as server:
        client = provider.make(
            server.url,
            retry=RetryPolicy.disabled(),
            clock=fake_time.clock(wall=lambda: WALL),
            limiter=LocalLimiter(clock=fake_time.clock()),
        )
        async with client:
            with pytest.raises(RateLimitedError) as info:
                await bounded(provider.call(client))
    assert info.value.retry_after == pytest.approx(20.0, abs=1.0)


@pytest.mark.parametrize("provider", [CHINANETCENTER, TENCENT], ids=str)
async def test_retry_after_pauses_for_that_long_not_a_quota_period(
    provider: Provider, fake_time: FakeTime
) -> None:
    """Promise 1 (key case): one 429 with ``Retry-After: 7``, then success, costs about 7 s.

    ChinaNetCenter's quota is 300 calls per 300 s: pausing its key for a whole quota
    period would cost 300 s. Every wait is on the fake clock, the limiter's included.
    """
    async with HostileServer() as server:
        server.script((1, rate_limited("empty", "7")), then=json_reply(provider.ok))
        client = provider.make(
            server.url,
            retry=small_waits(),
            clock=fake_time.clock(wall=lambda: WALL),
            limiter=LocalLimiter(clock=fake_time.clock()),
        )
        started = fake_time.now
        async with client:
            result = await bounded(provider.call(client), "a call after Retry-After: 7")
    assert result
    assert len(server.requests) == 2
    assert 7.0 <= fake_time.now - started <= 8.0


async def test_a_retry_after_above_the_cap_is_cut_to_the_cap(fake_time: FakeTime) -> None:
    """Promise 1: ``Retry-After: 3600`` under ``max_retry_after=10`` pauses for 10 s, not
    an hour."""
    async with HostileServer() as server:
        server.script((1, rate_limited("empty", "3600")), then=json_reply(CHINANETCENTER.ok))
        client = chinanetcenter(
            server.url,
            retry=small_waits(max_retry_after=10.0),
            clock=fake_time.clock(wall=lambda: WALL),
            limiter=LocalLimiter(clock=fake_time.clock()),
        )
        started = fake_time.now
        async with client:
            await bounded(_chinanetcenter_call(client), "a call after Retry-After: 3600")
    assert len(server.requests) == 2
    assert 10.0 <= fake_time.now - started <= 11.0


# -- 2. unreadable answers ----------------------------------------------------------------


@each_provider
@pytest.mark.parametrize("kind", ["truncated", "empty"])
async def test_an_unreadable_200_is_retried_like_a_502(provider: Provider, kind: str) -> None:
    """Promise 2: HTTP 200 with a truncated or empty body is transient: 3 attempts, then
    a ResponseDecodingError."""
    answer = truncated_json(provider.ok) if kind == "truncated" else empty_body()
    async with (
        HostileServer(answer) as server,
        provider.make(server.url, retry=RetryPolicy.instant(3)) as client,
    ):
        with pytest.raises(ResponseDecodingError):
            await bounded(provider.call(client))
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("provider", "doc"),
    [
        (TENCENT, tencent_doc(TotalViewers="many")),
        (CHINANETCENTER, chinanetcenter_doc(sumTime="long")),
        (POLYV, polyv_doc(bitRate="fast")),
    ],
    ids=["tencent", "chinanetcenter", "polyv"],
)
async def test_a_readable_answer_that_does_not_fit_the_model_is_not_retried(
    provider: Provider, doc: dict[str, Any]
) -> None:
    """Promise 2: well-formed JSON that does not fit the model is a ResponseDecodingError
    at once: asking again gets the same answer."""
    async with (
        HostileServer(json_reply(doc)) as server,
        provider.make(server.url, retry=RetryPolicy.instant(3)) as client,
    ):
        with pytest.raises(ResponseDecodingError):
            await bounded(provider.call(client))
    assert len(server.requests) == 1


# -- 3. answer size -----------------------------------------------------------------------


def _assert_too_large(err: BaseException) -> None:
    too_large = public_error("ResponseTooLargeError")
    assert issubclass(too_large, ResponseDecodingError)
    assert isinstance(err, too_large), f"{type(err).__name__}: {err}"
    assert not err.retryable


@each_provider
@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "chunked"])
async def test_a_200_mb_answer_is_refused_without_reading_it(
    provider: Provider, content_length: bool
) -> None:
    """Promise 3: a 200 MB answer (a valid success, padded) ends as a ResponseTooLargeError
    under the default cap, whether or not it announces its length; not retried."""
    await require_size_cap(provider)
    body = streamed(
        HUGE_BYTES, tail=json.dumps(provider.ok).encode(), content_length=content_length
    )
    async with (
        HostileServer(body) as server,
        provider.make(server.url, retry=RetryPolicy.instant(3)) as client,
    ):
        with pytest.raises(LiveStatsError) as info:
            await bounded(provider.call(client), "a call meeting a 200 MB answer")
    _assert_too_large(info.value)
    assert len(server.requests) == 1


@each_provider
async def test_a_gzip_bomb_is_refused_by_its_inflated_size(provider: Provider) -> None:
    """Promise 3: the cap counts decompressed bytes: 2 MB of gzip that inflate to 2 GiB
    (a valid success at the end) is a ResponseTooLargeError; not retried."""
    await require_size_cap(provider)
    bomb = gzip_bomb(tail=json.dumps(provider.ok).encode())
    async with (
        HostileServer(bomb) as server,
        provider.make(server.url, retry=RetryPolicy.instant(3)) as client,
    ):
        with pytest.raises(LiveStatsError) as info:
            await bounded(provider.call(client), "a call meeting a gzip bomb")
    _assert_too_large(info.value)
    assert len(server.requests) == 1


@each_provider
@pytest.mark.parametrize(
    ("size", "compressed", "fits"),
    [
        (1000, False, True),
        (1001, False, False),
        (2000, False, False),
        (1000, True, True),
        (2000, True, False),
    ],
    ids=["1000-plain", "1001-plain", "2000-plain", "1000-gzip", "2000-gzip"],
)
async def test_max_response_bytes_is_exact_and_counts_inflated_bytes(
    provider: Provider, size: int, compressed: bool, fits: bool
) -> None:
    """Promise 3: ``max_response_bytes=1000`` passes an answer of exactly 1000 bytes and
    refuses 1001 or 2000, counted after gzip (a 2000-byte answer is far under 1000 gzipped)."""
    body = padded(provider.ok, size)
    headers = {}
    if compressed:
        body = gzip.compress(body)
        assert len(body) < 1000
        headers["Content-Encoding"] = "gzip"
    answer = reply(200, body, headers=headers, content_type="application/json")
    async with HostileServer(answer) as server:
        client = provider.make(server.url, max_response_bytes=1000, retry=RetryPolicy.instant(3))
        async with client:
            if fits:
                assert await bounded(provider.call(client))
            else:
                with pytest.raises(LiveStatsError) as info:
                    await bounded(provider.call(client))
                _assert_too_large(info.value)
    assert len(server.requests) == 1


@each_provider
async def test_the_default_cap_is_generous(provider: Provider) -> None:
    """Promise 3: the default ``max_response_bytes`` leaves room for the largest real
    answer: a 2 MB success passes."""
    async with (
        HostileServer(reply(200, padded(provider.ok, 2_000_000))) as server,
        provider.make(server.url) as client,
    ):
        assert await bounded(provider.call(client))


# -- 4. redirects -------------------------------------------------------------------------


@each_provider
@pytest.mark.parametrize("status", [301, 302, 307])
async def test_a_redirect_is_neither_followed_nor_retried(provider: Provider, status: int) -> None:
    """Promise 4: a 3xx is a RedirectError (a non-retryable ProviderError) carrying the
    status; the server sees one request and the Location target none."""
    redirect_error = public_error("RedirectError")
    assert issubclass(redirect_error, ProviderError)
    async with HostileServer(json_reply(provider.ok)) as target, HostileServer() as server:
        server.always(redirect(status, f"{target.url}/elsewhere?stolen=1"))
        async with provider.make(server.url, retry=RetryPolicy.instant(3)) as client:
            with pytest.raises(LiveStatsError) as info:
                await bounded(provider.call(client))
    assert isinstance(info.value, redirect_error), f"{type(info.value).__name__}: {info.value}"
    assert not info.value.retryable
    assert info.value.http_status == status
    assert len(server.requests) == 1
    assert target.requests == []


# -- 5. quota slots of requests that never left -------------------------------------------

SLOT_QUOTA = Quota(10, 1.0)


@pytest.mark.parametrize("how", ["refused", "closed"])
async def test_a_request_that_never_left_hands_its_slot_back(fake_time: FakeTime, how: str) -> None:
    """Promise 5: 30 calls that never leave the client (connection refused; client closed)
    under a 10-per-second quota leave the quota untouched: another client on the same
    key is then served without any wait on the fake clock.

    The limiter runs on the fake clock, so a slot wrongly kept would never free: the
    guard turns that into a failure.
    """
    limiter = LocalLimiter(clock=fake_time.monotonic)
    shared: dict[str, Any] = {
        "limiter": limiter,
        "clock": fake_time.clock(wall=lambda: WALL),
        "quotas": {"get_room_stats": SLOT_QUOTA},
        "retry": RetryPolicy.instant(2),
    }
    async with HostileServer(json_reply(TENCENT.ok)) as healthy:
        if how == "refused":
            failing = tencent(refused_url(), **shared)
            expected: type[LiveStatsError] = TransportError
        else:
            failing = tencent(healthy.url, **shared)
            await failing.close()
            expected = ClientClosedError
        outcomes = await bounded(
            asyncio.gather(
                *(failing.get_room_stats(ROOM) for _ in range(30)), return_exceptions=True
            ),
            "30 calls that never left the client",
        )
        await failing.close()
        assert [type(o).__name__ for o in outcomes if not isinstance(o, expected)] == []
        assert healthy.requests == []

        async with tencent(healthy.url, **shared) as served:
            assert served.quota_key("get_room_stats") == failing.quota_key("get_room_stats")
            stats = await bounded(served.get_room_stats(ROOM), "a call after 30 unsent ones")
    assert stats.total_viewers == 10
    assert len(healthy.requests) == 1
    assert sum(fake_time.sleeps) == 0


@pytest.mark.parametrize("how", ["timed-out", "cancelled"])
async def test_a_request_that_reached_a_hung_server_holds_its_slot(
    fake_time: FakeTime, how: str
) -> None:
    """Promise 5 (contrast): a request the server received but never answered may still
    be counted there, so its slot stays taken after the call ends."""
    limiter = LocalLimiter(clock=fake_time.monotonic)
    quota = Quota(1, 1.0)
    async with HostileServer(hang()) as server:
        client = tencent(
            server.url,
            limiter=limiter,
            clock=fake_time.clock(wall=lambda: WALL),
            quotas={"get_room_stats": quota},
            retry=RetryPolicy.disabled(),
            timeout=0.2 if how == "timed-out" else 10.0,
        )
        async with client:
            if how == "timed-out":
                with pytest.raises(TransportError):
                    await bounded(client.get_room_stats(ROOM))
            else:
                call = asyncio.create_task(client.get_room_stats(ROOM))
                await bounded(server.wait_for_requests(1), "the request reaching the server")
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
            key = client.quota_key("get_room_stats")
        assert len(server.requests) == 1
        probe = asyncio.create_task(limiter.acquire(key, quota))
        for _ in range(10):
            await asyncio.sleep(0)  # a free slot is granted without suspending at all
        held = not probe.done()
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    assert held, "the slot of a request the server received was handed back at once"


# -- 6. echoed secrets --------------------------------------------------------------------


def _fragments(secret: str, width: int = 24) -> set[str]:
    """Every ``width``-character piece of ``secret``: a secret cut short is still a leak."""
    if len(secret) <= width:
        return {secret}
    return {secret[i : i + width] for i in range(len(secret) - width + 1)}


def _needles(secrets: Iterable[str]) -> set[str]:
    needles: set[str] = set()
    for secret in secrets:
        needles |= _fragments(secret) | {quote(secret, safe=""), quote_plus(secret)}
    return needles


def _chain(err: BaseException) -> str:
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(_chain(record.exc_info[1]))
    return texts


def _secrets_sent(provider: Provider, server: HostileServer) -> list[str]:
    """The credentials a client holds and what it derived from them, as the server saw them."""
    if provider is TENCENT:
        usersigs = server.queries("usersig")
        assert usersigs, "the client sent no usersig"
        return [TENCENT_SECRET, *usersigs]
    if provider is CHINANETCENTER:
        authorizations = server.header_values("Authorization")
        assert authorizations, "the client sent no Authorization header"
        tokens = [value.split(" ", 1)[1] for value in authorizations]
        passwords = [base64.b64decode(token).decode().split(":", 1)[1] for token in tokens]
        return [CNC_KEY, *authorizations, *tokens, *passwords]
    signs = server.queries("sign")
    assert signs, "the client sent no sign"
    return [POLYV_SECRET, *signs]


def _json_echo(provider: Provider) -> Reply:
    if provider is TENCENT:
        template: dict[str, Any] = {"ActionStatus": "FAIL", "ErrorCode": 100001, "RequestId": "e1"}
        return echo_json(200, template, "ErrorInfo")
    if provider is CHINANETCENTER:
        return echo_json(500, {"code": "24102500"}, "message")
    return echo_json(500, {"code": 500, "status": "fail"}, "message")


@each_provider
@pytest.mark.parametrize("variant", ["html", "json", "redirect"])
async def test_secrets_a_gateway_echoes_are_redacted(
    provider: Provider, variant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Promise 6: when a gateway echoes the request (URL with query, every header) into
    its error page, its JSON message or a redirect's Location, no credential nor anything
    derived from it reaches ``str``/``repr`` of the error, its ``message``/``vendor_message``,
    its traceback, the DEBUG log or ``repr(client)``; where the echo shows, ``[secure]``
    stands in."""
    caplog.set_level(logging.DEBUG, logger="livestats")
    answers = {"html": echo_html(502), "json": _json_echo(provider), "redirect": echo_redirect()}
    answer = answers[variant]
    async with HostileServer(answer) as server:
        client = provider.make(server.url, retry=RetryPolicy.instant(2))
        async with client:
            with pytest.raises(LiveStatsError) as info:
                await bounded(provider.call(client))
        err = info.value
        secrets = _secrets_sent(provider, server)
    texts = [
        str(err),
        repr(err),
        err.message,
        err.vendor_message or "",
        _chain(err),
        repr(client),
        *_log_texts(caplog),
    ]
    needles = _needles(secrets)
    # Name leaking texts by position only: never print a secret.
    leaks = [i for i, text in enumerate(texts) if any(n in text for n in needles)]
    assert leaks == [], f"texts {leaks} of {len(texts)} hold a secret or a piece of one"
    assert server.echoes, "the gateway echoed nothing"
    if any(secret in echo for echo in server.echoes for secret in secrets):
        bare = [i for i, text in enumerate(texts) if ECHO_MARKER in text and SECURE not in text]
        assert bare == [], f"texts {bare} carry the echo without {SECURE} for its secrets"
    if variant == "json":  # the echo is the vendor's message: it must be carried, redacted
        assert err.vendor_message is not None
        assert ECHO_MARKER in err.vendor_message
        assert SECURE in err.vendor_message


# -- 7. refused credentials stop the client -----------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The built-in simulator with its defaults (only ``seed`` is given, on purpose)."""
    async with Simulator(seed=7) as simulator:
        yield simulator


async def test_refused_credentials_stop_a_tencent_batch(sim: Simulator) -> None:
    """Promise 7: with a wrong secret key, ``get_room_stats_many`` over 300 ids sends at
    most 5 requests, yields each item it took exactly once (none a success), then raises
    AuthenticationError; the items it never took are still in the input. A later call
    on that client fails the same way without sending anything."""
    wrong = "0" * 64
    client = TencentClient(
        sim.tencent.sdkappid,
        sim.tencent.identifier,
        secret_key=wrong,
        base_url=sim.url,
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
    )
    ids = [f"room-{i:05d}" for i in range(300)]
    source = iter(ids)
    results: list[livestats.BatchResult[str, livestats.RoomStats]] = []

    async def drain() -> None:
        async with contextlib.aclosing(client.get_room_stats_many(source)) as batch:
            async for result in batch:
                results.append(result)

    async with client:
        with pytest.raises(AuthenticationError):
            await bounded(drain(), "a batch with refused credentials")
        sent = len(sim.arrivals("get_room_stats"))
        left = list(source)
        taken = ids[: len(ids) - len(left)]
        assert sent <= 5
        assert left, "the batch took all 300 ids although the credentials were refused"
        assert sorted(r.key for r in results) == sorted(taken)
        assert not [r.key for r in results if r.ok]
        assert all(isinstance(r.error, LiveStatsError) for r in results)

        with pytest.raises(AuthenticationError):
            await bounded(client.get_room_stats(sim.room_ids[0]))
        assert len(sim.arrivals("get_room_stats")) == sent


async def test_refused_credentials_stop_a_chinanetcenter_client(sim: Simulator) -> None:
    """Promise 7: after a wrong API key is refused once, the next call fails with
    AuthenticationError without sending anything."""
    domain, streams = next(iter(sim.domains.items()))
    client = ChinaNetCenterClient(
        sim.chinanetcenter.username,
        "not-the-api-key",
        base_url=sim.url,
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
    )
    async with client:
        with pytest.raises(AuthenticationError):
            await bounded(client.get_stream_durations({domain: streams}))
        sent = len(sim.arrivals("get_stream_durations"))
        assert sent >= 1
        with pytest.raises(AuthenticationError):
            await bounded(client.get_stream_durations({domain: streams}))
    assert len(sim.arrivals("get_stream_durations")) == sent


async def test_refused_credentials_stop_a_polyv_client(sim: Simulator) -> None:
    """Promise 7: after a wrong app secret is refused once, the next call fails with
    AuthenticationError without sending anything."""
    client = PolyvClient(
        sim.polyv.app_id,
        "not-the-app-secret-0123456789abc",
        base_url=sim.url,
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
    )
    async with client:
        with pytest.raises(AuthenticationError):
            await bounded(client.get_stream_info(sim.channel_ids[0]))
        sent = len(sim.arrivals("get_stream_info"))
        assert sent >= 1
        with pytest.raises(AuthenticationError):
            await bounded(client.get_stream_info(sim.channel_ids[0]))
    assert len(sim.arrivals("get_stream_info")) == sent


# -- 8. bad input and settings are never sent ---------------------------------------------


async def _drain_many(batch: Any) -> list[Any]:
    async with contextlib.aclosing(batch) as results:
        return [result async for result in results]


@pytest.mark.parametrize("provider", [TENCENT, POLYV], ids=str)
async def test_one_string_is_not_an_iterable_of_ids(provider: Provider) -> None:
    """Promise 8: a bulk call given one str (not an iterable of ids) raises ValidationError,
    at the call or at the first iteration, and sends nothing (not one request per character)."""
    async with (
        HostileServer(json_reply(provider.ok)) as server,
        provider.make(server.url) as client,
    ):

        async def run() -> list[Any]:
            if isinstance(client, TencentClient):
                return await _drain_many(client.get_room_stats_many("room-1"))
            assert isinstance(client, PolyvClient)
            return await _drain_many(client.get_stream_info_many(CHANNEL))

        with pytest.raises(ValidationError):
            await bounded(run())
    assert server.requests == []


async def _surrogate_tencent(client: AnyClient) -> object:
    assert isinstance(client, TencentClient)
    return await client.get_room_stats("room-\ud800")


async def _surrogate_stream(client: AnyClient) -> object:
    assert isinstance(client, ChinaNetCenterClient)
    return await client.get_stream_durations({DOMAIN: ["live/show-\ud800"]})


async def _surrogate_domain(client: AnyClient) -> object:
    assert isinstance(client, ChinaNetCenterClient)
    return await client.get_stream_durations({"live\ud800.example.com": [STREAM]})


async def _surrogate_channel(client: AnyClient) -> object:
    assert isinstance(client, PolyvClient)
    return await client.get_stream_info("24770\udfff")


@pytest.mark.parametrize(
    ("provider", "call"),
    [
        (TENCENT, _surrogate_tencent),
        (CHINANETCENTER, _surrogate_stream),
        (CHINANETCENTER, _surrogate_domain),
        (POLYV, _surrogate_channel),
    ],
    ids=["tencent-room", "chinanetcenter-stream", "chinanetcenter-domain", "polyv-channel"],
)
async def test_a_lone_surrogate_in_an_id_is_refused_before_sending(
    provider: Provider, call: Callable[[AnyClient], Awaitable[object]]
) -> None:
    """Promise 8: an id holding a lone surrogate (no UTF-8 form) is a ValidationError,
    nothing sent."""
    async with (
        HostileServer(json_reply(provider.ok)) as server,
        provider.make(server.url) as client,
    ):
        with pytest.raises(ValidationError):
            await bounded(call(client))
    assert server.requests == []


async def test_a_lone_surrogate_in_a_batch_is_that_items_validation_error() -> None:
    """Promise 8: in a bulk call the bad id is a result carrying a ValidationError, the
    good one is served, and only the good one is sent."""
    async with HostileServer(json_reply(TENCENT.ok)) as server, tencent(server.url) as client:
        results = await bounded(_drain_many(client.get_room_stats_many(["room-\ud800", ROOM])))
    by_key = {r.key: r for r in results}
    assert isinstance(by_key["room-\ud800"].error, ValidationError)
    assert by_key[ROOM].ok
    assert len(server.requests) == 1


def _redis_limiter_from_a_non_url() -> object:
    return livestats.RedisLimiter("not a url")


def _retry_policy_without_rng() -> object:
    bad: dict[str, Any] = {"rng": None}
    return RetryPolicy(**bad)


def _full_width_sdkappid() -> object:
    return TencentClient(
        "\uff11\uff14\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",
        IDENTIFIER,
        secret_key=TENCENT_SECRET,
    )


def _setting(make: Callable[..., AnyClient], **kwargs: Any) -> Callable[[], object]:
    return lambda: make(**kwargs)


BAD_SETTINGS: dict[str, Callable[[], object]] = {
    "tencent-region-list": _setting(tencent, region=[]),
    "retry-policy-rng-none": _retry_policy_without_rng,
    "redis-limiter-not-a-url": _redis_limiter_from_a_non_url,
    "chinanetcenter-time-zone-newline": _setting(chinanetcenter, time_zone="GMT+08:00\n"),
    "tencent-full-width-sdkappid": _full_width_sdkappid,
}
for _provider in PROVIDERS:
    BAD_SETTINGS[f"{_provider}-quotas-str"] = _setting(_provider.make, quotas="x")
    BAD_SETTINGS[f"{_provider}-limiter-class"] = _setting(_provider.make, limiter=LocalLimiter)
    BAD_SETTINGS[f"{_provider}-timeout-huge-int"] = _setting(_provider.make, timeout=10**400)


@pytest.mark.parametrize("build", list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS))
def test_bad_settings_fail_at_construction(build: Callable[[], object]) -> None:
    """Promise 8: settings that cannot work are a ValidationError (ConfigurationError is
    one) when the client or policy is built, never a TypeError, OverflowError or a
    surprise at the first call."""
    with pytest.raises(ValidationError):
        build()


# -- 9. implausible numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "doc", "field"),
    [
        (TENCENT, tencent_doc(TotalViewers=-1), "TotalViewers"),
        (TENCENT, tencent_doc(TotalViewers=2**64), "TotalViewers"),
        (POLYV, polyv_doc(bitRate="-5"), "bitRate"),
        (POLYV, polyv_doc(bitRate=str(2**64)), "bitRate"),
        (CHINANETCENTER, chinanetcenter_doc(sumTime=-1), "sumTime"),
        (CHINANETCENTER, chinanetcenter_doc(sumTime=2**64), "sumTime"),
        (CHINANETCENTER, chinanetcenter_doc({**SESSION, "duration": -1}), "duration"),
    ],
    ids=[
        "tencent-negative-count",
        "tencent-count-beyond-64-bits",
        "polyv-negative-bit-rate",
        "polyv-bit-rate-beyond-64-bits",
        "chinanetcenter-negative-sum",
        "chinanetcenter-sum-beyond-64-bits",
        "chinanetcenter-negative-session",
    ],
)
async def test_implausible_numbers_are_decoding_errors_naming_the_field(
    provider: Provider, doc: dict[str, Any], field: str
) -> None:
    """Promise 9: negative counts, bit rates or durations and integers beyond 64 bits are a
    ResponseDecodingError whose message names the wire field; not retried."""
    async with HostileServer(json_reply(doc)) as server, provider.make(server.url) as client:
        with pytest.raises(ResponseDecodingError) as info:
            await bounded(provider.call(client))
    assert field in str(info.value)
    assert len(server.requests) == 1


# -- the hostile server itself ---------------------------------------------------------------


async def test_the_hostile_server_scripts_and_records() -> None:
    """The server the promises rest on: a scripted sequence, then the fallback; every
    request recorded with its decoded query and its URL as sent."""
    async with HostileServer() as server, aiohttp.ClientSession() as session:
        server.script((2, reply(429)), (1, html_reply(502, "Bad Gateway")), then=reply(204))
        statuses = []
        for i in range(5):
            async with session.get(f"{server.url}/p/{i}", params={"q": "a b*"}) as resp:
                statuses.append(resp.status)
    assert statuses == [429, 429, 502, 204, 204]
    assert [r.path for r in server.requests] == [f"/p/{i}" for i in range(5)]
    assert server.queries("q") == ["a b*"] * 5
    assert server.requests[0].url.startswith(f"{server.url}/p/0?q=")


async def test_the_hostile_server_sends_what_it_claims() -> None:
    """The huge body is exactly its size with and without Content-Length, and a bomb (a
    small one here, built the same way) is valid gzip that inflates to its size."""
    small = gzip_bomb_bytes(3 * 2**20 + 5, b'{"ok":1}')
    assert gzip.decompress(small) == b" " * (3 * 2**20 + 5 - 8) + b'{"ok":1}'
    async with HostileServer() as server, aiohttp.ClientSession() as session:
        for chunked in (False, True):
            server.always(streamed(5_000_000, tail=b"{}", content_length=not chunked))
            async with session.get(server.url) as resp:
                size = 0
                async for piece in resp.content.iter_chunked(2**16):
                    size += len(piece)
            assert size == 5_000_000
            assert (resp.content_length is None) == chunked
