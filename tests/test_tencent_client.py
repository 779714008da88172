"""TencentClient against the simulator: results, quotas, server-side limits, retries, input."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from livestats import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    CredentialsExpiredError,
    GiftCount,
    LiveStatsError,
    LocalLimiter,
    NotFoundError,
    ProviderError,
    Quota,
    RateLimitedError,
    ResponseDecodingError,
    RetryPolicy,
    RoomStats,
    RoomSummary,
    TencentClient,
    TransportError,
    ValidationError,
)
from livestats.providers.tencent.usersig import generate_usersig
from livestats.testing import Faults, Simulator, TencentSim
from tests.conftest import (
    FakeTime,
    MakeClient,
    add_latency,
    client_for,
    collect,
    loop_clock_simulator,
)
from tests.virtual_time import virtual_time

# -- results -------------------------------------------------------------------------


async def test_get_room_stats_returns_typed_stats(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    room = sim.room_ids[0]
    stats = await client.get_room_stats(room)
    assert isinstance(stats, RoomStats)
    assert stats.room_id == room
    assert all(
        isinstance(getattr(stats, name), int) and getattr(stats, name) >= 0
        for name in ("total_viewers", "total_gifts_sent", "total_gift_coins", "total_msg_count")
    )
    # Deterministic data: asking twice gives the same answer.
    assert await client.get_room_stats(room) == stats


async def test_get_gift_count_returns_typed_counts(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    count = await client.get_gift_count(sim.room_ids[1], "anchor-1")
    assert isinstance(count, GiftCount)
    assert (count.room_id, count.from_account) == (sim.room_ids[1], "anchor-1")
    assert isinstance(count.total_coins, int)


async def test_iter_rooms_pages_through_every_room(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    rooms = await collect(client.iter_rooms(page_size=7))
    assert all(isinstance(room, RoomSummary) for room in rooms)
    assert sorted(room.room_id for room in rooms) == sorted(sim.room_ids)
    views = [room.view_count for room in rooms]
    assert views == sorted(views, reverse=True)
    assert rooms[0].create_time.tzinfo is not None
    assert len(sim.arrivals("get_room_list")) == -(-len(sim.room_ids) // 7)


async def test_unknown_room_is_not_found(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(NotFoundError) as info:
        await client.get_room_stats("no-such-room")
    err = info.value
    assert (err.provider, err.operation, err.vendor_code) == ("tencent", "get_room_stats", 100004)
    assert err.request_id
    assert len(sim.arrivals("get_room_stats")) == 1  # not retried


# -- quotas --------------------------------------------------------------------------


def _virtual_sim() -> Simulator:
    """The ``sim`` fixture's simulator for ``@virtual_time`` tests, over a network.

    It stamps arrivals on the loop's (virtual) clock, and each request takes up to
    20 ms each way, so it reaches the simulator some time after it is sent and
    before its answer: a limiter counting from the send would be caught.
    """
    return add_latency(loop_clock_simulator(), most=0.02, seed=7)


@virtual_time
async def test_bulk_run_with_default_quotas_never_exceeds_them() -> None:
    """1,000 room stats and gift counts alongside: zero violations, every window within N.

    Ten seconds of pacing at the real quotas, on virtual time.
    """
    async with _virtual_sim() as sim, client_for(sim) as client:
        room_ids = [sim.room_ids[i % len(sim.room_ids)] for i in range(1_000)]
        pairs = [(sim.room_ids[i % len(sim.room_ids)], f"anchor-{i}") for i in range(400)]
        stats_results, gift_results = await asyncio.gather(
            collect(client.get_room_stats_many(room_ids)),
            collect(client.get_gift_count_many(pairs)),
        )
    assert len(stats_results) == 1_000
    assert all(r.ok for r in stats_results)
    assert len(gift_results) == 400
    assert all(r.ok for r in gift_results)
    for operation, limit in (("get_room_stats", 100), ("get_gift_count", 200)):
        assert sim.violations(operation) == 0
        assert sim.max_in_window(operation) <= limit
    assert len(sim.arrivals("get_room_stats")) == 1_000


@virtual_time
async def test_quota_override_paces_at_the_new_rate() -> None:
    sim = _virtual_sim()
    async with sim, client_for(sim, quotas={"get_room_stats": Quota(5, 0.1)}) as client:
        results = await collect(client.get_room_stats_many(sim.room_ids[:30]))
    assert len(results) == 30
    assert sim.max_in_window("get_room_stats", 0.1) <= 5


async def test_quota_none_turns_pacing_off() -> None:
    async with Simulator(tencent=TencentSim(rooms=10, quotas={"get_room_stats": None})) as sim:
        client = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=sim.tencent.secret_key,
            base_url=sim.url,
            quotas={"get_room_stats": None},
        )
        async with client:
            ids = [sim.room_ids[i % 10] for i in range(250)]
            results = await collect(client.get_room_stats_many(ids, concurrency=50))
        assert all(r.ok for r in results)
        # 250 calls could not fit the 100/s default in under 2.5 s of windows.
        assert sim.max_in_window("get_room_stats", 1.0) > 100


async def test_unknown_operation_in_quotas_is_a_configuration_error(sim: Simulator) -> None:
    with pytest.raises(ConfigurationError, match="get_room_stat"):
        TencentClient(1, "admin", secret_key="k", quotas={"get_room_stat": Quota(1, 1.0)})


@virtual_time
async def test_clients_sharing_a_limiter_share_the_quota() -> None:
    shared = LocalLimiter()
    quota = {"get_room_stats": Quota(10, 0.2)}
    sim = _virtual_sim()
    async with (
        sim,
        client_for(sim, limiter=shared, quotas=quota) as first,
        client_for(sim, limiter=shared, quotas=quota) as second,
    ):
        ids = sim.room_ids[:40]
        await asyncio.gather(
            collect(first.get_room_stats_many(ids)), collect(second.get_room_stats_many(ids))
        )
    assert len(sim.arrivals("get_room_stats")) == 80
    assert sim.max_in_window("get_room_stats", 0.2) <= 10


# -- server-side limits ----------------------------------------------------------------


@pytest.mark.parametrize("code", [60007, 60011, 60018, 60019])
@virtual_time
async def test_rate_limit_codes_lower_the_limit_and_retry(code: int) -> None:
    """Every Tencent rate-limit code lowers the operation's effective limit (the vendor
    counts less than we were told) and the call is retried after a backoff."""
    period = 0.2
    sim = _virtual_sim()
    async with (
        sim,
        client_for(
            sim, quotas={"get_room_stats": Quota(50, period)}, limiter=LocalLimiter()
        ) as client,
    ):
        sim.fail_next("get_room_stats", code)
        stats = await client.get_room_stats(sim.room_ids[0])
        assert client.effective_quota("get_room_stats") == Quota(35, period)
    assert stats.room_id == sim.room_ids[0]
    first, second = sim.arrivals("get_room_stats")
    assert second > first  # retried after the policy's backoff, not a paused window


async def test_persistent_rate_limiting_ends_in_a_typed_error(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(quotas={"get_room_stats": Quota(50, 0.01)}, retry=RetryPolicy.instant(3))
    sim.fail_next("get_room_stats", 60007, times=10)
    with pytest.raises(RateLimitedError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert info.value.vendor_code == 60007
    assert len(sim.arrivals("get_room_stats")) == 3


async def test_70050_pauses_the_whole_client_for_60_seconds(
    sim: Simulator, make_client: MakeClient, fake_time: FakeTime
) -> None:
    client = make_client(
        clock=fake_time.clock(), quotas={"get_room_stats": None, "get_gift_count": None}
    )
    sim.fail_next("get_room_stats", 70050)
    with pytest.raises(AuthenticationError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert info.value.vendor_code == 70050
    assert fake_time.sleeps == []
    await client.get_gift_count(sim.room_ids[0], "anchor")  # another operation waits too
    assert sum(fake_time.sleeps) == pytest.approx(60.0)


class _GateLimiter:
    """Grants get_gift_count slots only once ``gate`` is set; records every release."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.releases: list[tuple[str, bool]] = []

    async def acquire(self, key: str, quota: Quota, *, wait_if_paused: bool = True) -> _GatePermit:
        if key.endswith("get_gift_count"):
            await self.gate.wait()
        return _GatePermit(self, key)

    async def pause(self, key: str, seconds: float) -> None:
        return None


