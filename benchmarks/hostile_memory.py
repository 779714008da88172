"""Memory of a client meeting huge answers: a 200 MB body and a gzip bomb, 8 at a time.

A child process (spawned, so its memory is not the client's) runs the hostile
servers of ``tests/hostile.py``: a 200 MB body made while it is sent, once with
``Content-Length`` and once chunked (no length to refuse it by), and a gzip bomb
of about 2 MB that inflates to 2 GiB. Each body is a valid ``get_room_stats``
success padded with spaces, so a client that reads it all *succeeds*: only a size
cap (``max_response_bytes``, counted after decompression) turns it into an error.

This process runs ``--calls`` concurrent ``TencentClient.get_room_stats`` calls
(default 8, pacing and retries off) against each body in turn, and reports the
outcomes seen (error type names; ``ok`` means the body was read whole) and its
peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after each phase; the
peak only grows, so the last row is the run's. Target: peak RSS under 300 MB,
every outcome ``ResponseTooLargeError``. Nothing is asserted.

The client runs under an address-space limit (``--address-space-mb``, default
4096) so that a client that does read whole answers fails with MemoryError rather
than taking the machine down: 8 bombs inflated in full are 16 GiB.

    .venv/bin/python benchmarks/hostile_memory.py [--calls N] [--huge-mb MB]
        [--bomb-gib GIB] [--max-response-bytes N] [--address-space-mb MB] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import _common

from livestats import LocalLimiter, RetryPolicy, TencentClient

TARGET_MB = 300
SDKAPPID = 1_400_000_001
IDENTIFIER = "administrator"
SECRET_KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ROOM = "room-00001"
SUCCESS = {
    "ActionStatus": "OK",
    "ErrorCode": 0,
    "ErrorInfo": "",
    "RequestId": "bench",
    "Response": {
        "TotalViewers": 1,
        "TotalGiftsSent": 0,
        "TotalGiftCoins": 0,
        "TotalUniqueGiftSenders": 0,
        "TotalLikesReceived": 0,
        "TotalMsgCount": 0,
    },
}
PHASES = ("200 MB, Content-Length", "200 MB, chunked", "gzip bomb")
READY_TIMEOUT = 60.0
#: ``tests/hostile.py`` lives in the checkout, not in the installed package.
ROOT = Path(__file__).resolve().parent.parent


def _on_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# -- the servers, in a child process ---------------------------------------------------


def _serve(conn: Connection, huge_bytes: int, bomb_bytes: int) -> None:
    """Child process entry point: start the servers, send their URLs, serve until killed."""
    _on_path()
    from tests import hostile

    tail = json.dumps(SUCCESS).encode()

    async def forever() -> None:
        async with (
            hostile.HostileServer(hostile.json_reply(SUCCESS)) as healthy,
            hostile.HostileServer(hostile.streamed(huge_bytes, tail=tail)) as sized,
            hostile.HostileServer(
                hostile.streamed(huge_bytes, tail=tail, content_length=False)
            ) as chunked,
            hostile.HostileServer(hostile.gzip_bomb(bomb_bytes, tail=tail)) as bomb,
        ):
            hostile.gzip_bomb_bytes(bomb_bytes, tail)  # built before the clock starts
            conn.send([healthy.url, sized.url, chunked.url, bomb.url])
            await asyncio.Event().wait()

    asyncio.run(forever())


# -- the client, here ------------------------------------------------------------------


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


def _client(url: str, max_response_bytes: int | None) -> TencentClient:
    extra: dict[str, Any] = {}
    if max_response_bytes is not None:
        extra["max_response_bytes"] = max_response_bytes
    return TencentClient(
        SDKAPPID,
        IDENTIFIER,
        secret_key=SECRET_KEY,
        base_url=url,
        quotas={"get_room_stats": None},
        limiter=LocalLimiter(),
        retry=RetryPolicy.disabled(),
        timeout=120.0,
        **extra,
    )


async def _phase(url: str, calls: int, max_response_bytes: int | None) -> dict[str, Any]:
    started = time.perf_counter()
    async with _client(url, max_response_bytes) as client:
        outcomes = await asyncio.gather(
            *(client.get_room_stats(ROOM) for _ in range(calls)), return_exceptions=True
        )
    seen = Counter("ok" if not isinstance(o, BaseException) else type(o).__name__ for o in outcomes)
    return {
        "outcomes": dict(sorted(seen.items())),
        "elapsed_s": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
    }


async def _run(urls: list[str], calls: int, max_response_bytes: int | None) -> dict[str, Any]:
    healthy, *hostile = urls
    async with _client(healthy, max_response_bytes) as client:
        await client.get_room_stats(ROOM)  # imports, connections, caches: before the baseline
    figures: dict[str, Any] = {"rss_after_warmup_mb": _current_rss_mb(), "phases": []}
    for name, url in zip(PHASES, hostile, strict=True):
        figures["phases"].append({"phase": name, **await _phase(url, calls, max_response_bytes)})
    return figures


def _limit_address_space(megabytes: int) -> None:
    if megabytes <= 0:
        return
    limit = megabytes * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _print(figures: dict[str, Any], args: argparse.Namespace) -> None:
    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    cap = "default" if args.max_response_bytes is None else f"{args.max_response_bytes:,} B"
    _common.print_table(
        f"hostile_memory: {args.calls} concurrent get_room_stats calls per phase, "
        f"max_response_bytes {cap}; RSS after warm-up {mb(figures['rss_after_warmup_mb'])} MB; "
        f"target: peak RSS < {TARGET_MB} MB, every outcome ResponseTooLargeError",
        ["phase", "outcomes", "elapsed s", "peak RSS MB", "target MB"],
        [
            [
                p["phase"],
                ", ".join(f"{name} x{count}" for name, count in p["outcomes"].items()),
                f"{p['elapsed_s']:.2f}",
                mb(p["peak_rss_mb"]),
                f"< {TARGET_MB}",
            ]
            for p in figures["phases"]
        ],
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Peak RSS of a client meeting 200 MB answers and gzip bombs."
    )
    parser.add_argument("--calls", type=int, default=8, help="concurrent calls per phase")
    parser.add_argument("--huge-mb", type=int, default=200, help="size of the huge body, MB")
    parser.add_argument("--bomb-gib", type=int, default=2, help="what the bomb inflates to, GiB")
    parser.add_argument(
        "--max-response-bytes", type=int, help="the client's cap (default: its own default)"
    )
    parser.add_argument(
        "--address-space-mb",
        type=int,
        default=4096,
        help="address-space limit of this process, 0 for none (default 4096)",
    )
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.huge_mb < 1 or args.bomb_gib < 1:
        parser.error("--calls, --huge-mb and --bomb-gib must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    huge_bytes = args.huge_mb * 1000 * 1000
    bomb_bytes = args.bomb_gib * 2**30
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    server = context.Process(
        target=_serve,
        args=(sender, huge_bytes, bomb_bytes),
        name="livestats-hostile-servers",
        daemon=True,
    )
    server.start()
    try:
        if not receiver.poll(READY_TIMEOUT):
            raise RuntimeError(f"the hostile servers did not start within {READY_TIMEOUT:g} s")
        urls: list[str] = receiver.recv()
        _limit_address_space(args.address_space_mb)  # after the spawn: the child is not limited
        figures = asyncio.run(_run(urls, args.calls, args.max_response_bytes))
    finally:
        server.terminate()
        server.join(5)
        if server.is_alive():
            server.kill()
            server.join()
    _print(figures, args)
    _common.write_json(
        args.json,
        "hostile_memory",
        calls=args.calls,
        huge_bytes=huge_bytes,
        bomb_inflated_bytes=bomb_bytes,
        max_response_bytes=args.max_response_bytes,
        target_mb=TARGET_MB,
        **figures,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
