"""The one clock a client reads and sleeps on, injectable so tests decide what time it is.

By default ``monotonic`` is the running event loop's own clock and ``sleep`` is
``asyncio.sleep``, which waits on that loop's timers: the engine, the retries,
the limiters and the transport then all agree with the loop, and a test that
fast-forwards the loop (any loop whose ``time()`` is virtual, such as ``looptime``'s)
runs every wait of livestats on virtual time with nothing injected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from livestats.errors import ConfigurationError

__all__ = ["Clock", "loop_time"]


def _callable(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, type) or not callable(value):
        raise ConfigurationError(
            f"Clock.{attribute.name} must be a function, not a {type(value).__name__}"
        )


def loop_time() -> float:
    """The running loop's clock; ``time.monotonic`` when no loop runs (the same clock then)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


@attrs.frozen(kw_only=True)
class Clock:
    """``monotonic`` paces and times out; ``wall`` dates signatures; ``sleep`` waits.

    Give one Clock to a client and to its limiter so both read the same time.
    """

    monotonic: Callable[[], float] = attrs.field(default=loop_time, validator=_callable)
    wall: Callable[[], float] = attrs.field(default=time.time, validator=_callable)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, validator=_callable
    )

    @property
    def follows_loop(self) -> bool:
        """Whether this clock is the running loop's (so loop timers may stand in for sleep)."""
        return self.monotonic is loop_time and self.sleep is asyncio.sleep
