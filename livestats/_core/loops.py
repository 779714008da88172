"""Resources that belong to one event loop, closed when that loop shuts down."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

__all__ = ["close_at_loop_shutdown"]


async def close_at_loop_shutdown(
    close: Callable[[], Awaitable[object]],
) -> AsyncGenerator[None, None]:
    """A guard to start (``await guard.__anext__()``) in the loop a resource belongs to.

    It stays suspended for the resource's life. ``asyncio.run`` and pytest-asyncio
    shut down a loop's async generators before closing it, which runs ``close``
    inside that loop: an HTTP session or Redis client left open by a caller that
    moved to another loop releases its sockets there, not in the garbage collector.
    Call ``aclose()`` on the guard when the resource is closed the usual way.
    """
    try:
        yield
    finally:
        await close()
