"""The ``livestats`` command line: thin commands over the public API."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``livestats``; needs the ``cli`` extra (rich, and tomli on Python 3.10)."""
    try:
        from livestats.cli._main import main as run
    except ImportError as exc:
        print(
            f"livestats: the command line needs {exc.name}: pip install 'livestats[cli]'",
            file=sys.stderr,
        )
        return 2
    return run(argv)
