"""Writing results as they come: a table, JSON, JSON lines or CSV, never all held at once.

Machine formats carry the result class's own fields (``datetime`` as ISO 8601,
``timedelta`` as seconds, lists as lists) plus ``error`` and ``error_type``,
which are empty on a success. A failed item is a row too: its key fields, and the
error in full (:func:`error_detail`).

The table is for people: numbers and durations (``h:mm:ss``) right-aligned, times
whole with their zone, lists as their values, and a failed row with its key in
its columns and the error short (:func:`error_summary`: the vendor's code and
message). Its widths are fixed from the result class before the first row, so
rows print as they arrive; a value wider than its column (an unusually long id)
is never cut, only free text is.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TextIO

import attrs

from livestats import LiveStatsError

__all__ = [
    "FORMATS",
    "Column",
    "Writer",
    "columns_of",
    "error_detail",
    "error_row",
    "error_summary",
    "open_writer",
]

FORMATS = ("table", "json", "jsonl", "csv")
ERROR_FIELDS = ("error", "error_type")


@attrs.frozen
class Column:
    """A column of output: a result field's name and type (``object``: any)."""

    name: str
    type: Any = object


def columns_of(cls: type) -> list[Column]:
    """The fields of a result class, in order, with their types."""
    hints = attrs.resolve_types(cls)
    return [Column(field.name, field.type) for field in attrs.fields(hints)]


# -- errors ----------------------------------------------------------------------------


def error_summary(error: BaseException) -> str:
    """The error in a few words, for the table: its class, the vendor's code and message."""
    name = type(error).__name__
    if isinstance(error, LiveStatsError) and error.vendor_code is not None:
        said = f": {error.vendor_message}" if error.vendor_message else ""
        return f"{name} {error.vendor_code}{said}"
    message = error.message if isinstance(error, LiveStatsError) else str(error)
    return f"{name}: {message}"


def error_detail(error: BaseException) -> str:
    """The error in full, each fact once: where, the message, and what it did not say.

    ``str()`` of a vendor error repeats the code and message its text already
    holds (``Tencent error 100004: room does not exist (vendor_code=100004, ...)``).
    """
    if not isinstance(error, LiveStatsError):
        return str(error)
    where = ".".join(part for part in (error.provider, error.operation) if part)
    facts = [
        f"{name}={value!r}"
        for name, value in (
            ("vendor_code", error.vendor_code),
            ("vendor_message", error.vendor_message),
            ("http_status", error.http_status),
            ("request_id", error.request_id),
        )
        if value is not None
        and value != ""
        and not (name.startswith("vendor") and str(value) in error.message)
    ]
    text = f"[{where}] {error.message}" if where else error.message
    return f"{text} ({', '.join(facts)})" if facts else text


def error_row(columns: Sequence[Column], key: dict[str, Any], error: BaseException) -> Row:
    """A row for an item that failed: its key, empty fields, and the error."""
    row = Row(dict.fromkeys(c.name for c in columns))
    row.values.update(key)
    row.error = error
    return row


@attrs.define
class Row:
    """One row: field values as the result holds them, and the error of a failed item."""

    values: dict[str, Any]
    error: BaseException | None = None

    @classmethod
    def of(cls, result: Any, **fields: Any) -> Row:
        """A result object's fields, after ``fields`` (a watch's ``taken_at``)."""
        values = dict(fields)
        values.update((f.name, getattr(result, f.name)) for f in attrs.fields(type(result)))
        return cls(values)

    def plain(self) -> dict[str, Any]:
        """The row as the machine formats write it."""
        row = {name: _plain(value) for name, value in self.values.items()}
        if self.error is None:
            row.update(error=None, error_type=None)
        else:
            row.update(error=error_detail(self.error), error_type=type(self.error).__name__)
        return row


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


# -- writers ---------------------------------------------------------------------------


class Writer(Protocol):
    def write(self, row: Row) -> None: ...

    def close(self, *, aborted: bool = False) -> None:
        """Finish the output (a JSON array is closed even when ``aborted``)."""


