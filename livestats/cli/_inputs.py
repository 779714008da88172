"""Ids from arguments, a file or standard input, one per line, read as they are needed.

A file is read a chunk at a time in a worker thread: a million ids never sit in
memory, and the bulk helpers take the next id only when a worker is free. A pipe
is read a line at a time by a daemon thread that hands each line over as soon
as it arrives (a slow producer's ids are worked on at once) and waits while
enough lines are queued; being a daemon, it never holds up the exit after
Ctrl-C while blocked on a producer that is still writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO

from livestats.cli._config import UsageError

__all__ = ["count_lines", "read_ids"]

_CHUNK = 64 * 1024


def _wanted(line: str) -> str | None:
    text = line.strip()
    return text if text and not text.startswith("#") else None


async def _file_lines(stream: TextIO) -> AsyncIterator[str]:
    while chunk := await asyncio.to_thread(stream.readlines, _CHUNK):
        for line in chunk:
            if (text := _wanted(line)) is not None:
                yield text


_END = object()


async def _pipe_lines(stream: TextIO, *, backlog: int = 1024) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(backlog)  # the thread waits while this many lines are queued
    stop = threading.Event()

    def pump() -> None:
        try:
            for line in stream:
                room.acquire()
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass  # the pipe went away: end of input
        finally:
            if not stop.is_set():
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(queue.put_nowait, _END)

    threading.Thread(target=pump, name="livestats-stdin", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            room.release()
            assert isinstance(item, str)
            if (text := _wanted(item)) is not None:
                yield text
    finally:
        stop.set()
        room.release()  # a pump waiting for room sees the stop and ends


async def _from_arguments(values: Iterable[str]) -> AsyncIterator[str]:
    for value in values:
        yield value


async def read_ids(arguments: list[str], input_path: str | None) -> AsyncIterator[str]:
    """The ids given as arguments, else from ``--input`` (``-``: stdin), else piped stdin."""
    if arguments and input_path:
        raise UsageError("give ids as arguments or with --input, not both")
    if arguments:
        async for value in _from_arguments(arguments):
            yield value
        return
    if input_path and input_path != "-":
        try:
            handle = await asyncio.to_thread(open, input_path, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {input_path}: {exc.strerror}") from None
        try:
            async for value in _file_lines(handle):
                yield value
        finally:
            handle.close()
        return
    if input_path != "-" and sys.stdin.isatty():
        raise UsageError("no ids: give them as arguments, with --input FILE, or on stdin")
    lines = _file_lines(sys.stdin) if _is_regular(sys.stdin) else _pipe_lines(sys.stdin)
    async for value in lines:
        yield value


def _is_regular(stream: TextIO) -> bool:
    """Whether ``stream`` is a regular file (``< ids.txt``), which never waits for a writer."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def count_lines(arguments: list[str], input_path: str | None) -> int | None:
    """How many ids there will be, when that is cheap to know (arguments, a regular file)."""
    if arguments:
        return len(arguments)
    if input_path and input_path != "-":
        path = Path(input_path)
        if path.is_file():
            with path.open(encoding="utf-8") as handle:
                return sum(
                    1 for line in handle if line.strip() and not line.lstrip().startswith("#")
                )
    return None
