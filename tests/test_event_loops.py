"""A client and a limiter outlive event loops: pytest-asyncio makes one per test."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest

from livestats import LocalLimiter, Quota, TencentClient
from livestats.testing import Simulator, TencentSim


@pytest.fixture(scope="module")
def threaded_sim() -> Iterator[Simulator]:
    """A simulator on a loop of its own thread, reachable from any test's loop."""
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        async with Simulator(tencent=TencentSim(rooms=5)) as sim:
            stop = asyncio.Event()
            box.update(sim=sim, stop=stop, loop=asyncio.get_running_loop())
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    sim = box["sim"]
    assert isinstance(sim, Simulator)
    yield sim
    loop = box["loop"]
    stop = box["stop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert isinstance(stop, asyncio.Event)
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_one_client_serves_several_event_loops(threaded_sim: Simulator) -> None:
    creds = threaded_sim.tencent
    limiter = LocalLimiter()
    client = TencentClient(  # built with no loop running
        creds.sdkappid,
        creds.identifier,
        secret_key=creds.secret_key,
        base_url=threaded_sim.url,
        limiter=limiter,
        quotas={"get_room_stats": Quota(3, 0.05)},
    )

    async def use(room: str) -> str:
        return (await client.get_room_stats(room)).room_id

    # Each asyncio.run is a new loop, as with pytest-asyncio's per-test loops.
    assert asyncio.run(use(threaded_sim.room_ids[0])) == threaded_sim.room_ids[0]
    assert asyncio.run(use(threaded_sim.room_ids[1])) == threaded_sim.room_ids[1]
    asyncio.run(client.close())
    gc.collect()  # a socket left open by the first loop would warn here (warnings are errors)
