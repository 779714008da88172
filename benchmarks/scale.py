"""Memory and throughput of a bulk call as the input grows: RSS should not.

For each size in ``--sizes`` (default 10,000, 100,000 and 1,000,000), a FRESH
Python process streams that many room ids from a generator through
``TencentClient.get_room_stats_many`` (pacing off, the default concurrency) to a
simulator with no quota, which runs in its own child process (as in
``client_overhead.py``). Each run reports its elapsed time, requests/s, failures,
its RSS once the client was warmed up, and its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``): a fresh process per size, so one
size's peak cannot hide in another's. Target: peak RSS flat in the number of ids,
under 150 MB. Nothing is asserted.

The 1,000,000 run takes a few minutes (about 7,000 requests/s on 2 cores).

    .venv/bin/python benchmarks/scale.py [--sizes 10000,100000,1000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _common
from client_overhead import CREDENTIALS, HOST, OPERATION, ROOMS, _free_port, _serve
from client_overhead import _wait_until_listening as wait_until_listening

from livestats import TencentClient

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
TARGET_MB = 150
WARMUP = 200


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _room_ids(count: int) -> Iterator[str]:
    """A generator: the ids are never all in memory at once."""
    for i in range(count):
        yield f"room-{i % ROOMS:05d}"


async def _stream(url: str, size: int) -> dict[str, Any]:
    failures = 0
    async with TencentClient(
        CREDENTIALS.sdkappid,
        CREDENTIALS.identifier,
        secret_key=CREDENTIALS.secret_key,
        base_url=url,
        quotas={OPERATION: None},
    ) as client:
        async for _ in client.get_room_stats_many(_room_ids(WARMUP)):
            pass  # connections, imports, caches: before the baseline RSS
        rss_start = _current_rss_mb()
        started = time.perf_counter()
        async for result in client.get_room_stats_many(_room_ids(size)):
            if not result.ok:
                failures += 1
        elapsed = time.perf_counter() - started
    return {
        "ids": size,
        "failures": failures,
        "elapsed_s": elapsed,
        "rate_per_s": size / elapsed,
        "rss_start_mb": rss_start,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _worker(url: str, size: int) -> int:
    """Child process entry point: one size, its figures as one JSON line on stdout."""
    print(json.dumps(asyncio.run(_stream(url, size))))
    return 0


def _one_size(url: str, size: int) -> dict[str, Any]:
    script = Path(__file__).resolve()
    done = subprocess.run(
        [sys.executable, str(script), "--worker", str(size), "--url", url],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _print(runs: list[dict[str, Any]]) -> None:
    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    _common.print_table(
        f"scale: {OPERATION}_many over a generator of room ids, pacing off, default "
        f"concurrency, one fresh process per size, simulator in a child process; "
        f"target: peak RSS flat, < {TARGET_MB} MB",
        ["ids", "failures", "elapsed s", "req/s", "RSS after warm-up MB", "peak RSS MB"],
        [
            [
                f"{r['ids']:,}",
                str(r["failures"]),
                f"{r['elapsed_s']:.1f}",
                f"{r['rate_per_s']:,.0f}",
                mb(r["rss_start_mb"]),
                mb(r["peak_rss_mb"]),
            ]
            for r in runs
        ],
    )


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ints: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Memory and throughput of get_room_stats_many as the input grows."
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated numbers of ids (default 10000,100000,1000000)",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    _common.add_json_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.worker is not None:
        return _worker(args.url, args.worker)
    port = _free_port()
    context = multiprocessing.get_context("spawn")
    server = context.Process(
        target=_serve, args=(port, CREDENTIALS, ROOMS), name="livestats-simulator", daemon=True
    )
    server.start()
    try:
        wait_until_listening(server, port)
        runs = [_one_size(f"http://{HOST}:{port}", size) for size in args.sizes]
    finally:
        server.terminate()
        server.join(5)
        if server.is_alive():
            server.kill()
            server.join()
    _print(runs)
    _common.write_json(args.json, "scale", operation=OPERATION, target_mb=TARGET_MB, runs=runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
