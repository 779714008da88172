"""The ``livestats`` logger on stderr: warnings by default, everything with ``-v``.

Lines read ``livestats: debug: ...``. Every secret the command line has read (its
credentials) is replaced by ``[secure]`` in every line, whatever logged it: the
SDK already keeps secrets out of its messages, and this is the second lock.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator

__all__ = ["logging_to_stderr", "remember_secrets"]

_secrets: set[str] = set()

#: A warning the command line says better itself: refused credentials end the job
#: with one line naming what to fix (see ``_main``), so the engine's own warning
#: would be a second line saying half of it. Shown with ``-v``.
_SAID_BY_THE_CLI = ("%s: the credentials were refused",)


def remember_secrets(values: Iterable[object]) -> None:
    """Redact these values (credentials read from the environment or a file) from the log."""
    _secrets.update(str(value) for value in values if value and len(str(value)) >= 4)


class _Handler(logging.Handler):
    def __init__(self, verbose: bool) -> None:
        super().__init__(logging.DEBUG if verbose else logging.WARNING)
        self._verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not self._verbose and str(record.msg).startswith(_SAID_BY_THE_CLI):
                return
            text = record.getMessage().removeprefix("livestats: ")
            if record.exc_info and self._verbose:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            for secret in sorted(_secrets, key=len, reverse=True):
                text = text.replace(secret, "[secure]")
            # sys.stderr looked up now, not kept: tests swap it around main().
            sys.stderr.write(f"livestats: {record.levelname.lower()}: {text}\n")
            sys.stderr.flush()
        except Exception:  # a log line must never end the job
            self.handleError(record)


@contextlib.contextmanager
def logging_to_stderr(verbose: bool) -> Iterator[None]:
    """Show the ``livestats`` logger on stderr while the command runs; undone after."""
    logger = logging.getLogger("livestats")
    handler = _Handler(verbose)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False  # a line once, not again through the root logger
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        _secrets.clear()
