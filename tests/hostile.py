"""Hostile local servers: a scripted aiohttp server that answers the way real gateways misbehave.

One :class:`HostileServer` per test, on ``127.0.0.1`` and a free port. It records
every request it receives (method, path, decoded query, headers, body, and the URL
as it arrived) and answers each with a *reply*: a small coroutine function from
``aiohttp.web.Request`` to a response. The factories below build the replies a
boundary test needs::

    async with HostileServer(reply(429, headers={"Retry-After": "7"})) as server:
        ...  # point a client at server.url
        assert len(server.requests) == 1

    server.script((1, reply(429)), then=json_reply(tencent_ok(ROOM_STATS)))

Nothing here knows a provider's rules; the ``*_ok`` helpers only build the success
envelopes of ``/work/shared/docs/providers.md`` so a server can also answer like the
vendor. :func:`refused_url` is a URL nothing listens on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import attrs
from aiohttp import web

__all__ = [
    "BOMB_INFLATED_BYTES",
    "ECHO_MARKER",
    "HUGE_BYTES",
    "HostileServer",
    "Recorded",
    "Reply",
    "chinanetcenter_ok",
    "echo_html",
    "echo_json",
    "echo_redirect",
    "echo_text",
    "empty_body",
    "gzip_bomb",
    "gzip_bomb_bytes",
    "hang",
    "html_reply",
    "json_reply",
    "polyv_ok",
    "redirect",
    "refused_url",
    "reply",
    "streamed",
    "tencent_ok",
    "truncated_json",
]

HOST = "127.0.0.1"
#: The "huge body" of the boundary tests: 200 MB, generated while it is sent.
HUGE_BYTES = 200 * 1000 * 1000
#: What the gzip bomb inflates to: 2 GiB. Deflate compresses at most about 1030:1,
#: so that is about 2 MB on the wire (a single gzip layer cannot do better).
BOMB_INFLATED_BYTES = 2 * 2**30
#: Put in every echo, so a test can find each text that carries one.
ECHO_MARKER = "hostile-echo"

_CHUNK = 64 * 1024
_BOMB_BLOCK = 2**20
_JSON = "application/json"

#: A reply: given the request, the response to send (or to stream).
Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen(kw_only=True)
class Recorded:
    """One request as the server received it."""

    method: str
    #: The path, decoded.
    path: str
    #: The query, decoded (the last value of a repeated name).
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    #: ``http://host:port`` plus the path and query exactly as they arrived (still encoded).
    url: str


class HostileServer:
    """A scripted server: the first requests get the scripted replies, the rest ``then``.

    ``HostileServer(reply)`` answers every request with ``reply``; :meth:`script`
    changes that at any time. Requests are recorded before they are answered, so a
    request that hangs (or is cut off) is in :attr:`requests` too.
    """

    def __init__(self, then: Reply | None = None) -> None:
        self.requests: list[Recorded] = []
        #: Every text an echo reply sent back (page, message or Location), in order.
        self.echoes: list[str] = []
        self._steps: list[list[Any]] = []  # [remaining, reply] pairs
        self._then: Reply = then if then is not None else reply(404)
        self._arrived = asyncio.Condition()
        #: Set when the server closes: hanging replies return then.
        self.released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"<HostileServer {self._url or 'not started'} requests={len(self.requests)}>"

    # -- script ------------------------------------------------------------------------

    def script(self, *steps: tuple[int, Reply], then: Reply) -> None:
        """The next ``n`` requests get each step's reply in turn, every later one ``then``."""
        for count, _ in steps:
            if count < 0:
                raise ValueError(f"a step's count must be >= 0, not {count}")
        self._steps = [[count, step] for count, step in steps if count > 0]
        self._then = then

    def always(self, then: Reply) -> None:
        """Every request from now on gets ``then``."""
        self.script(then=then)

    def _next_reply(self) -> Reply:
        while self._steps:
            step = self._steps[0]
            if step[0] > 0:
                step[0] -= 1
                chosen: Reply = step[1]
                if step[0] == 0:
                    self._steps.pop(0)
                return chosen
            self._steps.pop(0)
        return self._then

    # -- what arrived --------------------------------------------------------------------

    def queries(self, name: str) -> list[str]:
        """The value of query parameter ``name`` in every request that had it."""
        return [r.query[name] for r in self.requests if name in r.query]

    def header_values(self, name: str) -> list[str]:
        """The value of header ``name`` (any case) in every request that had it."""
        wanted = name.lower()
        return [v for r in self.requests for k, v in r.headers.items() if k.lower() == wanted]

    async def wait_for_requests(self, count: int) -> None:
        """Return once at least ``count`` requests have arrived."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: a client's ``base_url``."""
        if self._url is None:
            raise RuntimeError("the server is not started: use `async with`")
        return self._url

    async def start(self) -> None:
        app = web.Application(client_max_size=2**20)
        app[_SERVER] = self
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self._url = f"http://{HOST}:{port}"

    async def close(self) -> None:
        self.released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HostileServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
                url=f"{request.scheme}://{request.host}{request.raw_path}",
            )
        )
        async with self._arrived:
            self._arrived.notify_all()
        return await self._next_reply()(request)


