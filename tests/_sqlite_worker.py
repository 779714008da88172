"""Worker processes for the multi-process SQLiteLimiter tests (spawn-importable)."""

from __future__ import annotations

import asyncio
import os
import time
from multiprocessing.synchronize import Barrier
from typing import Any

from livestats import LimiterUnavailableError, Quota, SQLiteLimiter, TencentClient


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
