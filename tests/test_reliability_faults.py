"""Reliability under faults: 2,000-item batches while the simulator breaks 15% of requests.

Every kind of fault is injected on every provider: the vendor's "internal error"
answer, an nginx 502 page, a dropped connection and a reply slower than the
client's timeout (which the client must turn into a TransportError and retry).
What a user relies on, checked for each provider:

- every input comes back exactly once;
- every item succeeds (each of its faults was transient and retries remained);
- the client never went over the quota the provider enforces;
- retries are exactly the injected faults: ``arrivals - items == sum(faults)``.

Why "every item succeeds" is a deterministic assertion and not a hope: the
simulator's fault dice are ``random.Random(seed)``, one draw per request that
passes the quota check, so the sequence of outcomes (fault or not, which kind) is
fixed by the seed. A run where every item succeeds ends at the ``items``-th
non-fault draw, so its arrival and fault counts are fixed too. Only which item
gets which draw depends on scheduling, and an item fails only if it draws
``ATTEMPTS`` faults: at most ``items * 0.15**ATTEMPTS`` ~ 1e-5 for 2,000 items and
10 attempts. (6 attempts would not do: 2,000 * 0.15**6 ~ 2% per batch.)

The batches run on virtual time (``tests/virtual_time.py``), the simulator
stamping arrivals on the same loop clock, over a simulated network of up to
:data:`LATENCY` each way (:func:`tests.conftest.add_latency`): quota waits, slow
replies and the client's timeouts take no real time, each request still reaches
the provider between its send and its answer, and however loaded the machine,
only a slow reply outlasts the client's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncGenerator, Hashable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from livestats import (
    BatchResult,
    ChinaNetCenterClient,
    LiveStatsError,
    LocalLimiter,
    PolyvClient,
    Quota,
    RetryPolicy,
    StreamDuration,
    TencentClient,
)
from livestats._core.batch import fan_out
from livestats.testing import ChinaNetCenterSim, Faults, PolyvSim, Simulator, TencentSim
from tests.conftest import add_latency
from tests.virtual_time import virtual_time

ITEMS = 2_000
RATE = 0.15
ATTEMPTS = 10
#: A slow reply takes SLOW_DELAY; the client gives up after TIMEOUT and retries.
#: The exact accounting needs every other request answered within TIMEOUT: a
#: round trip takes at most 2 * LATENCY (virtual time does not see the CPU).
SLOW_DELAY = 1.0
TIMEOUT = 0.8
LATENCY = 0.02
CONCURRENCY = 50
#: Scaled-down quotas enforced on both sides. TIGHT binds at CONCURRENCY workers
#: (fewer items); LOOSE is twice as wide.
TIGHT = Quota(CONCURRENCY, 0.1)
LOOSE = Quota(2 * CONCURRENCY, 0.1)
SEED = 11


def _faults() -> Faults:
    return Faults(rate=RATE, slow_delay=SLOW_DELAY)


def _simulator(**kwargs: Any) -> Simulator:
    """Faulty, on the running (virtual-time) loop's clock, behind a network of random latency."""
    simulator = Simulator(
        seed=SEED, clock=asyncio.get_running_loop().time, faults=_faults(), **kwargs
    )
    return add_latency(simulator, most=LATENCY, seed=SEED)


def _client_kwargs() -> dict[str, Any]:
    return {
        "limiter": LocalLimiter(),
        "retry": RetryPolicy.instant(attempts=ATTEMPTS),
        "timeout": TIMEOUT,
    }


async def _run_batch(
    results: AsyncGenerator[BatchResult[Any, Any], None],
) -> list[BatchResult[Any, Any]]:
    out: list[BatchResult[Any, Any]] = []
    async with contextlib.aclosing(results) as batch:
        async for result in batch:
            out.append(result)
    return out


def _check_accounting(
    sim: Simulator,
    operation: str,
    inputs: list[Hashable],
    results: list[BatchResult[Any, Any]],
    quota: Quota | None,
) -> None:
    # Every item exactly once.
    assert Counter(r.key for r in results) == Counter(inputs)
    # Every item succeeded: all its faults were transient (see the module docstring).
    failed = [(r.key, repr(r.error)) for r in results if not r.ok]
    assert failed == []
    # Never over the quota the provider enforces.
    assert sim.violations(operation) == 0
    if quota is not None:
        assert sim.max_in_window(operation, quota.period) <= quota.limit
    # Retries stay within the policy, and are exactly the injected faults.
    arrivals = len(sim.arrivals(operation))
    injected = sim.faults_injected(operation)
    assert arrivals <= len(inputs) * ATTEMPTS
    assert arrivals - len(inputs) == sum(injected.values())
    # At 15% over thousands of requests, every kind was drawn: the test covers them all.
    assert set(injected) == set(Faults().kinds)


