"""The simulator's ChinaNetCenter (Wangsu) endpoint, tested with raw aiohttp calls.

Speaking HTTP directly, not through the livestats client, keeps a bug in one from
hiding a bug in the other. The wall clock is fixed, so "today" never moves under a
test, and the quota clock is fake, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from livestats._core.quota import Quota
from livestats.testing import ChinaNetCenterCredentials, ChinaNetCenterSim, Faults, Simulator
from livestats.testing._chinanetcenter import (
    AKSK_TIMESTAMP_TOLERANCE_S,
    aksk_signature,
    api_key_password,
)

PATH = "/api/report/domain/stream/duration"
OP = "get_stream_durations"
Json = dict[str, Any]

# 2024-06-15 04:00:00 UTC: noon in Beijing, so "today" is 2024-06-15 in GMT+08:00.
WALL = datetime(2024, 6, 15, 4, 0, tzinfo=timezone.utc).timestamp()
TODAY = date(2024, 6, 15)
BEIJING = timezone(timedelta(hours=8))


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=5, wall_clock=lambda: WALL) as simulator:
        yield simulator


def auth_headers(
    sim: Simulator,
    *,
    date_header: str | None = None,
    username: str | None = None,
    api_key: str | None = None,
) -> dict[str, str]:
    creds = sim.chinanetcenter
    when = date_header if date_header is not None else formatdate(WALL, usegmt=True)
    password = api_key_password(api_key if api_key is not None else creds.api_key, when)
    user = username if username is not None else creds.username
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Date": when, "Authorization": f"Basic {token}", "Accept": "application/json"}


def body_for(
    sim: Simulator,
    *,
    date_from: str | None = "2024-06-01",
    date_to: str | None = "2024-06-15",
    domain: str | None = None,
    streams: list[str] | None = None,
) -> Json:
    name = domain if domain is not None else next(iter(sim.domains))
    body: Json = {
        "domainStream": [
            {"domain": name, "stream": streams if streams is not None else sim.domains.get(name)}
        ]
    }
    if date_from is not None:
        body["dateFrom"] = date_from
    if date_to is not None:
        body["dateTo"] = date_to
    return body


async def post(
    session: aiohttp.ClientSession,
    sim: Simulator,
    body: Json | bytes | None,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, Json]:
    sent = auth_headers(sim) if headers is None else headers
    payload: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"data": body}
    async with session.post(f"{sim.url}{PATH}", headers=sent, **payload) as resp:
        assert resp.content_type == "application/json"
        doc: Json = await resp.json()
        return resp.status, doc


def limited(clock: FakeClock, quota: Quota) -> Simulator:
    """A simulator on ``clock`` whose ChinaNetCenter quota is ``quota``."""
    settings = ChinaNetCenterSim(quotas={OP: quota})
    return Simulator(seed=5, clock=clock, wall_clock=lambda: WALL, chinanetcenter=settings)


def assert_error(status: int, doc: Json, http: int, code: str) -> None:
    assert (status, doc["code"]) == (http, code), doc
    assert isinstance(doc["message"], str)
    assert doc["message"]


def streams_of(doc: Json) -> list[Json]:
    assert doc["code"] == "0", doc
    return [stream for entry in doc["data"] for stream in entry["streamList"]]


def local_days(doc: Json, tz: timezone = BEIJING) -> set[date]:
    return {
        datetime.fromtimestamp(int(detail["startTime"]), tz).date()
        for stream in streams_of(doc)
        for detail in stream["durationDetailList"]
    }


# -- signing and data -----------------------------------------------------------


def test_password_known_answer() -> None:
    password = api_key_password("testApiKey", "Thu, 17 May 2012 19:37:58 GMT")
    assert password == "0YTP7HuiF90vHOzgZJRCBURIArU="


def test_default_account_and_data_are_fixed_per_seed() -> None:
    first, again, other = Simulator(seed=1), Simulator(seed=1), Simulator(seed=2)
    assert first.chinanetcenter == again.chinanetcenter
    assert first.chinanetcenter != other.chinanetcenter
    assert first.chinanetcenter.api_key not in repr(first.chinanetcenter)
    domains = Simulator(chinanetcenter=ChinaNetCenterSim(domains=2, streams_per_domain=3)).domains
    assert list(domains) == ["live1.example.com", "live2.example.com"]
    assert all(len(streams) == 3 for streams in domains.values())
    assert all(stream.count("/") == 1 for streams in domains.values() for stream in streams)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"domains": -1}, r"ChinaNetCenterSim\.domains must be at least 0"),
        ({"streams_per_domain": 1.5}, r"ChinaNetCenterSim\.streams_per_domain must be an int"),
        ({"max_domains": 0}, r"ChinaNetCenterSim\.max_domains must be at least 1"),
        ({"time_format": "iso"}, r"ChinaNetCenterSim\.time_format must be one of epoch_s"),
        ({"quotas": {"get_everything": Quota(1, 1.0)}}, "get_everything"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChinaNetCenterSim(**kwargs)


KEYS = {"username": "a", "api_key": "k", "access_key": "ak", "secret_key": "sk"}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"username": "a:b"}, "username"),
        ({"api_key": ""}, "api_key"),
        ({"access_key": ""}, "access_key"),
        ({"access_key": "a,b"}, "access_key"),
        ({"access_key": "a b"}, "access_key"),
        ({"secret_key": " "}, "secret_key"),
    ],
)
def test_credentials_are_validated(change: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ChinaNetCenterCredentials(**{**KEYS, **change})


def test_default_access_keys_are_fixed_per_seed() -> None:
    creds = Simulator(seed=1).chinanetcenter
    assert creds == ChinaNetCenterCredentials.from_seed(1)
    assert creds.access_key != ChinaNetCenterCredentials.from_seed(2).access_key
    assert creds.secret_key != ChinaNetCenterCredentials.from_seed(2).secret_key
    assert creds.access_key in repr(creds)
    assert creds.secret_key not in repr(creds)
    assert len({creds.api_key, creds.secret_key, creds.access_key}) == 3


# -- the answer -----------------------------------------------------------------


async def test_answer_shape(sim: Simulator, session: aiohttp.ClientSession) -> None:
    domain, streams = next(iter(sim.domains.items()))
    status, doc = await post(session, sim, body_for(sim))
    assert status == 200
    assert doc["message"] == "success"
    assert [entry["domain"] for entry in doc["data"]] == [domain]
    listed = streams_of(doc)
    assert listed, "some stream pushed in two weeks"
    window = (
        datetime(2024, 6, 1, tzinfo=BEIJING).timestamp(),
        datetime(2024, 6, 16, tzinfo=BEIJING).timestamp(),
    )
    for stream in listed:
        assert set(stream) == {"stream", "sumTime", "durationDetailList"}
        assert stream["stream"].removeprefix(f"{domain}/") in streams
        details = stream["durationDetailList"]
        assert details
        assert stream["sumTime"] == sum(detail["duration"] for detail in details)
        previous_end = 0
        for detail in details:
            assert set(detail) == {"startTime", "endTime", "duration"}
            start, end = int(detail["startTime"]), int(detail["endTime"])
            assert isinstance(detail["startTime"], str)
            assert detail["duration"] == (end - start) * 1000
            assert 60_000 <= detail["duration"] <= 7_200_000
            assert window[0] <= start < window[1]
            assert end <= WALL, "a session is reported once it has ended"
            assert start >= previous_end, "sessions are in order and never overlap"
            previous_end = end
        assert len(details) <= 3 * 15


async def test_answer_is_deterministic_per_seed(session: aiohttp.ClientSession) -> None:
    docs = []
    for seed in (5, 5, 6):
        async with Simulator(seed=seed, wall_clock=lambda: WALL) as simulator:
            docs.append((await post(session, simulator, body_for(simulator)))[1])
    assert docs[0] == docs[1]
    assert docs[0] != docs[2]


async def test_only_requested_streams_that_pushed_appear(
    session: aiohttp.ClientSession,
) -> None:
    async with Simulator(
        seed=5, wall_clock=lambda: WALL, chinanetcenter=ChinaNetCenterSim(streams_per_domain=12)
    ) as simulator:
        domain, streams = next(iter(simulator.domains.items()))
        wanted = [streams[1], "live/not-a-stream", streams[1]]
        _, doc = await post(session, simulator, body_for(simulator, streams=wanted))
        assert [stream["stream"] for stream in streams_of(doc)] == [f"{domain}/{streams[1]}"]

        # On one day some of the twelve streams pushed and some did not.
        one_day = body_for(simulator, date_from="2024-06-03", date_to="2024-06-03")
        _, doc = await post(session, simulator, one_day)
        pushed = [stream["stream"] for stream in streams_of(doc)]
        assert 0 < len(pushed) < len(streams)
        assert pushed == [f"{domain}/{s}" for s in streams if f"{domain}/{s}" in pushed]

        # A known domain with nothing to report is still answered.
        _, doc = await post(session, simulator, body_for(simulator, streams=[]))
        assert doc["data"] == [{"domain": domain, "streamList": []}]


async def test_a_session_belongs_to_the_day_it_starts_on(
    session: aiohttp.ClientSession,
) -> None:
    async with Simulator(
        seed=5, wall_clock=lambda: WALL, chinanetcenter=ChinaNetCenterSim(streams_per_domain=12)
    ) as simulator:
        _, doc = await post(session, simulator, body_for(simulator, date_from="2024-05-15"))
        crossing = [
            (stream["stream"], detail)
            for stream in streams_of(doc)
            for detail in stream["durationDetailList"]
            if datetime.fromtimestamp(int(detail["startTime"]), BEIJING).date()
            != datetime.fromtimestamp(int(detail["endTime"]), BEIJING).date()
        ]
        assert crossing, "some push runs past midnight in a month of twelve streams"
        name, detail = crossing[0]
        start_day = datetime.fromtimestamp(int(detail["startTime"]), BEIJING).date()
        domain, _, stream = name.partition("/")
        for day, expected in ((start_day, True), (start_day + timedelta(days=1), False)):
            one_day = body_for(
                simulator,
                date_from=day.isoformat(),
                date_to=day.isoformat(),
                domain=domain,
                streams=[stream],
            )
            _, answer = await post(session, simulator, one_day)
            details = [d for s in streams_of(answer) for d in s["durationDetailList"]]
            assert (detail in details) is expected


async def test_an_unknown_domain_is_dropped(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, doc = await post(session, sim, body_for(sim, domain="www.a.com", streams=["a/b"]))
    assert (status, doc["code"], doc["data"]) == (200, "0", [])


@pytest.mark.parametrize("fmt", ["epoch_s", "epoch_ms", "text"])
async def test_time_formats(session: aiohttp.ClientSession, fmt: str) -> None:
    tz = timezone(timedelta(hours=-5))
    async with (
        Simulator(seed=5, wall_clock=lambda: WALL) as reference,
        Simulator(
            seed=5, wall_clock=lambda: WALL, chinanetcenter=ChinaNetCenterSim(time_format=fmt)
        ) as simulator,
    ):
        headers = {**auth_headers(simulator), "X-Time-Zone": "GMT-05:00"}
        _, doc = await post(session, simulator, body_for(simulator), headers=headers)
        ref_headers = {**auth_headers(reference), "X-Time-Zone": "GMT-05:00"}
        _, expected = await post(session, reference, body_for(reference), headers=ref_headers)

    def parse(text: str) -> int:
        if fmt == "epoch_s":
            return int(text)
        if fmt == "epoch_ms":
            assert text.endswith("000")
            return int(text) // 1000
        return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).timestamp())

    got = [
        (parse(d["startTime"]), parse(d["endTime"]), d["duration"])
        for stream in streams_of(doc)
        for d in stream["durationDetailList"]
    ]
    want = [
        (int(d["startTime"]), int(d["endTime"]), d["duration"])
        for stream in streams_of(expected)
        for d in stream["durationDetailList"]
    ]
    assert got
    assert got == want


async def test_the_time_zone_moves_day_boundaries_not_pushes(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    body = body_for(sim, date_from="2024-06-01", date_to="2024-06-10")
    starts = {}
    for zone in ("GMT+08:00", "GMT-05:00"):
        headers = {**auth_headers(sim), "X-Time-Zone": zone}
        _, doc = await post(session, sim, body, headers=headers)
        starts[zone] = {
            (stream["stream"], int(detail["startTime"]))
            for stream in streams_of(doc)
            for detail in stream["durationDetailList"]
        }
    # Both windows cover 2024-06-01 13:00 UTC .. 2024-06-10 16:00 UTC.
    low = datetime(2024, 6, 1, 13, tzinfo=timezone.utc).timestamp()
    high = datetime(2024, 6, 10, 16, tzinfo=timezone.utc).timestamp()
    common = [{s for s in found if low <= s[1] < high} for found in starts.values()]
    assert common[0]
    assert common[0] == common[1]


# -- dates ----------------------------------------------------------------------


async def test_no_dates_means_the_last_seven_days(session: aiohttp.ClientSession) -> None:
    async with Simulator(
        seed=5, wall_clock=lambda: WALL, chinanetcenter=ChinaNetCenterSim(streams_per_domain=20)
    ) as simulator:
        body = body_for(simulator, date_from=None, date_to=None)
        _, doc = await post(session, simulator, body)
        explicit = body_for(simulator, date_from="2024-06-09", date_to="2024-06-15")
        _, expected = await post(session, simulator, explicit)
    assert doc == expected
    assert local_days(doc) <= {TODAY - timedelta(days=n) for n in range(7)}
    assert TODAY - timedelta(days=6) in local_days(doc)


async def test_blank_dates_count_as_omitted(sim: Simulator, session: aiohttp.ClientSession) -> None:
    body = {**body_for(sim, date_from=None, date_to=None), "dateFrom": None, "dateTo": ""}
    status, _ = await post(session, sim, body)
    assert status == 200


async def test_a_future_date_to_is_clamped_to_today(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    _, clamped = await post(session, sim, body_for(sim, date_to="2030-01-01"))
    _, today = await post(session, sim, body_for(sim, date_to="2024-06-15"))
    assert clamped == today
    assert clamped["code"] == "0"


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("2024-06-01", "2024-06-01"),  # one day
        ("2024-05-15", "2024-06-15"),  # 31 days apart
        ("2023-12-15", "2024-01-10"),  # exactly 6 months back
    ],
)
async def test_dates_accepted(
    sim: Simulator, session: aiohttp.ClientSession, date_from: str, date_to: str
) -> None:
    status, doc = await post(session, sim, body_for(sim, date_from=date_from, date_to=date_to))
    assert (status, doc["code"]) == (200, "0")


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("2024-06-01", None),
        (None, "2024-06-01"),
        ("2024/06/01", "2024-06-02"),
        ("2024-06-01", "2024-6-2"),
        ("2024-02-30", "2024-03-02"),
        ("2024-06-16", "2024-06-16"),  # tomorrow, in GMT+08:00
        ("2023-12-14", "2024-01-10"),  # older than 6 months
        ("2024-06-10", "2024-06-09"),  # after dateTo
        ("2024-06-10", "garbage"),
    ],
)
async def test_invalid_dates(
    sim: Simulator, session: aiohttp.ClientSession, date_from: str | None, date_to: str | None
) -> None:
    status, doc = await post(session, sim, body_for(sim, date_from=date_from, date_to=date_to))
    assert_error(status, doc, 400, "24102006")
    assert doc["message"] == "The date specified is invalid."


async def test_a_date_that_is_not_a_string_is_invalid(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    body = {**body_for(sim), "dateFrom": 20240601}
    assert_error(*await post(session, sim, body), 400, "24102006")


async def test_today_follows_the_request_time_zone(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    # 04:00 UTC on 2024-06-15 is still 2024-06-14 in GMT-05:00.
    headers = {**auth_headers(sim), "X-Time-Zone": "GMT-05:00"}
    body = body_for(sim, date_from="2024-06-15", date_to="2024-06-15")
    assert_error(*await post(session, sim, body, headers=headers), 400, "24102006")
    body = body_for(sim, date_from="2024-06-14", date_to="2024-06-14")
    status, _ = await post(session, sim, body, headers=headers)
    assert status == 200


async def test_a_period_over_31_days_is_refused(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    body = body_for(sim, date_from="2024-05-14", date_to="2024-06-15")
    status, doc = await post(session, sim, body)
    assert_error(status, doc, 400, "24102007")
    assert doc["message"] == "You cannot specify a period greater than 31 day(s)."


# -- domains --------------------------------------------------------------------


async def test_too_many_domains(session: aiohttp.ClientSession) -> None:
    async with Simulator(seed=5, wall_clock=lambda: WALL) as simulator:
        entries = [{"domain": d, "stream": s} for d, s in simulator.domains.items()][:2]
        status, doc = await post(session, simulator, {"domainStream": entries})
    assert_error(status, doc, 400, "24102019")
    assert doc["message"] == (
        "The request was rejected because the number of Domain(2) exceeds the limit (1)."
    )
    async with Simulator(
        seed=5, wall_clock=lambda: WALL, chinanetcenter=ChinaNetCenterSim(max_domains=2)
    ) as simulator:
        status, doc = await post(session, simulator, {"domainStream": entries})
    assert status == 200
    assert [entry["domain"] for entry in doc["data"]] == [e["domain"] for e in entries]


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [{"domain": "", "stream": []}],
        [{"domain": "   ", "stream": []}],
        [{"domain": 5, "stream": []}],
        [{"domain": None, "stream": []}],
        [{"stream": []}],
    ],
)
async def test_invalid_domain(
    sim: Simulator, session: aiohttp.ClientSession, entries: list[Json]
) -> None:
    status, doc = await post(session, sim, {"dateFrom": None, "domainStream": entries})
    assert_error(status, doc, 400, "24102008")


# -- authentication, headers and body --------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"Date": None},
        {"Date": "2024-06-15T04:00:00Z"},
        {"Date": "Sat, 15 Jun 2024 04:00:00 +0000"},
        {"Date": "Fri, 15 Jun 2024 04:00:00 GMT"},  # the wrong weekday
        {"Date": "Sat, 31 Jun 2024 04:00:00 GMT"},
        {"Authorization": None},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    ],
)
async def test_malformed_auth(
    sim: Simulator, session: aiohttp.ClientSession, change: dict[str, str | None]
) -> None:
    headers = auth_headers(sim)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    assert_error(*await post(session, sim, body_for(sim), headers=headers), 401, "401")


async def test_wrong_credentials(sim: Simulator, session: aiohttp.ClientSession) -> None:
    for headers in (
        auth_headers(sim, username="somebody"),
        auth_headers(sim, api_key="not-the-key"),
        # A password signed for another Date than the one sent.
        {
            **auth_headers(sim, date_header="Thu, 17 May 2012 19:37:58 GMT"),
            "Date": formatdate(WALL, usegmt=True),
        },
    ):
        assert_error(*await post(session, sim, body_for(sim), headers=headers), 401, "401")


async def test_date_is_not_checked_for_freshness(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    headers = auth_headers(sim, date_header="Thu, 17 May 2012 19:37:58 GMT")
    status, _ = await post(session, sim, body_for(sim), headers=headers)
    assert status == 200


async def test_auth_is_checked_before_headers_and_body(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    headers = {**auth_headers(sim, api_key="wrong"), "Accept": "text/html"}
    assert_error(*await post(session, sim, None, headers=headers), 401, "401")


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        ("application/json", True),
        ("*/*", True),
        ("application/json; charset=utf-8", True),
        ("text/html, application/json;q=0.9", True),
        (None, True),
        ("application/xml", False),
        ("text/html", False),
    ],
)
async def test_accept_header(
    sim: Simulator, session: aiohttp.ClientSession, accept: str | None, ok: bool
) -> None:
    headers = auth_headers(sim)
    del headers["Accept"]
    if accept is not None:
        headers["Accept"] = accept
    # Without this, aiohttp would send its own "Accept: */*".
    skip = [] if accept is not None else ["Accept"]
    url = f"{sim.url}{PATH}"
    async with session.post(
        url, headers=headers, json=body_for(sim), skip_auto_headers=skip
    ) as resp:
        status, doc = resp.status, await resp.json()
    if ok:
        assert status == 200
    else:
        assert_error(status, doc, 400, "24102013")


@pytest.mark.parametrize(
    ("zone", "ok"),
    [
        ("GMT+08:00", True),
        ("GMT-05:00", True),
        ("GMT+00:00", True),
        ("GMT+14:00", True),
        ("GMT+8", False),
        ("GMT+08:30", False),
        ("UTC+08:00", False),
        ("GMT+15:00", False),
        ("GMT-13:00", False),
        ("", False),
    ],
)
async def test_time_zone_header(
    sim: Simulator, session: aiohttp.ClientSession, zone: str, ok: bool
) -> None:
    headers = {**auth_headers(sim), "X-Time-Zone": zone}
    body = body_for(sim, date_from="2024-06-10", date_to="2024-06-12")
    status, doc = await post(session, sim, body, headers=headers)
    if ok:
        assert status == 200
    else:
        assert_error(status, doc, 400, "24102020")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "24102014"),
        (b"", "24102014"),
        (b"not json", "24102002"),
        (b"[1, 2]", "24102002"),
        ({}, "24102002"),
        ({"domainStream": "live1.example.com"}, "24102002"),
        ({"domainStream": ["live1.example.com"]}, "24102002"),
        ({"domainStream": [{"domain": "live1.example.com"}]}, "24102002"),
        ({"domainStream": [{"domain": "live1.example.com", "stream": "a/b"}]}, "24102002"),
        ({"domainStream": [{"domain": "live1.example.com", "stream": [1]}]}, "24102002"),
    ],
)
async def test_malformed_body(
    sim: Simulator, session: aiohttp.ClientSession, body: Json | bytes | None, code: str
) -> None:
    assert_error(*await post(session, sim, body), 400, code)


# -- AK/SK (CNC-HMAC-SHA256) -------------------------------------------------------

KAT_BODY = (
    b'{"dateFrom":"2021-08-10","dateTo":"2021-08-12",'
    b'"domainStream":[{"domain":"www.a.com","stream":["test/steam0"]}]}'
)
KAT_SIGNATURE = "dc472ba7117849910d71bad57963ac483f5918821eb5ab699ebb824cbb41f9c0"


def sign_aksk(secret_key: str, timestamp: str, body: bytes, signed: dict[str, str]) -> str:
    """The test's own signer, step by step from providers.md (POST, so no query)."""
    names = sorted(name.lower() for name in signed)
    values = {name.lower(): value for name, value in signed.items()}
    canonical_headers = "".join(f"{name}:{values[name].lower()}\n" for name in names)
    canonical_request = (
        f"POST\n{PATH}\n\n{canonical_headers}\n{';'.join(names)}\n"
        + hashlib.sha256(body).hexdigest()
    )
    string_to_sign = (
        f"CNC-HMAC-SHA256\n{timestamp}\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    )
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def aksk_headers(
    sim: Simulator,
    body: bytes,
    *,
    access_key: str | None = None,
    credential: str | None = None,
    secret_key: str | None = None,
    timestamp: float = WALL,
    signed: tuple[str, ...] = ("Content-Type", "Host"),
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a request signed with the simulator's AK/SK (or the ones given).

    ``extra`` headers are signed (when ``signed`` names them) and sent; ``Host`` is
    the simulator's host and port, as aiohttp sends it.
    """
    creds = sim.chinanetcenter
    key = creds.access_key if access_key is None else access_key
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Host": sim.url.removeprefix("http://"),
        "x-cnc-auth-method": "AKSK",
        "x-cnc-accessKey": key,
        "x-cnc-timestamp": str(int(timestamp)),
        **(extra or {}),
    }
    by_name = {name.lower(): value for name, value in headers.items()}
    to_sign = {name: by_name[name.lower()] for name in signed}
    signature = sign_aksk(
        creds.secret_key if secret_key is None else secret_key,
        headers["x-cnc-timestamp"],
        body,
        to_sign,
    )
    names = ";".join(sorted(name.lower() for name in signed))
    headers["Authorization"] = (
        f"CNC-HMAC-SHA256 Credential={key if credential is None else credential}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return headers


def aksk_body(sim: Simulator) -> bytes:
    """A valid body as exact bytes, in the vendor's compact JSON (no spaces)."""
    return json.dumps(body_for(sim), separators=(",", ":")).encode()


async def post_raw(
    session: aiohttp.ClientSession, sim: Simulator, body: bytes, headers: dict[str, str]
) -> tuple[int, Json]:
    # No automatic headers: what is sent is exactly what the test signed.
    async with session.post(
        f"{sim.url}{PATH}", data=body, headers=headers, skip_auto_headers=["Content-Type"]
    ) as resp:
        assert resp.content_type == "application/json"
        doc: Json = await resp.json()
        return resp.status, doc


@pytest.mark.parametrize(
    "signed",
    [
        {"content-type": "application/json", "host": "open.chinanetcenter.com"},
        # Names in any case and order: they are lower-cased and sorted.
        {"Host": "open.chinanetcenter.com", "Content-Type": "application/json"},
    ],
)
def test_aksk_known_answer(signed: dict[str, str]) -> None:
    signature = aksk_signature(
        "testSecretKey",
        method="POST",
        path=PATH,
        query="",
        signed_headers=signed,
        body=KAT_BODY,
        timestamp="1628600000",
    )
    assert signature == KAT_SIGNATURE
    # The test's own signer, which signs the requests below, agrees.
    assert sign_aksk("testSecretKey", "1628600000", KAT_BODY, signed) == KAT_SIGNATURE


async def test_aksk_signed_request_is_answered(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    body = aksk_body(sim)
    status, doc = await post_raw(session, sim, body, aksk_headers(sim, body))
    assert (status, doc["code"]) == (200, "0")
    _, basic = await post(session, sim, body_for(sim))
    assert doc == basic, "both schemes get the same answer"
    assert len(sim.arrivals(OP)) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"signed": ("accept", "content-type", "host", "x-cnc-timestamp")},
        {"signed": ("Host", "Content-Type")},
        {"timestamp": WALL - AKSK_TIMESTAMP_TOLERANCE_S},
        {"timestamp": WALL + AKSK_TIMESTAMP_TOLERANCE_S},
        {
            "extra": {"X-Time-Zone": "GMT-05:00"},
            "signed": ("content-type", "host", "x-time-zone"),
        },
    ],
)
async def test_aksk_variants_accepted(
    sim: Simulator, session: aiohttp.ClientSession, kwargs: dict[str, Any]
) -> None:
    body = aksk_body(sim)
    status, doc = await post_raw(session, sim, body, aksk_headers(sim, body, **kwargs))
    assert (status, doc["code"]) == (200, "0"), doc


