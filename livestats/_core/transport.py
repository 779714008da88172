"""Sending one HTTP request, and the one place aiohttp's errors become livestats errors.

A request arrives here already signed; the transport knows which query
parameters are secret only so it can leave them out of logs and error texts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping

import aiohttp
import attrs
from yarl import URL

from livestats._core.loops import close_at_loop_shutdown
from livestats.errors import ClientClosedError, TransportError

__all__ = ["HttpRequest", "HttpResponse", "Transport"]

logger = logging.getLogger("livestats")

_REDACTED = "[secure]"


@attrs.frozen(kw_only=True)
class HttpRequest:
    """A signed request, ready to send. Its repr shows no secret."""

    method: str
    url: str
    params: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes | None = attrs.field(default=None, repr=False)
    #: Query parameter and header names whose values are secret.
    secret_names: frozenset[str] = frozenset()

    @property
    def safe_url(self) -> str:
        """The URL with every secret query value replaced by ``[secure]``."""
        shown = {
            name: _REDACTED if name in self.secret_names else value
            for name, value in self.params.items()
        }
        return str(URL(self.url).with_query(shown)) if shown else self.url

    def secret_values(self) -> list[str]:
        values = [v for k, v in self.params.items() if k in self.secret_names]
        values += [v for k, v in self.headers.items() if k in self.secret_names]
        return [v for v in values if v]


@attrs.frozen(kw_only=True)
class HttpResponse:
    """What came back: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    #: Seconds from send to the last byte of the body.
    elapsed: float

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


class Transport:
    """Sends requests through an aiohttp session: the caller's, or one it owns and closes.

    An owned session is made on first use, inside the running loop, so a client can
    be built anywhere (module level, before the web app's loop starts). It belongs
    to that loop: a client used again from another loop (pytest-asyncio makes one
    per test) makes a new session there, and the old one is closed when its loop
    shuts down (``asyncio.run`` and pytest-asyncio shut down async generators
    before closing a loop; a guard generator rides on that).
    """

    __slots__ = (
        "_closed",
        "_loop_guard",
        "_owned",
        "_provider",
        "_session",
        "_session_loop",
        "_timeout",
    )

    def __init__(
        self, *, provider: str, session: aiohttp.ClientSession | None, timeout: float
    ) -> None:
        self._provider = provider
        self._session = session
        self._owned = session is None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._loop_guard: AsyncGenerator[None, None] | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._closed = False

    def __repr__(self) -> str:
        owner = "owned" if self._owned else "borrowed"
        state = "closed" if self._closed else "open"
        return f"<Transport {owner} session, {state}>"

    @property
    def timeout(self) -> float:
        """Seconds one attempt may take, send to last byte."""
        return float(self._timeout.total or 0.0)

    @property
    def closed(self) -> bool:
        return self._closed

    async def _get_session(self, operation: str) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError(
                "the client is closed", provider=self._provider, operation=operation
            )
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

    async def send(self, request: HttpRequest, *, operation: str) -> HttpResponse:
        session = self._session
        if (
            session is None
            or self._closed
            or (self._owned and self._session_loop is not asyncio.get_running_loop())
        ):
            # Not the common case (first call, another loop, closed): the slow path.
            session = await self._get_session(operation)
        started = time.monotonic()
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
                body = await resp.read()
                response = HttpResponse(
                    status=resp.status,
                    headers=resp.headers,
                    body=body,
                    elapsed=time.monotonic() - started,
                )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
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
        if isinstance(exc, asyncio.TimeoutError):
            what = f"no answer within {self._timeout.total:g} s"
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            what = "the server closed the connection without answering"
        elif isinstance(exc, aiohttp.ClientPayloadError):
            what = "the answer was cut off"
        elif isinstance(exc, aiohttp.ClientConnectorError):
            what = f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
        else:
            what = f"{type(exc).__name__}: {_redact(str(exc), request)}"
        return TransportError(
            f"{request.method} {URL(request.url).path}: {what}",
            provider=self._provider,
            operation=operation,
        )


def _redact(text: str, request: HttpRequest) -> str:
    for value in request.secret_values():
        text = text.replace(value, _REDACTED)
    return text


def _safe_cause(exc: BaseException, request: HttpRequest) -> BaseException | None:
    """The aiohttp error as the cause, unless its text shows a secret (then no cause)."""
    text = f"{exc!s} {exc!r}"
    if any(value in text for value in request.secret_values()):
        return None
    return exc
