"""``livestats simulate`` and ``livestats demo``: the simulator on its own, and a job against it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from datetime import datetime, timedelta, timezone
from typing import Any

from rich.console import Console
from rich.table import Table

from livestats import ChinaNetCenterClient, PolyvClient, Quota, TencentClient
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
    """Serve every provider until Ctrl-C, after printing the credentials that match.

    These are the simulator's own made-up credentials, printed on purpose; real
    ones are never echoed anywhere.
    """
    simulator = Simulator(
        host=args.host, port=args.port, seed=args.seed, tencent=TencentSim(rooms=args.rooms)
    )
    async with simulator as sim:
        print(f"# livestats simulator listening on {sim.url} (Ctrl-C stops it)")
        print(f"# rooms: {len(sim.room_ids)}, domains: {', '.join(sim.domains)}")
        print(f"# live Polyv channels: {', '.join(sim.channel_ids)}")
        print("\n".join(_exports(sim)), flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    return 0


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
    step.finish()
    return values


async def demo(args: argparse.Namespace) -> int:
    """A realistic job across the three providers, against the simulator, with a summary."""
    console = Console()
    if not console.is_terminal:  # piped or logged: room for the summary's columns
        console = Console(width=120)
    async with Simulator(seed=args.seed, tencent=TencentSim(rooms=args.rooms)) as sim:
        console.print(
            f"simulator at {sim.url}: {args.rooms} rooms, {len(sim.domains)} domains, "
            f"{len(sim.channel_ids) + len(sim.offline_channel_ids)} channels"
        )
        counts: dict[str, dict[str, int]] = {}
        t, c, p = sim.tencent, sim.chinanetcenter, sim.polyv
        tencent = TencentClient(t.sdkappid, t.identifier, secret_key=t.secret_key, base_url=sim.url)
        cnc = ChinaNetCenterClient(c.username, c.api_key, base_url=sim.url)
        polyv = PolyvClient(p.app_id, p.app_secret, base_url=sim.url)
        async with tencent, cnc, polyv:
            with Bars(wants_progress(args.progress)) as bars:
                await _tencent_job(tencent, bars, counts, top=args.top)
                await _cnc_job(cnc, sim.domains, bars, counts)
                await _polyv_job(polyv, [*sim.channel_ids, *sim.offline_channel_ids], bars, counts)
            quotas = {**tencent.quotas, **cnc.quotas, **polyv.quotas}
            console.print(_summary(sim, quotas, counts))
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
                f"  sweep {done}  taken at {taken_at} (+{started - first:.3f} s)  "
                f"{len(sweep.results)} rooms, {sweep.failed} failed, {took * 1000:.0f} ms, "
                f"{viewers:,} viewers in all"
            )
            if done == WATCH_SWEEPS:
                break


def _count(counts: dict[str, dict[str, int]], operation: str) -> dict[str, int]:
    return counts.setdefault(operation, {"items": 0, "errors": 0})


async def _tencent_job(
    client: TencentClient, bars: Bars, counts: dict[str, dict[str, int]], *, top: int
) -> None:
    listing = bars.step("Tencent rooms", total=None, quota=client.quotas["get_room_list"])
    rooms = []
    async for room in client.iter_rooms():
        rooms.append(room)
        listing.advance()
    listing.finish()
    _count(counts, "get_room_list")["items"] = len(rooms)

    stats_step = bars.step(
        "Tencent room stats", total=len(rooms), quota=client.quotas["get_room_stats"]
    )
    await _drain(
        client.get_room_stats_many(room.room_id for room in rooms),
        stats_step,
        _count(counts, "get_room_stats"),
    )
    # Gifts received by the owners of the most watched rooms (the list is sorted by views).
    pairs = [(room.room_id, room.owner_account) for room in rooms[:top]]
    gifts_step = bars.step(
        "Tencent gift counts", total=len(pairs), quota=client.quotas["get_gift_count"]
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
        "ChinaNetCenter 70 days", total=len(domains), quota=client.quotas["get_stream_durations"]
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
        "Polyv stream info", total=len(channels), quota=client.quotas["get_stream_info"]
    )
    results = client.get_stream_info_many(channels, start=end - timedelta(hours=1), end=end)
    await _drain(results, step, _count(counts, "get_stream_info"))


def _summary(
    sim: Simulator, quotas: dict[str, Quota | None], counts: dict[str, dict[str, int]]
) -> Table:
    table = Table(title="livestats demo: what was collected, and how it kept to each quota")
    for column in (
        "operation",
        "items",
        "errors",
        "requests",
        "achieved",
        "quota",
        "of quota",
        "busiest window",
        "refused",
    ):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for operation, count in counts.items():
        quota = quotas[operation]
        assert quota is not None
        report = pacing_report(sim.arrivals(operation), quota)
        # A run that never filled one window was not limited by the quota: no ratio.
        filled = report.calls > quota.limit
        table.add_row(
            operation,
            str(count["items"]),
            str(count["errors"]),
            str(report.calls),
            f"{report.rate:.1f}/s",
            str(quota),
            f"{report.ratio:.1%}" if filled else "(burst)",
            f"{report.busiest_window}/{quota.limit}",
            str(sim.violations(operation)),
        )
    return table