def _tampered(body: bytes) -> bytes:
    return body.replace(b'"dateFrom":"2024-06-01"', b'"dateFrom":"2024-06-02"')


def _without(*names: str) -> Callable[[dict[str, str]], dict[str, str]]:
    def drop(headers: dict[str, str]) -> dict[str, str]:
        return {name: value for name, value in headers.items() if name not in names}

    return drop


def _replace(name: str, value: str) -> Callable[[dict[str, str]], dict[str, str]]:
    def change(headers: dict[str, str]) -> dict[str, str]:
        return {**headers, name: value}

    return change


def _keep(headers: dict[str, str]) -> dict[str, str]:
    return headers


WRONG = "access key or the signature is wrong"
MISSING = "is missing|must be AKSK|must be epoch seconds"
TOO_FAR = "too far from now"
NOT_COVERED = "must include content-type and host"


@pytest.mark.parametrize(
    ("kwargs", "after", "tamper", "reason"),
    [
        # the wrong access key, in both places, or in one of them
        ({"access_key": "somebody-else"}, _keep, False, WRONG),
        ({"credential": "somebody-else"}, _keep, False, WRONG),
        ({}, _replace("x-cnc-accessKey", "somebody-else"), False, WRONG),
        # a wrong signature: another secret, body, host, content type or timestamp
        ({"secret_key": "not-the-secret"}, _keep, False, WRONG),
        ({}, _keep, True, WRONG),
        ({}, _replace("Host", "open.chinanetcenter.com"), False, WRONG),
        ({}, _replace("Content-Type", "application/x-www-form-urlencoded"), False, WRONG),
        ({}, _replace("x-cnc-timestamp", str(int(WALL) + 1)), False, WRONG),
        (
            {},
            _replace("Authorization", "CNC-HMAC-SHA256 Credential=x, SignedHeaders=host"),
            False,
            "must carry Credential, SignedHeaders and Signature",
        ),
        # SignedHeaders without content-type or host (signed consistently)
        ({"signed": ("host",)}, _keep, False, NOT_COVERED),
        ({"signed": ("content-type",)}, _keep, False, NOT_COVERED),
        ({"signed": ("accept", "x-cnc-timestamp")}, _keep, False, NOT_COVERED),
        # a missing header
        ({}, _without("x-cnc-auth-method"), False, MISSING),
        ({}, _replace("x-cnc-auth-method", "BASIC"), False, MISSING),
        ({}, _without("x-cnc-accessKey"), False, MISSING),
        ({}, _without("x-cnc-timestamp"), False, MISSING),
        ({}, _without("Content-Type"), False, MISSING),
        (
            {"extra": {"X-Extra": "1"}, "signed": ("content-type", "host", "x-extra")},
            _without("X-Extra"),
            False,
            MISSING,
        ),
        # a timestamp off the wall clock, or not epoch seconds
        ({"timestamp": WALL - AKSK_TIMESTAMP_TOLERANCE_S - 1}, _keep, False, TOO_FAR),
        ({"timestamp": WALL + AKSK_TIMESTAMP_TOLERANCE_S + 1}, _keep, False, TOO_FAR),
        ({}, _replace("x-cnc-timestamp", "2024-06-15T04:00:00Z"), False, MISSING),
    ],
)
async def test_aksk_refusals(
    sim: Simulator,
    session: aiohttp.ClientSession,
    kwargs: dict[str, Any],
    after: Callable[[dict[str, str]], dict[str, str]],
    tamper: bool,
    reason: str,
) -> None:
    body = aksk_body(sim)
    headers = after(aksk_headers(sim, body, **kwargs))
    sent = _tampered(body) if tamper else body
    assert sent != body or not tamper
    status, doc = await post_raw(session, sim, sent, headers)
    assert_error(status, doc, 401, "401")
    assert re.search(reason, doc["message"]), doc
    # Nothing about the secret or the expected signature comes back.
    assert sim.chinanetcenter.secret_key not in doc["message"]


