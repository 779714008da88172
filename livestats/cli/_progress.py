"""Progress on stderr while a job runs, when a person is watching (a terminal).

Each bar shows what is true of the job, in units that can be compared:

- the items done, of the total when it is known: exactly for ids given as
  arguments, ``~`` an estimate from a file's size and the bytes read so far, and
  for ``--all`` the room count once the room list is read;
- the rate of **requests** sent (the clients' ``RequestSent`` events, retries
  included), against the quota, which counts requests too. It is measured over
  the last ten quota periods (at least 10 s), so it can only exceed the quota
  while the run is younger than that: that is the quota's burst (a window's worth
  of requests at once), and it is labelled so;
- an ETA from the items left, the requests each item takes, and the rate the
  quota allows (or the rate measured, when the vendor is slower than the quota).

Piped, there is no bar at all. Rendering is rich's; its columns never wrap (the
bar shrinks first), so at 80 columns a bar stays on one line.
"""

from __future__ import annotations

import io
import math
import os
import sys
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any, TextIO, cast

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Column
from rich.text import Text

from livestats import Quota
from livestats.cli._inputs import Progress as InputProgress
from livestats.events import Event, EventHandler, RequestSent

__all__ = ["Bars", "Step", "wants_progress"]


def wants_progress(flag: bool | None) -> bool:
    """``--progress``/``--no-progress`` if given, else whether stderr is a terminal."""
    if flag is not None:
        return flag
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


#: The rate is measured over at least this many quota periods, and at least this long.
#: A quota-bound job sends a window's worth at the start of each period, so a window
#: of k periods holds k or k - 1 of those bursts: the rate shown dips by at most 1/k.
WINDOW_PERIODS = 10
WINDOW_SECONDS = 10.0


def _window(quota: Quota | None) -> float:
    """The span the rate is measured over: whole quota periods (never a fraction of one)."""
    if quota is None:
        return WINDOW_SECONDS
    periods = max(WINDOW_PERIODS, math.ceil(WINDOW_SECONDS / quota.period))
    return quota.period * periods


def _clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Step:
    """One bar: items done and failed, requests sent, and what the input says is left.

    Updated from the event loop; read by rich's refresh thread, hence the lock.
    """

    def __init__(
        self,
        bars: Progress | None,
        *,
        operation: str | None,
        quota: Quota | None,
        total: int | None,
        source: InputProgress | None,
        clock: Any = time.monotonic,
    ) -> None:
        self._bars = bars
        self._task: Any = None
        self.operation = operation
        self.quota = quota
        self._total = total
        self._source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._window = _window(quota)
        self._sent: deque[float] = deque()
        self.requests = 0
        self.completed = 0
        self.failed = 0
        self.skipped = 0
        self._started = clock()
        self._finished = False

    # -- from the job ----------------------------------------------------------------

    def advance(self, *, ok: bool = True, skipped: bool = False) -> None:
        with self._lock:
            self.completed += 1
            self.failed += 0 if ok else 1
            self.skipped += 1 if skipped else 0
        self._show()

    def sent(self) -> None:
        """One request of this step's operation left."""
        now = self._clock()
        with self._lock:
            self.requests += 1
            self._sent.append(now)
            self._trim(now)

    def set_total(self, total: int | None) -> None:
        """The number of items, once known (``--all``: when the room list is read)."""
        self._total = total
        self._show()

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            self._total = self.completed
            self._source = None
        self._show()

    def _show(self) -> None:
        if self._bars is not None and self._task is not None:
            total, _ = self.total()
            self._bars.update(self._task, completed=self.completed, total=total)

    # -- for the columns -------------------------------------------------------------

    def _trim(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self._window:
            self._sent.popleft()

    def total(self) -> tuple[int | None, bool]:
        """The items there will be, and whether that is exact."""
        if self._total is not None or self._source is None:
            return self._total, True
        return self._source.total()

    def rate(self) -> tuple[float, bool, int]:
        """Requests per second over the window, whether that is the quota's burst, and
        the requests in the window."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            count = len(self._sent)
        span = min(max(now - self._started, 1e-3), self._window)
        rate = count / span
        young = now - self._started < self._window
        burst = self.quota is not None and young and rate > self.quota.rate * 1.001
        return rate, burst, count

    def eta(self) -> float | None:
        """Seconds until the last item, at the rate the quota (or the vendor) allows."""
        total, _ = self.total()
        if total is None or self._finished:
            return None
        left = max(0, total - self.completed)
        worked = self.completed - self.skipped
        per_item = self.requests / worked if worked > 0 and self.requests > 0 else 1.0
        rate, _, _ = self.rate()
        if self.quota is not None:
            # Never faster than the quota allows; slower when the vendor (or the input) is.
            rate = min(rate, self.quota.rate) if rate > 0 else self.quota.rate
        if rate <= 0:
            return None
        return left * per_item / rate


def _quota_text(quota: Quota) -> str:
    return f"{quota.limit}/{quota.period:g}s"


class _CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        step: Step = task.fields["step"]
        total, exact = step.total()
        if total is None:
            return Text(f"{step.completed}", style="progress.download")
        return Text(f"{step.completed}/{'' if exact else '~'}{total}", style="progress.download")


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        step: Step = task.fields["step"]
        if step.operation is None:
            return Text("")
        rate, burst, count = step.rate()
        quota = step.quota
        if quota is None:
            return Text(f"{rate:.1f} req/s, no quota", style="progress.data.speed")
        if burst:
            return Text(f"burst {count} req of {_quota_text(quota)}", style="progress.data.speed")
        return Text(f"{rate:.1f} req/s of {quota.rate:g}/s", style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        eta = task.fields["step"].eta()
        return Text("" if eta is None else f"ETA {_clock(eta)}", style="progress.remaining")


class _FailedColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        failed = task.fields["step"].failed
        return Text(f"{failed} failed" if failed else "", style="red")


def _fixed() -> Column:
    """A column that is cut short rather than wrapped onto a second line."""
    return Column(no_wrap=True, overflow="ellipsis")


class Bars:
    """Progress bars for the steps of one job, or nothing when disabled.

    :attr:`events` is the clients' ``on_event`` handler: it counts each request
    against the step of its operation.
    """

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        self._steps: dict[str, Step] = {}
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}", table_column=Column(no_wrap=True)),
                BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=4)),
                _CountColumn(table_column=_fixed()),
                _RateColumn(table_column=_fixed()),
                _EtaColumn(table_column=_fixed()),
                _FailedColumn(table_column=_fixed()),
                console=Console(stderr=True, force_terminal=True),
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
                expand=True,
            )

    @property
    def events(self) -> EventHandler | None:
        """The clients' ``on_event``: None when no bar is shown, so nothing is counted."""
        return None if self._progress is None else self.on_event

    def on_event(self, event: Event) -> None:
        if isinstance(event, RequestSent):
            step = self._steps.get(event.operation)
            if step is not None:
                step.sent()

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

    def step(
        self,
        description: str,
        *,
        operation: str | None,
        quota: Quota | None,
        total: int | None = None,
        source: InputProgress | None = None,
    ) -> Step:
        """A bar for one step of ``operation`` (None: no requests of its own to count).

        ``total`` when the number of items is known; else ``source``, the input
        being read, estimates it; else there is none (a pipe).
        """
        step = Step(self._progress, operation=operation, quota=quota, total=total, source=source)
        if operation is not None:
            self._steps[operation] = step
        if self._progress is not None:
            step._task = self._progress.add_task(description, total=step.total()[0], step=step)
        return step


def _same_terminal() -> bool:
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
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
