"""No credential of any provider escapes a faulty run, a wrong-credential run, or DEBUG logs.

For each provider: the simulator injects every kind of fault (slow replies outlast
the client's timeout), every logger records at DEBUG, and a second client with a
wrong credential is refused. Then every log record (message and args, and any
exception it carries), the reprs of clients, results and errors, and the full
traceback text of every error (causes and contexts included) are scanned for the
secrets and for what is derived from them (UserSigs, Polyv ``sign`` values,
``Basic`` authorizations). On virtual time: the slow replies and the timeouts take
no real time.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from livestats import (
    ChinaNetCenterClient,
    LiveStatsError,
    LocalLimiter,
    PolyvClient,
    RetryPolicy,
    TencentClient,
)
from livestats.testing import ChinaNetCenterSim, Faults, PolyvSim, Simulator, TencentSim
from tests.conftest import collect
from tests.virtual_time import virtual_time

# Every fault kind; a slow reply takes longer than the client waits.
FAULTS = Faults(rate=0.3, slow_delay=0.3)
TIMEOUT = 0.1
RETRY = RetryPolicy.instant(attempts=2)


def chain_text(err: BaseException) -> str:
    """Everything a traceback of ``err`` would print, causes and contexts included."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__)) + repr(err)


def record_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    texts: list[str] = []
    for record in records:
        texts += [record.getMessage(), repr(record.args), str(record.msg)]
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(chain_text(record.exc_info[1]))
    return texts


def result_texts(results: Iterable[Any]) -> list[str]:
    texts: list[str] = []
    for result in results:
        texts.append(repr(result))
        if result.error is not None:
            texts.append(chain_text(result.error))
    return texts


def assert_nothing_leaks(
    texts: list[str], secrets: set[str], substrings: Iterable[str] = ()
) -> None:
    # The message names what leaked by position only: never print a secret.
    needles = {s for s in secrets if s} | set(substrings)
    leaks = [index for index, text in enumerate(texts) if any(n in text for n in needles)]
    assert not leaks, f"{len(leaks)} of {len(texts)} texts hold a secret (indices {leaks[:10]})"


@virtual_time
async def test_tencent_secret_key_and_usersigs_never_escape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included
    wrong_key = "wrong-secret-key-0123456789abcdef"
    async with Simulator(seed=5, faults=FAULTS, tencent=TencentSim(rooms=20)) as sim:
        secret = sim.tencent.secret_key
        client = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=secret,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RETRY,
            timeout=TIMEOUT,
        )
        texts = [repr(client), str(client)]
        errors: list[LiveStatsError] = []
        async with client:
            sim.fail_next("get_room_stats", 70001)  # an expiry: the UserSig is renewed
            stats = await collect(client.get_room_stats_many([*sim.room_ids, "missing-room"]))
            rooms = sim.room_ids[:6]
            gifts = await collect(client.get_gift_count_many([(r, "anchor") for r in rooms]))
            try:
                texts += [repr(room) async for room in client.iter_rooms(page_size=5)]
            except LiveStatsError as err:
                errors.append(err)
        wrong = TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=wrong_key,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RETRY,
            timeout=TIMEOUT,
        )
        texts.append(repr(wrong))
        async with wrong:
            for room in sim.room_ids[:3]:
                try:
                    await wrong.get_room_stats(room)
                except LiveStatsError as err:
                    errors.append(err)
        usersigs = {
            sig
            for op in ("get_room_stats", "get_gift_count", "get_room_list")
            for sig in sim.query_values(op, "usersig")
            if sig
        }
        faults = sum(
            sum(sim.faults_injected(op).values())
            for op in ("get_room_stats", "get_gift_count", "get_room_list")
        )

    results: list[Any] = [*stats, *gifts]
    assert faults, "the simulator should have injected faults"
    assert any(not r.ok for r in results), "some items should have failed"
    assert errors, "the wrong key should have been refused"
    assert caplog.records
    assert len(usersigs) >= 2, "a renewed UserSig and the wrong key's should have been sent"
    texts += result_texts(results) + [chain_text(err) for err in errors]
    texts += record_texts(caplog.records)
    assert_nothing_leaks(texts, {secret, wrong_key, *usersigs})


