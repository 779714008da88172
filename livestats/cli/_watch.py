"""The watch commands: a poller's sweeps written out as they complete, and served as metrics.

``livestats tencent watch``, ``polyv watch`` and ``chinanetcenter watch`` run until
stopped (Ctrl-C: exit 130, SIGTERM: 143, what completed flushed). Each sweep's
rows go out through the usual writers with a ``taken_at`` column first, the
sweep's start: a room's statistics, a channel's latest sample, a stream's push
duration today. A failed item is an error row, as in the one-off commands, and
the watch goes on. With ``--metrics-port`` the figures of the latest sweep and
the SDK's own metrics are served at ``/metrics`` for Prometheus (see
:mod:`livestats.cli._exporter`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncGenerator, Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from livestats import (
    ChinaNetCenterClient,
    PolyvClient,
    RoomStats,
    StreamDuration,
    StreamInfoSample,
    Sweep,
    TencentClient,
    ValidationError,
)
from livestats.cli._clients import chinanetcenter_client, polyv_client, tencent_client
from livestats.cli._commands import Job, _ids_given, domain_streams
from livestats.cli._config import UsageError
from livestats.cli._inputs import read_lines
from livestats.cli._output import Column, columns_of
from livestats.cli._progress import wants_progress
from livestats.events import EventHandler

if TYPE_CHECKING:
    from livestats.cli._exporter import Exporter

__all__ = ["chinanetcenter_watch", "polyv_watch", "tencent_watch"]

#: The first column of every watch row: when the sweep that read it started.
TAKEN_AT = "taken_at"

#: Writes one sweep's rows to the job.
Rows = Callable[[Job, Sweep[Any, Any], datetime], None]


def _exporter(args: argparse.Namespace, provider: str) -> Exporter | None:
    """The metrics exporter ``--metrics-port`` asks for, or None; says what to install."""
    if args.metrics_port is None:
        return None
    try:
        from livestats.cli._exporter import Exporter
    except ImportError as exc:
        if not (exc.name or "").startswith("prometheus_client"):
            raise
        raise UsageError(
            "--metrics-port needs prometheus-client: pip install 'livestats[prometheus]'"
        ) from None
    return Exporter(provider)


async def _watch(
    args: argparse.Namespace,
    exporter: Exporter | None,
    client: TencentClient | PolyvClient | ChinaNetCenterClient,
    sweeps: AsyncGenerator[Sweep[Any, Any], None],
    *,
    columns: list[Column],
    rows: Rows,
    noun: str,
) -> int:
    """Write every sweep, and show it as metrics, until stopped; never returns on its own."""
    progress = wants_progress(args.progress)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(client)
        if exporter is not None:
            exporter.collector.watch(client)
            stack.push_async_callback(exporter.close)
            url = await exporter.serve(args.metrics_host, args.metrics_port)
            print(f"livestats: serving metrics at {url}", file=sys.stderr, flush=True)
        taken_at = Column(TAKEN_AT, datetime)
        job = stack.enter_context(Job(args, [taken_at, *columns], sys.stdout))
        sweeps = await stack.enter_async_context(contextlib.aclosing(sweeps))
        count = 0
        async for sweep in sweeps:
            count += 1
            rows(job, sweep, sweep.started_at)
            if exporter is not None:
                exporter.record(sweep)
            if progress:
                took = (sweep.finished_at - sweep.started_at).total_seconds()
                print(
                    f"livestats: sweep {count} at {sweep.started_at:%H:%M:%S}: "
                    f"{len(sweep.results)} {noun}, {sweep.failed} failed, took {took:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return job.exit_code  # not reached: a poller ends by an error (raised) or a signal


@contextlib.contextmanager
def _usage() -> Iterator[None]:
    """A poller's refusal of its arguments (checked before anything is sent): a usage error."""
    try:
        yield
    except ValidationError as err:
        raise UsageError(str(err)) from None


