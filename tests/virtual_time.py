"""A test's event loop on virtual time: the clock jumps to the next timer at once.

``@virtual_time`` runs an ``async def`` test on a :class:`VirtualTimeLoop`. Its
``time()`` moves only when the loop would otherwise sleep: with nothing ready to
run, it jumps straight to the next timer. Everything in livestats reads and sleeps
on the running loop's clock by default (the engine, retries, the limiters'
wake-ups, the transport's elapsed time), so a 60 s pause takes no real time and
"how long did the call wait" is exact. Meant for code without sockets
(``MockTransport``): real I/O is still polled, but a timer never waits for it.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

P = ParamSpec("P")

__all__ = ["VirtualTimeLoop", "virtual_time"]

#: Idle turns with a timer due "now" after which the clock moves a nanosecond.
_SPINS = 1000


class _Selector:
    """Polls real file descriptors without blocking; a wait for a timer moves the clock."""

    def __init__(self, selector: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._selector.select(0)
        if events:
            self._loop.spins = 0
            return events
        if timeout == 0:
            # Code that re-arms a timer for "now" until time has moved (aiolimiter does,
            # when float rounding leaves its bucket a hair short) spins a real loop for a
            # microsecond; here time would stand still for ever. After many idle turns
            # the clock moves one nanosecond.
            self._loop.spins += 1
            if self._loop.spins >= _SPINS:
                self._loop.advance(1e-9)
            return events
        if timeout is None:  # no timer at all: only I/O can wake the loop
            return self._selector.select(None)
        self._loop.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector loop whose clock starts at 1000.0 and jumps to the next timer when idle."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 1000.0
        #: Turns of the loop in a row with a timer due and no time passing.
        self.spins = 0
        inner: selectors.BaseSelector = vars(self)["_selector"]
        vars(self)["_selector"] = _Selector(inner, self)

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self.spins = 0


def virtual_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an ``async def`` test on a fresh :class:`VirtualTimeLoop` (a plain test to pytest)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        loop = VirtualTimeLoop()
        try:
            loop.run_until_complete(test(*args, **kwargs))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    return run
