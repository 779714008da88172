"""Soak: 12,000 ``get_room_stats`` calls, unpaced, and the client's memory stays flat.

The simulator records every arrival and query, so its memory grows with the calls;
it runs in a process of its own so that only the client's resident set is measured
here. Run with ``-s`` to see the figures. Takes some seconds; it is part of the
default suite on purpose (a leak per call is a promise broken for every long job).

Why this size: the client's resident set is flat from the first few hundred calls
on (within 0.2 MB, measured every 2,500 calls over 50,000 and every 500 over the
first 12,000), so what finds a leak is the bound per call, not the length of the
run. 10,000 calls after the warm-up against a 2 MB bound catch a leak of about 250
bytes a call (one ``bytes(200)`` kept per call fails it); 50,000 calls against the
50 MB bound this test used to have needed 1.1 KB a call, and took four times as long.
"""

from __future__ import annotations

import contextlib
import gc
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from livestats import LocalLimiter, RetryPolicy, TencentClient

CALLS = 12_000
WARM_UP = 2_000
#: Ten times the largest change seen between checkpoints of a run with no leak
#: (0.2 MB), and crossed by a leak of about 250 bytes a call after the warm-up.
MAX_GROWTH_MB = 2.0

# The simulator's process: print its credentials as one JSON line, serve until stdin closes.
SERVER = """
import asyncio, json, sys
from livestats.testing import Simulator, TencentSim

async def main() -> None:
    async with Simulator(
        seed=1, tencent=TencentSim(rooms=200, quotas={"get_room_stats": None})
    ) as sim:
        t = sim.tencent
        print(json.dumps({"url": sim.url, "sdkappid": t.sdkappid, "identifier": t.identifier,
                          "secret_key": t.secret_key, "rooms": sim.room_ids}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@contextlib.contextmanager
def simulator_process() -> Iterator[dict[str, Any]]:
    """A simulator in a child process; yields what it printed (its URL and credentials)."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"the simulator process exited with {proc.wait(timeout=10)}"
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the child's signal to stop
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def rss_mb() -> float:
    """This process's current resident set (VmRSS), not its peak, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_twelve_thousand_calls_do_not_grow_the_clients_memory() -> None:
    with simulator_process() as sim:
        rooms: list[str] = sim["rooms"]
        client = TencentClient(
            sim["sdkappid"],
            sim["identifier"],
            secret_key=sim["secret_key"],
            base_url=sim["url"],
            quotas={"get_room_stats": None},
            limiter=LocalLimiter(),
            retry=RetryPolicy.instant(),
        )
        ids = (rooms[index % len(rooms)] for index in range(CALLS))
        done = failed = 0
        warm = 0.0
        started = time.monotonic()
        async with client:
            async for result in client.get_room_stats_many(ids):
                done += 1
                failed += not result.ok
                if done == WARM_UP:
                    gc.collect()
                    warm = rss_mb()
        elapsed = time.monotonic() - started
        gc.collect()
        end = rss_mb()

    print(
        f"\nsoak: {done} get_room_stats calls in {elapsed:.1f} s ({done / elapsed:.0f}/s), "
        f"{failed} failed; client RSS after {WARM_UP} calls {warm:.1f} MB, "
        f"at the end {end:.1f} MB, growth {end - warm:+.1f} MB"
    )
    assert done == CALLS
    assert failed == 0
    assert end - warm < MAX_GROWTH_MB
