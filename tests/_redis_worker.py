"""Worker processes for the multi-process RedisLimiter tests (spawn-importable)."""

from __future__ import annotations

import asyncio
import time
from multiprocessing.synchronize import Barrier, Event
from typing import Any

from livestats import Priority, Quota, RedisLimiter, TencentClient


def collect_room_stats(
    *,
    base_url: str,
    redis_url: str,
    key_prefix: str,
    credentials: tuple[int, str, str],
    room_ids: list[str],
    quota: tuple[int, float],
    start: Barrier,
    results: Any,
    cluster: bool = False,
) -> None:
    """Collect ``room_ids`` with a client and a RedisLimiter of this process's own.

    ``cluster``: ``redis_url`` names a node of a Redis Cluster.
    """

    async def main() -> tuple[int, int]:
        sdkappid, identifier, secret_key = credentials
        async with (
            RedisLimiter(redis_url, key_prefix=key_prefix, cluster=cluster) as limiter,
            TencentClient(
                sdkappid,
                identifier,
                secret_key=secret_key,
                base_url=base_url,
                limiter=limiter,
                quotas={"get_room_stats": Quota(*quota)},
            ) as client,
        ):
            start.wait()  # every worker ready: they start together
            ok = failed = 0
            async for result in client.get_room_stats_many(room_ids):
                ok, failed = (ok + 1, failed) if result.ok else (ok, failed + 1)
            return ok, failed

    results.put(asyncio.run(main()))


def hold_slots(
    *,
    redis_url: str,
    key_prefix: str,
    quota: tuple[int, float],
    hold: int,
    wait: int,
    limiter_options: dict[str, Any],
    ready: Event,
    results: Any,
) -> None:
    """Take ``hold`` slots and never release them; queue ``wait`` more waiters; then hang.

    Puts the (``time.monotonic``) moments it was granted each slot on ``results``
    and sets ``ready``; the test then kills this process with SIGKILL.
    """

    async def main() -> None:
        limiter = RedisLimiter(redis_url, key_prefix=key_prefix, **limiter_options)
        granted = []
        for _ in range(hold):
            await limiter.acquire("k", Quota(*quota))
            granted.append(time.monotonic())
        waiters = [asyncio.ensure_future(limiter.acquire("k", Quota(*quota))) for _ in range(wait)]
        await asyncio.sleep(0.2)  # the waiters have their tickets
        results.put(granted)
        ready.set()
        await asyncio.sleep(3600)  # killed long before
        del waiters

    asyncio.run(main())


def bulk_batch(
    *,
    redis_url: str,
    key_prefix: str,
    quota: tuple[int, float],
    calls: int,
    concurrency: int,
    latency: float,
    go: Event,
    results: Any,
) -> None:
    """A batch: ``calls`` BULK slots of key "k", ``concurrency`` at a time, each held
    ``latency`` seconds (the request) and released as answered.

    Puts "ready" once it knows the server, waits for ``go``, then puts the
    (``time.monotonic``) moment of every grant.
    """

    async def main() -> None:
        async with RedisLimiter(redis_url, key_prefix=key_prefix) as limiter:
            paced = Quota(*quota)
            await (await limiter.acquire("k", paced, priority=Priority.BULK)).release(sent=False)
            results.put("ready")
            go.wait()  # blocks the loop, which has nothing to do yet
            arrivals: list[float] = []
            left = iter(range(calls))

            async def worker() -> None:
                for _ in left:
                    permit = await limiter.acquire("k", paced, priority=Priority.BULK)
                    arrivals.append(time.monotonic())
                    await asyncio.sleep(latency)
                    await permit.release()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            results.put(arrivals)

    asyncio.run(main())


def queue_waiters(
    *,
    redis_url: str,
    key_prefix: str,
    quota: tuple[int, float],
    waiters: int,
    ready: Event,
    results: Any,
) -> None:
    """Queue ``waiters`` acquires of key "k" at once and keep every permit.

    Sets ``ready`` once their tickets are in Redis's line; puts each grant as it
    comes: (``time.monotonic`` moment, ``repr`` of the permit).
    """

    async def main() -> None:
        async with RedisLimiter(redis_url, key_prefix=key_prefix) as limiter:

            async def one() -> None:
                permit = await limiter.acquire("k", Quota(*quota))
                results.put((time.monotonic(), repr(permit)))

            tasks = [asyncio.ensure_future(one()) for _ in range(waiters)]
            await asyncio.sleep(0.3)  # every ticket is in Redis's line
            ready.set()
            await asyncio.gather(*tasks)

    asyncio.run(main())
