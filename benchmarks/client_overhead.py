"""What livestats costs over hand-written aiohttp (and httpx) calls, with pacing off.

All three clients send ``--requests`` ``get_room_stats`` requests, ``--concurrency`` at a
time, to the SAME simulator, which runs in a child process (so its CPU time is not
the client's) with no quota. They take turns, raw then livestats, for ``--rounds``
rounds after one short warm-up round each, and the table shows every round, then
the median and best of each and the ratios livestats/raw and httpx/raw.

- raw: one ``aiohttp.ClientSession``, ``concurrency`` worker tasks, the UserSig made
  once with ``generate_usersig``, a fresh ``random`` and the same JSON body per
  request, success checked as ``ErrorCode == 0``.
- httpx: the same loop with one ``httpx.AsyncClient`` (what a user who prefers
  httpx would write), same body, params and check.
- livestats: ``TencentClient(quotas={"get_room_stats": None}).get_room_stats_many``,
  which also validates ids, decodes the envelope and builds ``RoomStats``.

"client CPU" is this process's CPU time per request (``time.process_time``).
"server CPU" is the child's CPU time over the elapsed time (Linux only): near 100%
the server is the bottleneck, requests/s then say little about the client, and the
CPU per request is the figure to compare. Nothing is asserted.

    .venv/bin/python benchmarks/client_overhead.py [--requests N] [--concurrency C]
        [--rounds R] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import _common
import aiohttp
import attrs
import httpx

from livestats import TencentClient
from livestats.providers.tencent.usersig import generate_usersig
from livestats.testing import Simulator, TencentCredentials, TencentSim

ROOMS = 200
HOST = "127.0.0.1"
OPERATION = "get_room_stats"
PATH = f"/v4/live_engine_http_srv/{OPERATION}"
TIMEOUT = aiohttp.ClientTimeout(total=10.0)  # the client's default timeout, for both
WARMUP_REQUESTS = 500
READY_TIMEOUT = 30.0
#: Fixed so the parent can sign without asking the child (any valid values do).
CREDENTIALS = TencentCredentials(
    sdkappid=1_400_000_001,
    identifier="administrator",
    secret_key="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
)


# -- the server, in a child process ---------------------------------------------------


def _serve(port: int, credentials: TencentCredentials, rooms: int) -> None:
    """Child process entry point: serve until terminated."""

    async def forever() -> None:
        async with Simulator(
            port=port,
            tencent=TencentSim(rooms=rooms, quotas={OPERATION: None}, credentials=credentials),
        ):
            await asyncio.Event().wait()

    asyncio.run(forever())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(process: multiprocessing.process.BaseProcess, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise RuntimeError(f"the simulator process exited (code {process.exitcode})")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the simulator did not listen on port {port} within {READY_TIMEOUT:g} s")


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far, from /proc (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the ")" that closes the command name; utime and stime are 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the two clients --------------------------------------------------------------------


def _room_ids(requests: int) -> Iterator[str]:
    # The simulator's ids, room-00000 onwards (Simulator.room_ids).
    return itertools.islice(itertools.cycle(f"room-{i:05d}" for i in range(ROOMS)), requests)


async def _raw(url: str, requests: int, concurrency: int) -> int:
    """Hand-written aiohttp calls; returns how many failed."""
    creds = CREDENTIALS
    usersig = generate_usersig(
        creds.sdkappid, creds.identifier, creds.secret_key, now=int(time.time())
    )
    endpoint = f"{url}{PATH}"
    headers = {"Content-Type": "application/json"}
    room_ids = _room_ids(requests)  # shared by the workers: each takes the next id
    failures = 0

    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:

        async def worker() -> None:
            nonlocal failures
            for room_id in room_ids:
                params = {
                    "sdkappid": str(creds.sdkappid),
                    "identifier": creds.identifier,
                    "usersig": usersig,
                    "random": str(random.getrandbits(32)),
                    "contenttype": "json",
                }
                body = json.dumps({"RoomId": room_id}, separators=(",", ":")).encode()
                try:
                    async with session.post(
                        endpoint, params=params, data=body, headers=headers
                    ) as resp:
                        doc = json.loads(await resp.read())
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    failures += 1
                    continue
                if not isinstance(doc, dict) or doc.get("ErrorCode") != 0:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


async def _httpx(url: str, requests: int, concurrency: int) -> int:
    """The raw loop again, through one httpx.AsyncClient; returns how many failed."""
    creds = CREDENTIALS
    usersig = generate_usersig(
        creds.sdkappid, creds.identifier, creds.secret_key, now=int(time.time())
    )
    endpoint = f"{url}{PATH}"
    headers = {"Content-Type": "application/json"}
    room_ids = _room_ids(requests)
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=TIMEOUT.total, limits=limits) as session:

        async def worker() -> None:
            nonlocal failures
            for room_id in room_ids:
                params = {
                    "sdkappid": str(creds.sdkappid),
                    "identifier": creds.identifier,
                    "usersig": usersig,
                    "random": str(random.getrandbits(32)),
                    "contenttype": "json",
                }
                body = json.dumps({"RoomId": room_id}, separators=(",", ":")).encode()
                try:
                    resp = await session.post(
                        endpoint, params=params, content=body, headers=headers
                    )
                    doc = json.loads(resp.content)
                except (httpx.HTTPError, ValueError):
                    failures += 1
                    continue
                if not isinstance(doc, dict) or doc.get("ErrorCode") != 0:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


async def _livestats(url: str, requests: int, concurrency: int) -> int:
    """The same requests through TencentClient; returns how many failed."""
    creds = CREDENTIALS
    failures = 0
    async with TencentClient(
        creds.sdkappid,
        creds.identifier,
        secret_key=creds.secret_key,
        base_url=url,
        quotas={OPERATION: None},
    ) as client:
        async for result in client.get_room_stats_many(
            _room_ids(requests), concurrency=concurrency
        ):
            if not result.ok:
                failures += 1
    return failures


Runner = Callable[[str, int, int], Awaitable[int]]
CLIENTS: dict[str, Runner] = {"raw aiohttp": _raw, "httpx": _httpx, "livestats": _livestats}


# -- measuring ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Sample:
    client: str
    round: int
    requests: int
    failures: int
    elapsed_s: float
    client_cpu_s: float
    server_cpu_s: float | None

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    @property
    def cpu_us_per_request(self) -> float:
        return self.client_cpu_s / self.requests * 1e6

    @property
    def server_busy(self) -> float | None:
        return None if self.server_cpu_s is None else self.server_cpu_s / self.elapsed_s


async def _measure(
    name: str, url: str, requests: int, concurrency: int, round_: int, server_pid: int | None
) -> Sample:
    server_before = _cpu_seconds(server_pid)
    cpu_before = time.process_time()
    started = time.perf_counter()
    failures = await CLIENTS[name](url, requests, concurrency)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    server_after = _cpu_seconds(server_pid)
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    return Sample(
        client=name,
        round=round_,
        requests=requests,
        failures=failures,
        elapsed_s=elapsed,
        client_cpu_s=cpu,
        server_cpu_s=server_cpu,
    )


async def _run(args: argparse.Namespace, url: str, server_pid: int | None) -> list[Sample]:
    for name in CLIENTS:  # warm-up: connections, imports, caches; not reported
        await _measure(
            name, url, min(args.requests, WARMUP_REQUESTS), args.concurrency, 0, server_pid
        )
    samples = []
    for round_ in range(1, args.rounds + 1):
        for name in CLIENTS:
            samples.append(
                await _measure(name, url, args.requests, args.concurrency, round_, server_pid)
            )
    return samples


# -- reporting ----------------------------------------------------------------------------


def _summary(samples: list[Sample]) -> dict[str, dict[str, float]]:
    out = {}
    for name in CLIENTS:
        mine = [s for s in samples if s.client == name]
        out[name] = {
            "median_rate_per_s": statistics.median(s.rate for s in mine),
            "best_rate_per_s": max(s.rate for s in mine),
            "median_cpu_us_per_request": statistics.median(s.cpu_us_per_request for s in mine),
            "best_cpu_us_per_request": min(s.cpu_us_per_request for s in mine),
        }
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _print(args: argparse.Namespace, samples: list[Sample], summary: dict[str, Any]) -> None:
    _common.print_table(
        f"client_overhead: {args.requests} {OPERATION} requests a round, concurrency "
        f"{args.concurrency}, pacing off, simulator in a child process ({ROOMS} rooms)",
        ["client", "round", "failures", "elapsed s", "req/s", "client CPU us/req", "server CPU"],
        [
            [
                s.client,
                str(s.round),
                str(s.failures),
                f"{s.elapsed_s:.3f}",
                f"{s.rate:,.0f}",
                f"{s.cpu_us_per_request:.0f}",
                _pct(s.server_busy),
            ]
            for s in samples
        ],
    )
    raw = summary["raw aiohttp"]
    rows = [
        [
            name,
            f"{fig['median_rate_per_s']:,.0f}",
            f"{fig['best_rate_per_s']:,.0f}",
            f"{fig['median_cpu_us_per_request']:.0f}",
        ]
        for name, fig in summary.items()
    ]
    for name in ("livestats", "httpx"):
        other = summary[name]
        rows.append(
            [
                f"{name} / raw",
                f"{other['median_rate_per_s'] / raw['median_rate_per_s']:.2f}",
                f"{other['best_rate_per_s'] / raw['best_rate_per_s']:.2f}",
                f"{other['median_cpu_us_per_request'] / raw['median_cpu_us_per_request']:.2f}",
            ]
        )
    print()
    _common.print_table(
        f"over {args.rounds} rounds",
        ["client", "median req/s", "best req/s", "median client CPU us/req"],
        rows,
        show_machine=False,
    )
    busy = [s.server_busy for s in samples if s.server_busy is not None]
    if busy and max(busy) >= 0.9:
        print(
            "\nnote: the server was near 100% CPU in some rounds, so req/s may be capped "
            "by the server; compare client CPU per request."
        )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="What livestats costs over hand-written aiohttp and httpx calls, pacing off."
    )
    parser.add_argument("--requests", type=int, default=5000, help="a round (default 5000)")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client (default 3)")
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    port = _free_port()
    context = multiprocessing.get_context("spawn")
    server = context.Process(
        target=_serve, args=(port, CREDENTIALS, ROOMS), name="livestats-simulator", daemon=True
    )
    server.start()
    try:
        _wait_until_listening(server, port)
        samples = asyncio.run(_run(args, f"http://{HOST}:{port}", server.pid))
    finally:
        server.terminate()
        server.join(5)
        if server.is_alive():
            server.kill()
            server.join()
    summary = _summary(samples)
    _print(args, samples, summary)
    _common.write_json(
        args.json,
        "client_overhead",
        operation=OPERATION,
        requests=args.requests,
        concurrency=args.concurrency,
        rounds=args.rounds,
        samples=[
            {
                **attrs.asdict(s),
                "rate_per_s": s.rate,
                "cpu_us_per_request": s.cpu_us_per_request,
                "server_busy": s.server_busy,
            }
            for s in samples
        ],
        summary=summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
