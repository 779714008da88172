"""``livestats simulate`` and ``livestats demo``: the simulator on its own, and a job against it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import datetime, timedelta, timezone
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from livestats import ChinaNetCenterClient, PolyvClient, Quota, TencentClient
from livestats.cli._config import UsageError
from livestats.cli._progress import Bars, Step, wants_progress
from livestats.testing import Simulator, TencentSim, pacing_report

__all__ = ["demo", "simulate"]


def _exports(sim: Simulator) -> list[str]:
    """``export`` lines that point the command line (or your code) at ``sim``."""
    t, c, p = sim.tencent, sim.chinanetcenter, sim.polyv
    return [
        "# Tencent Cloud Live",
        f"export LIVESTATS_TENCENT_BASE_URL={sim.url}",
        f"export LIVESTATS_TENCENT_SDKAPPID={t.sdkappid}",
        f"export LIVESTATS_TENCENT_IDENTIFIER={t.identifier}",
        f"export LIVESTATS_TENCENT_SECRET_KEY={t.secret_key}",
        "# ChinaNetCenter",
        f"export LIVESTATS_CHINANETCENTER_BASE_URL={sim.url}",
        f"export LIVESTATS_CHINANETCENTER_USERNAME={c.username}",
        f"export LIVESTATS_CHINANETCENTER_API_KEY={c.api_key}",
        "# Polyv",
        f"export LIVESTATS_POLYV_BASE_URL={sim.url}",
        f"export LIVESTATS_POLYV_APP_ID={p.app_id}",
        f"export LIVESTATS_POLYV_APP_SECRET={p.app_secret}",
    ]


async def simulate(args: argparse.Namespace) -> int:
    """Serve every provider until Ctrl-C (exit 130), after printing the credentials that match.

    These are the simulator's own made-up credentials, printed on purpose; real
    ones are never echoed anywhere.
    """
    simulator = Simulator(
        host=args.host, port=args.port, seed=args.seed, tencent=TencentSim(rooms=args.rooms)
    )
    try:
        await simulator.start()
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "give another --port (0: any free one)"
        ) from None
    try:
        sim = simulator
        rooms = sim.room_ids
        print(f"# livestats simulator listening on {sim.url} (Ctrl-C stops it)")
        print(f"# rooms: {len(rooms)}, {rooms[0]} to {rooms[-1]}")
        for domain, streams in sim.domains.items():
            print(f"# domain {domain}: {', '.join(streams)}")
        print(f"# live Polyv channels: {', '.join(sim.channel_ids)}")
        print(
            f"# offline Polyv channels (ChannelNotLiveError): {', '.join(sim.offline_channel_ids)}"
        )
        print("\n".join(_exports(sim)), flush=True)
        await asyncio.Event().wait()  # until Ctrl-C or SIGTERM cancels it
    finally:
        await simulator.close()
    return 0  # not reached


# -- demo -------------------------------------------------------------------------------


async def _drain(results: Any, step: Step, counts: dict[str, int]) -> list[Any]:
    values: list[Any] = []
    async with contextlib.aclosing(results):
        async for result in results:
            step.advance(ok=result.ok)
            counts["items"] += 1
            if result.ok:
                values.append(result.value)
            else:
                counts["errors"] += 1
                kind = type(result.error).__name__
                counts.setdefault(kind, 0)
                counts[kind] += 1
    step.finish()
    return values


async def demo(args: argparse.Namespace) -> int:
    """A realistic job across the three providers, against the simulator, with a summary."""
    console = Console()
    if not console.is_terminal:  # piped or logged: the width of a terminal
        console = Console(width=80)
    async with Simulator(seed=args.seed, tencent=TencentSim(rooms=args.rooms)) as sim:
        console.print(f"simulator at {sim.url}:")
        console.print(
            f"  {args.rooms} rooms, {len(sim.domains)} domains, "
            f"{len(sim.channel_ids)} live and {len(sim.offline_channel_ids)} offline channels"
        )
        counts: dict[str, dict[str, int]] = {}
        bars = Bars(wants_progress(args.progress))
        t, c, p = sim.tencent, sim.chinanetcenter, sim.polyv
        tencent = TencentClient(
            t.sdkappid,
            t.identifier,
            secret_key=t.secret_key,
            base_url=sim.url,
            on_event=bars.events,
        )
        cnc = ChinaNetCenterClient(c.username, c.api_key, base_url=sim.url, on_event=bars.events)
        polyv = PolyvClient(p.app_id, p.app_secret, base_url=sim.url, on_event=bars.events)
        async with tencent, cnc, polyv:
            with bars:
                await _tencent_job(tencent, bars, counts, top=args.top)
                await _cnc_job(cnc, sim.domains, bars, counts)
                await _polyv_job(polyv, [*sim.channel_ids, *sim.offline_channel_ids], bars, counts)
            quotas = {**tencent.quotas, **cnc.quotas, **polyv.quotas}
            console.print()
            console.print(_summary(sim, quotas, counts))
            for line in _legend(sim, counts):
                console.print(line, highlight=False)
            await _watch(tencent, sim.room_ids[:WATCH_ROOMS], console)
    return 0


#: The demo's watch: two sweeps of a few rooms, a second apart.
WATCH_ROOMS = 5
WATCH_EVERY = 1.0
WATCH_SWEEPS = 2


async def _watch(client: TencentClient, rooms: list[str], console: Console) -> None:
    """A short ``livestats tencent watch``: sweeps on a drift-free schedule, as they complete."""
    console.print(
        f"\nwatch: {len(rooms)} rooms every {WATCH_EVERY:g} s "
        f"(livestats tencent watch --every {WATCH_EVERY:g}), {WATCH_SWEEPS} sweeps:"
    )
    first: float | None = None
    done = 0
    sweeps = client.poll_room_stats(rooms, every=WATCH_EVERY)
    async with contextlib.aclosing(sweeps):
        async for sweep in sweeps:
            done += 1
            started = sweep.started_at.timestamp()
            first = started if first is None else first
            took = (sweep.finished_at - sweep.started_at).total_seconds()
            viewers = sum(r.value.total_viewers for r in sweep.results if r.value is not None)
            taken_at = sweep.started_at.strftime("%H:%M:%S.%f")[:-3]  # to the millisecond
            console.print(
                f"  sweep {done} at {taken_at} (+{started - first:.3f} s): "
                f"{len(sweep.results)} rooms, {sweep.failed} failed, {took * 1000:.0f} ms, "
                f"{viewers:,} viewers"
            )
            if done == WATCH_SWEEPS:
                break


def _count(counts: dict[str, dict[str, int]], operation: str) -> dict[str, int]:
    return counts.setdefault(operation, {"items": 0, "errors": 0})


async def _tencent_job(
    client: TencentClient, bars: Bars, counts: dict[str, dict[str, int]], *, top: int
) -> None:
    listing = bars.step(
        "Tencent rooms", operation="get_room_list", quota=client.effective_quota("get_room_list")
    )
    rooms = []
    async for room in client.iter_rooms():
        rooms.append(room)
        listing.advance()
    listing.finish()
    _count(counts, "get_room_list")["items"] = len(rooms)

    stats_step = bars.step(
        "Tencent room stats",
        operation="get_room_stats",
        quota=client.effective_quota("get_room_stats"),
        total=len(rooms),
    )
    await _drain(
        client.get_room_stats_many(room.room_id for room in rooms),
        stats_step,
        _count(counts, "get_room_stats"),
    )
    # Gifts received by the owners of the most watched rooms (the list is sorted by views).
    pairs = [(room.room_id, room.owner_account) for room in rooms[:top]]
    gifts_step = bars.step(
        "Tencent gift counts",
        operation="get_gift_count",
        quota=client.effective_quota("get_gift_count"),
        total=len(pairs),
    )
    await _drain(client.get_gift_count_many(pairs), gifts_step, _count(counts, "get_gift_count"))


async def _cnc_job(
    client: ChinaNetCenterClient,
    domains: dict[str, list[str]],
    bars: Bars,
    counts: dict[str, dict[str, int]],
) -> None:
    today = client.today()
    step = bars.step(
        "ChinaNetCenter 70d",
        operation="get_stream_durations",
        quota=client.effective_quota("get_stream_durations"),
        total=len(domains),
    )

    await _drain(
        client.get_stream_durations_many(
            domains,
            date_from=today - timedelta(days=70),
            date_to=today,
            concurrency=len(domains),
        ),
        step,
        _count(counts, "get_stream_durations"),
    )


async def _polyv_job(
    client: PolyvClient, channels: list[str], bars: Bars, counts: dict[str, dict[str, int]]
) -> None:
    end = datetime.now(timezone.utc)
    step = bars.step(
        "Polyv stream info",
        operation="get_stream_info",
        quota=client.effective_quota("get_stream_info"),
        total=len(channels),
    )
    results = client.get_stream_info_many(channels, start=end - timedelta(hours=1), end=end)
    await _drain(results, step, _count(counts, "get_stream_info"))


#: The summary's columns: name, and what the legend under the table says of it.
COLUMNS = {
    "operation": "",
    "items": "what was asked for (a room, a domain's streams, a channel)",
    "errors": "items that failed",
    "requests": "requests that reached the simulator",
    "req/s": "their rate from first to last (burst: all within one quota window)",
    "quota": "the vendor's quota: requests per period",
    "busiest": "the most requests in any one quota period / the limit",
    "refused": "requests the simulator refused for the quota",
}


def _summary(
    sim: Simulator, quotas: dict[str, Quota | None], counts: dict[str, dict[str, int]]
) -> Table:
    """Eight narrow columns: the table fits 80 columns without wrapping a cell."""
    table = Table(
        title="livestats demo: what was collected, and how it kept to each quota",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=0,  # the box's one-space separator is the gap
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "operation" else "right", no_wrap=True)
    for operation, count in counts.items():
        quota = quotas[operation]
        assert quota is not None
        report = pacing_report(sim.arrivals(operation), quota)
        # A run that never filled one window was not limited by the quota: no rate.
        filled = report.calls > quota.limit
        table.add_row(
            operation,
            str(count["items"]),
            str(count["errors"]),
            str(report.calls),
            f"{report.rate:.1f}" if filled else "burst",
            f"{quota.limit}/{quota.period:g}s",
            f"{report.busiest_window}/{quota.limit}",
            str(sim.violations(operation)),
        )
    return table


def _legend(sim: Simulator, counts: dict[str, dict[str, int]]) -> list[str]:
    """What each column means, and which errors are expected."""
    lines = [f"  {name}: {what}" for name, what in COLUMNS.items() if what]
    offline = counts.get("get_stream_info", {}).get("ChannelNotLiveError", 0)
    other = sum(c["errors"] for c in counts.values()) - offline
    if offline:
        lines.append(
            f"The {offline} get_stream_info errors are expected: the simulator's offline channels"
        )
        lines.append(f"({', '.join(sim.offline_channel_ids)}) answer ChannelNotLiveError.")
    if other:
        lines.append(f"{other} other errors: not expected; run again with -v to see them.")
    return lines
