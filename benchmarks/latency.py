"""The latency livestats adds to one call: the web-app case.

One ``get_room_stats`` call at a time, through a warm ``TencentClient`` (pacing
off, its session already connected) and through a warm hand-written ``aiohttp``
call (one session, the UserSig made once, ``ErrorCode == 0`` checked), to the
same simulator in a child process (as in ``client_overhead.py``). The two take
turns call by call, after ``WARMUP`` calls each, so both see the same machine.
Shows p50, p90 and p99 of each in microseconds, and the difference: what
livestats adds to a request handler that asks for one room. Nothing is asserted.

    .venv/bin/python benchmarks/latency.py [--calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import sys
import time

import _common
import aiohttp
from client_overhead import CREDENTIALS, HOST, OPERATION, PATH, ROOMS, TIMEOUT, _free_port, _serve
from client_overhead import _wait_until_listening as wait_until_listening

from livestats import TencentClient
from livestats.providers.tencent.usersig import generate_usersig

WARMUP = 200
QUANTILES = (0.50, 0.90, 0.99)


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(url: str, calls: int) -> dict[str, list[float]]:
    creds = CREDENTIALS
    usersig = generate_usersig(
        creds.sdkappid, creds.identifier, creds.secret_key, now=int(time.time())
    )
    endpoint = f"{url}{PATH}"
    headers = {"Content-Type": "application/json"}
    timings: dict[str, list[float]] = {"raw aiohttp": [], "livestats": []}

    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        TencentClient(
            creds.sdkappid,
            creds.identifier,
            secret_key=creds.secret_key,
            base_url=url,
            quotas={OPERATION: None},
        ) as client,
    ):

        async def raw(room_id: str) -> None:
            params = {
                "sdkappid": str(creds.sdkappid),
                "identifier": creds.identifier,
                "usersig": usersig,
                "random": str(random.getrandbits(32)),
                "contenttype": "json",
            }
            body = json.dumps({"RoomId": room_id}, separators=(",", ":")).encode()
            async with session.post(endpoint, params=params, data=body, headers=headers) as resp:
                doc = json.loads(await resp.read())
            if not isinstance(doc, dict) or doc.get("ErrorCode") != 0:
                raise RuntimeError(f"the simulator refused a call: {doc!r}")

        async def livestats(room_id: str) -> None:
            await client.get_room_stats(room_id)

        for i in range(WARMUP + calls):
            room_id = f"room-{i % ROOMS:05d}"
            for name, call in (("raw aiohttp", raw), ("livestats", livestats)):
                started = time.perf_counter()
                await call(room_id)
                elapsed = time.perf_counter() - started
                if i >= WARMUP:
                    timings[name].append(elapsed * 1e6)
    return timings


def _summary(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            **{f"p{round(q * 100)}_us": _quantile(samples, q) for q in QUANTILES},
            "mean_us": statistics.fmean(samples),
        }
        for name, samples in timings.items()
    }


def _print(calls: int, summary: dict[str, dict[str, float]]) -> None:
    keys = [f"p{round(q * 100)}_us" for q in QUANTILES] + ["mean_us"]
    raw, lib = summary["raw aiohttp"], summary["livestats"]
    rows = [[name, *(f"{fig[k]:.0f}" for k in keys)] for name, fig in summary.items()]
    rows.append(["added by livestats", *(f"{lib[k] - raw[k]:+.0f}" for k in keys)])
    _common.print_table(
        f"latency: {calls} sequential {OPERATION} calls each, taking turns, warm session, "
        f"pacing off, simulator in a child process (microseconds)",
        ["client", "p50", "p90", "p99", "mean"],
        rows,
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The latency livestats adds to one call.")
    parser.add_argument("--calls", type=int, default=2000, help="calls per client (default 2000)")
    _common.add_json_option(parser)
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
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
        wait_until_listening(server, port)
        timings = asyncio.run(_run(f"http://{HOST}:{port}", args.calls))
    finally:
        server.terminate()
        server.join(5)
        if server.is_alive():
            server.kill()
            server.join()
    summary = _summary(timings)
    _print(args.calls, summary)
    _common.write_json(args.json, "latency", operation=OPERATION, calls=args.calls, summary=summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
