"""Worker processes for the multi-process SQLiteLimiter tests (spawn-importable)."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier, Event
from typing import Any

from livestats import LimiterUnavailableError, Quota, SQLiteLimiter, TencentClient
from livestats._core.sharing import Priority


def collect_room_stats(
    *,
    base_url: str,
    path: str,
    credentials: tuple[int, str, str],
    room_ids: list[str],
    quota: tuple[int, float],
    start: Barrier,
    results: Any,
) -> None:
    """Collect ``room_ids`` with a client and a SQLiteLimiter of this process's own."""

    async def main() -> tuple[int, int]:
        sdkappid, identifier, secret_key = credentials
        async with (
            SQLiteLimiter(path) as limiter,
            TencentClient(
                sdkappid,
                identifier,
                secret_key=secret_key,
                base_url=base_url,
                limiter=limiter,
                quotas={"get_room_stats": Quota(*quota)},
            ) as client,
        ):
            # Open the file before the common start: the first step makes the tables.
            await (await limiter.acquire("warm-up", Quota(1, 1.0))).release(sent=False)
            start.wait()  # every worker ready: they start together
            ok = failed = 0
            async for result in client.get_room_stats_many(room_ids):
                ok, failed = (ok + 1, failed) if result.ok else (ok, failed + 1)
            return ok, failed

    results.put(asyncio.run(main()))


def hold_and_hang(
    *, path: str, key: str, quota: tuple[int, float], lease: float, results: Any
) -> None:
    """Take every slot of ``key`` and never give one back: the parent kills this process.

    Puts the ``time.monotonic()`` read just before the first acquire (every slot was
    granted after it; the clock is one for every process on the host).
    """

    async def main() -> None:
        limiter = SQLiteLimiter(path, lease=lease)
        limit, period = quota
        before = time.monotonic()
        for _ in range(limit):
            await limiter.acquire(key, Quota(limit, period))
        results.put(before)
        await asyncio.sleep(3600)  # holding, until SIGKILL

    asyncio.run(main())


def acquire_as(*, paths: list[str], uid: int | None, results: Any) -> None:
    """Try one acquire on each of ``paths`` (as ``uid`` if given) and say what happened.

    The parent may be root, for whom no directory is read-only: it passes an
    unprivileged ``uid``, taken here once everything the attempt needs is imported.
    """
    if uid is not None:
        os.setgid(uid)
        os.setuid(uid)

    async def attempt(path: str) -> str:
        async with SQLiteLimiter(path) as limiter:
            try:
                permit = await limiter.acquire("k", Quota(1, 1.0))
            except LimiterUnavailableError as err:
                return f"LimiterUnavailableError: {err}"
            except Exception as exc:  # the test fails on anything untyped
                return f"untyped {type(exc).__module__}.{type(exc).__name__}: {exc}"
            await permit.release(sent=False)
            return "granted"

    async def main() -> list[str]:
        return [await attempt(path) for path in paths]

    results.put(asyncio.run(main()))


# -- issue 11: priorities, deadlines, learned limits, quotas set at run time ------------


def bulk_batch(
    *,
    path: str,
    key: str,
    quota: tuple[int, float],
    calls: int,
    concurrency: int,
    hold: float,
    start: Barrier,
    results: Any,
) -> None:
    """Spend ``calls`` BULK slots with ``concurrency`` coroutines, each holding ``hold`` s.

    Puts ``{"arrivals": [...], "elapsed": s}``: arrivals are ``time.monotonic()``
    halfway through each hold (one clock for every process of the host).
    """

    async def main() -> dict[str, Any]:
        arrivals: list[float] = []
        left = iter(range(calls))
        async with SQLiteLimiter(path) as limiter:
            await (await limiter.acquire("warm-up", Quota(1, 1.0))).release(sent=False)
            start.wait()

            async def one() -> None:
                for _ in left:
                    permit = await limiter.acquire(key, Quota(*quota), priority=Priority.BULK)
                    await asyncio.sleep(hold / 2)
                    arrivals.append(time.monotonic())
                    await asyncio.sleep(hold / 2)
                    await permit.release()

            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(concurrency)))
            return {"arrivals": arrivals, "elapsed": time.monotonic() - started}

    results.put(asyncio.run(main()))


