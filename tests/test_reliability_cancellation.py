"""Reliability under cancellation: batches cut short at random points leave nothing behind.

For each provider, a seeded random sequence of batch runs is cut short, either by
cancelling the consuming task after a random delay or by breaking out after a
random number of results. After each one no task of the client is left; after
all of them the same client and limiter still serve a fresh batch in full,
within the quota, with no slot held; and the client closes without an
unclosed-session warning (warnings are errors here).

A request cancelled after it was written may still arrive late; the engine
holds its slot one attempt timeout longer for that, and the test at the end
shows it deterministically with a proxy that delays delivery. The cut-short
runs check the quota on the fresh batch; the simulator only records arrivals.

Both run on virtual time (``tests/virtual_time.py``), the simulator stamping
arrivals on the same loop clock: quota waits and held slots take no real time.
The cut-short runs go over a simulated network of random latency
(:func:`tests.conftest.add_latency`), so that requests spend time on the wire
and a cut lands on some of them there, as it does on a real clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
from collections.abc import AsyncGenerator, Callable
from typing import Any

import attrs
import pytest

from livestats import (
    BatchResult,
    ChinaNetCenterClient,
    LocalLimiter,
    PolyvClient,
    Quota,
    RetryPolicy,
    TencentClient,
)
from livestats._core.batch import fan_out
from livestats._core.client import BaseClient
from livestats.testing import ChinaNetCenterSim, PolyvSim, Simulator, TencentSim
from tests.conftest import add_latency, client_tasks
from tests.virtual_time import virtual_time

#: Scaled down so a batch keeps some calls in flight and many waiting for a slot.
QUOTA = Quota(10, 0.1)
RUNS_PER_PROVIDER = 7  # 21 cut-short runs in all
BATCH = 300
#: Each way between client and simulator takes up to this long (virtual seconds).
LATENCY = 0.02


@attrs.frozen
class Setup:
    """One provider's client, the operation its batches spend, and how to start a batch."""

    client: BaseClient
    operation: str
    limiter: LocalLimiter
    batch: Callable[[int], AsyncGenerator[BatchResult[Any, Any], None]]


def _tencent(sim: Simulator, limiter: LocalLimiter) -> Setup:
    client = TencentClient(
        sim.tencent.sdkappid,
        sim.tencent.identifier,
        secret_key=sim.tencent.secret_key,
        base_url=sim.url,
        quotas={"get_room_stats": QUOTA},
        limiter=limiter,
        retry=RetryPolicy.instant(),
    )

    def batch(n: int) -> AsyncGenerator[BatchResult[Any, Any], None]:
        return client.get_room_stats_many(itertools.islice(itertools.cycle(sim.room_ids), n))

    return Setup(client, "get_room_stats", limiter, batch)


def _polyv(sim: Simulator, limiter: LocalLimiter) -> Setup:
    client = PolyvClient(
        sim.polyv.app_id,
        sim.polyv.app_secret,
        base_url=sim.url,
        quotas={"get_stream_info": QUOTA},
        limiter=limiter,
        retry=RetryPolicy.instant(),
    )

    def batch(n: int) -> AsyncGenerator[BatchResult[Any, Any], None]:
        return client.get_stream_info_many(itertools.islice(itertools.cycle(sim.channel_ids), n))

    return Setup(client, "get_stream_info", limiter, batch)


def _chinanetcenter(sim: Simulator, limiter: LocalLimiter) -> Setup:
    client = ChinaNetCenterClient(
        sim.chinanetcenter.username,
        sim.chinanetcenter.api_key,
        base_url=sim.url,
        quotas={"get_stream_durations": QUOTA},
        limiter=limiter,
        retry=RetryPolicy.instant(),
    )

    async def one(domain: str) -> Any:
        return await client.get_stream_durations({domain: sim.domains[domain]})

    def batch(n: int) -> AsyncGenerator[BatchResult[Any, Any], None]:
        domains = itertools.islice(itertools.cycle(sim.domains), n)
        return fan_out(domains, one, concurrency=QUOTA.limit)

    return Setup(client, "get_stream_durations", limiter, batch)


PROVIDERS = {"tencent": _tencent, "polyv": _polyv, "chinanetcenter": _chinanetcenter}


def _simulator() -> Simulator:
    """Unpaced, on the running loop's clock, behind a network of random latency."""
    simulator = Simulator(
        seed=5,
        clock=asyncio.get_running_loop().time,
        tencent=TencentSim(rooms=50, quotas={"get_room_stats": None}),
        polyv=PolyvSim(quotas={"get_stream_info": None}),
        chinanetcenter=ChinaNetCenterSim(quotas={"get_stream_durations": None}),
    )
    return add_latency(simulator, most=LATENCY, seed=5)


