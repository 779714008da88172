"""Bulk calls: fan an input of any size out to a fixed number of workers.

Memory stays bounded whatever the input's size: ``concurrency`` workers pull the
next item only when they are free, so the input (a list, a generator of millions
of ids, an async iterator) is read lazily, and finished results wait in a queue
of at most ``concurrency`` entries until the caller takes them. No task is made
per item.

Every item taken from the input comes back exactly once, as a value or as an
error: a failure is a result. One kind of failure also ends the batch: an error
that ``dooms_batch`` (credentials refused for good, the client closed, the shared
limiter gone) means no later item could succeed either. The batch then stops
taking items, gives every item it already took its result, and raises that
error; the items it never took stay in the input. Leaving the iteration early (``break``, an
exception, cancellation) cancels the work in flight; wrap the iterator in
``contextlib.aclosing`` to have that happen at once rather than when the
iterator is garbage-collected.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Any, Generic, TypeVar

import attrs

from livestats._core.validate import shown
from livestats.errors import ValidationError

__all__ = ["BatchResult", "fan_out"]

K = TypeVar("K")
V = TypeVar("V")


@attrs.frozen
class BatchResult(Generic[K, V]):
    """The outcome for one input of a bulk call: ``value`` or ``error``, never both."""

    key: K
    value: V | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> V:
        """The value, or the error raised."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class _Done:
    """Put in the result queue by the last worker to finish."""


_DONE = _Done()


async def _iterate(items: AsyncIterable[K]) -> AsyncIterator[K]:
    async for item in items:
        yield item


#: The most calls a bulk helper runs at once when asked (``concurrency=``): every one
#: of them is a worker made up front, and no vendor quota keeps more than this busy.
MAX_CONCURRENCY = 10_000


def check_concurrency(concurrency: object) -> int:
    """A caller's ``concurrency=``: an int from 1 to :data:`MAX_CONCURRENCY`."""
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise ValidationError(
            f"concurrency must be an int from 1 to {MAX_CONCURRENCY}, not {shown(concurrency)}"
        )
    return concurrency


async def fan_out(
    items: Iterable[K] | AsyncIterable[K],
    call: Callable[[K], Awaitable[V]],
    *,
    concurrency: int,
) -> AsyncGenerator[BatchResult[K, V], None]:
    """Yield one :class:`BatchResult` per item, in completion order.

    An exception raised by the input itself (not by a call), or an error that
    ``dooms_batch``, ends the batch: it is raised once the results of every item
    already taken have been yielded.
    """
    # Internal callers size it to their input (one worker per request of a query),
    # so only a positive int is required here; callers' values go through
    # check_concurrency, which also caps them.
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(f"concurrency must be a positive int, not {shown(concurrency)}")
    if isinstance(items, (str, bytes)):
        raise ValidationError(f"expected an iterable of items, not one {type(items).__name__}")
    if not isinstance(items, (Iterable, AsyncIterable)):
        raise ValidationError(f"expected an iterable or async iterable, not {type(items).__name__}")
    # A plain iterable is advanced with next(), which cannot be interleaved (no await):
    # no lock and no async generator per item. An async one needs both.
    sync_source: Iterator[K] | None = None
    source: AsyncIterator[K] | None = None
    input_failure: list[BaseException] = []
    doomed: list[BaseException] = []  # the first error that ends the batch
    if isinstance(items, AsyncIterable):
        source = _iterate(items)
    else:
        try:
            sync_source = iter(items)
        except Exception as exc:  # the input broke before its first item
            input_failure.append(exc)
    lock = asyncio.Lock()  # one worker at a time advances an async input
    # Items in flight plus results not yet taken never exceed ``concurrency``.
    # A queue of tokens rather than a Semaphore: the same bound, but taking and
    # returning a token is O(1), where 3.11's Semaphore scans its waiters each time.
    room: asyncio.Queue[None] = asyncio.Queue()
    for _ in range(concurrency):
        room.put_nowait(None)
    results: asyncio.Queue[BatchResult[K, V] | _Done] = asyncio.Queue()
    running = concurrency

    async def take() -> K | _Done:
        """The next input item, or _DONE at its end or when it broke (kept for the end)."""
        try:
            if sync_source is not None:
                return next(sync_source)  # never suspends: no lock needed
            assert source is not None
            async with lock:
                return await source.__anext__()
        except (StopIteration, StopAsyncIteration):
            return _DONE
        except Exception as exc:  # the input broke: stop taking items
            input_failure.append(exc)
            return _DONE

    async def worker() -> None:
        nonlocal running
        try:
            while not input_failure and not doomed:
                await room.get()
                if doomed:
                    room.put_nowait(None)
                    return
                item = await take()
                if isinstance(item, _Done):
                    room.put_nowait(None)
                    return
                try:
                    result: BatchResult[K, V] = BatchResult(item, await call(item))
                except Exception as exc:  # an item's failure is its result
                    result = BatchResult(item, error=exc)
                    if getattr(exc, "dooms_batch", False) and not doomed:
                        doomed.append(exc)
                results.put_nowait(result)
        finally:
            running -= 1
            if running == 0:
                results.put_nowait(_DONE)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        while not isinstance(result := await results.get(), _Done):
            room.put_nowait(None)
            yield result
    finally:
        await _cancel_all(workers)
        # Drop the input as the async path's wrapper does when closed, so a generator
        # nobody else holds is finalized now rather than with this batch.
        sync_source = None
        if source is not None:
            await _close(source)
    if input_failure:
        raise input_failure[0]
    if doomed:
        raise doomed[0]


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    # Wait even when we are being cancelled ourselves, so no task outlives the batch.
    if tasks:
        await asyncio.wait(tasks)


async def _close(source: AsyncIterator[Any]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
