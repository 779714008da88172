"""Writing results as they come: a table, JSON, JSON lines or CSV, never all held at once.

Machine formats carry the result class's own fields (``datetime`` as ISO 8601,
``timedelta`` as seconds) plus ``error`` and ``error_type``, which are empty on
a success. A failed item is a row too: its key fields and the error.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TextIO

import attrs

__all__ = ["FORMATS", "Writer", "columns_of", "error_row", "open_writer", "row_of"]

FORMATS = ("table", "json", "jsonl", "csv")
ERROR_FIELDS = ("error", "error_type")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if attrs.has(type(value)):
        return {
            field.name: _plain(getattr(value, field.name)) for field in attrs.fields(type(value))
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def row_of(result: Any) -> dict[str, Any]:
    """A result object as a row: its fields, made plain, and no error."""
    row: dict[str, Any] = _plain(result)
    row.update(error=None, error_type=None)
    return row


def error_row(columns: Sequence[str], key: dict[str, Any], error: BaseException) -> dict[str, Any]:
    """A row for an item that failed: its key, empty fields, and the error."""
    row: dict[str, Any] = dict.fromkeys(columns)
    row.update(key)
    row.update(error=str(error), error_type=type(error).__name__)
    return row


class Writer(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class _JsonLines:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, row: dict[str, Any]) -> None:
        self._out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class _JsonArray:
    """A JSON array written an element at a time; closed even when the job is interrupted."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._count = 0

    def write(self, row: dict[str, Any]) -> None:
        self._out.write(
            ("[\n  " if self._count == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False)
        )
        self._count += 1
        self._out.flush()

    def close(self) -> None:
        self._out.write("[]\n" if self._count == 0 else "\n]\n")
        self._out.flush()


class _Csv:
    def __init__(self, out: TextIO, columns: Sequence[str]) -> None:
        self._out = out
        self._writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        cells = {
            name: json.dumps(value, ensure_ascii=False)
            if isinstance(value, (list, dict))
            else value
            for name, value in row.items()
        }
        self._writer.writerow(cells)
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


class _Table:
    """Aligned columns, printed row by row (a million rows need no buffer).

    Widths come from the header; longer values are cut with an ellipsis, lists
    are shown by their length. A failed row shows its error in place of fields.
    """

    WIDTH = 14
    #: Columns whose values are long by nature: names, domains, times.
    WIDE: ClassVar[dict[str, int]] = {
        "domain": 24,
        "stream": 20,
        "room_name": 20,
        "cover_url": 24,
        "time": 29,
        "create_time": 25,
        "taken_at": 32,
        "stream_url": 20,
    }

    def __init__(self, out: TextIO, columns: Sequence[str]) -> None:
        self._out = out
        self._columns = [c for c in columns if c not in ERROR_FIELDS]
        self._widths = [max(len(c), self.WIDE.get(c, self.WIDTH)) for c in self._columns]
        self._line([c for c in self._columns])
        self._line(["-" * w for w in self._widths])

    def _line(self, cells: Sequence[str]) -> None:
        text = "  ".join(
            cell.ljust(width) for cell, width in zip(cells, self._widths, strict=False)
        )
        self._out.write(text.rstrip() + "\n")

    def _cell(self, value: Any, width: int) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            value = f"[{len(value)}]"
        text = str(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    def write(self, row: dict[str, Any]) -> None:
        if row.get("error"):
            keys = [
                self._cell(row.get(c), w)
                for c, w in zip(self._columns, self._widths, strict=False)
                if row.get(c) is not None
            ]
            self._out.write("  ".join([*keys, f"ERROR {row['error_type']}: {row['error']}"]) + "\n")
        else:
            self._line(
                [
                    self._cell(row.get(c), w)
                    for c, w in zip(self._columns, self._widths, strict=False)
                ]
            )
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


def open_writer(fmt: str, out: TextIO, columns: Sequence[str]) -> Writer:
    """A writer of ``fmt`` to ``out``; ``columns`` are the result fields, errors added."""
    columns = [*columns, *ERROR_FIELDS]
    if fmt == "json":
        return _JsonArray(out)
    if fmt == "jsonl":
        return _JsonLines(out)
    if fmt == "csv":
        return _Csv(out, columns)
    return _Table(out, columns)


def columns_of(cls: type) -> list[str]:
    """The fields of a result class, in order."""
    return [field.name for field in attrs.fields(cls)]
