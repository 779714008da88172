"""Input lines from arguments, a file or standard input, read as they are needed.

A file is read a chunk at a time in a worker thread: a million ids never sit in
memory, and the bulk helpers take the next line only when a worker is free. A
pipe is read a line at a time by a daemon thread that hands each line over as
soon as it arrives (a slow producer's ids are worked on at once) and waits while
enough lines are queued; being a daemon, it never holds up the exit after Ctrl-C
while blocked on a producer that is still writing.

Each :class:`Line` knows where it came from (``ids.txt line 7``), so an error
about it can say so. Blank lines and ``#`` comments are skipped; a line that is
not UTF-8 stops the job with a :class:`UsageError` naming the file and line. A
lone ``-`` among the arguments stands for standard input, as in other Unix tools.

:class:`Progress` is how far through its input a job is: the exact number of
lines when the arguments say, otherwise an estimate from a file's size and the
bytes read so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO, Any

import attrs

from livestats.cli._config import UsageError

__all__ = ["Line", "Progress", "lines_of", "read_lines", "stdin_is_terminal"]

_CHUNK = 64 * 1024


@attrs.frozen
class Line:
    """One wanted input line: its text (stripped) and where it was."""

    text: str
    where: str


@attrs.define
class Progress:
    """How far through its input a job is, for the progress bar's total and ETA.

    ``exact``: the number of lines, when known without reading (arguments).
    ``size``: the bytes of a file (or of stdin redirected from one). ``read`` and
    ``taken`` grow as lines are handed out; ``done`` is set at the end of input.
    """

    exact: int | None = None
    size: int | None = None
    read: int = 0
    taken: int = 0
    done: bool = False

    @classmethod
    def of(cls, arguments: list[str]) -> Progress:
        """The progress of a job over ``arguments``: exact, unless one is ``-`` (stdin)."""
        if not arguments or "-" in arguments:
            return cls()
        return cls(exact=sum(1 for value in arguments if _wanted(value) is not None))

    def total(self) -> tuple[int | None, bool]:
        """The lines there will be, and whether that is exact (else an estimate, or None)."""
        if self.done:
            return self.taken, True
        if self.exact is not None:
            return self.exact, True
        if self.size is None or self.taken == 0 or self.read == 0:
            return None, False
        left = max(0, self.size - self.read)
        return self.taken + round(left * self.taken / self.read), False


def _decode(raw: bytes | str, name: str, number: int) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name} line {number}: not UTF-8 text") from None


def _wanted(text: str) -> str | None:
    text = text.strip()
    return text if text and not text.startswith("#") else None


async def _file_lines(stream: IO[Any], name: str, progress: Progress) -> AsyncIterator[Line]:
    number = 0
    while chunk := await asyncio.to_thread(stream.readlines, _CHUNK):
        for raw in chunk:
            number += 1
            progress.read += len(raw)
            if (text := _wanted(_decode(raw, name, number))) is not None:
                yield Line(text, f"{name} line {number}")


_END = object()


def _chunks_of(stream: IO[Any]) -> Iterator[bytes | str]:
    """A pipe's lines as they arrive, read from its file descriptor.

    ``os.read`` holds no lock of Python's buffered reader: a daemon thread blocked
    in it cannot stop the interpreter from shutting down (a thread blocked inside
    ``sys.stdin.buffer`` aborts it: "could not acquire lock ... at shutdown").
    """
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # not a real file (a StringIO)
        yield from stream
        return
    pending = b""
    while chunk := os.read(fd, _CHUNK):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending


async def _pipe_lines(
    stream: IO[Any], name: str, progress: Progress, *, backlog: int = 1024
) -> AsyncIterator[Line]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(backlog)  # the thread waits while this many lines are queued
    stop = threading.Event()

    def pump() -> None:
        try:
            for raw in _chunks_of(stream):
                room.acquire()
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, raw)
        except (OSError, ValueError):
            pass  # the pipe went away: end of input
        finally:
            if not stop.is_set():
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(queue.put_nowait, _END)

    threading.Thread(target=pump, name="livestats-stdin", daemon=True).start()
    number = 0
    try:
        while (item := await queue.get()) is not _END:
            room.release()
            assert isinstance(item, (bytes, str))
            number += 1
            progress.read += len(item)
            if (text := _wanted(_decode(item, name, number))) is not None:
                yield Line(text, f"{name} line {number}")
    finally:
        stop.set()
        room.release()  # a pump waiting for room sees the stop and ends


def _binary(stream: IO[Any]) -> IO[Any]:
    """The bytes under a text stream when it has them (decoded here, line by line)."""
    return getattr(stream, "buffer", stream)


def _is_regular(stream: IO[Any]) -> int | None:
    """The size of ``stream`` if it is a regular file (``< ids.txt``), which never waits."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


async def _stdin_lines(progress: Progress) -> AsyncIterator[Line]:
    stream = _binary(sys.stdin)
    size = _is_regular(stream)
    if size is not None:
        progress.size = (progress.size or 0) + size
        lines = _file_lines(stream, "stdin", progress)
    else:
        lines = _pipe_lines(stream, "stdin", progress)
    async for line in lines:
        yield line


async def _path_lines(path: str, progress: Progress) -> AsyncIterator[Line]:
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        size = _is_regular(handle)
        if size is not None:
            progress.size = (progress.size or 0) + size
        async for line in _file_lines(handle, path, progress):
            yield line
    finally:
        handle.close()


async def _argument_lines(values: Iterable[str], progress: Progress) -> AsyncIterator[Line]:
    for number, value in enumerate(values, 1):
        if value == "-":
            async for line in _stdin_lines(progress):
                yield line
        elif (text := _wanted(value)) is not None:
            yield Line(text, f"argument {number}")


async def read_lines(
    arguments: list[str], input_path: str | None, progress: Progress | None = None
) -> AsyncIterator[Line]:
    """The lines given as arguments, else from ``--input`` (``-``: stdin), else piped stdin."""
    progress = Progress.of(arguments) if progress is None else progress
    if arguments and input_path:
        raise UsageError("give ids as arguments or with --input, not both")
    if arguments:
        lines = _argument_lines(arguments, progress)
    elif input_path and input_path != "-":
        lines = _path_lines(input_path, progress)
    else:
        if input_path != "-" and stdin_is_terminal():
            raise UsageError("no ids: give them as arguments, with --input FILE, or on stdin")
        lines = _stdin_lines(progress)
    async for line in lines:
        progress.taken += 1
        yield line
    progress.done = True


async def lines_of(lines: AsyncIterator[Line]) -> AsyncIterator[str]:
    """Just the text of each line."""
    async for line in lines:
        yield line.text
