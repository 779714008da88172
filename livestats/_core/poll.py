"""Polling on a schedule: a sweep over every item, repeated on a grid that never drifts.

A poller repeats one bulk call (the *sweep*) over a set of items every ``every``
seconds and yields each sweep whole, as a :class:`Sweep`. Sweep k is due at
``start + k * every`` on the client's monotonic clock, ``start`` being when the
first began, so neither a sweep's own length nor the caller's time between sweeps
moves the ones after it. Sweeps never overlap: one that overruns its interval is
followed at once by the next, and grid slots it overran entirely are skipped
(not made up by a burst of sweeps), so later sweeps fall on the grid again.

Before its first sweep, and whenever the number of items changes, the poller works
out from each operation's quota whether a sweep fits in ``every``: a sweep needs
``requests / every`` requests per second, and a quota of N per T seconds sustains
N / T. When it cannot, the poller says so once (a :class:`~livestats.events.SweepLate`
event to the client's handler and one WARNING line on the ``livestats`` logger);
the sweeps then run back to back, each as fast as the quota lets it.

A sweep is yielded only once every one of its calls has ended, so between sweeps
nothing is in flight and the poller holds no task: leaving the loop (``break``, an
exception) or cancelling the task iterating it stops it with nothing left behind.
Cancelling during a sweep cancels that sweep's calls and waits for them to end.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Generic, TypeVar

import attrs

from livestats._core.batch import BatchResult
from livestats._core.clock import Clock
from livestats._core.quota import Quota
from livestats._core.validate import MAX_SECONDS, shown
from livestats.errors import ValidationError
from livestats.events import EventSink, SweepLate

__all__ = ["Sweep", "check_every", "fixed_items", "poll"]

logger = logging.getLogger("livestats")

K = TypeVar("K")
V = TypeVar("V")


@attrs.frozen(kw_only=True)
class Sweep(Generic[K, V]):
    """One pass of a poller over every item: when it ran, and one result per item.

    ``started_at`` and ``finished_at`` are aware UTC datetimes from the client's
    wall clock; ``results`` holds one :class:`~livestats.BatchResult` per item, in
    completion order.
    """

    started_at: datetime
    finished_at: datetime
    results: list[BatchResult[K, V]]

    @property
    def failed(self) -> int:
        """How many items of the sweep came back with an error."""
        return sum(not result.ok for result in self.results)


def check_every(every: object) -> float:
    """A poller's interval: a positive, finite number of seconds, at most a year."""
    if isinstance(every, bool) or not isinstance(every, (int, float)):
        raise ValidationError(f"every must be a number of seconds, not {shown(every)}")
    try:
        seconds = float(every)
    except OverflowError:  # an int beyond any float
        raise ValidationError(f"every must be at most {MAX_SECONDS:g} seconds") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise ValidationError(
            f"every must be a positive number of seconds, at most {MAX_SECONDS:g}, not {every!r}"
        )
    return seconds


def fixed_items(items: Sequence[K]) -> Callable[[], Awaitable[Sequence[K]]]:
    """The ``items`` of a poller whose items never change."""

    async def given() -> Sequence[K]:
        return items

    return given


async def poll(
    *,
    provider: str,
    every: float,
    clock: Clock,
    sink: EventSink | None,
    quotas: Mapping[str, Quota | None],
    items: Callable[[], Awaitable[Sequence[K]]],
    demand: Callable[[int], Mapping[str, int]],
    sweep: Callable[[Sequence[K]], AsyncGenerator[BatchResult[K, V], None]],
) -> AsyncGenerator[Sweep[K, V], None]:
    """Yield a :class:`Sweep` every ``every`` seconds (checked by the caller), forever.

    ``items()`` gives the items of one sweep, asked again for every sweep (a listing
    may change); ``demand(n)`` the requests a sweep of ``n`` items sends, per
    operation; ``sweep(items)`` the bulk call. An exception from ``items()`` ends the
    poller. So does an error that dooms a sweep's batch: the sweep is yielded with
    the results it has, and the next iteration raises the error.
    """
    start = clock.monotonic()
    k = 0  # the grid slot of the next sweep
    count: int | None = None
    while True:
        delay = start + k * every - clock.monotonic()
        if delay > 0:
            await clock.sleep(delay)
        started_at = _wall(clock)
        keys = await items()
        if len(keys) != count:
            count = len(keys)
            _warn_if_late(provider, count, demand(count), quotas, every, sink)
        results: list[BatchResult[K, V]] = []
        doomed: Exception | None = None
        # Bulk priority goes here once request priorities exist: a sweep is bulk work.
        batch = sweep(keys)
        try:
            async with contextlib.aclosing(batch):
                async for result in batch:
                    results.append(result)
        except Exception as exc:  # dooms the batch: every item it took has its result
            doomed = exc
        yield Sweep(started_at=started_at, finished_at=_wall(clock), results=results)
        if doomed is not None:
            raise doomed
        k += 1
        elapsed = clock.monotonic() - start
        if elapsed > k * every:
            # Late (a slow sweep, or a slow caller): the next starts now, in the slot
            # now running; the one after it is due at that slot's end.
            k = math.floor(elapsed / every)


def _wall(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.wall(), tz=timezone.utc)


def _warn_if_late(
    provider: str,
    count: int,
    demand: Mapping[str, int],
    quotas: Mapping[str, Quota | None],
    every: float,
    sink: EventSink | None,
) -> None:
    """Say so, once per operation, when a sweep needs more than the quota allows in ``every``."""
    for operation, requests in demand.items():
        quota = quotas.get(operation)
        needed = requests / every
        if quota is None or needed <= quota.rate:
            continue
        logger.warning(
            "livestats: a %s sweep of %d items sends %d %s requests, %.3g/s to fit in %g s, "
            "but the quota allows %.3g/s (%s): sweeps run back to back, each about %.3g s",
            provider,
            count,
            requests,
            operation,
            needed,
            every,
            quota.rate,
            quota,
            requests / quota.rate,
        )
        if sink is not None:
            sink.emit(
                SweepLate(
                    provider=provider,
                    operation=operation,
                    items=count,
                    every=every,
                    needed_rate=needed,
                    quota_rate=quota.rate,
                )
            )
