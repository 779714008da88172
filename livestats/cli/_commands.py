"""The collection commands: each builds a client from settings and streams results out."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from livestats import (
    ChinaNetCenterClient,
    GiftCount,
    PolyvClient,
    RoomStats,
    RoomSummary,
    SQLiteLimiter,
    StreamDuration,
    StreamInfoSample,
    TencentClient,
    ValidationError,
)
from livestats.cli._config import UsageError, load_settings, require
from livestats.cli._inputs import count_lines, read_ids
from livestats.cli._output import Writer, columns_of, error_row, open_writer, row_of
from livestats.cli._progress import Bars, wants_progress
from livestats.events import EventHandler

__all__ = [
    "chinanetcenter_durations",
    "polyv_stream_info",
    "tencent_gift_count",
    "tencent_room_stats",
    "tencent_rooms",
]


class Job:
    """Where one command's rows go, and whether any item failed (exit code 1)."""

    def __init__(self, args: argparse.Namespace, columns: list[str], stdout: TextIO) -> None:
        self._columns = columns
        self._file: TextIO | None = None
        if args.output and args.output != "-":
            try:
                self._file = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
            except OSError as exc:
                raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        self._writer: Writer = open_writer(args.format, self._file or stdout, columns)
        self.failed = 0

    def __enter__(self) -> Job:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Runs on Ctrl-C too: what completed is flushed, a JSON array is closed.
        self._writer.close()
        if self._file is not None:
            self._file.close()

    def ok(self, result: Any, **fields: Any) -> None:
        """A row of ``result``'s fields, after ``fields`` (a watch's ``taken_at``)."""
        self._writer.write({**fields, **row_of(result)})

    def fail(self, key: dict[str, Any], error: BaseException, **fields: Any) -> None:
        self.failed += 1
        self._writer.write(error_row(self._columns, {**fields, **key}, error))
        print(f"livestats: {_key_text(key)}: {type(error).__name__}: {error}", file=sys.stderr)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _key_text(key: dict[str, Any]) -> str:
    return " ".join(str(value) for value in key.values() if value is not None)


def _ids_given(args: argparse.Namespace) -> None:
    """Refuse a call whose input cannot work, before any output is written."""
    if args.ids and args.input:
        raise UsageError("give ids as arguments or with --input, not both")
    if args.input and args.input != "-" and not os.access(args.input, os.R_OK):
        raise UsageError(f"cannot read {args.input}")
    if not args.ids and not args.input and sys.stdin.isatty():
        raise UsageError("no ids: give them as arguments, with --input FILE, or on stdin")


# -- clients from settings -------------------------------------------------------------


def limiter_path() -> Path:
    """Where the command line keeps the quotas every run on this machine shares.

    ``$LIVESTATS_LIMITER_PATH``, else ``$XDG_CACHE_HOME/livestats/quotas.sqlite3``,
    else ``~/.cache/livestats/quotas.sqlite3``: per user, so two overlapping cron
    jobs of one user spend each quota together, never twice.
    """
    given = os.environ.get("LIVESTATS_LIMITER_PATH")
    if given:
        return Path(given)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "livestats" / "quotas.sqlite3"


def shared_file_limiter() -> SQLiteLimiter:
    """The limiter of every client the command line makes: one SQLite file per user."""
    return SQLiteLimiter(limiter_path())


def tencent_client(
    args: argparse.Namespace, *, on_event: EventHandler | None = None
) -> TencentClient:
    settings = load_settings("tencent", config=args.config)
    for name in ("base_url", "region"):
        if getattr(args, name, None):
            settings[name] = getattr(args, name)
    require(settings, "tencent", "sdkappid", "identifier")
    if not settings.get("secret_key") and not settings.get("usersig"):
        raise UsageError(
            "missing tencent settings: set LIVESTATS_TENCENT_SECRET_KEY or "
            "LIVESTATS_TENCENT_USERSIG (or secret_key / usersig under [tencent] in the config file)"
        )
    return TencentClient(
        settings["sdkappid"],
        settings["identifier"],
        secret_key=settings.get("secret_key") or None,
        usersig=settings.get("usersig") or None,
        region=settings.get("region") or "china",
        base_url=settings.get("base_url") or None,
        on_event=on_event,
        limiter=shared_file_limiter(),
    )


