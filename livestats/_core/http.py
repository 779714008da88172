"""The transport seam: a signed request, the answer, and what sends one for the other.

:class:`Transport` is the one interface the engine needs from the network. The
default, :class:`~livestats.AiohttpTransport`, sends through aiohttp;
:class:`livestats.testing.MockTransport` answers from a function, without
sockets, so users and the suite can run a client against anything they script.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs
from yarl import URL

__all__ = ["REDACTED", "HttpRequest", "HttpResponse", "Transport"]

#: What every secret is shown as.
REDACTED = "[secure]"


@attrs.frozen(kw_only=True)
class HttpRequest:
    """A signed request, ready to send. Its repr shows no secret.

    ``secret_names`` names the query parameters and headers whose values are
    secret (a UserSig, a signature, an ``Authorization`` value);
    ``derived_secrets`` holds further values derived from them that a gateway
    could echo on their own (the password inside a Basic token).
    """

    method: str
    url: str
    params: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes | None = attrs.field(default=None, repr=False)
    secret_names: frozenset[str] = frozenset()
    derived_secrets: tuple[str, ...] = attrs.field(default=(), repr=False)

    @property
    def safe_url(self) -> str:
        """The URL with every secret query value replaced by ``[secure]``."""
        shown = {
            name: REDACTED if name in self.secret_names else value
            for name, value in self.params.items()
        }
        return str(URL(self.url).with_query(shown)) if shown else self.url

    def secret_values(self) -> list[str]:
        """Every secret this request carries, for redaction."""
        values = [v for k, v in self.params.items() if k in self.secret_names]
        values += [v for k, v in self.headers.items() if k in self.secret_names]
        values += self.derived_secrets
        return [v for v in values if v]


@attrs.frozen(kw_only=True)
class HttpResponse:
    """What came back: status, headers and the whole body (at most the client's size limit)."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)
    #: Seconds from send to the last byte of the body.
    elapsed: float = 0.0

    @property
    def content_type(self) -> str:
        return self.header("Content-Type").split(";")[0].strip().lower()

    def header(self, name: str) -> str:
        """The value of header ``name`` (any case), or ``""``."""
        value = self.headers.get(name)
        if value is None:
            lowered = name.lower()
            value = next((v for k, v in self.headers.items() if k.lower() == lowered), "")
        return value


@runtime_checkable
class Transport(Protocol):
    """Sends one signed request and returns the whole answer.

    A transport raises :class:`~livestats.TransportError` when no answer came
    (with ``request_sent=False`` when the request certainly never left, so its
    quota slot is handed back), :class:`~livestats.ResponseTooLargeError` for an
    answer over ``max_bytes`` and :class:`~livestats.ClientClosedError` after
    :meth:`close`. It follows no redirect. Any status is an answer: the engine
    and the provider decide what it means.
    """

    @property
    def timeout(self) -> float:
        """Seconds one attempt may take, send to last byte."""
        ...

    async def send(
        self, request: HttpRequest, *, operation: str, max_bytes: int
    ) -> HttpResponse: ...

    async def close(self) -> None: ...
