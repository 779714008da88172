"""The ``livestats`` command line: thin commands over the public API."""

from livestats.cli._main import main

__all__ = ["main"]