def chinanetcenter_client(
    args: argparse.Namespace, *, on_event: EventHandler | None = None
) -> ChinaNetCenterClient:
    settings = load_settings("chinanetcenter", config=args.config)
    if args.base_url:
        settings["base_url"] = args.base_url
    require(settings, "chinanetcenter", "username", "api_key")
    try:
        max_domains = int(settings.get("max_domains_per_request") or 1)
    except ValueError:
        raise UsageError("max_domains_per_request must be a whole number") from None
    return ChinaNetCenterClient(
        settings["username"],
        settings["api_key"],
        base_url=settings.get("base_url") or None,
        time_zone=args.time_zone or settings.get("time_zone") or "GMT+08:00",
        max_domains_per_request=max_domains,
        on_event=on_event,
        limiter=shared_file_limiter(),
    )


def polyv_client(args: argparse.Namespace, *, on_event: EventHandler | None = None) -> PolyvClient:
    settings = load_settings("polyv", config=args.config)
    if args.base_url:
        settings["base_url"] = args.base_url
    require(settings, "polyv", "app_id", "app_secret")
    return PolyvClient(
        settings["app_id"],
        settings["app_secret"],
        base_url=settings.get("base_url") or None,
        on_event=on_event,
        limiter=shared_file_limiter(),
    )


# -- Tencent ---------------------------------------------------------------------------


async def tencent_room_stats(args: argparse.Namespace) -> int:
    """Room statistics of the ids given, or of every room with ``--all``."""
    if args.all and (args.ids or args.input):
        raise UsageError("--all collects every room: give no ids with it")
    if not args.all:
        _ids_given(args)
    client = tencent_client(args)
    quota = client.quotas["get_room_stats"]
    async with client:
        with (
            Bars(wants_progress(args.progress)) as bars,
            Job(args, columns_of(RoomStats), bars.output()) as job,
        ):
            if args.all:
                ids: AsyncIterator[str] = (room.room_id async for room in client.iter_rooms())
                total = None
            else:
                ids, total = read_ids(args.ids, args.input), count_lines(args.ids, args.input)
            step = bars.step("room stats", total=total, quota=quota)
            results = client.get_room_stats_many(ids, concurrency=args.concurrency)
            async with contextlib.aclosing(results):
                async for result in results:
                    if result.error is None:
                        job.ok(result.value)
                    else:
                        job.fail({"room_id": result.key}, result.error)
                    step.advance(ok=result.ok)
            step.finish()
        return job.exit_code


async def _pairs(lines: AsyncIterator[str], account: str | None) -> AsyncIterator[Any]:
    """``room account`` per line (space, tab or comma between), or ``room`` with --account."""
    async for line in lines:
        parts = re.split(r"[\s,]+", line, maxsplit=1)
        if len(parts) == 2:
            yield (parts[0], parts[1])
        elif account:
            yield (parts[0], account)
        else:
            yield (line,)  # comes back as a ValidationError row: no item is lost


async def tencent_gift_count(args: argparse.Namespace) -> int:
    """Gift statistics for ``room account`` pairs (or rooms with ``--account``)."""
    _ids_given(args)
    client = tencent_client(args)
    quota = client.quotas["get_gift_count"]
    async with client:
        with (
            Bars(wants_progress(args.progress)) as bars,
            Job(args, columns_of(GiftCount), bars.output()) as job,
        ):
            step = bars.step("gift counts", total=count_lines(args.ids, args.input), quota=quota)
            pairs = _pairs(read_ids(args.ids, args.input), args.account)
            results = client.get_gift_count_many(pairs, concurrency=args.concurrency)
            async with contextlib.aclosing(results):
                async for result in results:
                    if result.error is None:
                        job.ok(result.value)
                    else:
                        key = result.key if isinstance(result.key, tuple) else (result.key,)
                        room, account = (*key, None, None)[:2]
                        job.fail({"room_id": room, "from_account": account}, result.error)
                    step.advance(ok=result.ok)
            step.finish()
        return job.exit_code