async def _ids(arguments: list[str], path: str | None, what: str) -> list[str]:
    """The ids to watch, all read first (every sweep asks for each); a bad line is a usage error."""
    ids = []
    async for line in read_lines(arguments, path):
        words = line.text.split()
        if len(words) != 1:
            raise UsageError(f"{line.where}: expected one {what}, not {len(words)} words")
        ids.append(words[0])
    return ids


def _on_event(exporter: Exporter | None) -> EventHandler | None:
    return None if exporter is None else exporter.collector


# -- Tencent ---------------------------------------------------------------------------


def _room_rows(job: Job, sweep: Sweep[Any, Any], taken_at: datetime) -> None:
    for result in sweep.results:
        if result.error is None:
            job.ok(result.value, taken_at=taken_at)
        else:
            job.fail({"room_id": result.key}, result.error, taken_at=taken_at)


async def tencent_watch(args: argparse.Namespace) -> int:
    """Room statistics every ``--every`` seconds: of every room (listed anew), or those given."""
    if args.ids and args.rooms:
        raise UsageError("give room ids as arguments or with --rooms, not both")
    room_ids: list[str] | None = None
    if args.ids or args.rooms:
        room_ids = await _ids(args.ids, args.rooms, "room id")
        if not room_ids:
            raise UsageError(f"no room ids in {args.rooms}")
    exporter = _exporter(args, "tencent")
    client = tencent_client(args, on_event=_on_event(exporter))
    with _usage():
        sweeps = client.poll_room_stats(room_ids, every=args.every)
    return await _watch(
        args, exporter, client, sweeps, columns=columns_of(RoomStats), rows=_room_rows, noun="rooms"
    )


# -- Polyv -----------------------------------------------------------------------------


def _sample_rows(job: Job, sweep: Sweep[Any, Any], taken_at: datetime) -> None:
    """A channel's latest sample; a channel with no sample in the window has no row."""
    for result in sweep.results:
        if result.error is None:
            if result.value:
                job.ok(max(result.value, key=lambda sample: sample.time), taken_at=taken_at)
        else:
            job.fail({"channel_id": result.key}, result.error, taken_at=taken_at)


async def polyv_watch(args: argparse.Namespace) -> int:
    """The latest stream sample of each channel every ``--every`` seconds."""
    _ids_given(args)
    channels = await _ids(args.ids, args.input, "channel id")
    if not channels:
        raise UsageError("no channel ids given")
    exporter = _exporter(args, "polyv")
    client = polyv_client(args, on_event=_on_event(exporter))
    with _usage():
        sweeps = client.poll_stream_info(
            channels, every=args.every, window=timedelta(seconds=args.window)
        )
    return await _watch(
        args,
        exporter,
        client,
        sweeps,
        columns=columns_of(StreamInfoSample),
        rows=_sample_rows,
        noun="channels",
    )


# -- ChinaNetCenter --------------------------------------------------------------------


async def chinanetcenter_watch(args: argparse.Namespace) -> int:
    """Today's push duration of each stream every ``--every`` seconds, one query per domain."""
    wanted = await domain_streams(args)

    def rows(job: Job, sweep: Sweep[Any, Any], taken_at: datetime) -> None:
        for result in sweep.results:
            if result.error is None:
                for duration in result.value or []:
                    job.ok(duration, taken_at=taken_at)
            else:
                for stream in wanted[result.key]:
                    key = {"domain": result.key, "stream": stream}
                    job.fail(key, result.error, taken_at=taken_at)

    exporter = _exporter(args, "chinanetcenter")
    client = chinanetcenter_client(args, on_event=_on_event(exporter))
    with _usage():
        sweeps = client.poll_stream_durations(wanted, every=args.every)
    return await _watch(
        args,
        exporter,
        client,
        sweeps,
        columns=columns_of(StreamDuration),
        rows=rows,
        noun="domains",
    )