async def _cancel_after(setup: Setup, delay: float) -> None:
    async def consume() -> None:
        async with contextlib.aclosing(setup.batch(BATCH)) as results:
            async for _ in results:
                pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _break_after(setup: Setup, count: int) -> None:
    seen = 0
    async with contextlib.aclosing(setup.batch(BATCH)) as results:
        async for _ in results:
            seen += 1
            if seen >= count:
                break
    assert seen == count


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@virtual_time
async def test_batches_cut_short_at_random_points_leave_the_client_whole(provider: str) -> None:
    async with _simulator() as sim:
        await _cut_short_runs_leave_the_client_whole(sim, provider)


async def _cut_short_runs_leave_the_client_whole(sim: Simulator, provider: str) -> None:
    rng = random.Random(f"cancel-{provider}")
    limiter = LocalLimiter()
    setup = PROVIDERS[provider](sim, limiter)
    try:
        before = client_tasks()
        for _ in range(RUNS_PER_PROVIDER):
            if rng.random() < 0.5:
                await _cancel_after(setup, rng.uniform(0.0, 0.25))
            else:
                await _break_after(setup, rng.randint(1, 40))
            assert client_tasks() - before == set()

        # Let stray arrivals of the cut runs land, then count afresh.
        await asyncio.sleep(2 * QUOTA.period + 2 * LATENCY)
        sim.reset()
        # The same client and limiter serve a fresh batch in full, within the quota.
        results = [r async for r in setup.batch(60)]
        assert len(results) == 60
        assert [r.error for r in results if not r.ok] == []
        assert len(sim.arrivals(setup.operation)) == 60
        assert sim.max_in_window(setup.operation, QUOTA.period) <= QUOTA.limit
        # Idle again: no slot is held and nobody waits.
        state = repr(limiter)
        assert "0 in flight" in state
        assert "0 waiting" in state
        assert client_tasks() - before == set()
    finally:
        await setup.client.close()
    gc.collect()  # an unclosed session or connector would warn here, failing the test
    await asyncio.sleep(0)


class _DelayingProxy:
    """A TCP proxy whose first connection reaches the server ``delay`` seconds late.

    It stands for a network that is slow for one request: a retransmission, a
    congested path. Later connections pass straight through.
    """

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self._upstream = upstream
        self._delay = delay
        self._connections = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> _DelayingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in self._handlers:
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer, first=self._connections == 0))
        self._connections += 1
        self._handlers.add(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, first: bool
    ) -> None:
        if first:
            await asyncio.sleep(self._delay)
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        back = asyncio.create_task(_pipe(up_reader, writer))
        try:
            await _pipe(reader, up_writer)  # until the client closes its connection
            await asyncio.wait([back], timeout=1.0)  # let a late request be answered
        finally:
            back.cancel()
            await asyncio.wait([back])
            for w in (up_writer, writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


@virtual_time
async def test_a_cancelled_request_that_arrives_late_does_not_break_the_quota() -> None:
    # The second request waits out the whole attempt timeout (10 s) the first one's
    # slot is held for: on virtual time that takes no real time.
    quota = Quota(1, 0.5)
    async with Simulator(
        seed=5,
        clock=asyncio.get_running_loop().time,
        tencent=TencentSim(rooms=5, quotas={"get_room_stats": quota}),
    ) as sim:
        host, port = sim.url.removeprefix("http://").split(":")
        # The first request is written at once but reaches the server 0.3 s later.
        async with (
            _DelayingProxy((host, int(port)), delay=0.3) as proxy,
            TencentClient(
                sim.tencent.sdkappid,
                sim.tencent.identifier,
                secret_key=sim.tencent.secret_key,
                base_url=proxy.url,
                quotas={"get_room_stats": quota},
                limiter=LocalLimiter(),
                retry=RetryPolicy.disabled(),
            ) as client,
        ):
            first = asyncio.create_task(client.get_room_stats(sim.room_ids[0]))
            second = asyncio.create_task(client.get_room_stats(sim.room_ids[1]))
            await asyncio.sleep(0.1)  # the first is written, the second waits for the slot
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            # Sent 0.5 s after the cancellation, arriving at about 0.6 s: less than a
            # period after the first, which arrived at about 0.3 s. The provider refuses it.
            (outcome,) = await asyncio.gather(second, return_exceptions=True)
            await asyncio.sleep(0.2)
        assert len(sim.arrivals("get_room_stats")) == 2
        assert sim.max_in_window("get_room_stats", quota.period) <= quota.limit
        assert sim.violations("get_room_stats") == 0
        assert not isinstance(outcome, BaseException)
