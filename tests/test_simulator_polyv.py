"""The simulator's Polyv endpoint, tested with raw aiohttp calls.

Speaking HTTP directly, not through the livestats client, keeps a bug in one from
hiding a bug in the other. The wall clock is injected (Polyv's 3-minute timestamp
window depends on it) and the quota clock is fake, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from livestats._core.quota import Quota
from livestats.testing import Faults, PolyvCredentials, PolyvSim, Simulator
from livestats.testing._polyv import _sign

PATH = "/live/v3/channel/monitor/list-tencent-stream-info"
OP = "get_stream_info"
Json = dict[str, Any]

# 2024-06-15 04:00:00 UTC, 12:00 in Beijing.
WALL = datetime(2024, 6, 15, 4, 0, tzinfo=timezone.utc).timestamp()
NOW_MS = int(WALL * 1000)
HOUR_MS = 3_600_000
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
    async with Simulator(seed=9, wall_clock=lambda: WALL) as simulator:
        yield simulator


def signed(
    sim: Simulator,
    *,
    secret: str | None = None,
    timestamp: int | str | None = NOW_MS,
    **params: str,
) -> dict[str, str]:
    query = {"appId": sim.polyv.app_id, "channelId": sim.channel_ids[0], **params}
    if timestamp is not None:
        query["timestamp"] = str(timestamp)
    query["sign"] = _sign(query, sim.polyv.app_secret if secret is None else secret)
    return query


async def get(
    session: aiohttp.ClientSession, sim: Simulator, query: dict[str, str]
) -> tuple[int, Json]:
    async with session.get(f"{sim.url}{PATH}", params=query) as resp:
        assert resp.content_type == "application/json"
        doc: Json = await resp.json()
        return resp.status, doc


def assert_error(status: int, doc: Json, code: int, message: str | None = None) -> None:
    assert (status, doc["code"], doc["status"], doc["data"]) == (code, code, "error", ""), doc
    if message is not None:
        assert doc["message"] == message
    else:
        assert doc["message"]


def sample_times(doc: Json) -> list[int]:
    """Each sample's ``time`` as epoch milliseconds, reading it as Beijing time."""
    times = []
    for sample in doc["data"]:
        moment = datetime.strptime(sample["time"], "%Y-%m-%d %H:%M:%S.%f")
        times.append(int(moment.replace(tzinfo=BEIJING).timestamp() * 1000))
    return times


# -- signing and data -----------------------------------------------------------


def test_sign_known_answer() -> None:
    params: dict[str, str | None] = {
        "appId": "g4rqgmmjuo",
        "channelIds": "2477096,2272655",
        "endDay": "2022-06-18",
        "startDay": "2022-05-20",
        "timestamp": "1660270926732",
    }
    secret = "fsq2k5weced1h8vui657xtdva66whf0g"
    assert _sign(params, secret) == "0D2BDA2FD04D93A2B8832B91FD973C4D"
    # sign itself, null and blank values are left out; order does not matter.
    noisy = {
        "sign": "X",
        "empty": "",
        "blank": "  ",
        "null": None,
        **dict(reversed(params.items())),
    }
    assert _sign(noisy, secret) == "0D2BDA2FD04D93A2B8832B91FD973C4D"