_SERVER = web.AppKey("hostile_server", HostileServer)


def refused_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: a free port, bound and closed again."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return f"http://{HOST}:{port}"


# -- plain replies ----------------------------------------------------------------------


def reply(
    status: int = 200,
    body: bytes | str = b"",
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> Reply:
    """Any status, headers and body (an explicit ``Date`` header replaces aiohttp's)."""
    data = body.encode() if isinstance(body, str) else body

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=status, body=data, headers=dict(headers or {}))
        if content_type is not None:
            response.content_type = content_type
        return response

    return answer


def json_reply(doc: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """``doc`` as JSON (integers of any size are written as they are)."""
    return reply(status, json.dumps(doc), headers=headers, content_type=_JSON)


def html_reply(status: int, title: str, text: str = "") -> Reply:
    """An HTML error page, as a proxy or gateway writes one."""
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{text}</body></html>"
    return reply(status, page, content_type="text/html")


def truncated_json(doc: Any, *, status: int = 200) -> Reply:
    """``doc`` as JSON cut off halfway, with ``Content-Length`` saying so (a whole answer)."""
    text = json.dumps(doc).encode()
    return reply(status, text[: len(text) // 2], content_type=_JSON)


def empty_body(status: int = 200) -> Reply:
    """A JSON content type and no body at all."""
    return reply(status, b"", content_type=_JSON)


def redirect(status: int, location: str) -> Reply:
    """A 3xx with ``Location`` (and a body that would read as success, were it followed)."""
    return reply(status, b"", headers={"Location": location})


def hang() -> Reply:
    """Read the request, then never answer (until the server closes)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.app[_SERVER].released.wait()
        return web.Response(status=503)

    return answer


# -- huge answers -----------------------------------------------------------------------


def streamed(
    total_bytes: int = HUGE_BYTES,
    *,
    tail: bytes = b"",
    content_length: bool = True,
    status: int = 200,
) -> Reply:
    """``total_bytes`` of body made while sending: spaces, then ``tail``, never in memory.

    Spaces before a JSON document leave it valid, so with a success envelope as
    ``tail`` a client that reads everything gets a good answer: only a size cap
    stops it. Without ``content_length`` the body is sent chunked. A client that
    stops reading ends the stream.
    """
    if len(tail) > total_bytes:
        raise ValueError("tail is longer than the whole body")
    pad = b" " * _CHUNK

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        response.content_type = _JSON
        if content_length:
            response.content_length = total_bytes
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        left = total_bytes - len(tail)
        try:
            while left > 0:
                piece = pad if left >= len(pad) else pad[:left]
                await response.write(piece)
                left -= len(piece)
            if tail:
                await response.write(tail)
            await response.write_eof()
        except ConnectionError:
            pass  # the client hung up: what a client that caps answers does
        return response

    return answer


@functools.cache
def gzip_bomb_bytes(inflated_bytes: int = BOMB_INFLATED_BYTES, tail: bytes = b"") -> bytes:
    """A valid gzip member that inflates to ``inflated_bytes``: spaces, then ``tail``.

    Built without compressing gigabytes: after a full flush deflate forgets its
    history, so every further MiB of spaces compresses to the same bytes, which are
    repeated; the trailer's CRC-32 is computed over the blocks. Cached per size.
    """
    blocks, rest = divmod(inflated_bytes - len(tail), _BOMB_BLOCK)
    if blocks < 2:
        raise ValueError("a bomb inflates to at least 2 MiB")
    block = b" " * _BOMB_BLOCK
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    first = squeeze.compress(block) + squeeze.flush(zlib.Z_FULL_FLUSH)
    again = squeeze.compress(block) + squeeze.flush(zlib.Z_FULL_FLUSH)
    end = squeeze.compress(b" " * rest + tail) + squeeze.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(b" " * rest + tail, crc)
    # An empty final fixed-Huffman block, then CRC-32 and length mod 2**32.
    trailer = b"\x03\x00" + struct.pack("<II", crc, inflated_bytes & 0xFFFFFFFF)
    return b"".join([first, again * (blocks - 1), end, trailer])


def gzip_bomb(inflated_bytes: int = BOMB_INFLATED_BYTES, *, tail: bytes = b"") -> Reply:
    """``Content-Encoding: gzip``, a couple of MB on the wire that inflate to GBs."""

    async def answer(request: web.Request) -> web.StreamResponse:
        data = memoryview(gzip_bomb_bytes(inflated_bytes, tail))
        response = web.StreamResponse(status=200, headers={"Content-Encoding": "gzip"})
        response.content_type = _JSON
        response.content_length = len(data)
        await response.prepare(request)
        try:
            for start in range(0, len(data), _CHUNK):
                await response.write(data[start : start + _CHUNK])
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    return answer


# -- gateways that echo the refused request ---------------------------------------------

_SECRET_FIRST = ("authorization", "proxy-authorization", "cookie")


def echo_text(request: web.Request) -> str:
    """The request as a gateway echoes it: marker, method, full URL (with query), headers.

    Headers that carry credentials come first, so an echo cut short still shows one.
    """
    headers = sorted(request.headers.items(), key=lambda item: item[0].lower() not in _SECRET_FIRST)
    lines = [f"{ECHO_MARKER} {request.method} {request.scheme}://{request.host}{request.raw_path}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return "\n".join(lines)


def echo_html(status: int = 502) -> Reply:
    """An HTML page whose ``<title>`` and body repeat the request, secrets and all."""

    async def answer(request: web.Request) -> web.StreamResponse:
        text = echo_text(request)
        title = text.replace("\n", " | ")
        request.app[_SERVER].echoes.append(text)
        page = (
            f"<html><head><title>{status} refused: {title}</title></head>"
            f"<body><h1>Request refused</h1><pre>{text}</pre></body></html>"
        )
        return web.Response(status=status, text=page, content_type="text/html")

    return answer


def echo_json(status: int, template: Mapping[str, Any], field: str) -> Reply:
    """A JSON error whose ``field`` repeats the request; ``template`` gives the other fields.

    E.g. ``echo_json(400, {"code": "24102002"}, "message")`` or, Tencent-shaped,
    ``echo_json(200, {"ActionStatus": "FAIL", "ErrorCode": 60002}, "ErrorInfo")``.
    """

    async def answer(request: web.Request) -> web.StreamResponse:
        doc = {**template, field: echo_text(request)}
        request.app[_SERVER].echoes.append(doc[field])
        return web.json_response(doc, status=status)

    return answer


def echo_redirect(status: int = 302) -> Reply:
    """A 3xx whose ``Location`` is the request's own URL, query and all, as it arrived."""

    async def answer(request: web.Request) -> web.StreamResponse:
        location = f"{request.scheme}://{request.host}{request.raw_path}#{ECHO_MARKER}"
        request.app[_SERVER].echoes.append(location)
        return web.Response(status=status, headers={"Location": location})

    return answer


# -- the vendors' success envelopes (providers.md) ---------------------------------------


def tencent_ok(response: Mapping[str, Any], *, request_id: str = "r1") -> dict[str, Any]:
    return {
        "ActionStatus": "OK",
        "ErrorCode": 0,
        "ErrorInfo": "",
        "RequestId": request_id,
        "Response": dict(response),
    }


def chinanetcenter_ok(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "message": "success", "data": data}


def polyv_ok(data: list[Any]) -> dict[str, Any]:
    return {"code": 200, "status": "success", "message": "", "data": data}
