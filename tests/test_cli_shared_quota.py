"""Runs of the command line on one machine share their quotas (a per-user SQLite file)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from livestats.cli._clients import limiter_path
from livestats.testing import Simulator, TencentSim

OP = "get_room_stats"


async def _run_two(sim: Simulator, tmp_path: Path, *, shared: bool) -> list[int]:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sim.room_ids[i % 40] for i in range(110)) + "\n")
    codes: list[int] = []

    async def one(index: int) -> None:
        limiter = "quotas.sqlite3" if shared else f"quotas-{index}.sqlite3"
        env = {
            **os.environ,
            "LIVESTATS_TENCENT_SDKAPPID": str(sim.tencent.sdkappid),
            "LIVESTATS_TENCENT_IDENTIFIER": sim.tencent.identifier,
            "LIVESTATS_TENCENT_SECRET_KEY": sim.tencent.secret_key,
            "LIVESTATS_TENCENT_BASE_URL": sim.url,
            "LIVESTATS_LIMITER_PATH": str(tmp_path / limiter),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "livestats",
            "tencent",
            "room-stats",
            "--input",
            str(ids),
            "--format",
            "jsonl",
            "-o",
            str(tmp_path / f"out-{index}.jsonl"),
            "--no-progress",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        codes.append(await asyncio.wait_for(proc.wait(), 60))

    await asyncio.gather(one(0), one(1))
    return codes


async def test_two_overlapping_runs_never_exceed_a_quota_together(tmp_path: Path) -> None:
    """Two cron jobs of one user at once: together they stay within 100 per second,
    because every run paces through the same SQLite file."""
    async with Simulator(seed=4, tencent=TencentSim(rooms=40)) as sim:
        codes = await _run_two(sim, tmp_path, shared=True)
        assert codes == [0, 0]
        assert len(sim.arrivals(OP)) == 220
        assert sim.violations(OP) == 0
        assert sim.max_in_window(OP) <= 100


async def test_runs_that_do_not_share_the_file_do_exceed_it(tmp_path: Path) -> None:
    """The contrast that shows the test above can fail: a file each, twice the burst."""
    async with Simulator(seed=4, tencent=TencentSim(rooms=40)) as sim:
        await _run_two(sim, tmp_path, shared=False)
        assert sim.max_in_window(OP) > 100


def test_the_file_is_per_user_in_the_cache_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVESTATS_LIMITER_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/cache-of-someone")
    assert limiter_path() == Path("/tmp/cache-of-someone/livestats/quotas.sqlite3")
    monkeypatch.setenv("LIVESTATS_LIMITER_PATH", "/srv/jobs/quotas.sqlite3")
    assert limiter_path() == Path("/srv/jobs/quotas.sqlite3")
