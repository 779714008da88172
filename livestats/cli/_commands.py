"""The collection commands: each builds a client from settings and streams results out.

Every item of the input ends as exactly one outcome: a row, an error row (and a
line on stderr), or, with ``--resume``, a skip because an earlier run's output
already holds it. A line that is not one item (extra words, a room without an
account) is an error row for that line and is never sent. An error that dooms
the batch (credentials refused, the shared limiter gone) is raised at once,
without an error row per item: ``livestats`` ends with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime
from types import TracebackType
from typing import Any, TextIO

from livestats import (
    GiftCount,
    RoomStats,
    RoomSummary,
    StreamDuration,
    StreamInfoSample,
    ValidationError,
)
from livestats.cli._clients import chinanetcenter_client, polyv_client, tencent_client
from livestats.cli._config import UsageError
from livestats.cli._inputs import Line, Progress, read_lines, stdin_is_terminal
from livestats.cli._output import Column, Row, Writer, columns_of, error_detail, open_writer
from livestats.cli._progress import Bars, Step, wants_progress
from livestats.cli._resume import Done, read_done

__all__ = [
    "Job",
    "chinanetcenter_durations",
    "polyv_stream_info",
    "tencent_gift_count",
    "tencent_room_stats",
    "tencent_rooms",
]

logger = logging.getLogger("livestats")

#: The fields that name an item in each result class (a resumed job skips them).
KEYS: dict[type, tuple[str, ...]] = {
    RoomStats: ("room_id",),
    GiftCount: ("room_id", "from_account"),
    StreamDuration: ("domain", "stream"),
    StreamInfoSample: ("channel_id",),
}


class Job:
    """Where one command's rows go, and whether any item failed (exit code 1).

    ``key``: the fields naming an item, for ``--resume`` (None: the command has
    no input to resume).
    """

    def __init__(
        self,
        args: argparse.Namespace,
        columns: list[Column],
        stdout: TextIO,
        *,
        key: tuple[str, ...] | None = None,
    ) -> None:
        self._columns = columns
        self._file: TextIO | None = None
        self.done = Done(set(), empty=True)
        resume = bool(getattr(args, "resume", False))
        if resume:
            self.done = _resume(args, columns, key)
        if args.output and args.output != "-":
            try:
                self._file = open(  # noqa: SIM115
                    args.output, "a" if resume else "w", encoding="utf-8", newline=""
                )
            except OSError as exc:
                raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
        self._writer: Writer = open_writer(
            args.format, self._file or stdout, columns, header=self.done.empty
        )
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
        self._writer.close(aborted=exc is not None)
        if self._file is not None:
            self._file.close()

    def ok(self, result: Any, **fields: Any) -> None:
        """A row of ``result``'s fields, after ``fields`` (a watch's ``taken_at``)."""
        self._writer.write(Row.of(result, **fields))

    def fail(self, key: dict[str, Any], error: BaseException, **fields: Any) -> None:
        """An error row and a line on stderr; an error that dooms the job is raised instead."""
        if getattr(error, "dooms_batch", False):
            raise error
        self.failed += 1
        values = dict.fromkeys(c.name for c in self._columns)
        values.update(fields)
        values.update(key)
        self._writer.write(Row(values, error))
        what = " ".join(str(value) for value in key.values() if value is not None)
        print(f"livestats: {what}: {type(error).__name__}: {error_detail(error)}", file=sys.stderr)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _resume(args: argparse.Namespace, columns: list[Column], key: tuple[str, ...] | None) -> Done:
    if key is None:
        raise UsageError("--resume is for commands that read ids")
    if not args.output or args.output == "-":
        raise UsageError("--resume needs -o FILE: the output of the run to carry on")
    if args.format not in ("jsonl", "csv"):
        raise UsageError("--resume needs --format jsonl or csv (rows it can append to)")
    names = [*(c.name for c in columns), "error", "error_type"]
    done = read_done(args.output, args.format, names, key)
    logger.info("resuming: %d items already in %s are skipped", len(done), args.output)
    return done


def _ids_given(args: argparse.Namespace) -> None:
    """Refuse a call whose input cannot work, before any output is written."""
    if args.ids and args.input:
        raise UsageError("give ids as arguments or with --input, not both")
    if not args.ids and not args.input and stdin_is_terminal():
        raise UsageError("no ids: give them as arguments, with --input FILE, or on stdin")


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[\s,]+", text) if word]


async def single_ids(
    lines: AsyncIterator[Line], job: Job, step: Step, *, key: str, what: str
) -> AsyncIterator[str]:
    """One id per line; a line of several words is an error row for that line, not a request."""
    async for line in lines:
        words = line.text.split()
        if len(words) != 1:
            error = ValidationError(f"{line.where}: expected one {what}, not {len(words)} words")
            job.fail({key: line.text}, error)
            step.advance(ok=False)
            continue
        if (words[0],) in job.done:
            step.advance(skipped=True)
            continue
        yield words[0]


async def collect(results: Any, job: Job, step: Step, *, key: Any, rows: Any = None) -> None:
    """Write each result of a bulk call as it completes; ``rows``: a value's rows."""
    async with contextlib.aclosing(results):
        async for result in results:
            if result.error is None:
                for value in rows(result.value) if rows is not None else [result.value]:
                    job.ok(value)
            else:
                for failed in key(result.key):
                    job.fail(failed, result.error)
            step.advance(ok=result.ok)
    step.finish()


