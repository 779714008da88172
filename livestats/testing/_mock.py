"""``MockTransport``: run a client against a function instead of a server (httpx's idea).

::

    from livestats import HttpResponse, TencentClient
    from livestats.testing import MockTransport

    def vendor(request):
        return HttpResponse(status=200, body=b'{"ErrorCode": 0, "Response": {...}}')

    client = TencentClient(1400000000, "admin", secret_key="...",
                           transport=MockTransport(vendor))

The handler gets each signed :class:`~livestats.HttpRequest` (method, URL, query
parameters, headers, body) and returns an :class:`~livestats.HttpResponse`, or an
awaitable of one (an ``async def`` handler can sleep, to model a slow vendor, on
the loop's clock). It may raise a :class:`~livestats.TransportError` to model a
failed connection (``request_sent=False`` for one that was never made). No
socket is opened; the quota limiter, retries, signing and decoding all run as
they do against the real service. ``requests`` keeps every request the client
sent, in order.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import attrs

from livestats._core.http import HttpRequest, HttpResponse
from livestats._core.validate import check_seconds
from livestats.errors import ClientClosedError, ConfigurationError, ResponseTooLargeError

__all__ = ["MockTransport"]

Handler = Callable[[HttpRequest], "HttpResponse | Awaitable[HttpResponse]"]


class MockTransport:
    """A :class:`~livestats.Transport` that answers every request with ``handler(request)``.

    ``timeout`` is what the engine takes as the longest attempt (it decides how
    long a slot of an unanswered request is held); the mock itself never times
    out. An answer longer than the client's ``max_response_bytes`` is refused as
    the real transport refuses it.
    """

    __slots__ = ("_closed", "_handler", "_timeout", "requests")

    def __init__(self, handler: Handler, *, timeout: float = 10.0) -> None:
        if isinstance(handler, type) or not callable(handler):
            raise ConfigurationError(
                f"handler must be a function of the request, not a {type(handler).__name__}"
            )
        self._handler = handler
        self._timeout = check_seconds(timeout, "timeout")
        self._closed = False
        #: Every request sent, in order.
        self.requests: list[HttpRequest] = []

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MockTransport {len(self.requests)} requests, {state}>"

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, request: HttpRequest, *, operation: str, max_bytes: int) -> HttpResponse:
        if self._closed:
            raise ClientClosedError("the client is closed", operation=operation)
        self.requests.append(request)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, HttpResponse):
            raise TypeError(f"the handler must return a livestats.HttpResponse, not {answer!r}")
        if not answer.elapsed and (took := loop.time() - sent):
            # The time the handler took, on the loop's clock (none: leave the answer be).
            answer = attrs.evolve(answer, elapsed=took)
        if len(answer.body) > max_bytes:
            raise ResponseTooLargeError(
                f"the answer is larger than max_response_bytes={max_bytes}",
                operation=operation,
                http_status=answer.status,
            )
        return answer

    async def close(self) -> None:
        self._closed = True