@virtual_time
async def test_chinanetcenter_api_key_and_authorization_never_escape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "wrong-api-key-0123456789abcdef"
    async with Simulator(seed=5, faults=FAULTS, chinanetcenter=ChinaNetCenterSim(domains=2)) as sim:
        api_key = sim.chinanetcenter.api_key
        client = ChinaNetCenterClient(
            sim.chinanetcenter.username,
            api_key,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RETRY,
            timeout=TIMEOUT,
        )
        texts = [repr(client), str(client), repr(sim), repr(sim.chinanetcenter)]
        errors: list[LiveStatsError] = []
        async with client:
            today = client.today()
            for days in (0, 5, 40, 70):
                try:
                    durations = await client.get_stream_durations(
                        sim.domains, date_from=today - timedelta(days=days), date_to=today
                    )
                    texts += [repr(d) for d in durations]
                except LiveStatsError as err:
                    errors.append(err)
        failures = len(errors)
        wrong = ChinaNetCenterClient(
            sim.chinanetcenter.username,
            wrong_key,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RETRY,
            timeout=TIMEOUT,
        )
        texts.append(repr(wrong))
        async with wrong:
            for _ in range(2):
                try:
                    await wrong.get_stream_durations(sim.domains)
                except LiveStatsError as err:
                    errors.append(err)
        faults = sum(sim.faults_injected("get_stream_durations").values())

    assert faults, "the simulator should have injected faults"
    assert failures, "some queries should have failed under the fault rate"
    assert len(errors) > failures, "the wrong key should have been refused"
    assert caplog.records
    texts += [chain_text(err) for err in errors] + record_texts(caplog.records)
    assert_nothing_leaks(texts, {api_key, wrong_key}, substrings=["Basic "])


@virtual_time
async def test_polyv_app_secret_and_signs_never_escape(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_secret = "wrong-app-secret-0123456789abcdef"
    async with Simulator(
        seed=5, faults=FAULTS, polyv=PolyvSim(channels=6, offline_channels=2)
    ) as sim:
        secret = sim.polyv.app_secret
        client = PolyvClient(
            sim.polyv.app_id,
            secret,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RETRY,
            timeout=TIMEOUT,
        )
        texts = [repr(client), str(client), repr(sim), repr(sim.polyv)]
        channels = [*sim.channel_ids, *sim.offline_channel_ids, "no-such-channel"]
        end = datetime.now(timezone.utc)
        results: list[Any] = []
        async with client:
            for _ in range(3):
                results += await collect(
                    client.get_stream_info_many(channels, start=end - timedelta(hours=1), end=end)
                )
        wrong = PolyvClient(
            sim.polyv.app_id,
            wrong_secret,
            base_url=sim.url,
            limiter=LocalLimiter(),
            retry=RETRY,
            timeout=TIMEOUT,
        )
        texts.append(repr(wrong))
        errors: list[LiveStatsError] = []
        async with wrong:
            for channel in sim.channel_ids[:3]:
                try:
                    await wrong.get_stream_info(channel)
                except LiveStatsError as err:
                    errors.append(err)
        signs = {sign for sign in sim.query_values("get_stream_info", "sign") if sign}
        faults = sum(sim.faults_injected("get_stream_info").values())

    assert faults, "the simulator should have injected faults"
    assert any(not r.ok for r in results), "some items should have failed"
    assert any(r.ok for r in results), "some items should have succeeded"
    assert errors, "the wrong secret should have been refused"
    assert caplog.records
    assert signs
    texts += result_texts(results) + [chain_text(err) for err in errors]
    texts += record_texts(caplog.records)
    assert_nothing_leaks(texts, {secret, wrong_secret, *signs})
