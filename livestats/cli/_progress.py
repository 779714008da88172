"""Progress on stderr while a job runs, when a person is watching (a terminal).

Each bar shows the count, the rate achieved against the quota, and an ETA
worked out from the quota rather than from the rate so far: the quota, not the
network, decides how long the rest takes. Piped, there is no bar at all.
Rendering is rich's.
"""

from __future__ import annotations

import io
import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from livestats import Quota

__all__ = ["Bars", "wants_progress"]


def wants_progress(flag: bool | None) -> bool:
    """``--progress``/``--no-progress`` if given, else whether stderr is a terminal."""
    return sys.stderr.isatty() if flag is None else flag


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        quota: Quota | None = task.fields.get("quota")
        of = f" of {quota.rate:g}/s" if quota is not None else ""
        return Text(f"{rate:.1f}/s{of}", style="progress.data.speed")


class _QuotaEtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        quota: Quota | None = task.fields.get("quota")
        if task.total is None or quota is None:
            return Text("")
        left = max(0.0, task.total - task.completed) / quota.rate
        return Text(
            f"ETA {time.strftime('%H:%M:%S', time.gmtime(left))}", style="progress.remaining"
        )


class Bars:
    """Progress bars for the steps of one job, or nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                _QuotaEtaColumn(),
                TextColumn("{task.fields[failed]} failed", style="red"),
                console=Console(stderr=True, force_terminal=True),
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def output(self) -> TextIO:
        """Where result rows go: stdout, or above the bars when both share one terminal.

        Rows written straight to a terminal the bars are redrawing would land on
        the bar's line; through the bars' console they print above it, unwrapped.
        A stdout that is a file, a pipe or another terminal gets the rows as is.
        """
        if self._progress is None or not _same_terminal():
            return sys.stdout
        return cast(TextIO, _AboveBars(self._progress.console))  # a text stream, write-only

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, description: str, *, total: int | None, quota: Quota | None) -> Step:
        """A bar for one step; ``total`` None when the input's length is unknown."""
        if self._progress is None:
            return Step(None, None)
        task = self._progress.add_task(description, total=total, quota=quota, failed=0)
        return Step(self._progress, task)


class Step:
    __slots__ = ("_failed", "_progress", "_task")

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task
        self._failed = 0

    def advance(self, *, ok: bool = True) -> None:
        if self._progress is None:
            return
        if not ok:
            self._failed += 1
        self._progress.update(self._task, advance=1, failed=self._failed)

    def finish(self) -> None:
        if self._progress is not None:
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, total=task.completed)


def _same_terminal() -> bool:
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return sys.stdout.isatty() and os.path.samestat(out, err)


class _AboveBars(io.TextIOBase):
    """A text stream that prints each write above the live bars, exactly as written."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str) -> int:
        self._console.print(text, end="", soft_wrap=True, markup=False, highlight=False)
        return len(text)

    def flush(self) -> None:
        self._console.file.flush()
