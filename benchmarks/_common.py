"""What every benchmark script shares: the machine line, an aligned table, the JSON file.

Imported as ``_common`` because the scripts run as ``python benchmarks/<name>.py``,
which puts this directory first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_json_option", "machine", "machine_line", "print_table", "write_json"]


def machine() -> dict[str, Any]:
    """Where the figures come from: they mean little without it."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def machine_line() -> str:
    m = machine()
    return f"{m['cpus']} CPUs, {m['implementation']} {m['python']}, {m['platform']}"


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    show_machine: bool = True,
) -> None:
    """Print ``rows`` under ``headers``: first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [first.ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    print(title)
    if show_machine:
        print(f"machine: {machine_line()}")
    print()
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON"
    )


def write_json(path: Path | None, benchmark: str, **figures: Any) -> None:
    if path is None:
        return
    doc = {"benchmark": benchmark, "machine": machine(), **figures}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path}", file=sys.stderr)
