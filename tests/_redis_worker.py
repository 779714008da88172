"""A collection worker process for the multi-process RedisLimiter test (spawn-importable)."""

from __future__ import annotations

import asyncio
from multiprocessing.synchronize import Barrier
from typing import Any

from livestats import Quota, RedisLimiter, TencentClient


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
) -> None:
    """Collect ``room_ids`` with a client and a RedisLimiter of this process's own."""

    async def main() -> tuple[int, int]:
        sdkappid, identifier, secret_key = credentials
        async with (
            RedisLimiter(redis_url, key_prefix=key_prefix) as limiter,
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
