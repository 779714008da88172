"""ChinaNetCenter wire format and query planning: pure functions, no server."""

from __future__ import annotations

import base64
import itertools
import json
import locale
from datetime import date, datetime, timedelta, timezone

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from livestats import (
    AuthenticationError,
    ProviderError,
    RateLimitedError,
    ResponseDecodingError,
)
from livestats._core.http import HttpResponse
from livestats.providers.chinanetcenter import query, wire
from livestats.providers.chinanetcenter.auth import ApiKeyAuth

CST = timezone(timedelta(hours=8))


def _response(
    status: int, body: bytes | str, content_type: str = "application/json"
) -> HttpResponse:
    raw = body.encode() if isinstance(body, str) else body
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": content_type}))
    return HttpResponse(status=status, headers=headers, body=raw, elapsed=0.01)


# -- auth ------------------------------------------------------------------------------


def test_password_known_answer_vector() -> None:
    # shared/docs/providers.md, "Known answer".
    assert wire.password("testApiKey", "Thu, 17 May 2012 19:37:58 GMT") == (
        "0YTP7HuiF90vHOzgZJRCBURIArU="
    )


def test_date_header_is_rfc1123_gmt_whatever_the_locale() -> None:
    previous = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("de_DE.UTF-8", "zh_CN.UTF-8", "fr_FR.UTF-8"):
            try:
                locale.setlocale(locale.LC_TIME, name)
            except locale.Error:
                continue
            assert wire.date_header(1337283478) == "Thu, 17 May 2012 19:37:58 GMT"
    finally:
        locale.setlocale(locale.LC_TIME, previous)
    assert wire.date_header(1337283478) == "Thu, 17 May 2012 19:37:58 GMT"


def test_signed_request_carries_basic_auth_over_its_own_date() -> None:
    request = wire.signed_request(
        "https://open.example",
        b"{}",
        auth=ApiKeyAuth("alice", "testApiKey"),
        time_zone="GMT+08:00",
        now=1337283478,
    )
    headers = dict(request.headers)
    assert headers["Date"] == "Thu, 17 May 2012 19:37:58 GMT"
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "alice:0YTP7HuiF90vHOzgZJRCBURIArU="
    assert headers["Accept"] == "application/json"
    assert headers["X-Time-Zone"] == "GMT+08:00"
    assert "Authorization" in request.secret_names
    assert token not in repr(request)


@pytest.mark.parametrize(
    ("text", "hours"), [("GMT+08:00", 8), ("GMT-05:00", -5), ("GMT+00:00", 0), ("GMT+14:00", 14)]
)
def test_time_zones(text: str, hours: int) -> None:
    assert wire.parse_time_zone(text) == timezone(timedelta(hours=hours))


@pytest.mark.parametrize("text", ["UTC+8", "GMT+8:00", "GMT+08:30", "GMT+15:00", "", None])
def test_bad_time_zones(text: object) -> None:
    with pytest.raises(ValueError, match="time_zone"):
        wire.parse_time_zone(text)


def test_body_follows_the_vendor_example() -> None:
    body = json.loads(
        wire.encode_body({"www.a.com": ["test/steam0"]}, date(2021, 8, 10), date(2021, 8, 12))
    )
    assert body == {
        "dateFrom": "2021-08-10",
        "dateTo": "2021-08-12",
        "domainStream": [{"domain": "www.a.com", "stream": ["test/steam0"]}],
    }
    assert "dateFrom" not in json.loads(wire.encode_body({"d": ["a/b"]}, None, None))


@pytest.mark.parametrize(
    ("today", "earliest"),
    [
        (date(2026, 11, 22), date(2026, 5, 22)),
        (date(2026, 8, 31), date(2026, 2, 28)),
        (date(2026, 3, 15), date(2025, 9, 15)),
    ],
)
def test_earliest_kept_day_is_six_months_back(today: date, earliest: date) -> None:
    assert wire.earliest_date(today) == earliest


# -- times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1628532000",
        1628532000,
        "1628532000000",
        1628532000000,
        1628532000.0,
        "2021-08-10 02:00:00",
        "2021-08-10T02:00:00",
        "2021-08-10 02:00:00.000",
        "2021-08-09T18:00:00+00:00",
    ],
)
def test_times_are_read_tolerantly(value: object) -> None:
    parsed = wire.parse_time(value, CST)
    assert parsed == datetime(2021, 8, 10, 2, 0, tzinfo=CST)
    assert parsed.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("value", [None, True, "yesterday", [], {}])