def interactive_calls(
    *,
    path: str,
    key: str,
    quota: tuple[int, float],
    calls: int,
    every: float,
    delay: float,
    hold: float,
    start: Barrier,
    results: Any,
) -> None:
    """After ``delay`` s, one INTERACTIVE call every ``every`` s; puts each wait and arrival.

    One call of ``key`` goes before the common start: the interactive use is
    under way when the batch begins (the first interactive call after a quiet
    spell can wait up to a period, until a window a batch filled turns over).
    """

    async def main() -> dict[str, Any]:
        waits: list[float] = []
        arrivals: list[float] = []
        async with SQLiteLimiter(path) as limiter:
            await (await limiter.acquire(key, Quota(*quota))).release(sent=False)
            start.wait()
            await asyncio.sleep(delay)

            async def one() -> None:
                asked = time.monotonic()
                permit = await limiter.acquire(key, Quota(*quota))
                waits.append(time.monotonic() - asked)
                await asyncio.sleep(hold / 2)
                arrivals.append(time.monotonic())
                await asyncio.sleep(hold / 2)
                await permit.release()

            tasks = []
            for _ in range(calls):
                tasks.append(asyncio.create_task(one()))
                await asyncio.sleep(every)
            await asyncio.gather(*tasks)
        return {"waits": waits, "arrivals": arrivals}

    results.put(asyncio.run(main()))


def refuse(*, path: str, key: str, quota: tuple[int, float], results: Any) -> None:
    """Report one ``refused()`` of ``key``: what it returned, as (limit, period) or None."""

    async def main() -> tuple[int, float] | None:
        async with SQLiteLimiter(path) as limiter:
            lowered = await limiter.refused(key, Quota(*quota))
        return None if lowered is None else (lowered.limit, lowered.period)

    results.put(asyncio.run(main()))


def wait_in_line(
    *,
    path: str,
    key: str,
    quota: tuple[int, float],
    waiters: int,
    ticket_ttl: float,
    results: Any,
) -> None:
    """Queue ``waiters`` acquires of ``key``; put "queued", then each one's outcome.

    An outcome is ``(seconds after "queued", repr of its permit)``; the repr says
    "not paced" for a key whose quota was set to None.
    """

    async def main() -> list[tuple[float, str]]:
        async with SQLiteLimiter(path, ticket_ttl=ticket_ttl) as limiter:

            async def one() -> tuple[float, str]:
                permit = await limiter.acquire(key, Quota(*quota))
                got = time.monotonic()
                await permit.release()
                return got, repr(permit)

            tasks = [asyncio.create_task(one()) for _ in range(waiters)]
            await asyncio.sleep(0.3)  # every one has looked and taken its ticket
            queued = time.monotonic()
            results.put("queued")
            outcomes = await asyncio.gather(*tasks)
        return [(got - queued, shown) for got, shown in outcomes]

    results.put(asyncio.run(main()))


async def crowd_of_callers(
    limiter: SQLiteLimiter,
    key: str,
    quota: Quota,
    *,
    callers: int,
    longest_answer: float,
    seed: int,
    stop: Callable[[], bool],
    grants: list[float],
) -> None:
    """``callers`` INTERACTIVE callers, each asking again as soon as its answer is in.

    Answers take a seeded uniform 0 to ``longest_answer`` seconds; every grant's
    ``time.monotonic()`` goes into ``grants``. Returns once ``stop()`` is true
    (each caller finishes the call it is in).
    """
    rng = random.Random(seed)

    async def caller() -> None:
        while not stop():
            permit = await limiter.acquire(key, quota)
            grants.append(time.monotonic())
            await asyncio.sleep(rng.uniform(0.0, longest_answer))
            await permit.release()

    await asyncio.gather(*(caller() for _ in range(callers)))


def interactive_crowd(
    *,
    path: str,
    key: str,
    quota: tuple[int, float],
    callers: int,
    longest_answer: float,
    seed: int,
    max_jitter: float,
    stop: Event,
    results: Any,
) -> None:
    """Run :func:`crowd_of_callers` until ``stop`` is set; puts "busy" once it has run
    two periods (the window is full), then the list of grant times."""

    async def main() -> list[float]:
        grants: list[float] = []
        async with SQLiteLimiter(path, max_jitter=max_jitter) as limiter:
            crowd = asyncio.create_task(
                crowd_of_callers(
                    limiter,
                    key,
                    Quota(*quota),
                    callers=callers,
                    longest_answer=longest_answer,
                    seed=seed,
                    stop=stop.is_set,
                    grants=grants,
                )
            )
            await asyncio.sleep(2 * quota[1])
            results.put("busy")
            await crowd
        return grants

    results.put(asyncio.run(main()))
