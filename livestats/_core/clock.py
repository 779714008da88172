"""The clocks a client reads, injectable so tests decide what time it is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import attrs

__all__ = ["Clock"]


@attrs.frozen(kw_only=True)
class Clock:
    """``monotonic`` paces and times out; ``wall`` dates signatures; ``sleep`` waits."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