# -- Tencent ---------------------------------------------------------------------------


async def tencent_room_stats(args: argparse.Namespace) -> int:
    """Room statistics of the ids given, or of every room with ``--all``."""
    if args.all and (args.ids or args.input):
        raise UsageError("--all collects every room: give no ids with it")
    if not args.all:
        _ids_given(args)
    bars = Bars(wants_progress(args.progress))
    client = tencent_client(args, on_event=bars.events)
    columns = columns_of(RoomStats)
    async with client:
        with Job(args, columns, bars.output(), key=KEYS[RoomStats]) as job, bars:
            ids: AsyncIterator[str]
            if args.all:
                listing = bars.step(
                    "rooms listed",
                    operation="get_room_list",
                    quota=client.effective_quota("get_room_list"),
                )
                step = bars.step(
                    "room stats",
                    operation="get_room_stats",
                    quota=client.effective_quota("get_room_stats"),
                )
                ids = _every_room(client.iter_rooms(), job, listing, step)
            else:
                source = Progress.of(args.ids)
                step = bars.step(
                    "room stats",
                    operation="get_room_stats",
                    quota=client.effective_quota("get_room_stats"),
                    source=source,
                )
                lines = read_lines(args.ids, args.input, source)
                ids = single_ids(lines, job, step, key="room_id", what="room id")
            results = client.get_room_stats_many(ids, concurrency=args.concurrency)
            await collect(results, job, step, key=lambda room: [{"room_id": room}])
        return job.exit_code


async def _every_room(
    rooms: AsyncIterator[RoomSummary], job: Job, listing: Step, step: Step
) -> AsyncIterator[str]:
    """The ids of the room list as it is read; the stats step's total once it is all read."""
    count = 0
    async for room in rooms:
        count += 1
        listing.advance()
        if (room.room_id,) in job.done:
            step.advance(skipped=True)
            continue
        yield room.room_id
    listing.finish()
    step.set_total(count)


async def _pairs(
    lines: AsyncIterator[Line], account: str | None, job: Job, step: Step
) -> AsyncIterator[tuple[str, str]]:
    """``room account`` per line (space, tab or comma between), or ``room`` with --account."""
    async for line in lines:
        words = _words(line.text)
        if len(words) == 1 and account:
            words.append(account)
        if len(words) != 2:
            said = (
                "a room without an account: give 'room account', or --account"
                if len(words) == 1
                else f"expected 'room account', not {len(words)} words"
            )
            job.fail(
                {"room_id": line.text, "from_account": None},
                ValidationError(f"{line.where}: {said}"),
            )
            step.advance(ok=False)
            continue
        if tuple(words) in job.done:
            step.advance(skipped=True)
            continue
        yield (words[0], words[1])


