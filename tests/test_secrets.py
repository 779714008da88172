"""No secret key or UserSig in any log record, repr, exception text or error URL."""

from __future__ import annotations

import logging
import traceback

import pytest

from livestats import (
    ChinaNetCenterClient,
    LiveStatsError,
    LocalLimiter,
    Quota,
    RetryPolicy,
    TencentClient,
)
from livestats.testing import ChinaNetCenterSim, Faults, Simulator, TencentSim
from tests.conftest import collect
from tests.virtual_time import virtual_time


def _chain_text(err: BaseException) -> str:
    """Everything a traceback of ``err`` would print, causes and contexts included."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__)) + repr(err)


@virtual_time  # the slow replies and the client's timeouts take no real time
async def test_no_secret_escapes_a_faulty_run_at_debug_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included
    faults = Faults(rate=0.5)  # every kind of fault
    async with Simulator(seed=3, faults=faults, tencent=TencentSim(rooms=20)) as sim:
        secret = sim.tencent.secret_key
        client = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=secret,
            base_url=sim.url,
            quotas={"get_room_stats": Quota(50, 0.05)},
            # Its own: the shared limiter may hold slots timed on another loop's clock.
            limiter=LocalLimiter(),
            retry=RetryPolicy.instant(attempts=2),
            timeout=0.2,
        )
        texts = [repr(client), str(client)]
        async with client:
            sim.fail_next("get_room_stats", 70001)
            ids = [*sim.room_ids, "missing-room", ""]
            results = await collect(client.get_room_stats_many(ids))
            try:
                await client.get_room_stats("missing-room")
            except LiveStatsError as err:
                texts.append(_chain_text(err))
        usersigs = {sig for sig in sim.query_values("get_room_stats", "usersig") if sig}

    errors = [r.error for r in results if r.error is not None]
    assert errors, "the fault rate should have made some items fail"
    texts += [_chain_text(err) for err in errors] + [repr(r) for r in results]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("get_room_stats" in record.getMessage() for record in caplog.records)

    assert usersigs
    for text in texts:
        assert secret not in text
        for usersig in usersigs:
            assert usersig not in text


async def test_a_given_usersig_never_appears_either(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    usersig = "eJyrVgrxCdYrSk1OTSwuTi1WslIKzy9KUajmUgAA-SECRET-SIG"
    client = TencentClient(
        1400000000,
        "admin",
        usersig=usersig,
        base_url="http://127.0.0.1:9",  # nothing listens: a transport error
        retry=RetryPolicy.instant(attempts=2),
    )
    async with client:
        with pytest.raises(LiveStatsError) as info:
            await client.get_room_stats("room")
    texts = [repr(client), _chain_text(info.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert all(usersig not in text for text in texts)


@virtual_time
async def test_chinanetcenter_api_key_and_authorization_never_escape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Simulator(
        seed=3, faults=Faults(rate=0.5), chinanetcenter=ChinaNetCenterSim(domains=2)
    ) as sim:
        api_key = sim.chinanetcenter.api_key
        client = ChinaNetCenterClient(
            sim.chinanetcenter.username,
            api_key,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RetryPolicy.instant(attempts=2),
            timeout=0.2,
        )
        texts = [repr(client), repr(sim), repr(sim.chinanetcenter)]
        failures = 0
        async with client:
            for _ in range(6):
                try:
                    await client.get_stream_durations(sim.domains)
                except LiveStatsError as err:
                    failures += 1
                    texts.append(_chain_text(err))
        bad = ChinaNetCenterClient(
            sim.chinanetcenter.username, "wrong-key", base_url=sim.url, limiter=LocalLimiter()
        )
        async with bad:
            with pytest.raises(LiveStatsError) as info:
                await bad.get_stream_durations(sim.domains)
        texts.append(_chain_text(info.value))
    assert failures, "some queries should have failed under a 50% fault rate"
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert api_key not in text
        assert "Basic " not in text
