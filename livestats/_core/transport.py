"""Sending one HTTP request through aiohttp: the one place aiohttp's errors become ours.

A request arrives here already signed; the transport knows which query
parameters are secret only so it can leave them out of logs and error texts.
What it guarantees at the boundary:

- no redirect is followed (the engine makes a 3xx a :class:`~livestats.RedirectError`);
- an answer is read in chunks and counted after decompression, so one longer
  than ``max_bytes`` ends as a :class:`~livestats.ResponseTooLargeError` without
  being held whole (aiohttp >= 3.13.3 inflates a compressed body a bounded chunk
  at a time, so a compression bomb is cut off the same way);
- a failure says whether the request may have left: a connection that was never
  made (refused, DNS, a connect timeout) is ``request_sent=False``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import aiohttp
from yarl import URL

from livestats._core.clock import Clock
from livestats._core.http import REDACTED, HttpRequest, HttpResponse
from livestats._core.loops import close_at_loop_shutdown
from livestats._core.validate import check_seconds
from livestats.errors import (
    ClientClosedError,
    ConfigurationError,
    ResponseTooLargeError,
    TransportError,
)

__all__ = ["AiohttpTransport"]

logger = logging.getLogger("livestats")

#: Bytes read from the socket at a time.
_CHUNK = 64 * 1024

#: aiohttp errors raised before a single byte of the request was written.
_NEVER_SENT: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,  # refused, unreachable, DNS, TLS handshake
    aiohttp.ConnectionTimeoutError,  # no connection within the timeout
    aiohttp.InvalidURL,
)


class AiohttpTransport:
    """Sends requests through an aiohttp session: the caller's, or one it owns and closes.

    An owned session is made on first use, inside the running loop, so a client can
    be built anywhere (module level, before the web app's loop starts). It belongs
    to that loop: a client used again from another loop (pytest-asyncio makes one
    per test) makes a new session there, and the old one is closed when its loop
    shuts down (``asyncio.run`` and pytest-asyncio shut down async generators
    before closing a loop; a guard generator rides on that).
    """

    __slots__ = (
        "_clock",
        "_closed",
        "_loop_guard",
        "_owned",
        "_session",
        "_session_loop",
        "_timeout",
    )

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise ConfigurationError("session must be an aiohttp.ClientSession")
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError("clock must be a livestats.Clock")
        timeout = check_seconds(timeout, "timeout")
        self._clock = clock or Clock()
        self._session = session
        self._owned = session is None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._loop_guard: AsyncGenerator[None, None] | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._closed = False

    def __repr__(self) -> str:
        owner = "owned" if self._owned else "borrowed"
        state = "closed" if self._closed else "open"
        return f"<AiohttpTransport {owner} session, {state}, timeout {self.timeout:g} s>"

    @property
    def timeout(self) -> float:
        """Seconds one attempt may take, send to last byte."""
        return float(self._timeout.total or 0.0)

    @property
    def closed(self) -> bool:
        return self._closed

    async def _get_session(self, operation: str) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("the client is closed", operation=operation)
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._owned and self._session_loop is not loop:
            # A client outlived the loop that made its session (pytest-asyncio makes a
            # loop per test): its pooled connections died with that loop; start anew.
            self._session = None
            await session.close()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            # aiohttp resends an idempotent request (Polyv's GET) once, unseen, when a
            # pooled keep-alive connection drops: a second request on one quota slot.
            # No public switch exists; the attribute is checked by a test.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
            self._session_loop = loop
            self._loop_guard = close_at_loop_shutdown(self._session.close)
            await self._loop_guard.__anext__()
        return self._session

    async def close(self) -> None:
        """Close the session if this transport owns it; a borrowed one is left open."""
        self._closed = True
        if self._owned and self._session is not None:
            await self._session.close()
        if self._loop_guard is not None:
            await self._loop_guard.aclose()
            self._loop_guard = None

    async def send(self, request: HttpRequest, *, operation: str, max_bytes: int) -> HttpResponse:
        session = self._session
        if (
            session is None
            or self._closed
            or (self._owned and self._session_loop is not asyncio.get_running_loop())
        ):
            # Not the common case (first call, another loop, closed): the slow path.
            session = await self._get_session(operation)
        started = self._clock.monotonic()
        failure: BaseException | None = None
        try:
            async with session.request(
                request.method,
                request.url,
                params=request.params,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                body = await _read_at_most(resp, max_bytes, operation)
                response = HttpResponse(
                    status=resp.status,
                    headers=resp.headers,
                    body=body,
                    elapsed=self._clock.monotonic() - started,
                )
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            # ValueError: aiohttp refuses a header or URL it cannot encode.
            failure = exc
        if failure is not None:
            # Raised outside the except block so the aiohttp error is attached only
            # as the explicit cause, and only when its text shows no secret.
            raise self._translate(failure, request, operation) from _safe_cause(failure, request)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s -> HTTP %d in %.1f ms",
                operation,
                request.method,
                request.safe_url,
                response.status,
                response.elapsed * 1000,
            )
        return response

    def _translate(
        self, exc: BaseException, request: HttpRequest, operation: str
    ) -> TransportError:
        sent = not isinstance(exc, _NEVER_SENT)
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            what = f"no connection within {self._timeout.total:g} s"
        elif isinstance(exc, asyncio.TimeoutError):
            what = f"no answer within {self._timeout.total:g} s"
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            what = "the server closed the connection without answering"
        elif isinstance(exc, aiohttp.ClientPayloadError):
            what = "the answer was cut off"
        elif isinstance(exc, aiohttp.ClientConnectorError):
            what = f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
        elif isinstance(exc, ValueError) and not isinstance(exc, aiohttp.ClientError):
            sent = False
            what = "the request cannot be encoded"
        else:
            what = f"{type(exc).__name__}: {_redact(str(exc), request)}"
        return TransportError(
            f"{request.method} {URL(request.url).path}: {what}",
            operation=operation,
            request_sent=sent,
        )


async def _read_at_most(resp: aiohttp.ClientResponse, max_bytes: int, operation: str) -> bytes:
    """The whole body, decompressed, or ResponseTooLargeError once it passes ``max_bytes``."""
    declared = resp.content_length
    if declared is not None and declared > max_bytes and not resp.headers.get("Content-Encoding"):
        raise _too_large(resp, max_bytes, operation, f"it declares {declared} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await resp.content.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(resp, max_bytes, operation, "more was still coming")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(
    resp: aiohttp.ClientResponse, max_bytes: int, operation: str, why: str
) -> ResponseTooLargeError:
    resp.close()  # drop the connection rather than drain the rest of the body
    return ResponseTooLargeError(
        f"the answer is larger than max_response_bytes={max_bytes} ({why})",
        operation=operation,
        http_status=resp.status,
    )


def _redact(text: str, request: HttpRequest) -> str:
    for value in request.secret_values():
        text = text.replace(value, REDACTED)
    return text


def _safe_cause(exc: BaseException, request: HttpRequest) -> BaseException | None:
    """The aiohttp error as the cause, unless its text shows a secret (then no cause)."""
    text = f"{exc!s} {exc!r}"
    if any(value in text for value in request.secret_values()):
        return None
    return exc