def test_unreadable_times_raise_value_error(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by input
        wire.parse_time(value, CST)


# -- answers ----------------------------------------------------------------------------


def test_success_answer() -> None:
    doc = wire.open_answer(_response(200, '{"code": "0", "message": "success", "data": []}'))
    assert doc["data"] == []


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "retryable"),
    [
        (500, "24102500", "We encountered an internal error.", ProviderError, True),
        (400, "24102019", "number of Domain(3) exceeds the limit (1).", ProviderError, False),
        (400, "24102007", "period greater than 31 day(s).", ProviderError, False),
        (400, "24102008", "param:domain  is null or invalid.", ProviderError, False),
        (429, "429", "Too Many Requests", RateLimitedError, True),
        (400, "24109999", "Request frequency exceeded", RateLimitedError, True),
        (403, "24101403", "调用频率超过限制", RateLimitedError, True),
        (401, "401", "Unauthorized", AuthenticationError, False),
        (502, "502", "bad gateway", ProviderError, True),
    ],
)
def test_errors_are_classified(
    status: int, code: str, message: str, kind: type[Exception], retryable: bool
) -> None:
    body = json.dumps({"code": code, "message": message})
    with pytest.raises(kind) as info:
        wire.open_answer(_response(status, body))
    err = info.value
    assert type(err) is kind
    assert err.retryable is retryable  # type: ignore[attr-defined]
    assert err.vendor_code == code  # type: ignore[attr-defined]
    assert err.operation == "get_stream_durations"  # type: ignore[attr-defined]


def test_too_many_domains_is_not_mistaken_for_rate_limiting() -> None:
    body = '{"code": "24102019", "message": "exceeds the limit (1)."}'
    with pytest.raises(ProviderError, match="max_domains_per_request") as info:
        wire.open_answer(_response(400, body))
    assert not isinstance(info.value, RateLimitedError)


@pytest.mark.parametrize(
    ("status", "body", "kind", "retryable"),
    [
        (200, "not json", ResponseDecodingError, True),
        (200, "", ResponseDecodingError, True),
        (200, "[1]", ResponseDecodingError, False),
        (200, '{"message": "ok"}', ResponseDecodingError, False),
        (502, "<html><title>502</title></html>", ProviderError, True),
        (200, "<html><title>Service busy</title></html>", ProviderError, True),
        (429, "slow down", RateLimitedError, True),
    ],
)
def test_unreadable_answers(status: int, body: str, kind: type[Exception], retryable: bool) -> None:
    """Gateway pages, 429s and bodies that cannot be read at all (empty, cut short) are
    worth another try; a well-formed answer that is not the vendor's shape is not."""
    with pytest.raises(kind) as info:
        wire.open_answer(_response(status, body))
    assert type(info.value) is kind
    assert info.value.retryable is retryable  # type: ignore[attr-defined]


# -- planning and merging --------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 2, 31, 32, 33, 63, 64, 65, 71, 183])
def test_date_windows_cover_the_range_exactly_within_the_vendor_limit(days: int) -> None:
    first = date(2026, 1, 1)
    last = first + timedelta(days=days - 1)
    windows = query.date_windows(first, last)
    assert windows[0][0] == first
    assert windows[-1][1] == last
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + timedelta(days=1)  # contiguous, no overlap
    for start, end in windows:
        assert timedelta(0) <= end - start <= timedelta(days=31)
        if days > 1:
            assert end > start  # never a single-day window when it can be avoided
    assert len(windows) == -(-days // 32)  # as few requests as the 31-day limit allows


def test_plan_is_domain_groups_times_windows() -> None:
    streams = {"a.com": ["live/1"], "b.com": ["live/2"], "c.com": ["live/3"]}
    requests = query.plan(streams, date(2026, 1, 1), date(2026, 3, 11), max_domains=1)
    assert len(requests) == 3 * 3  # 70 days: windows of 32, 32 and 6 days
    assert {tuple(r.domain_streams) for r in requests} == {("a.com",), ("b.com",), ("c.com",)}
    grouped = query.plan(streams, None, None, max_domains=2)
    assert [list(r.domain_streams) for r in grouped] == [["a.com", "b.com"], ["c.com"]]
    assert all(r.date_from is None and r.date_to is None for r in grouped)


def test_merge_adds_totals_orders_sessions_and_keeps_silent_streams() -> None:
    def report(start: int, minutes: int) -> wire.WireReport:
        return wire.CONVERTER.structure(
            {
                "data": [
                    {
                        "domain": "www.a.com",
                        "streamList": [
                            {
                                "stream": "www.a.com/test/s0",
                                "sumTime": minutes * 60_000,
                                "durationDetailList": [
                                    {
                                        "startTime": str(start),
                                        "endTime": str(start + minutes * 60),
                                        "duration": minutes * 60_000,
                                    }
                                ],
                            },
                            {"stream": "www.a.com/test/unasked", "sumTime": 5},
                        ],
                    }
                ]
            },
            wire.WireReport,
        )

    streams = {"www.a.com": ["test/s0", "test/silent"], "www.b.com": ["x/y"]}
    later, earlier = report(1_628_700_000, 10), report(1_628_500_000, 5)
    merged = query.merge(streams, [later, earlier], CST)
    assert [(m.domain, m.stream) for m in merged] == [
        ("www.a.com", "test/s0"),
        ("www.a.com", "test/silent"),
        ("www.b.com", "x/y"),
    ]
    first = merged[0]
    assert first.total == timedelta(minutes=15)
    assert [s.start for s in first.sessions] == sorted(s.start for s in first.sessions)
    assert first.sessions[0].duration == timedelta(minutes=5)
    assert merged[1].total == timedelta(0)
    assert merged[1].sessions == ()