async def tencent_rooms(args: argparse.Namespace) -> int:
    """Every room of the app, from ``get_room_list``."""
    client = tencent_client(args)
    async with client:
        with (
            Bars(wants_progress(args.progress)) as bars,
            Job(args, columns_of(RoomSummary), bars.output()) as job,
        ):
            # Rooms, not calls (a call lists up to 20): no rate against the call quota.
            step = bars.step("rooms", total=None, quota=None)
            async for room in client.iter_rooms():
                job.ok(room)
                step.advance()
            step.finish()
        return job.exit_code


# -- ChinaNetCenter ----------------------------------------------------------------------


async def _domain_streams(args: argparse.Namespace) -> dict[str, list[str]]:
    """``--domain D STREAM...``, or lines of ``domain app/stream`` from --input or stdin."""
    wanted: dict[str, list[str]] = {}
    if args.domain:
        if args.input:
            raise UsageError("give --domain with stream arguments, or --input, not both")
        if not args.ids:
            raise UsageError("--domain needs stream names (app/stream) as arguments")
        return {args.domain: list(args.ids)}
    _ids_given(args)
    async for line in read_ids(args.ids, args.input):
        domain, _, stream = line.replace(",", " ").partition(" ")
        if not stream.strip():
            raise UsageError(f"expected 'domain app/stream' per line, got {line!r}")
        wanted.setdefault(domain, []).append(stream.strip())
    if not wanted:
        raise UsageError("no streams: give lines of 'domain app/stream'")
    return wanted


def _date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} must be a date like 2026-11-01, not {text!r}") from None


async def chinanetcenter_durations(args: argparse.Namespace) -> int:
    """Push durations, one query per domain so one domain's failure spares the others."""
    wanted = await _domain_streams(args)
    date_from, date_to = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    client = chinanetcenter_client(args)
    try:
        client.check_period(date_from, date_to)
    except ValidationError as err:
        raise UsageError(
            str(err).replace("date_from", "--from").replace("date_to", "--to")
        ) from None
    async with client:
        with (
            Bars(wants_progress(args.progress)) as bars,
            Job(args, columns_of(StreamDuration), bars.output()) as job,
        ):
            step = bars.step(
                "domains", total=len(wanted), quota=client.quotas["get_stream_durations"]
            )

            results = client.get_stream_durations_many(
                wanted, date_from=date_from, date_to=date_to, concurrency=len(wanted)
            )
            async with contextlib.aclosing(results):
                async for result in results:
                    if result.error is None:
                        for duration in result.value or []:
                            job.ok(duration)
                    else:
                        for stream in wanted[result.key]:
                            job.fail({"domain": result.key, "stream": stream}, result.error)
                    step.advance(ok=result.ok)
            step.finish()
        return job.exit_code


# -- Polyv -------------------------------------------------------------------------------


def _moment(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{flag} must be a time like 2026-11-22T10:00+08:00, not {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()  # naive: local time


async def polyv_stream_info(args: argparse.Namespace) -> int:
    """Stream monitor samples of channels: a row per sample, an error row per failed channel."""
    _ids_given(args)
    start, end = _moment(args.start, "--start"), _moment(args.end, "--end")
    client = polyv_client(args)
    async with client:
        with (
            Bars(wants_progress(args.progress)) as bars,
            Job(args, columns_of(StreamInfoSample), bars.output()) as job,
        ):
            step = bars.step(
                "channels",
                total=count_lines(args.ids, args.input),
                quota=client.quotas["get_stream_info"],
            )
            results = client.get_stream_info_many(
                read_ids(args.ids, args.input), start=start, end=end, concurrency=args.concurrency
            )
            async with contextlib.aclosing(results):
                async for result in results:
                    if result.error is None:
                        for sample in result.value or []:
                            job.ok(sample)
                    else:
                        job.fail({"channel_id": result.key}, result.error)
                    step.advance(ok=result.ok)
            step.finish()
        return job.exit_code
