"""The offline simulator, tested from the outside with raw aiohttp calls.

These tests speak HTTP to the simulator directly (not through the livestats client)
so that a bug in one cannot hide a bug in the other. Time-sensitive behaviour
(quota windows, UserSig expiry) runs on fake clocks; only the slow-reply fault
sleeps for real, briefly.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio
from aiohttp import web

from livestats._core.quota import Quota
from livestats.providers.tencent.usersig import generate_usersig
from livestats.testing import (
    ChinaNetCenterCredentials,
    ChinaNetCenterSim,
    Faults,
    PolyvCredentials,
    PolyvSim,
    Simulator,
    TencentCredentials,
    TencentSim,
    max_in_window,
)
from livestats.testing import pytest_plugin as plugin_module

pytest_plugins = ["pytester"]

PATH = "/v4/live_engine_http_srv/"
Json = dict[str, Any]
STATS_FIELDS = {
    "TotalViewers",
    "TotalGiftsSent",
    "TotalGiftCoins",
    "TotalUniqueGiftSenders",
    "TotalLikesReceived",
    "TotalMsgCount",
}
GIFT_FIELDS = {"Sequence", "TotalCount", "TotalCoins", "GiftSenderCount"}
ONE_ROOM = TencentSim(rooms=1)
LISTING_FIELDS = {
    "RoomName",
    "RoomId",
    "Owner_Account",
    "CoverURL",
    "Category",
    "CreateTime",
    "ActivityStatus",
    "ViewCount",
}


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=7, tencent=TencentSim(rooms=50)) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def sign(
    creds: TencentCredentials,
    *,
    sdkappid: int | None = None,
    identifier: str | None = None,
    secret_key: str | None = None,
    now: int | None = None,
    expire: int = 86_400,
) -> str:
    return generate_usersig(
        creds.sdkappid if sdkappid is None else sdkappid,
        creds.identifier if identifier is None else identifier,
        creds.secret_key if secret_key is None else secret_key,
        now=int(time.time()) if now is None else now,
        expire=expire,
    )


def signed_query(sim: Simulator, usersig: str | None = None) -> dict[str, str]:
    creds = sim.tencent
    return {
        "sdkappid": str(creds.sdkappid),
        "identifier": creds.identifier,
        "usersig": usersig or sign(creds),
        "random": "12345",
        "contenttype": "json",
    }


async def call(
    session: aiohttp.ClientSession,
    sim: Simulator,
    operation: str,
    body: Json | bytes,
    *,
    query: dict[str, str] | None = None,
) -> Json:
    """POST to the operation and return the envelope, checking it is HTTP 200 JSON."""
    params = signed_query(sim) if query is None else query
    payload: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with session.post(f"{sim.url}{PATH}{operation}", params=params, **payload) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        doc: Json = await resp.json()
    return doc


def assert_ok(doc: Json) -> Json:
    assert doc["ActionStatus"] == "OK", doc
    assert doc["ErrorCode"] == 0
    assert doc["ErrorInfo"] == ""
    assert re.fullmatch(r"Id-[0-9a-f]{32}-O-Seq-\d+", doc["RequestId"])
    response: Json = doc["Response"]
    return response


def assert_fail(doc: Json, code: int) -> None:
    assert doc["ActionStatus"] == "FAIL", doc
    assert doc["ErrorCode"] == code, doc
    assert isinstance(doc["ErrorInfo"], str)
    assert doc["ErrorInfo"]
    assert re.fullmatch(r"Id-[0-9a-f]{32}-O-Seq-\d+", doc["RequestId"])
    assert "Response" not in doc


def all_ints(values: Json) -> bool:
    return all(type(value) is int and value >= 0 for value in values.values())


# -- lifecycle and data ---------------------------------------------------------


async def test_lifecycle_and_public_attributes() -> None:
    simulator = Simulator(tencent=TencentSim(rooms=3))
    assert isinstance(simulator.app, web.Application)
    with pytest.raises(RuntimeError):
        _ = simulator.url
    await simulator.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", simulator.url)
        assert simulator.url in repr(simulator)
        with pytest.raises(RuntimeError):
            await simulator.start()
    finally:
        await simulator.close()
    await simulator.close()
    assert simulator.room_ids == ["room-00000", "room-00001", "room-00002"]


def test_default_credentials_are_fixed_per_seed() -> None:
    creds = Simulator(seed=1).tencent
    assert creds == Simulator(seed=1).tencent
    assert creds != Simulator(seed=2).tencent
    assert 1_400_000_000 <= creds.sdkappid < 1_500_000_000
    assert creds.identifier == "administrator"
    assert re.fullmatch(r"[0-9a-f]{64}", creds.secret_key)
    assert creds.secret_key not in repr(creds)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": 70000},
        {"port": -1},
        {"seed": "0"},
        {"seed": True},
        {"faults": Faults(operations=frozenset({"get_everything"}))},
    ],
)
def test_constructor_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"port|seed|get_everything"):
        Simulator(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rooms": -1}, r"TencentSim\.rooms must be at least 0"),
        ({"rooms": 1.5}, r"TencentSim\.rooms must be an int"),
        ({"rooms": True}, r"TencentSim\.rooms must be an int"),
        ({"quotas": {"get_everything": Quota(1, 1.0)}}, "get_everything"),
        ({"quotas": {"get_room_stats": 5}}, "get_room_stats"),
    ],
)
def test_tencent_settings_are_validated(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TencentSim(**kwargs)


@pytest.mark.parametrize(
    ("name", "settings", "credentials"),
    [
        ("tencent", TencentSim, TencentCredentials.from_seed(0)),
        ("chinanetcenter", ChinaNetCenterSim, ChinaNetCenterCredentials.from_seed(0)),
        ("polyv", PolyvSim, PolyvCredentials.from_seed(0)),
    ],
)
def test_settings_of_the_wrong_type_are_refused(
    name: str, settings: type[Any], credentials: Any
) -> None:
    # The old form, credentials where the settings go, says where they went.
    pattern = rf"{name} must be a livestats\.testing\.{settings.__name__} .*credentials="
    with pytest.raises(TypeError, match=pattern) as caught:
        Simulator(**{name: credentials})
    secrets = [value for value in attrs.asdict(credentials).values() if isinstance(value, str)]
    assert not any(secret in str(caught.value) for secret in secrets)
    with pytest.raises(TypeError, match=rf"{settings.__name__}\.credentials"):
        settings(credentials=attrs.asdict(credentials))
    with pytest.raises(TypeError, match=rf"{settings.__name__}\.quotas must be a mapping"):
        settings(quotas=[("get_room_stats", None)])


def test_settings_are_plain_frozen_values() -> None:
    quotas: dict[str, Quota | None] = {"get_room_stats": None}
    settings = TencentSim(rooms=3, quotas=quotas)
    quotas["get_room_stats"] = Quota(1, 1.0)  # the settings keep their own copy
    assert settings == TencentSim(rooms=3, quotas={"get_room_stats": None})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.rooms = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        TencentSim(3)  # type: ignore[call-arg]
    assert Simulator().room_ids == Simulator(tencent=TencentSim()).room_ids
    assert len(Simulator().room_ids) == 200


def test_credentials_are_validated() -> None:
    with pytest.raises(ValueError, match="sdkappid"):
        TencentCredentials(sdkappid=0, identifier="admin", secret_key="k")
    with pytest.raises(ValueError, match="identifier"):
        TencentCredentials(sdkappid=1, identifier="", secret_key="k")


async def test_custom_credentials_are_served(session: aiohttp.ClientSession) -> None:
    creds = TencentCredentials(sdkappid=1400000001, identifier="admin", secret_key="s3cret")
    async with Simulator(tencent=TencentSim(rooms=1, credentials=creds)) as simulator:
        assert simulator.tencent is creds
        doc = await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"})
    assert_ok(doc)


async def test_unknown_operation_is_refused(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="get_room_stats"):
        sim.arrivals("get_everything")


# -- the three operations -------------------------------------------------------


async def test_room_stats_shape_and_determinism(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    response = assert_ok(await call(session, sim, "get_room_stats", {"RoomId": "room-00003"}))
    assert set(response) == STATS_FIELDS
    assert all_ints(response)
    assert response["TotalUniqueGiftSenders"] <= response["TotalGiftsSent"]
    async with (
        Simulator(seed=7, tencent=TencentSim(rooms=50)) as twin,
        Simulator(seed=8, tencent=TencentSim(rooms=50)) as other,
    ):
        same = assert_ok(await call(session, twin, "get_room_stats", {"RoomId": "room-00003"}))
        differs = assert_ok(await call(session, other, "get_room_stats", {"RoomId": "room-00003"}))
    assert same == response
    assert differs != response


async def test_gift_count_shape(sim: Simulator, session: aiohttp.ClientSession) -> None:
    body = {"RoomId": "room-00001", "From_Account": "anchor-00001"}
    response = assert_ok(await call(session, sim, "get_gift_count", body))
    assert set(response) == GIFT_FIELDS
    assert all_ints(response)
    assert response["GiftSenderCount"] <= response["TotalCount"]
    assert assert_ok(await call(session, sim, "get_gift_count", body)) == response


async def test_room_list_pages_every_room_once_by_view_count(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    listed: list[Json] = []
    cursor = ""
    for _ in range(20):
        body = {"Next": cursor, "Count": 7}
        response = assert_ok(await call(session, sim, "get_room_list", body))
        assert len(response["RoomList"]) <= 7
        listed += response["RoomList"]
        cursor = response["Next"]
        if cursor == "":
            break
    assert cursor == ""
    assert sorted(room["RoomId"] for room in listed) == sim.room_ids
    keys = [(-room["ViewCount"], room["RoomId"]) for room in listed]
    assert keys == sorted(keys)
    first = listed[0]
    assert set(first) == LISTING_FIELDS
    assert all(type(category) is int for category in first["Category"])
    assert type(first["CreateTime"]) is int
    assert type(first["ActivityStatus"]) is int


@pytest.mark.parametrize(
    "body",
    [
        {"Next": "", "Count": 0},
        {"Next": "", "Count": 21},
        {"Next": "", "Count": "5"},
        {"Next": "", "Count": True},
        {"Next": ""},
        {"Count": 5},
        {"Next": 5, "Count": 5},
        {"Next": "garbage!", "Count": 5},
        {"Next": "bGl2ZXN0YXRzLXNpbTo5OTk=", "Count": 5},  # a well-formed cursor past the end
    ],
)
async def test_room_list_refuses_bad_paging(
    sim: Simulator, session: aiohttp.ClientSession, body: Json
) -> None:
    assert_fail(await call(session, sim, "get_room_list", body), 100002)


@pytest.mark.parametrize(
    ("operation", "body", "code"),
    [
        ("get_room_stats", b"not json", 100002),
        ("get_room_stats", b"[1, 2]", 100002),
        ("get_room_stats", {}, 100002),
        ("get_room_stats", {"RoomId": 5}, 100002),
        ("get_room_stats", {"RoomId": ""}, 100002),
        ("get_room_stats", {"RoomId": "x" * 49}, 100002),
        ("get_room_stats", {"RoomId": "é" * 25}, 100002),  # 50 UTF-8 bytes
        ("get_room_stats", {"RoomId": "x" * 48}, 100004),
        ("get_room_stats", {"RoomId": "room-99999"}, 100004),
        ("get_gift_count", {"RoomId": "room-00001"}, 100002),
        ("get_gift_count", {"RoomId": "room-00001", "From_Account": ""}, 100002),
        ("get_gift_count", {"RoomId": "room-00001", "From_Account": 3}, 100002),
        ("get_gift_count", {"RoomId": "nope", "From_Account": "a"}, 100004),
    ],
)
async def test_body_validation(
    sim: Simulator, session: aiohttp.ClientSession, operation: str, body: Json | bytes, code: int
) -> None:
    assert_fail(await call(session, sim, operation, body), code)


# -- authentication -------------------------------------------------------------


def _without(name: str) -> Callable[[Simulator], dict[str, str]]:
    def build(sim: Simulator) -> dict[str, str]:
        query = signed_query(sim)
        del query[name]
        return query

    return build


def _with(name: str, value: str) -> Callable[[Simulator], dict[str, str]]:
    def build(sim: Simulator) -> dict[str, str]:
        return {**signed_query(sim), name: value}

    return build


def _signed_with(**changes: Any) -> Callable[[Simulator], dict[str, str]]:
    def build(sim: Simulator) -> dict[str, str]:
        return signed_query(sim, sign(sim.tencent, **changes))

    return build


@pytest.mark.parametrize(
    ("build_query", "code"),
    [
        *[(_without(name), 60003) for name in ("sdkappid", "identifier", "usersig", "random")],
        (_without("contenttype"), 60003),
        (_with("contenttype", "xml"), 60003),
        (_with("random", "-1"), 60003),
        (_with("random", "4294967296"), 60003),
        (_with("random", "abc"), 60003),
        (_with("sdkappid", "1400000000"), 60003),
        (_with("identifier", "somebody"), 60003),
        (_with("usersig", "not-a-usersig"), 70003),
        (_signed_with(sdkappid=1400000000), 70014),
        (_signed_with(identifier="somebody"), 70013),
        (_signed_with(secret_key="0" * 64), 70009),
        (_signed_with(now=int(time.time()) - 1000, expire=10), 70001),
    ],
)
async def test_auth_failures(
    sim: Simulator,
    session: aiohttp.ClientSession,
    build_query: Callable[[Simulator], dict[str, str]],
    code: int,
) -> None:
    doc = await call(
        session, sim, "get_room_stats", {"RoomId": "room-00000"}, query=build_query(sim)
    )
    assert_fail(doc, code)


@pytest.mark.parametrize("random_value", ["0", "4294967295"])
async def test_random_accepts_the_uint32_range(
    sim: Simulator, session: aiohttp.ClientSession, random_value: str
) -> None:
    query = {**signed_query(sim), "random": random_value}
    assert_ok(await call(session, sim, "get_room_stats", {"RoomId": "room-00000"}, query=query))


async def test_expiry_follows_the_wall_clock_even_for_a_cached_sig(
    session: aiohttp.ClientSession,
) -> None:
    wall = FakeClock(1_000_000.0)
    async with Simulator(wall_clock=wall, tencent=ONE_ROOM) as simulator:
        query = signed_query(simulator, sign(simulator.tencent, now=1_000_000, expire=100))
        body = {"RoomId": "room-00000"}
        assert_ok(await call(session, simulator, "get_room_stats", body, query=query))
        wall.now = 1_000_100.0  # expired means now > time + expire
        assert_ok(await call(session, simulator, "get_room_stats", body, query=query))
        wall.now = 1_000_100.5
        assert_fail(await call(session, simulator, "get_room_stats", body, query=query), 70001)


# -- quotas and arrivals --------------------------------------------------------


async def test_a_burst_over_the_quota_is_refused(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(10.0)
    async with Simulator(clock=clock, tencent=TencentSim(rooms=5)) as simulator:
        query = signed_query(simulator)
        burst = [
            call(session, simulator, "get_room_stats", {"RoomId": "room-00000"}, query=query)
            for _ in range(105)
        ]
        docs = await asyncio.gather(*burst)
        codes = [doc["ErrorCode"] for doc in docs]
        assert codes.count(60007) == 5
        assert codes.count(0) == 100
        assert simulator.violations("get_room_stats") == 5
        assert simulator.arrivals("get_room_stats") == [10.0] * 105
        assert simulator.max_in_window("get_room_stats") == 105

        clock.now = 11.0  # one full period later the window is empty again
        assert_ok(await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"}))


async def test_the_window_slides_and_refused_requests_count(
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()
    quotas: dict[str, Quota | None] = {"get_room_stats": Quota(2, 1.0)}
    async with Simulator(clock=clock, tencent=TencentSim(rooms=1, quotas=quotas)) as simulator:
        outcomes = []
        for now in (0.0, 0.0, 0.5, 1.0, 1.2, 2.5):
            clock.now = now
            doc = await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"})
            outcomes.append(doc["ErrorCode"])
        # t=1.0: the two at 0.0 left the window (half-open), the refused 0.5 is in it;
        # t=1.2: 0.5, 1.0 and 1.2 are three in the last second.
        assert outcomes == [0, 0, 60007, 0, 60007, 0]
        assert simulator.violations("get_room_stats") == 2
        assert simulator.arrivals("get_room_stats") == [0.0, 0.0, 0.5, 1.0, 1.2, 2.5]
        assert simulator.max_in_window("get_room_stats") == 3


async def test_an_operation_mapped_to_none_is_not_enforced(
    session: aiohttp.ClientSession,
) -> None:
    quotas: dict[str, Quota | None] = {"get_room_list": None}
    async with Simulator(
        clock=FakeClock(), tencent=TencentSim(rooms=3, quotas=quotas)
    ) as simulator:
        for _ in range(15):
            assert_ok(await call(session, simulator, "get_room_list", {"Next": "", "Count": 1}))
        assert simulator.violations("get_room_list") == 0
        with pytest.raises(ValueError, match="period"):
            simulator.max_in_window("get_room_list")
        assert simulator.max_in_window("get_room_list", period=1.0) == 15


async def test_arrivals_include_refused_faulted_and_scripted_requests(
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()
    faults = Faults(rate=1.0, kinds=("internal_error",), operations=frozenset({"get_gift_count"}))
    async with Simulator(clock=clock, faults=faults, tencent=ONE_ROOM) as simulator:
        bad_query = {**signed_query(simulator), "usersig": "garbage"}
        clock.now = 1.0
        await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"}, query=bad_query)
        clock.now = 2.0
        simulator.fail_next("get_room_stats", 100001)
        await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"})
        clock.now = 3.0
        body = {"RoomId": "room-00000", "From_Account": "a"}
        assert_fail(await call(session, simulator, "get_gift_count", body), 100001)
        assert simulator.arrivals("get_room_stats") == [1.0, 2.0]
        assert simulator.arrivals("get_gift_count") == [3.0]
        assert simulator.query_values("get_room_stats", "random") == ["12345", "12345"]
        assert simulator.query_values("get_room_stats", "absent") == [None, None]
        assert simulator.faults_injected("get_gift_count") == {"internal_error": 1}
        assert simulator.faults_injected("get_room_stats") == {}

        simulator.fail_next("get_room_stats", 100001, times=3)
        simulator.reset()
        assert simulator.arrivals("get_room_stats") == []
        assert simulator.query_values("get_room_stats", "random") == []
        assert simulator.faults_injected("get_gift_count") == {}
        assert simulator.violations("get_room_stats") == 0
        assert_ok(await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"}))


@pytest.mark.parametrize(
    ("times", "period", "expected"),
    [
        ([], 1.0, 0),
        ([5.0], 1.0, 1),
        ([0.0, 1.0], 1.0, 1),  # exactly one period apart: never in the same window
        ([0.0, 0.999, 1.0], 1.0, 2),
        ([0.0, 0.0, 0.0], 1.0, 3),
        ([3.0, 0.5, 0.0, 0.9, 3.5], 1.0, 3),  # unsorted input
        ([0.0, 1.0, 2.0, 2.5, 2.9, 3.0], 1.0, 3),
    ],
)
def test_max_in_window(times: list[float], period: float, expected: int) -> None:
    assert max_in_window(times, period) == expected


def test_max_in_window_matches_brute_force() -> None:
    rng = random.Random(0)
    for _ in range(200):
        # Quarters are exact in binary, so the brute force has no rounding to disagree on.
        times = [rng.randint(0, 20) / 4 for _ in range(rng.randint(0, 30))]
        period = rng.choice([0.25, 0.5, 1.0, 2.0])
        brute = max((sum(t <= u < t + period for u in times) for t in times), default=0)
        assert max_in_window(times, period) == brute


@pytest.mark.parametrize("period", [0.0, -1.0, math.nan, math.inf * -1])
def test_max_in_window_refuses_bad_periods(period: float) -> None:
    with pytest.raises(ValueError, match="period"):
        max_in_window([1.0], period)


# -- scripted replies -----------------------------------------------------------


async def test_fail_next(sim: Simulator, session: aiohttp.ClientSession) -> None:
    body = {"RoomId": "room-00000"}
    sim.fail_next("get_room_stats", 70001, times=2, message="UserSig expired")
    sim.fail_next("get_room_stats", 60007)
    for _ in range(2):
        doc = await call(session, sim, "get_room_stats", body)
        assert_fail(doc, 70001)
        assert doc["ErrorInfo"] == "UserSig expired"
    assert_fail(await call(session, sim, "get_room_stats", body), 60007)
    assert_ok(await call(session, sim, "get_room_stats", body))


def test_fail_next_refuses_bad_arguments() -> None:
    simulator = Simulator(tencent=ONE_ROOM)
    with pytest.raises(ValueError, match="success"):
        simulator.fail_next("get_room_stats", 0)
    with pytest.raises(ValueError, match="times"):
        simulator.fail_next("get_room_stats", 100001, times=0)
    with pytest.raises(ValueError, match="unknown operation"):
        simulator.fail_next("get_everything", 100001)


async def test_reply_next(sim: Simulator, session: aiohttp.ClientSession) -> None:
    page = b"<html><body>upstream gone</body></html>"
    sim.reply_next("get_room_stats", body=page, status=502, content_type="text/html; charset=utf-8")
    url = f"{sim.url}{PATH}get_room_stats"
    async with session.post(url, params=signed_query(sim), json={"RoomId": "room-00000"}) as resp:
        assert resp.status == 502
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert await resp.read() == page
    assert_ok(await call(session, sim, "get_room_stats", {"RoomId": "room-00000"}))


# -- faults ---------------------------------------------------------------------


def only(kind: str, **kwargs: Any) -> Faults:
    return Faults(rate=1.0, kinds=(kind,), **kwargs)


async def test_internal_error_fault(session: aiohttp.ClientSession) -> None:
    async with Simulator(faults=only("internal_error"), tencent=ONE_ROOM) as simulator:
        doc = await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"})
        assert_fail(doc, 100001)
        assert simulator.faults_injected("get_room_stats") == {"internal_error": 1}


async def test_bad_gateway_fault(session: aiohttp.ClientSession) -> None:
    async with Simulator(faults=only("bad_gateway"), tencent=ONE_ROOM) as simulator:
        url = f"{simulator.url}{PATH}get_room_stats"
        query = signed_query(simulator)
        async with session.post(url, params=query, json={"RoomId": "room-00000"}) as resp:
            assert resp.status == 502
            assert resp.content_type == "text/html"
            assert "502 Bad Gateway" in await resp.text()
        assert simulator.faults_injected("get_room_stats") == {"bad_gateway": 1}


async def test_drop_connection_fault_disconnects_quietly(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Simulator(faults=only("drop_connection"), tencent=ONE_ROOM) as simulator:
        url = f"{simulator.url}{PATH}get_room_stats"
        for _ in range(2):
            with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
                async with session.post(url, params=signed_query(simulator), json={}) as resp:
                    await resp.read()
        assert simulator.faults_injected("get_room_stats") == {"drop_connection": 2}
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_slow_reply_fault(session: aiohttp.ClientSession) -> None:
    async with Simulator(faults=only("slow_reply", slow_delay=0.2), tencent=ONE_ROOM) as simulator:
        started = time.monotonic()
        doc = await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"})
        assert time.monotonic() - started >= 0.2
        assert_ok(doc)
        assert simulator.faults_injected("get_room_stats") == {"slow_reply": 1}


async def test_faults_only_hit_the_chosen_operations(session: aiohttp.ClientSession) -> None:
    faults = only("internal_error", operations={"get_gift_count"})
    async with Simulator(faults=faults, tencent=ONE_ROOM) as simulator:
        assert_ok(await call(session, simulator, "get_room_stats", {"RoomId": "room-00000"}))
        body = {"RoomId": "room-00000", "From_Account": "a"}
        assert_fail(await call(session, simulator, "get_gift_count", body), 100001)


async def _fault_outcomes(
    session: aiohttp.ClientSession, simulator: Simulator, n: int = 20
) -> list[tuple[int, int | None]]:
    url = f"{simulator.url}{PATH}get_room_stats"
    outcomes: list[tuple[int, int | None]] = []
    for _ in range(n):
        async with session.post(
            url, params=signed_query(simulator), json={"RoomId": "room-00000"}
        ) as resp:
            code = (await resp.json())["ErrorCode"] if resp.status == 200 else None
            outcomes.append((resp.status, code))
    return outcomes


async def test_faults_are_deterministic_per_seed(session: aiohttp.ClientSession) -> None:
    faults = Faults(rate=0.5, kinds=("internal_error", "bad_gateway"))
    async with Simulator(seed=3, faults=faults, tencent=ONE_ROOM) as first:
        outcomes = await _fault_outcomes(session, first)
        first.reset()
        assert await _fault_outcomes(session, first) == outcomes
    async with Simulator(seed=3, faults=faults, tencent=ONE_ROOM) as second:
        assert await _fault_outcomes(session, second) == outcomes
    async with Simulator(seed=4, faults=faults, tencent=ONE_ROOM) as other:
        assert await _fault_outcomes(session, other) != outcomes
    assert set(outcomes) == {(200, 0), (200, 100001), (502, None)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": -0.1},
        {"rate": 1.1},
        {"rate": math.nan},
        {"rate": True},
        {"kinds": ()},
        {"kinds": ("boom",)},
        {"kinds": "bad_gateway"},
        {"slow_delay": -1.0},
        {"slow_delay": math.inf},
        {"operations": "get_room_stats"},
    ],
)
def test_faults_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"Faults\.|fault kinds"):
        Faults(**kwargs)


# -- secrets --------------------------------------------------------------------


async def test_no_usersig_or_secret_in_logs_or_reprs(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(rate=0.5, kinds=("drop_connection", "bad_gateway", "internal_error"))
    async with Simulator(faults=faults, tencent=TencentSim(rooms=2)) as simulator:
        creds = simulator.tencent
        usersig = sign(creds)
        bad_usersig = sign(creds, secret_key="0" * 64)
        url = f"{simulator.url}{PATH}get_room_stats"
        for sig in [usersig] * 6 + [bad_usersig] * 2:
            try:
                async with session.post(
                    url, params=signed_query(simulator, sig), json={"RoomId": "room-00000"}
                ) as resp:
                    await resp.read()
            except aiohttp.ClientError:
                pass
        shown = [repr(simulator), repr(creds), str(creds), repr(simulator.app)]
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    for secret in (usersig, bad_usersig, creds.secret_key):
        assert secret not in logged
        assert all(secret not in text for text in shown)


# -- the pytest plugin ----------------------------------------------------------


def test_plugin_fixture_yields_a_started_simulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import aiohttp

        async def test_it(livestats_simulator):
            assert livestats_simulator.url.startswith("http://127.0.0.1:")
            async with aiohttp.ClientSession() as session:
                async with session.post(livestats_simulator.url + "/v4/nothing") as resp:
                    assert resp.status == 404
        """
    )
    pytester.makeini(
        """
        [pytest]
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        filterwarnings =
            error
            ignore::pytest.PytestAssertRewriteWarning
        """
    )
    # (In process, the outer run has already imported livestats, so the inner one
    # warns that it cannot rewrite its asserts; that is beside the point here.)
    # Load the plugin by module name, and block the entry point in case livestats
    # is installed, so that it is not registered twice.
    result = pytester.runpytest_inprocess("-p", "no:livestats", "-p", plugin_module.__name__)
    result.assert_outcomes(passed=1)


def test_plugin_says_what_to_install_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """Without pytest-asyncio the fixtures still exist and fail with what to install,
    not with pytest's "fixture not found"."""
    pytester.makepyfile("def test_it(livestats_simulator):\n    pass\n")
    result = pytester.runpytest_inprocess(
        "-p", "no:asyncio", "-p", "no:livestats", "-p", plugin_module.__name__
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*livestats_simulator fixture is async and needs pytest-asyncio*"])