def test_default_app_and_channels_are_fixed_per_seed() -> None:
    first, again, other = Simulator(seed=1), Simulator(seed=1), Simulator(seed=2)
    creds = first.polyv
    assert creds == again.polyv
    assert creds != other.polyv
    assert re.fullmatch(r"[a-z0-9]{10}", creds.app_id)
    assert re.fullmatch(r"[a-z0-9]{32}", creds.app_secret)
    assert creds.app_secret not in repr(creds)
    assert first.channel_ids == again.channel_ids
    assert len(first.channel_ids) == 5
    assert len(first.offline_channel_ids) == 2
    every = first.channel_ids + first.offline_channel_ids
    assert len(set(every)) == 7
    assert all(re.fullmatch(r"[1-9][0-9]{6}", channel) for channel in every)
    sized = Simulator(polyv=PolyvSim(channels=30, offline_channels=0))
    assert (len(sized.channel_ids), sized.offline_channel_ids) == (30, [])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": -1}, r"PolyvSim\.channels must be at least 0"),
        ({"offline_channels": 1.5}, r"PolyvSim\.offline_channels must be an int"),
        ({"block_seconds": -1.0}, r"PolyvSim\.block_seconds must be a non-negative number"),
        ({"block_seconds": float("nan")}, r"PolyvSim\.block_seconds"),
        ({"block_seconds": True}, r"PolyvSim\.block_seconds"),
        ({"quotas": {"get_everything": Quota(1, 1.0)}}, "get_everything"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PolyvSim(**kwargs)


def test_credentials_are_validated() -> None:
    with pytest.raises(ValueError, match="app_id"):
        PolyvCredentials(app_id="", app_secret="s")
    with pytest.raises(ValueError, match="app_secret"):
        PolyvCredentials(app_id="a", app_secret=" ")


# -- the answer -----------------------------------------------------------------


async def test_answer_shape(sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, doc = await get(session, sim, signed(sim))
    assert status == 200
    assert (doc["code"], doc["status"], doc["message"]) == (200, "success", "")
    # The default window is the last 3 hours: one sample per 5 minutes.
    assert 36 <= len(doc["data"]) <= 37
    for sample in doc["data"]:
        assert set(sample) == {
            "streamUrl",
            "bitRate",
            "audioFrameRate",
            "videoFrameRate",
            "time",
            "timestamp",
        }
        assert sample["timestamp"] is None
        assert isinstance(sample["streamUrl"], str)
        for name in ("bitRate", "audioFrameRate", "videoFrameRate"):
            assert isinstance(sample[name], str)
            assert sample[name].isdigit()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}", sample["time"])
    times = sample_times(doc)
    # Read as Beijing time, every sample falls in the last 3 hours, 5 minutes apart.
    assert all(NOW_MS - 3 * HOUR_MS <= t <= NOW_MS for t in times)
    assert times == sorted(times)
    assert all(290_000 <= b - a <= 310_000 for a, b in itertools.pairwise(times))
    assert doc["data"][-1]["time"].startswith("2024-06-15 11:5")


async def test_answer_is_deterministic(session: aiohttp.ClientSession) -> None:
    docs = []
    for seed in (9, 9, 10):
        async with Simulator(seed=seed, wall_clock=lambda: WALL) as simulator:
            query = signed(simulator, channelId=Simulator(seed=9).channel_ids[0])
            docs.append(await get(session, simulator, query))
    assert docs[0] == docs[1]
    assert docs[0][1]["code"] == 200
    # Another seed has other channels (and another app), so the same query fails.
    assert docs[0] != docs[2]


async def test_an_explicit_window(sim: Simulator, session: aiohttp.ClientSession) -> None:
    start, end = NOW_MS - 7 * 24 * HOUR_MS, NOW_MS - 6 * 24 * HOUR_MS
    query = signed(sim, startTime=str(start), endTime=str(end))
    status, doc = await get(session, sim, query)
    assert status == 200
    times = sample_times(doc)
    assert len(times) == 24 * 12
    assert all(start <= t <= end for t in times)
    # The same moments give the same samples whatever the window.
    inner = signed(sim, startTime=str(start + HOUR_MS), endTime=str(start + 2 * HOUR_MS))
    _, part = await get(session, sim, inner)
    wanted = set(sample_times(part))
    assert part["data"] == [s for s, t in zip(doc["data"], times, strict=True) if t in wanted]
    assert len(part["data"]) == 12


async def test_samples_stop_at_now(sim: Simulator, session: aiohttp.ClientSession) -> None:
    query = signed(sim, startTime=str(NOW_MS - HOUR_MS), endTime=str(NOW_MS + 24 * HOUR_MS))
    status, doc = await get(session, sim, query)
    assert status == 200
    assert max(sample_times(doc)) <= NOW_MS


async def test_date_header_follows_the_wall_clock(session: aiohttp.ClientSession) -> None:
    wall = FakeClock(WALL)
    async with Simulator(seed=9, wall_clock=wall) as simulator:
        for now in (WALL, WALL + 3600.5):
            wall.now = now
            query = signed(simulator, timestamp=int(now * 1000))
            async with session.get(f"{simulator.url}{PATH}", params=query) as resp:
                assert resp.status == 200
                assert resp.headers["Date"] == formatdate(now, usegmt=True)
        # Errors too: the client needs the server's time most when its own is off.
        async with session.get(f"{simulator.url}{PATH}", params=signed(simulator)) as resp:
            assert resp.status == 400
            assert resp.headers["Date"] == formatdate(wall.now, usegmt=True)


# -- refusals -------------------------------------------------------------------


async def test_invalid_signature(sim: Simulator, session: aiohttp.ClientSession) -> None:
    good = signed(sim)
    queries = [
        signed(sim, secret="not-the-secret"),
        {**good, "appId": "someoneelse"},
        {**good, "channelId": sim.channel_ids[1]},  # changed after signing
        {**good, "sign": good["sign"].lower()},
        {key: value for key, value in good.items() if key != "sign"},
        {key: value for key, value in good.items() if key != "appId"},
    ]
    for query in queries:
        assert_error(*await get(session, sim, query), 400, "invalid signature.")


async def test_blank_parameters_are_not_signed(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    query = signed(sim)
    status, _ = await get(session, sim, {**query, "startTime": "", "endTime": " "})
    assert status == 200


@pytest.mark.parametrize(
    ("timestamp", "ok"),
    [
        (None, False),
        (str(NOW_MS // 1000), False),  # seconds, not milliseconds
        ("1718424000000.0", False),
        (NOW_MS - 180_000, True),
        (NOW_MS + 180_000, True),
        (NOW_MS - 180_001, False),
        (NOW_MS + 180_001, False),
        (NOW_MS - 3_600_000, False),
    ],
)
async def test_timestamp_window(
    sim: Simulator, session: aiohttp.ClientSession, timestamp: int | str | None, ok: bool
) -> None:
    status, doc = await get(session, sim, signed(sim, timestamp=timestamp))
    if ok:
        assert status == 200
    else:
        assert_error(status, doc, 400, "invalid timestamp.")


async def test_a_client_with_a_skewed_clock_fails(session: aiohttp.ClientSession) -> None:
    wall = FakeClock(WALL)
    async with Simulator(seed=9, wall_clock=wall) as simulator:
        query = signed(simulator)
        assert (await get(session, simulator, query))[0] == 200
        wall.now = WALL + 181
        assert_error(*await get(session, simulator, query), 400, "invalid timestamp.")


async def test_channel_id_is_required(sim: Simulator, session: aiohttp.ClientSession) -> None:
    query = {"appId": sim.polyv.app_id, "timestamp": str(NOW_MS)}
    query["sign"] = _sign(query, sim.polyv.app_secret)
    status, doc = await get(session, sim, query)
    assert_error(status, doc, 400)
    assert "channelId" in doc["message"]


async def test_channel_must_be_live(sim: Simulator, session: aiohttp.ClientSession) -> None:
    for channel in (sim.offline_channel_ids[0], "1234", "nonsense"):
        status, doc = await get(session, sim, signed(sim, channelId=channel))
        assert_error(status, doc, 400, "channel status not live")


@pytest.mark.parametrize(
    ("start", "end", "word"),
    [
        (str(NOW_MS // 1000), None, "startTime"),
        (None, "tomorrow", "endTime"),
        (str(NOW_MS - HOUR_MS), str(NOW_MS - 2 * HOUR_MS), "after"),
        (str(NOW_MS - 7 * 24 * HOUR_MS - 1), str(NOW_MS), "7 days"),
        (str(NOW_MS - 2 * HOUR_MS), str(NOW_MS + 7 * 24 * HOUR_MS), "7 days"),
        (None, str(NOW_MS - 4 * HOUR_MS), "after"),  # the default start is 3 hours ago
    ],
)
async def test_window_rules(
    sim: Simulator,
    session: aiohttp.ClientSession,
    start: str | None,
    end: str | None,
    word: str,
) -> None:
    params = {
        name: value for name, value in (("startTime", start), ("endTime", end)) if value is not None
    }
    status, doc = await get(session, sim, signed(sim, **params))
    assert_error(status, doc, 400)
    assert word in doc["message"]


async def test_checks_run_in_order(sim: Simulator, session: aiohttp.ClientSession) -> None:
    offline = sim.offline_channel_ids[0]
    bad_window = {"startTime": "1", "channelId": offline}
    stale = NOW_MS - HOUR_MS
    cases = [
        (signed(sim, secret="x", timestamp=stale, **bad_window), "invalid signature."),
        (signed(sim, timestamp=stale, **bad_window), "invalid timestamp."),
        (signed(sim, **bad_window), None),
        (signed(sim, channelId=offline), "channel status not live"),
    ]
    for query, message in cases:
        status, doc = await get(session, sim, query)
        assert_error(status, doc, 400, message)
        if message is None:
            assert "startTime" in doc["message"]


# -- quota, block, scripts and faults -------------------------------------------


async def test_quota_then_block_per_ip(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(0.0)
    async with Simulator(
        seed=9,
        clock=clock,
        wall_clock=lambda: WALL,
        polyv=PolyvSim(quotas={OP: Quota(3, 0.5)}, block_seconds=0.3),
    ) as simulator:
        query = signed(simulator)
        replies = await asyncio.gather(*(get(session, simulator, query) for _ in range(3)))
        assert [status for status, _ in replies] == [200, 200, 200]

        clock.now = 0.4  # the 4th in the window: refused, and the IP is blocked until 0.7
        status, doc = await get(session, simulator, query)
        assert (status, doc) == (
            403,
            {"code": 403, "status": "error", "message": "qps exceeds number of calls", "data": ""},
        )
        # At 0.55 the window holds only 0.4 and 0.55: free again, but the block
        # holds, whatever app id the request names.
        clock.now = 0.55
        other_app = {**query, "appId": "anotherapp"}
        assert (await get(session, simulator, other_app))[0] == 403

        clock.now = 0.7  # the block is over; the window holds 0.4, 0.55 and 0.7
        assert (await get(session, simulator, query))[0] == 200
        # The two refused requests still count: one more is over the quota again.
        clock.now = 0.71
        assert (await get(session, simulator, query))[0] == 403

        assert simulator.violations(OP) == 3
        assert simulator.arrivals(OP) == [0.0, 0.0, 0.0, 0.4, 0.55, 0.7, 0.71]
        assert simulator.query_values(OP, "appId")[4] == "anotherapp"

        simulator.reset()
        assert simulator.violations(OP) == 0


async def test_without_a_block_only_the_window_refuses(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(0.0)
    async with Simulator(
        seed=9,
        clock=clock,
        wall_clock=lambda: WALL,
        polyv=PolyvSim(quotas={OP: Quota(1, 1.0)}, block_seconds=0),
    ) as simulator:
        query = signed(simulator)
        statuses = []
        for now in (0.0, 0.5, 1.0):
            clock.now = now
            statuses.append((await get(session, simulator, query))[0])
        assert statuses == [200, 403, 403]  # the refused 0.5 still counts at 1.0
        clock.now = 2.0  # a full period after the last one
        assert (await get(session, simulator, query))[0] == 200


async def test_fail_next_and_faults(session: aiohttp.ClientSession) -> None:
    faults = Faults(rate=1.0, kinds=("internal_error",), operations={OP})
    async with Simulator(seed=9, wall_clock=lambda: WALL, faults=faults) as simulator:
        simulator.fail_next(OP, 403)
        simulator.fail_next(OP, 400, message="channel status not live")
        query = signed(simulator)
        assert (await get(session, simulator, query))[0] == 403
        assert_error(*await get(session, simulator, query), 400, "channel status not live")
        status, doc = await get(session, simulator, query)
        assert (status, doc) == (
            500,
            {"code": 500, "status": "fail", "message": "internal error", "data": ""},
        )
        assert simulator.faults_injected(OP) == {"internal_error": 1}
        with pytest.raises(ValueError, match="success"):
            simulator.fail_next(OP, 200)
        simulator.fail_next(OP, 0)  # not Polyv's success code
        status, doc = await get(session, simulator, query)
        assert (status, doc["code"], doc["status"]) == (400, 0, "error")


async def test_bad_gateway_fault(session: aiohttp.ClientSession) -> None:
    faults = Faults(rate=1.0, kinds=("bad_gateway",), operations={OP})
    async with Simulator(seed=9, wall_clock=lambda: WALL, faults=faults) as simulator:
        url = f"{simulator.url}{PATH}"
        async with session.get(url, params=signed(simulator)) as resp:
            assert resp.status == 502
            assert "502 Bad Gateway" in await resp.text()


async def test_only_get_is_served(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{sim.url}{PATH}", params=signed(sim)) as resp:
        assert resp.status == 405
    assert sim.arrivals(OP) == []


async def test_no_secret_in_logs_or_reprs(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(rate=0.5, kinds=("drop_connection", "bad_gateway", "internal_error"))
    async with Simulator(faults=faults, wall_clock=lambda: WALL) as simulator:
        secret = simulator.polyv.app_secret
        for query in [signed(simulator)] * 6 + [signed(simulator, secret="wrong")] * 2:
            try:
                async with session.get(f"{simulator.url}{PATH}", params=query) as resp:
                    text = await resp.text()
                    assert secret not in text
                    # A refusal never tells what the right sign would have been.
                    assert _sign(query, secret) not in text
            except aiohttp.ClientError:
                pass
        shown = [repr(simulator), repr(simulator.polyv), str(simulator.polyv)]
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert secret not in logged
    assert all(secret not in text for text in shown)
