"""Fixtures: a fresh simulator per test and clients pointed at it."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web

from livestats import Clock, LocalLimiter, RetryPolicy, TencentClient
from livestats.testing import Simulator, TencentSim, redis_server

MakeClient = Callable[..., TencentClient]
T = TypeVar("T")


def tencent_simulator(**kwargs: Any) -> Simulator:
    """The ``sim`` fixture's simulator (not started); ``kwargs`` go to :class:`Simulator`."""
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("tencent", TencentSim(rooms=60))
    return Simulator(**kwargs)


def loop_clock_simulator(**kwargs: Any) -> Simulator:
    """:func:`tencent_simulator` stamping arrivals on the running loop's clock.

    For ``@virtual_time`` tests: the simulator's quota windows then agree with the
    client's limiter, which paces on the same (virtual) clock.
    """
    return tencent_simulator(clock=asyncio.get_running_loop().time, **kwargs)


def add_latency(sim: Simulator, *, most: float, seed: int) -> Simulator:
    """Put a network between ``sim`` and its clients: each way takes up to ``most`` seconds.

    Every request waits a seeded random time before the simulator sees it (and
    stamps its arrival), and its answer as long again before the client gets it,
    so each arrival falls strictly between its send and its answer, as over a
    real network, and a request a client gave up on can still arrive late. On
    virtual time this costs no real time. Call it before the simulator starts.
    """
    rng = random.Random(seed)

    @web.middleware
    async def network(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        await asyncio.sleep(rng.uniform(0.0, most))
        response = await handler(request)
        await asyncio.sleep(rng.uniform(0.0, most))
        return response

    sim.app.middlewares.append(network)
    return sim


def client_for(sim: Simulator, **kwargs: Any) -> TencentClient:
    """A client for ``sim``; instant retries and a fresh limiter unless ``kwargs`` say."""
    kwargs.setdefault("retry", RetryPolicy.instant())
    # A limiter of its own: the process-wide default would carry one test's
    # slots into the next (the simulator's SDKAppID is the same every time).
    kwargs.setdefault("limiter", LocalLimiter())
    if "usersig" not in kwargs:
        kwargs.setdefault("secret_key", sim.tencent.secret_key)
    return TencentClient(sim.tencent.sdkappid, sim.tencent.identifier, base_url=sim.url, **kwargs)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with tencent_simulator() as simulator:
        yield simulator


@pytest.fixture
async def make_client(sim: Simulator) -> AsyncIterator[MakeClient]:
    """Build clients for ``sim`` with :func:`client_for`; closed after the test."""
    clients: list[TencentClient] = []

    def make(**kwargs: Any) -> TencentClient:
        client = client_for(sim, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


class FakeTime:
    """A monotonic clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self, wall: Callable[[], float] = time.time) -> Clock:
        return Clock(monotonic=self.monotonic, wall=wall, sleep=self.sleep)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


async def collect(items: AsyncIterable[T]) -> list[T]:
    return [item async for item in items]


def client_tasks() -> set[asyncio.Task[Any]]:
    """Tasks of the running loop, less the simulator's own connection handlers."""
    return {
        task
        for task in asyncio.all_tasks()
        if "RequestHandler" not in getattr(task.get_coro(), "__qualname__", "")
    }


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server of the suite's own, on a free loopback port, for the whole run.

    scripts/bootstrap installs redis-server where it is missing; without it the
    Redis tests fail (they are never skipped: a quota shared across processes is a
    promise, and its tests must run).
    """
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run scripts/bootstrap")
    with redis_server() as url:
        yield url


async def drain(items: AsyncIterable[T], into: list[T]) -> None:
    """Append every item to ``into`` as it comes, so a test keeps what came before a raise."""
    async for item in items:
        into.append(item)


@pytest.fixture(autouse=True)
def _cli_limiter_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The command line's shared quota file, per test: runs in one test share it (as
    cron jobs would), tests do not, and the user's own cache is never touched."""
    import os

    previous = os.environ.get("LIVESTATS_LIMITER_PATH")
    os.environ["LIVESTATS_LIMITER_PATH"] = str(tmp_path_factory.mktemp("limiter") / "q.sqlite3")
    yield
    if previous is None:
        os.environ.pop("LIVESTATS_LIMITER_PATH", None)
    else:
        os.environ["LIVESTATS_LIMITER_PATH"] = previous