class _JsonLines:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, row: Row) -> None:
        self._out.write(json.dumps(row.plain(), ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self, *, aborted: bool = False) -> None:
        self._out.flush()


class _JsonArray:
    """A JSON array written an element at a time; closed even when the job is interrupted."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._count = 0

    def write(self, row: Row) -> None:
        self._out.write(
            ("[\n  " if self._count == 0 else ",\n  ") + json.dumps(row.plain(), ensure_ascii=False)
        )
        self._count += 1
        self._out.flush()

    def close(self, *, aborted: bool = False) -> None:
        self._out.write("[]\n" if self._count == 0 else "\n]\n")
        self._out.flush()


class _Csv:
    def __init__(self, out: TextIO, columns: Sequence[str], *, header: bool) -> None:
        self._out = out
        self._writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        if header:
            self._writer.writeheader()

    def write(self, row: Row) -> None:
        cells = {
            name: json.dumps(value, ensure_ascii=False)
            if isinstance(value, (list, dict))
            else value
            for name, value in row.plain().items()
        }
        self._writer.writerow(cells)
        self._out.flush()

    def close(self, *, aborted: bool = False) -> None:
        self._out.flush()


def _clock(seconds: float) -> str:
    """``h:mm:ss``, hours not wrapping at a day."""
    whole = round(seconds)
    sign, whole = ("-", -whole) if whole < 0 else ("", whole)
    return f"{sign}{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _when(value: datetime) -> str:
    spec = "seconds" if value.microsecond == 0 else "milliseconds"
    return value.isoformat(sep=" ", timespec=spec)


def _human(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, timedelta):
        return _clock(value.total_seconds())
    if isinstance(value, (list, tuple)):
        return ", ".join(_human(item) for item in value)
    if attrs.has(type(value)):
        start, end = getattr(value, "start", None), getattr(value, "end", None)
        if isinstance(start, datetime) and isinstance(end, datetime):  # a push session
            return f"{_when(start)} to {end.time().isoformat('seconds')}"
        return " ".join(_human(getattr(value, f.name)) for f in attrs.fields(type(value)))
    return str(value)


class _Table:
    """Aligned columns, printed row by row (a million rows need no buffer)."""

    #: Free text, cut with an ellipsis past this width; nothing else is ever cut.
    TEXT: ClassVar[dict[str, int]] = {"room_name": 20, "cover_url": 28, "stream_url": 16}
    #: Widths of identifiers and other strings, by name; 14 for the rest.
    WIDE: ClassVar[dict[str, int]] = {"domain": 20, "stream": 16}
    RIGHT = (int, float, timedelta)

    def __init__(self, out: TextIO, columns: Sequence[Column]) -> None:
        self._out = out
        self._columns = list(columns)
        self._widths = [self._width(c) for c in self._columns]
        self._right = [isinstance(c.type, type) and issubclass(c.type, self.RIGHT) for c in columns]
        self._headed = False

    def _head(self) -> None:
        # Written with the first row, not before: a job that stops at once (refused
        # credentials) leaves one line on stderr and nothing on stdout.
        if not self._headed:
            self._headed = True
            self._line([c.name for c in self._columns])
            self._line(["-" * w for w in self._widths])

    def _width(self, column: Column) -> int:
        kind = column.type
        if kind is datetime:
            wanted = 29 if column.name == "taken_at" else 25
        elif kind is timedelta:
            wanted = 9
        elif kind in (int, float):
            wanted = 8
        else:
            wanted = self.TEXT.get(column.name) or self.WIDE.get(column.name, 14)
        return max(len(column.name), wanted)

    def _line(self, cells: Sequence[str]) -> None:
        parts = []
        for index, (cell, width, right) in enumerate(
            zip(cells, self._widths, self._right, strict=False)
        ):
            last = index == len(self._columns) - 1
            if right:
                parts.append(cell.rjust(width))
            else:
                parts.append(cell if last else cell.ljust(width))
        self._out.write("  ".join(parts).rstrip() + "\n")

    def _cell(self, column: Column, value: Any) -> str:
        text = _human(value)
        width = self.TEXT.get(column.name)
        if width is not None and len(text) > width:
            return text[: width - 1] + "…"
        return text

    def write(self, row: Row) -> None:
        self._head()
        if row.error is None:
            self._line([self._cell(c, row.values.get(c.name)) for c in self._columns])
        else:
            # The key in its columns (the keys lead every result class), then the error.
            keys = []
            for column, width in zip(self._columns, self._widths, strict=False):
                value = row.values.get(column.name)
                if value is None:
                    break
                keys.append(self._cell(column, value).ljust(width))
            self._out.write("  ".join([*keys, f"ERROR {error_summary(row.error)}"]) + "\n")
        self._out.flush()

    def close(self, *, aborted: bool = False) -> None:
        if not aborted:
            self._head()  # an empty table still says what it would hold
        self._out.flush()


def open_writer(fmt: str, out: TextIO, columns: Sequence[Column], *, header: bool = True) -> Writer:
    """A writer of ``fmt`` to ``out``; ``header=False`` when appending to an earlier run's CSV."""
    if fmt == "json":
        return _JsonArray(out)
    if fmt == "jsonl":
        return _JsonLines(out)
    if fmt == "csv":
        return _Csv(out, [*(c.name for c in columns), *ERROR_FIELDS], header=header)
    return _Table(out, columns)