@pytest.mark.parametrize(
    ("items", "quota"),
    [(ITEMS, None), (ITEMS // 4, TIGHT)],
    ids=["unpaced", "scaled-quota"],
)
@virtual_time
async def test_tencent_room_stats_batch_survives_faults(items: int, quota: Quota | None) -> None:
    quotas: dict[str, Quota | None] = {"get_room_stats": quota}
    async with _simulator(tencent=TencentSim(rooms=200, quotas=quotas)) as sim:
        inputs: list[Hashable] = list(itertools.islice(itertools.cycle(sim.room_ids), items))
        async with TencentClient(
            sim.tencent.sdkappid,
            sim.tencent.identifier,
            secret_key=sim.tencent.secret_key,
            base_url=sim.url,
            quotas=quotas,
            **_client_kwargs(),
        ) as client:
            results = await _run_batch(
                client.get_room_stats_many([str(i) for i in inputs], concurrency=CONCURRENCY)
            )
        _check_accounting(sim, "get_room_stats", inputs, results, quota)
        assert all(r.value is not None and r.value.room_id == r.key for r in results)


@virtual_time
async def test_polyv_stream_info_batch_survives_faults() -> None:
    # Unpaced on both sides, for speed; the test below shows a dropped keep-alive
    # GET is not resent behind the limiter's back (aiohttp's hidden resend is off).
    quotas: dict[str, Quota | None] = {"get_stream_info": None}
    # A window of a few samples: the batch, not the size of each answer, is under test.
    end = datetime.now(timezone.utc)
    start = end - timedelta(minutes=20)
    async with _simulator(polyv=PolyvSim(quotas=quotas)) as sim:
        inputs: list[Hashable] = list(itertools.islice(itertools.cycle(sim.channel_ids), ITEMS))
        async with PolyvClient(
            sim.polyv.app_id,
            sim.polyv.app_secret,
            base_url=sim.url,
            quotas=quotas,
            **_client_kwargs(),
        ) as client:
            results = await _run_batch(
                client.get_stream_info_many(
                    [str(i) for i in inputs], start=start, end=end, concurrency=CONCURRENCY
                )
            )
        _check_accounting(sim, "get_stream_info", inputs, results, None)
        assert all(r.value for r in results)


@virtual_time
async def test_chinanetcenter_single_domain_calls_survive_faults() -> None:
    quotas: dict[str, Quota | None] = {"get_stream_durations": LOOSE}
    day = date.today() - timedelta(days=2)  # one day's sessions per answer, not the default 7
    async with _simulator(chinanetcenter=ChinaNetCenterSim(quotas=quotas)) as sim:
        inputs: list[Hashable] = list(itertools.islice(itertools.cycle(sim.domains), ITEMS))
        async with ChinaNetCenterClient(
            sim.chinanetcenter.username,
            sim.chinanetcenter.api_key,
            base_url=sim.url,
            quotas=quotas,
            **_client_kwargs(),
        ) as client:

            async def one(domain: Hashable) -> list[StreamDuration]:
                assert isinstance(domain, str)
                return await client.get_stream_durations(
                    {domain: sim.domains[domain]}, date_from=day, date_to=day
                )

            results = await _run_batch(fan_out(inputs, one, concurrency=CONCURRENCY))
        _check_accounting(sim, "get_stream_durations", inputs, results, LOOSE)
        for result in results:
            assert result.value is not None
            assert {d.domain for d in result.value} == {result.key}


async def _polyv_calls_under_drop_faults(calls: int, quota: Quota) -> tuple[int, int]:
    """Make ``calls`` sequential one-attempt calls; return (arrivals, violations)."""
    quotas: dict[str, Quota | None] = {"get_stream_info": quota}
    faults = Faults(rate=0.5, kinds=("drop_connection",))
    async with (
        Simulator(seed=3, faults=faults, polyv=PolyvSim(quotas=quotas, block_seconds=0.1)) as sim,
        PolyvClient(
            sim.polyv.app_id,
            sim.polyv.app_secret,
            base_url=sim.url,
            quotas=quotas,
            limiter=LocalLimiter(),
            retry=RetryPolicy.disabled(),  # one attempt, so one request, per call
        ) as client,
    ):
        for _ in range(calls):
            with contextlib.suppress(LiveStatsError):
                await client.get_stream_info(sim.channel_ids[0])
        return len(sim.arrivals("get_stream_info")), sim.violations("get_stream_info")


async def test_a_dropped_keep_alive_get_is_not_resent_behind_the_limiter() -> None:
    # Five one-attempt calls, five slots of a 60 s window: the limiter lets all five
    # through, and the provider must see exactly five requests, dropped ones included.
    arrivals, violations = await _polyv_calls_under_drop_faults(5, Quota(5, 60.0))
    assert (arrivals, violations) == (5, 0)