class _GatePermit:
    def __init__(self, limiter: _GateLimiter, key: str) -> None:
        self.limiter, self.key = limiter, key

    async def release(self, *, sent: bool = True, unanswered_for: float = 0.0) -> None:
        self.limiter.releases.append((self.key.rsplit(":", 1)[-1], sent))


async def test_a_call_granted_a_slot_during_the_lockout_does_not_send(
    sim: Simulator, make_client: MakeClient, fake_time: FakeTime
) -> None:
    limiter = _GateLimiter()
    client = make_client(clock=fake_time.clock(), limiter=limiter)
    queued = asyncio.create_task(client.get_gift_count(sim.room_ids[0], "anchor"))
    await asyncio.sleep(0.01)  # waiting in the limiter
    sim.fail_next("get_room_stats", 70050)
    with pytest.raises(AuthenticationError):
        await client.get_room_stats(sim.room_ids[0])
    limiter.gate.set()  # the slot comes during the 60 s lockout
    await queued
    assert ("get_gift_count", False) in limiter.releases  # handed back unsent
    assert sum(fake_time.sleeps) == pytest.approx(60.0)
    assert len(sim.arrivals("get_gift_count")) == 1


async def test_a_closed_client_says_so(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    await client.get_room_stats(sim.room_ids[0])
    await client.close()
    with pytest.raises(ClientClosedError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert isinstance(info.value, LiveStatsError)
    assert info.value.operation == "get_room_stats"


async def test_70001_renews_the_usersig_and_retries_once(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    sim.fail_next("get_room_stats", 70001)
    await client.get_room_stats(sim.room_ids[0])
    assert len(sim.arrivals("get_room_stats")) == 2

    sim.reset()
    sim.fail_next("get_room_stats", 70001, times=2)
    with pytest.raises(CredentialsExpiredError):
        await client.get_room_stats(sim.room_ids[0])
    assert len(sim.arrivals("get_room_stats")) == 2  # renewed once, then gave up


async def test_a_given_usersig_that_expired_is_not_retried(
    sim: Simulator, make_client: MakeClient
) -> None:
    usersig = generate_usersig(
        sim.tencent.sdkappid,
        sim.tencent.identifier,
        sim.tencent.secret_key,
        now=int(time.time()) - 10_000,
        expire=60,
    )
    client = make_client(usersig=usersig)
    with pytest.raises(CredentialsExpiredError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert info.value.vendor_code == 70001
    assert len(sim.arrivals("get_room_stats")) == 1


async def test_a_wrong_secret_key_is_an_authentication_error(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(secret_key="0" * 64)
    with pytest.raises(AuthenticationError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert info.value.vendor_code == 70009
    assert len(sim.arrivals("get_room_stats")) == 1


# -- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", [100001, 60008, 60014])
async def test_transient_vendor_errors_are_retried(
    sim: Simulator, make_client: MakeClient, code: int
) -> None:
    client = make_client()
    sim.fail_next("get_room_stats", code, times=2)
    await client.get_room_stats(sim.room_ids[0])
    assert len(sim.arrivals("get_room_stats")) == 3


async def test_retries_stop_after_the_attempt_budget(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client(retry=RetryPolicy.instant(attempts=3))
    sim.fail_next("get_room_stats", 100001, times=10)
    with pytest.raises(ProviderError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert info.value.vendor_code == 100001
    assert info.value.retryable
    assert len(sim.arrivals("get_room_stats")) == 3


@virtual_time
async def test_retries_stop_after_the_time_budget() -> None:
    retry = RetryPolicy(attempts=50, timeout=0.25, initial_wait=0.1, max_wait=0.1)
    sim = _virtual_sim()
    async with sim, client_for(sim, retry=retry) as client:
        sim.fail_next("get_room_stats", 100001, times=50)
        with pytest.raises(ProviderError):
            await client.get_room_stats(sim.room_ids[0])
    # Waits of 0.05-0.1 s each fit at most five retries in 0.25 s.
    assert 2 <= len(sim.arrivals("get_room_stats")) <= 6


async def test_permanent_errors_are_not_retried(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    sim.fail_next("get_room_stats", 100002)
    with pytest.raises(ProviderError) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert not info.value.retryable
    assert len(sim.arrivals("get_room_stats")) == 1


async def test_html_gateway_pages_are_retried(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    sim.reply_next("get_room_stats", body=page, status=502, content_type="text/html")
    sim.reply_next("get_room_stats", body=page, status=200, content_type="text/html")
    await client.get_room_stats(sim.room_ids[0])
    assert len(sim.arrivals("get_room_stats")) == 3


async def test_dropped_connections_are_retried() -> None:
    faults = Faults(rate=1.0, kinds=("drop_connection",))
    async with Simulator(faults=faults, tencent=TencentSim(rooms=3)) as sim:
        client = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=sim.tencent.secret_key,
            base_url=sim.url,
            retry=RetryPolicy.instant(attempts=3),
        )
        async with client:
            with pytest.raises(TransportError) as info:
                await client.get_room_stats(sim.room_ids[0])
        assert info.value.retryable
        assert len(sim.arrivals("get_room_stats")) == 3


@virtual_time
async def test_timeouts_are_retried() -> None:
    faults = Faults(rate=1.0, kinds=("slow_reply",), slow_delay=1.0)
    async with Simulator(faults=faults, tencent=TencentSim(rooms=3)) as sim:
        client = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=sim.tencent.secret_key,
            base_url=sim.url,
            # Its own: the shared limiter may hold slots timed on another loop's clock.
            limiter=LocalLimiter(),
            retry=RetryPolicy.instant(attempts=2),
            timeout=0.1,
        )
        async with client:
            with pytest.raises(TransportError, match="no answer within"):
                await client.get_room_stats(sim.room_ids[0])
        assert len(sim.arrivals("get_room_stats")) == 2


async def test_every_attempt_is_signed_afresh(sim: Simulator, make_client: MakeClient) -> None:
    client = make_client()
    sim.fail_next("get_room_stats", 100001, times=3)
    await client.get_room_stats(sim.room_ids[0])
    randoms = sim.query_values("get_room_stats", "random")
    assert len(randoms) == 4
    assert len(set(randoms)) == 4


async def test_connection_refused_is_a_transport_error() -> None:
    client = TencentClient(
        1400000000,
        "admin",
        secret_key="k" * 64,
        base_url="http://127.0.0.1:9",
        retry=RetryPolicy.instant(attempts=2),
    )
    async with client:
        with pytest.raises(TransportError, match="cannot connect") as info:
            await client.get_room_stats("room")
    assert info.value.operation == "get_room_stats"


# -- malformed answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"ActionStatus": "OK", "RequestId": "rid-1"}', "no integer ErrorCode"),
        (b'{"ErrorCode": 0, "RequestId": "rid-1"}', "without a Response"),
        (b'{"ErrorCode": 0, "RequestId": "rid-1", "Response": {"TotalViewers": 1}}', "missing"),
        (
            b'{"ErrorCode": 0, "RequestId": "rid-1", "Response": {"TotalViewers": "many",'
            b' "TotalGiftsSent": 1, "TotalGiftCoins": 1, "TotalUniqueGiftSenders": 1,'
            b' "TotalLikesReceived": 1, "TotalMsgCount": null}}',
            "expected an integer",
        ),
    ],
)
async def test_malformed_answers_are_typed_errors(
    sim: Simulator, make_client: MakeClient, body: bytes, fragment: str
) -> None:
    """Each malformed answer is a typed error; only a body that cannot be read at all
    (a transient fault, like a 502) is retried: one attempt here shows it as it is."""
    client = make_client(retry=RetryPolicy.disabled())
    sim.reply_next("get_room_stats", body=body, status=200, content_type="application/json")
    with pytest.raises(ResponseDecodingError, match=fragment) as info:
        await client.get_room_stats(sim.room_ids[0])
    assert info.value.operation == "get_room_stats"
    assert info.value.retryable is (fragment == "not JSON")
    if b"rid-1" in body:
        assert info.value.request_id == "rid-1"


async def test_unknown_fields_in_answers_are_ignored(
    sim: Simulator, make_client: MakeClient
) -> None:
    client = make_client()
    body = (
        b'{"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RequestId": "r",'
        b' "Response": {"TotalViewers": 1, "TotalGiftsSent": 2, "TotalGiftCoins": 3,'
        b' "TotalUniqueGiftSenders": 4, "TotalLikesReceived": 5, "TotalMsgCount": 6,'
        b' "SomethingNew": [1]}}'
    )
    sim.reply_next("get_room_stats", body=body, status=200, content_type="application/json")
    stats = await client.get_room_stats("room-x")
    assert (stats.total_viewers, stats.total_msg_count) == (1, 6)


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "room_id",
    ["", "   ", None, 42, b"room", "x" * 49, "房" * 17],  # 17 * 3 bytes = 51 > 48
)
async def test_bad_room_ids_fail_before_sending(
    sim: Simulator, make_client: MakeClient, room_id: object
) -> None:
    client = make_client()
    with pytest.raises(ValidationError):
        await client.get_room_stats(room_id)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="room_id"):  # a ValidationError is a ValueError too
        await client.get_gift_count(room_id, "anchor")  # type: ignore[arg-type]
    assert sim.arrivals("get_room_stats") == sim.arrivals("get_gift_count") == []


async def test_a_48_byte_room_id_is_accepted(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(NotFoundError):  # sent, and the simulator has no such room
        await client.get_room_stats("房" * 16)


@pytest.mark.parametrize("account", ["", None, 7])
async def test_bad_accounts_fail_before_sending(
    sim: Simulator, make_client: MakeClient, account: object
) -> None:
    client = make_client()
    with pytest.raises(ValidationError, match="from_account"):
        await client.get_gift_count(sim.room_ids[0], account)  # type: ignore[arg-type]
    assert sim.arrivals("get_gift_count") == []


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        (("abc", "admin"), {"secret_key": "k"}, "sdkappid"),
        ((1.5, "admin"), {"secret_key": "k"}, "sdkappid"),
        ((True, "admin"), {"secret_key": "k"}, "sdkappid"),
        ((1400000000, ""), {"secret_key": "k"}, "identifier"),
        ((1400000000, "admin"), {}, "exactly one"),
        ((1400000000, "admin"), {"secret_key": "k", "usersig": "s"}, "exactly one"),
        ((1400000000, "admin"), {"secret_key": ""}, "secret_key"),
        ((1400000000, "admin"), {"secret_key": "k", "region": "mars"}, "region"),
        ((1400000000, "admin"), {"secret_key": "k", "base_url": "ftp://x"}, "base_url"),
        ((1400000000, "admin"), {"secret_key": "k", "limiter": object()}, "limiter"),
        ((1400000000, "admin"), {"secret_key": "k", "retry": 3}, "retry"),
        ((1400000000, "admin"), {"secret_key": "k", "timeout": 0}, "timeout"),
        ((1400000000, "admin"), {"secret_key": "k", "timeout": "10"}, "timeout"),
    ],
)
def test_bad_configuration_is_refused(
    args: tuple[object, ...], kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as info:
        TencentClient(*args, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value, ValueError)


def test_sdkappid_may_be_a_decimal_string() -> None:
    client = TencentClient("1400000000", "admin", secret_key="k")
    assert client.quota_key("get_room_stats") == "tencent:1400000000:get_room_stats"


def test_regions_pick_the_vendor_host() -> None:
    hosts = {
        region: repr(TencentClient(1, "admin", secret_key="k", region=region))
        for region in ("china", "singapore", "silicon-valley", "jakarta")
    }
    assert "console.tim.qq.com" in hosts["china"]
    assert "adminapisgp.im.qcloud.com" in hosts["singapore"]
    assert "adminapiusa.im.qcloud.com" in hosts["silicon-valley"]
    assert "adminapiidn.im.qcloud.com" in hosts["jakarta"]


# -- sessions --------------------------------------------------------------------------


async def test_a_borrowed_session_is_never_closed(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        client = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=sim.tencent.secret_key,
            base_url=sim.url,
            session=session,
        )
        async with client:
            await client.get_room_stats(sim.room_ids[0])
        assert not session.closed
        async with session.get(sim.url + "/") as resp:  # still usable
            assert resp.status == 404


async def test_a_client_can_be_built_outside_any_event_loop(sim: Simulator) -> None:
    def build() -> TencentClient:  # runs with no running loop
        return TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=sim.tencent.secret_key,
            base_url=sim.url,
        )

    client = await asyncio.to_thread(build)
    async with client:
        assert (await client.get_room_stats(sim.room_ids[0])).room_id == sim.room_ids[0]
