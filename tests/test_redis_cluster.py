"""RedisLimiter on a real Redis Cluster: three masters from ``redis-cli --cluster create``."""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
import time
from collections.abc import Iterator, Sequence

import pytest
from redis.asyncio.cluster import RedisCluster

from livestats import Quota, RedisLimiter
from livestats.testing import RedisServer, Simulator, TencentSim, max_in_window, pacing_report
from livestats.testing._redis import redis_cluster
from tests._redis_worker import collect_room_stats


@pytest.fixture(scope="module")
def cluster() -> Iterator[Sequence[RedisServer]]:
    with redis_cluster(3) as nodes:
        yield nodes


async def test_quota_keys_spread_over_the_nodes_and_each_holds(
    cluster: Sequence[RedisServer],
) -> None:
    """A RedisCluster client of the caller's own; several quota keys at once.

    Promise: each quota's keys live on one node (one hash tag), different quotas
    may live on different nodes, and every quota is kept: the scripts, the grant
    lists and the liveness keys all route by the quota's slot.
    """
    client = RedisCluster.from_url(cluster[0].url)
    quota = Quota(5, 0.2)
    arrivals: dict[str, list[float]] = {}
    try:
        async with RedisLimiter(client, key_prefix=secrets.token_hex(4)) as limiter:

            async def one(key: str) -> None:
                permit = await limiter.acquire(key, quota)
                arrivals.setdefault(key, []).append(time.monotonic())
                await asyncio.sleep(0.005)
                await permit.release()

            keys = [f"tencent:{n}:get_room_stats" for n in range(6)]
            await asyncio.wait_for(asyncio.gather(*(one(k) for k in keys * 15)), 20)
            slots = {client.keyslot(limiter.keys(k)["slots"]) for k in keys}
            nodes = {str(client.get_node_from_key(limiter.keys(k)["slots"])) for k in keys}
            for key in keys:
                names = limiter.keys(key)
                assert len({client.keyslot(name) for name in names.values()}) == 1
    finally:
        await client.aclose()
    assert len(slots) == len(keys)
    assert len(nodes) >= 2
    for times in arrivals.values():
        assert len(times) == 15
        assert max_in_window(sorted(times), quota.period) <= quota.limit


async def test_four_processes_share_one_quota_on_a_cluster(
    cluster: Sequence[RedisServer],
) -> None:
    """Four worker processes, each with its own ``RedisLimiter(url, cluster=True)``.

    Promise: the multi-process guarantee holds on a cluster as on one server: no
    violation at the simulator (which counts every arrival), the busiest window
    within the limit, and the group near the quota's rate.
    """
    quota = Quota(25, 0.5)
    per_worker = 50
    ctx = multiprocessing.get_context("spawn")
    async with Simulator(tencent=TencentSim(rooms=40, quotas={"get_room_stats": quota})) as sim:
        creds = (sim.tencent.sdkappid, sim.tencent.identifier, sim.tencent.secret_key)
        start = ctx.Barrier(4)
        results = ctx.Queue()
        prefix = f"cl-{secrets.token_hex(4)}"
        workers = [
            ctx.Process(
                target=collect_room_stats,
                kwargs={
                    "base_url": sim.url,
                    "redis_url": cluster[w % len(cluster)].url,  # any node will do
                    "key_prefix": prefix,
                    "credentials": creds,
                    "room_ids": [sim.room_ids[(w + i) % 40] for i in range(per_worker)],
                    "quota": (quota.limit, quota.period),
                    "start": start,
                    "results": results,
                    "cluster": True,
                },
            )
            for w in range(4)
        ]
        for worker in workers:
            worker.start()
        outcomes = []
        for _ in workers:
            outcomes.append(await asyncio.to_thread(results.get, True, 60))
        for worker in workers:
            await asyncio.to_thread(worker.join, 10)
        arrivals = sim.arrivals("get_room_stats")
        violations = sim.violations("get_room_stats")
    assert outcomes == [(per_worker, 0)] * 4
    assert len(arrivals) == 4 * per_worker
    assert violations == 0
    assert max_in_window(arrivals, quota.period) <= quota.limit
    report = pacing_report(arrivals, quota)
    assert report.ratio >= 0.85, str(report)