async def tencent_gift_count(args: argparse.Namespace) -> int:
    """Gift statistics for ``room account`` pairs (or rooms with ``--account``)."""
    _ids_given(args)
    if not args.account and any(len(_words(arg)) == 1 for arg in args.ids if arg != "-"):
        raise UsageError(
            "gift-count needs the receiver: give --account ACCOUNT, or 'room account' pairs"
        )
    bars = Bars(wants_progress(args.progress))
    client = tencent_client(args, on_event=bars.events)
    async with client:
        with Job(args, columns_of(GiftCount), bars.output(), key=KEYS[GiftCount]) as job, bars:
            source = Progress.of(args.ids)
            step = bars.step(
                "gift counts",
                operation="get_gift_count",
                quota=client.effective_quota("get_gift_count"),
                source=source,
            )
            pairs = _pairs(read_lines(args.ids, args.input, source), args.account, job, step)
            results = client.get_gift_count_many(pairs, concurrency=args.concurrency)
            await collect(
                results,
                job,
                step,
                key=lambda pair: [{"room_id": pair[0], "from_account": pair[1]}],
            )
        return job.exit_code


async def tencent_rooms(args: argparse.Namespace) -> int:
    """Every room of the app, from ``get_room_list``."""
    bars = Bars(wants_progress(args.progress))
    client = tencent_client(args, on_event=bars.events)
    async with client:
        with Job(args, columns_of(RoomSummary), bars.output()) as job, bars:
            step = bars.step(
                "rooms", operation="get_room_list", quota=client.effective_quota("get_room_list")
            )
            async for room in client.iter_rooms():
                job.ok(room)
                step.advance()
            step.finish()
        return job.exit_code


# -- ChinaNetCenter ----------------------------------------------------------------------


async def domain_streams(args: argparse.Namespace) -> dict[str, list[str]]:
    """``--domain D STREAM...``, or lines of ``domain app/stream`` from --input or stdin.

    All read before anything is sent (a query is per domain), so a bad line is a
    usage error naming it.
    """
    wanted: dict[str, list[str]] = {}
    if args.domain:
        if args.input:
            raise UsageError("give --domain with stream arguments, or --input, not both")
        if not args.ids:
            raise UsageError("--domain needs stream names (app/stream) as arguments")
        return {args.domain: list(args.ids)}
    _ids_given(args)
    async for line in read_lines(args.ids, args.input):
        words = _words(line.text)
        if len(words) != 2:
            raise UsageError(
                f"{line.where}: expected 'domain app/stream', not {len(words)} words"
                " (or give --domain and the streams)"
            )
        domain, stream = words
        wanted.setdefault(domain, []).append(stream)
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
    wanted = await domain_streams(args)
    date_from, date_to = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    bars = Bars(wants_progress(args.progress))
    client = chinanetcenter_client(args, on_event=bars.events)
    try:
        client.check_period(date_from, date_to)
    except ValidationError as err:
        raise UsageError(
            str(err).replace("date_from", "--from").replace("date_to", "--to")
        ) from None
    key = KEYS[StreamDuration]
    async with client:
        with Job(args, columns_of(StreamDuration), bars.output(), key=key) as job, bars:
            left = {
                domain: todo
                for domain, streams in wanted.items()
                if (todo := [s for s in streams if (domain, s) not in job.done])
            }
            step = bars.step(
                "domains",
                operation="get_stream_durations",
                quota=client.effective_quota("get_stream_durations"),
                total=len(wanted),
            )
            for _ in range(len(wanted) - len(left)):
                step.advance(skipped=True)
            if not left:
                step.finish()
                return job.exit_code
            results = client.get_stream_durations_many(
                left, date_from=date_from, date_to=date_to, concurrency=len(left)
            )
            await collect(
                results,
                job,
                step,
                key=lambda domain: [{"domain": domain, "stream": s} for s in left[domain]],
                rows=lambda durations: durations or [],
            )
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
    bars = Bars(wants_progress(args.progress))
    client = polyv_client(args, on_event=bars.events)
    key = KEYS[StreamInfoSample]
    async with client:
        with Job(args, columns_of(StreamInfoSample), bars.output(), key=key) as job, bars:
            source = Progress.of(args.ids)
            step = bars.step(
                "channels",
                operation="get_stream_info",
                quota=client.effective_quota("get_stream_info"),
                source=source,
            )
            lines = read_lines(args.ids, args.input, source)
            channels = single_ids(lines, job, step, key="channel_id", what="channel id")
            results = client.get_stream_info_many(
                channels, start=start, end=end, concurrency=args.concurrency
            )
            await collect(
                results,
                job,
                step,
                key=lambda channel: [{"channel_id": channel}],
                rows=lambda samples: samples or [],
            )
        return job.exit_code
