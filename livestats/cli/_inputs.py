"""Ids from arguments, a file or standard input, one per line, read as they are needed.

Lines are read a chunk at a time in a worker thread, so a slow pipe never blocks
the event loop and a file of a million ids never sits in memory: the bulk
helpers take the next id only when a worker is free.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TextIO

from livestats.cli._config import UsageError

__all__ = ["count_lines", "read_ids"]

_CHUNK = 64 * 1024


async def _lines(stream: TextIO) -> AsyncIterator[str]:
    while chunk := await asyncio.to_thread(stream.readlines, _CHUNK):
        for line in chunk:
            text = line.strip()
            if text and not text.startswith("#"):
                yield text


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
            async for value in _lines(handle):
                yield value
        finally:
            handle.close()
        return
    if input_path != "-" and sys.stdin.isatty():
        raise UsageError("no ids: give them as arguments, with --input FILE, or on stdin")
    async for value in _lines(sys.stdin):
        yield value


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
