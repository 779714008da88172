"""``--resume``: carry on an interrupted job from what its output file already holds.

The file an earlier run wrote with ``-o FILE`` (JSON lines or CSV) is read once,
and the key of every row without an error (a room id; a room and account; a
domain and stream) is kept. The new run skips those items, sends nothing for
them and appends the rest. Rows that carry an error are dropped from the file
first, and so is a last line cut short by a kill, so their items are asked
again and the file ends with one row per item. The file is only rewritten when
there is such a row to drop, through a new file moved into place, so a second
interruption never leaves it half written.

The kept keys are held in memory: about 100 bytes an item (a million room ids
take about 100 MB).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from livestats.cli._config import UsageError

__all__ = ["Done", "read_done"]

Key = tuple[str, ...]


class Done:
    """The keys an earlier run completed, and whether the file needs a CSV header."""

    def __init__(self, keys: set[Key], *, empty: bool) -> None:
        self.keys = keys
        self.empty = empty

    def __contains__(self, key: Key) -> bool:
        return key in self.keys

    def __len__(self) -> int:
        return len(self.keys)


def read_done(path: str, fmt: str, columns: Sequence[str], key: Sequence[str]) -> Done:
    """The completed keys in ``path`` (none if it does not exist), after dropping failed rows."""
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return Done(set(), empty=True)
    except OSError as exc:
        raise UsageError(f"--resume: cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"--resume: {path} is not UTF-8 text: not an output of livestats"
        ) from None
    if not text:
        return Done(set(), empty=True)
    # A last record without its line end was cut short (a kill in the middle of a
    # write): it is dropped and its item asked again.
    dirty = not text.endswith("\n")
    text = text[: text.rfind("\n") + 1]
    records = _jsonl(text, path, key) if fmt == "jsonl" else _csv(text, path, columns, key)
    keys: set[Key] = set()
    kept: list[str] = []
    for row_key, ok, record in records:
        if ok:
            keys.add(row_key)
            kept.append(record)
        elif row_key:
            dirty = True
        else:
            kept.append(record)  # the CSV header
    if dirty:
        _replace(target, kept)
    return Done(keys, empty=not kept)


def _jsonl(text: str, path: str, key: Sequence[str]) -> Iterator[tuple[Key, bool, str]]:
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UsageError(
                f"--resume: {path} line {number} is not a JSON row: not an output of livestats"
            ) from None
        yield _key(row, path, number, key), not row.get("error"), line


def _csv(
    text: str, path: str, columns: Sequence[str], key: Sequence[str]
) -> Iterator[tuple[Key, bool, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    if header != list(columns):
        raise UsageError(
            f"--resume: {path} has other columns than this command writes: "
            "not an output of this command"
        )
    yield (), False, _record(header)
    for cells in reader:
        if len(cells) != len(columns):
            raise UsageError(
                f"--resume: {path} row {reader.line_num} has {len(cells)} cells, "
                f"not {len(columns)}: not an output of this command"
            )
        row = dict(zip(columns, cells, strict=True))
        yield _key(row, path, reader.line_num, key), not row["error"], _record(cells)


def _record(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


def _key(row: Any, path: str, number: int, key: Sequence[str]) -> Key:
    if not isinstance(row, dict) or any(not isinstance(row.get(name), str) for name in key):
        raise UsageError(
            f"--resume: {path} line {number} has no {' and '.join(key)}: "
            "not an output of this command"
        )
    return tuple(row[name] for name in key)


def _replace(target: Path, records: list[str]) -> None:
    """Write ``records`` to a new file beside ``target`` and move it into place."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.writelines(records)
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