async def test_aksk_quota_counts_per_access_key(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(10.0)
    async with limited(clock, Quota(2, 1.0)) as simulator:
        body = aksk_body(simulator)
        statuses = [
            (await post_raw(session, simulator, body, aksk_headers(simulator, body)))[0]
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert simulator.violations(OP) == 1

        # The account user (Basic) and another access key each have a window of their own.
        status, _ = await post(session, simulator, body_for(simulator))
        assert status == 200
        other = aksk_headers(simulator, body, access_key="somebody-else")
        assert_error(*await post_raw(session, simulator, body, other), 401, "401")
        assert simulator.violations(OP) == 1

        clock.now = 11.0
        status, _ = await post_raw(session, simulator, body, aksk_headers(simulator, body))
        assert status == 200


async def test_custom_credentials_serve_both_schemes(session: aiohttp.ClientSession) -> None:
    creds = ChinaNetCenterCredentials(
        username="example_username",
        api_key="testApiKey",
        access_key="testAccessKey",
        secret_key="testSecretKey",
    )
    settings = ChinaNetCenterSim(credentials=creds)
    async with Simulator(chinanetcenter=settings, wall_clock=lambda: WALL) as simulator:
        assert simulator.chinanetcenter is creds
        basic, _ = await post(session, simulator, body_for(simulator))
        body = aksk_body(simulator)
        headers = aksk_headers(simulator, body)
        assert "Credential=testAccessKey," in headers["Authorization"]
        aksk, _ = await post_raw(session, simulator, body, headers)
    assert (basic, aksk) == (200, 200)


# -- quota, scripts and faults --------------------------------------------------


async def test_quota_per_username(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(10.0)
    async with limited(clock, Quota(3, 0.5)) as simulator:
        replies = await asyncio.gather(
            *(post(session, simulator, body_for(simulator)) for _ in range(5))
        )
        statuses = sorted(status for status, _ in replies)
        assert statuses == [200, 200, 200, 429, 429]
        refused = [doc for status, doc in replies if status == 429]
        assert all(doc["code"] == "429" and doc["message"] for doc in refused)
        assert simulator.violations(OP) == 2
        assert simulator.arrivals(OP) == [10.0] * 5

        # Another user has a window of its own (and here, no valid password).
        other = auth_headers(simulator, username="somebody-else")
        assert_error(
            *await post(session, simulator, body_for(simulator), headers=other), 401, "401"
        )

        clock.now = 10.5
        status, _ = await post(session, simulator, body_for(simulator))
        assert status == 200


async def test_fail_next_uses_the_vendor_table(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.fail_next(OP, 24102500)
    sim.fail_next(OP, 24102019)
    sim.fail_next(OP, 24102006, message="custom")
    status, doc = await post(session, sim, body_for(sim))
    assert (status, doc) == (
        500,
        {"code": "24102500", "message": "We encountered an internal error. Please try again."},
    )
    status, doc = await post(session, sim, body_for(sim))
    assert (status, doc["code"]) == (400, "24102019")
    assert "exceeds the limit (1)" in doc["message"]
    assert await post(session, sim, body_for(sim)) == (
        400,
        {"code": "24102006", "message": "custom"},
    )
    assert (await post(session, sim, body_for(sim)))[0] == 200
    with pytest.raises(ValueError, match="success"):
        sim.fail_next(OP, 0)


async def test_internal_error_fault(session: aiohttp.ClientSession) -> None:
    faults = Faults(rate=1.0, kinds=("internal_error",), operations={OP})
    async with Simulator(faults=faults, wall_clock=lambda: WALL) as simulator:
        status, doc = await post(session, simulator, body_for(simulator))
        assert_error(status, doc, 500, "24102500")
        assert simulator.faults_injected(OP) == {"internal_error": 1}
        assert simulator.faults_injected("get_room_stats") == {}


async def test_reply_next_and_arrivals(sim: Simulator, session: aiohttp.ClientSession) -> None:
    sim.reply_next(OP, body="<html>gone</html>", status=502, content_type="text/html")
    async with session.post(f"{sim.url}{PATH}", headers=auth_headers(sim), json={}) as resp:
        assert resp.status == 502
        assert await resp.text() == "<html>gone</html>"
    await post(session, sim, body_for(sim))
    assert len(sim.arrivals(OP)) == 2
    assert sim.arrivals("get_stream_info") == []


async def test_only_post_is_served(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{sim.url}{PATH}", headers=auth_headers(sim)) as resp:
        assert resp.status == 405
    assert sim.arrivals(OP) == []


async def test_no_secret_in_logs_or_reprs(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(rate=0.5, kinds=("drop_connection", "bad_gateway", "internal_error"))
    async with Simulator(faults=faults, wall_clock=lambda: WALL) as simulator:
        creds = simulator.chinanetcenter
        headers = auth_headers(simulator)
        password = base64.b64decode(headers["Authorization"].split()[1]).decode()
        bad = auth_headers(simulator, api_key="wrong")
        for sent in [headers] * 6 + [bad] * 2:
            try:
                async with session.post(
                    f"{simulator.url}{PATH}", headers=sent, json=body_for(simulator)
                ) as resp:
                    text = await resp.text()
                    assert creds.api_key not in text
                    assert password.split(":")[1] not in text
            except aiohttp.ClientError:
                pass
        shown = [repr(simulator), repr(creds), str(creds)]
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    for secret in (creds.api_key, creds.secret_key, password.split(":")[1]):
        assert secret not in logged
        assert all(secret not in text for text in shown)
