"""The provider-neutral half of the offline simulator: lifecycle, recording, quotas, faults.

Why a simulator at all: the hard guarantee livestats makes is "never more than N
requests in any T seconds, as the provider sees them", and the only way to check
that offline is a server that records when every request *arrived* and refuses the
ones over the quota, exactly like the vendor would. So each request runs the same
pipeline, whatever the provider:

1. record the arrival on the injectable ``clock`` (every request counts, even the
   ones refused below, because the provider counts them too);
2. sliding-window quota check, keyed by the provider's scope (Tencent: SDKAppID and
   operation; ChinaNetCenter: account user and operation; Polyv: source IP, whole
   host); over the limit -> the provider's "rate limited" answer. A provider that
   punishes a breach (Polyv: 5 minutes) then refuses that scope for a while, every
   request it sends meanwhile counting as one more violation;
3. a scripted reply (:meth:`Simulator.fail_next`, :meth:`Simulator.reply_next`) or
   a random fault (:class:`Faults`), if one is due;
4. the provider's own authentication, parameter checks and business answer.

Steps 1-3 live here. Step 4 and everything vendor-specific (paths, envelopes, error
codes, signatures, data, settings) live in one module per provider (``_tencent.py``,
``_chinanetcenter.py``, ``_polyv.py``), which implements the small :class:`Backend`
protocol and never sees the pipeline; what those three have in common is in
``_shared.py``. Each vendor module also defines its settings class
(:class:`~livestats.testing.TencentSim`, :class:`~livestats.testing.ChinaNetCenterSim`,
:class:`~livestats.testing.PolyvSim`); :class:`Simulator` builds one backend from
each, with the provider-neutral settings (seed, wall clock), and wires them into
one aiohttp app.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Protocol, TypeVar

import attrs
from aiohttp import web

from livestats._core.quota import Quota
from livestats.testing._chinanetcenter import (
    ChinaNetCenterBackend,
    ChinaNetCenterCredentials,
    ChinaNetCenterSim,
)
from livestats.testing._polyv import PolyvBackend, PolyvCredentials, PolyvSim
from livestats.testing._shared import check_int, non_negative_seconds
from livestats.testing._tencent import TencentBackend, TencentCredentials, TencentSim

__all__ = ["FAULT_KINDS", "Backend", "Faults", "Simulator", "max_in_window"]

_S = TypeVar("_S")

#: Every fault :class:`Faults` can inject.
FAULT_KINDS = ("internal_error", "bad_gateway", "drop_connection", "slow_reply")

# What an nginx front end answers when its upstream is gone.
_BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def max_in_window(times: Sequence[float], period: float) -> int:
    """The largest number of ``times`` inside any half-open window ``[t, t + period)``.

    Two timestamps exactly ``period`` apart are never in the same window, which is
    the reading of "at most N requests in any T seconds" the simulator enforces.
    Linear two-pointer scan; ``times`` is sorted first only if it is not already.
    """
    if isinstance(period, bool) or not math.isfinite(period) or period <= 0:
        raise ValueError(f"period must be a positive number of seconds, not {period!r}")
    ordered = times if _is_sorted(times) else sorted(times)
    best = 0
    left = 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= period:
            left += 1
        best = max(best, right - left + 1)
    return best


def _is_sorted(times: Sequence[float]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(times))


def _check_rate(instance: Faults, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"Faults.rate must be a probability in [0, 1], not {value!r}")


def _check_kinds(
    instance: Faults, attribute: attrs.Attribute[tuple[str, ...]], value: object
) -> None:
    if not isinstance(value, tuple) or not value:
        raise ValueError("Faults.kinds must be a non-empty tuple of fault names")
    unknown = [kind for kind in value if kind not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown!r} (known: {', '.join(FAULT_KINDS)})")


def _to_kinds(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError("Faults.kinds must be a tuple of fault names, not one string")
    return tuple(value)


def _to_operations(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ValueError("Faults.operations must be a set of operation names, not one string")
    return frozenset(value)


@attrs.frozen(kw_only=True)
class Faults:
    """Random failures, drawn from ``random.Random(seed)`` so a run is repeatable.

    Each request that passed the quota check gets a fault with probability ``rate``,
    the kind chosen uniformly from ``kinds``:

    - ``internal_error``: the provider's "internal error, retry" answer (Tencent:
      HTTP 200, ``ErrorCode`` 100001; ChinaNetCenter: HTTP 500, code ``24102500``;
      Polyv: HTTP 500, code 500, status ``fail``);
    - ``bad_gateway``: HTTP 502 with an nginx-style HTML page;
    - ``drop_connection``: the TCP connection is closed without any answer;
    - ``slow_reply``: the normal answer, after ``slow_delay`` seconds of real time.

    ``operations`` limits faults to those operation names (``None``: all of them).
    """

    rate: float = attrs.field(default=0.0, validator=_check_rate)
    kinds: tuple[str, ...] = attrs.field(
        default=FAULT_KINDS, converter=_to_kinds, validator=_check_kinds
    )
    slow_delay: float = attrs.field(default=1.0, validator=non_negative_seconds)
    operations: frozenset[str] | None = attrs.field(default=None, converter=_to_operations)


class Backend(Protocol):
    """What a provider module gives the pipeline: its routes and its way of answering."""

    @property
    def provider(self) -> str:
        """The provider's name; it keeps two providers' quota scopes apart."""
        ...

    @property
    def quotas(self) -> Mapping[str, Quota | None]:
        """Every operation the provider serves, with the quota enforced on it."""
        ...

    @property
    def block_seconds(self) -> float:
        """How long a quota breach locks its scope out (0: no lockout, only the window)."""
        ...

    @property
    def success_code(self) -> int:
        """The vendor code meaning success, which :meth:`Simulator.fail_next` refuses."""
        ...

    def routes(self) -> Iterable[tuple[str, str, str]]:
        """``(method, path, operation)`` triples."""
        ...

    def quota_scope(self, operation: str, request: web.Request) -> Hashable:
        """Which window a request to ``operation`` counts in.

        Tencent: the SDKAppID it names and the operation; Polyv: the source IP alone,
        because its quota covers the whole host.
        """
        ...

    def error_reply(self, code: int, message: str | None) -> web.Response:
        """The provider's answer for vendor error ``code`` (``None``: its usual text)."""
        ...

    def rate_limited_reply(self) -> web.Response:
        """The provider's answer to a request over the quota."""
        ...

    def internal_error_reply(self) -> web.Response:
        """The provider's retryable "internal error" answer."""
        ...

    async def answer(self, operation: str, request: web.Request) -> web.Response:
        """Authenticate, validate and answer a request that got this far."""
        ...


@attrs.frozen
class _VendorError:
    code: int
    message: str | None


@attrs.frozen
class _RawReply:
    status: int
    body: bytes
    content_type: str


@attrs.define
class _Script:
    reply: _VendorError | _RawReply
    remaining: int


@attrs.define
class _OperationLog:
    """Everything recorded about one operation since the start or the last reset."""

    arrivals: list[float] = attrs.Factory(list)
    # The query of each arrival, in the same order; it holds UserSigs, hence no repr.
    queries: list[Mapping[str, str]] = attrs.field(factory=list, repr=False)
    violations: int = 0
    faults: Counter[str] = attrs.Factory(Counter)
    scripts: deque[_Script] = attrs.Factory(deque)

    def next_script(self) -> _VendorError | _RawReply | None:
        if not self.scripts:
            return None
        script = self.scripts[0]
        script.remaining -= 1
        if script.remaining == 0:
            self.scripts.popleft()
        return script.reply


class _SlidingWindows:
    """Arrivals in the last quota period, per quota scope, and the scopes locked out.

    A request is refused when the arrivals in ``(now - period, now]``, itself
    included, exceed the limit. Refused requests stay in the window: the provider
    counts every request it sees. With a ``block`` (Polyv), a breach also refuses
    everything from that scope until ``block`` seconds after it; requests refused
    meanwhile count in the window too, but do not extend the block (the vendor
    documents a fixed 5 minutes). When the block ends the window decides again, so
    a client that kept hammering may be blocked again at once.
    """

    __slots__ = ("_blocked_until", "_windows")

    def __init__(self) -> None:
        self._windows: dict[Hashable, deque[float]] = {}
        self._blocked_until: dict[Hashable, float] = {}

    def admit(self, key: Hashable, quota: Quota, now: float, block: float = 0.0) -> bool:
        window = self._windows.setdefault(key, deque())
        # The same test as max_in_window(): two arrivals share a window when the
        # later one came less than a period after the earlier one.
        while window and now - window[0] >= quota.period:
            window.popleft()
        window.append(now)
        until = self._blocked_until.get(key)
        if until is not None:
            if now < until:
                return False
            del self._blocked_until[key]
        if len(window) <= quota.limit:
            return True
        if block > 0:
            self._blocked_until[key] = now + block
        return False

    def clear(self) -> None:
        self._windows.clear()
        self._blocked_until.clear()


class _FaultDice:
    """Decides, request by request, whether a fault is injected and which one."""

    __slots__ = ("_faults", "_rng", "_seed")

    def __init__(self, faults: Faults, seed: int) -> None:
        self._faults = faults
        self._seed = seed
        self._rng = random.Random(seed)

    def draw(self, operation: str) -> str | None:
        faults = self._faults
        if faults.rate == 0 or (
            faults.operations is not None and operation not in faults.operations
        ):
            return None
        if self._rng.random() >= faults.rate:
            return None
        return self._rng.choice(faults.kinds)

    def reset(self) -> None:
        self._rng = random.Random(self._seed)


def _drop_connection(request: web.Request) -> web.Response:
    # Closing the transport before anything is written makes the client read EOF
    # where it expects a status line (aiohttp: ServerDisconnectedError). The
    # response returned below is never sent: aiohttp's write fails with a
    # ConnectionResetError that it treats as a client disconnect, silently.
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)


class Simulator:
    """A local server speaking the vendors' APIs, for tests that must not go online.

    ::

        async with Simulator(seed=0, tencent=TencentSim(rooms=200)) as sim:
            client = ...(base_url=sim.url, sdkappid=sim.tencent.sdkappid, ...)
            ...
            assert sim.violations("get_room_stats") == 0

    It serves three providers on one port, each configured by its own settings
    object (omitted: its defaults), with its own credentials and data:

    - ``tencent=TencentSim(rooms=200, quotas=None, credentials=None)``: Tencent
      Cloud Live;
    - ``chinanetcenter=ChinaNetCenterSim(domains=3, streams_per_domain=4,
      quotas=None, credentials=None, time_format="epoch_s", max_domains=1)``:
      ChinaNetCenter stream push durations;
    - ``polyv=PolyvSim(channels=5, offline_channels=2, quotas=None,
      credentials=None, block_seconds=300.0)``: Polyv stream monitor info.

    Operation names are unique across providers: ``get_room_stats``,
    ``get_gift_count``, ``get_room_list``, ``get_stream_durations``
    (ChinaNetCenter) and ``get_stream_info`` (Polyv).

    The rest is provider-neutral. Everything is deterministic given ``seed``:
    credentials (unless given), data, request ids and the sequence of injected
    ``faults``. ``clock`` stamps arrivals and drives the quota windows and Polyv's
    IP block; ``wall_clock`` (epoch seconds) is the vendors' "now": UserSig
    expiry, ChinaNetCenter's "today" and AK/SK timestamp check, Polyv's timestamp
    check and the ``Date`` header of Polyv's replies. ``slow_reply`` faults sleep
    for real. ``host`` and ``port`` (0: a free one) are where :meth:`start` binds.
    """

    __slots__ = (
        "_app",
        "_backend_of",
        "_chinanetcenter",
        "_clock",
        "_dice",
        "_faults",
        "_host",
        "_logs",
        "_polyv",
        "_port",
        "_runner",
        "_tencent",
        "_url",
        "_windows",
    )

    def __init__(
        self,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        tencent: TencentSim | None = None,
        chinanetcenter: ChinaNetCenterSim | None = None,
        polyv: PolyvSim | None = None,
    ) -> None:
        check_int("seed", seed, minimum=None)
        check_int("port", port, minimum=0)
        if port > 65535:
            raise ValueError(f"port must be at most 65535, not {port}")
        self._tencent = TencentBackend(
            _settings("tencent", tencent, TencentSim), seed=seed, wall_clock=wall_clock
        )
        self._chinanetcenter = ChinaNetCenterBackend(
            _settings("chinanetcenter", chinanetcenter, ChinaNetCenterSim),
            seed=seed,
            wall_clock=wall_clock,
        )
        self._polyv = PolyvBackend(
            _settings("polyv", polyv, PolyvSim), seed=seed, wall_clock=wall_clock
        )
        backends: list[Backend] = [self._tencent, self._chinanetcenter, self._polyv]
        self._backend_of = _index_operations(backends)
        self._faults = faults if faults is not None else Faults()
        _check_fault_operations(self._faults, self._backend_of)
        self._dice = _FaultDice(self._faults, seed)
        self._clock = clock
        self._host = host
        self._port = port
        self._logs = {operation: _OperationLog() for operation in self._backend_of}
        self._windows = _SlidingWindows()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._app = self._build_app(backends)

    def __repr__(self) -> str:
        where = self._url or "not started"
        return (
            f"<Simulator {where} rooms={len(self._tencent.room_ids)}"
            f" domains={len(self._chinanetcenter.domains)}"
            f" channels={len(self._polyv.channel_ids)}>"
        )

    # -- lifecycle ---------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The aiohttp application, to mount or run yourself instead of :meth:`start`."""
        return self._app

    @property
    def url(self) -> str:
        """``http://host:port`` without a trailing slash: the clients' ``base_url``."""
        if self._url is None:
            raise RuntimeError("the simulator is not started: use `async with` or `await start()`")
        return self._url

    async def start(self) -> None:
        """Bind ``host:port`` (port 0: a free one) and start serving."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        # No access log: the query string carries the UserSig, a secret.
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            # A vendor's accept queue is deep; aiohttp's default of 128 drops the SYNs
            # of a fleet's first burst (8 processes opening 100 connections each), and
            # each of those requests then waits a second for the SYN's retransmit.
            await web.TCPSite(runner, self._host, self._port, backlog=1024).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving; idempotent."""
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- data --------------------------------------------------------------------

    @property
    def tencent(self) -> TencentCredentials:
        """The Tencent app the simulator serves (SDKAppID, admin identifier, secret key)."""
        return self._tencent.credentials

    @property
    def room_ids(self) -> list[str]:
        """The simulated rooms' ids, in a fixed order (``room-00000``, ``room-00001``, ...)."""
        return list(self._tencent.room_ids)

    @property
    def chinanetcenter(self) -> ChinaNetCenterCredentials:
        """The ChinaNetCenter account the simulator serves (username, API key, AK/SK)."""
        return self._chinanetcenter.credentials

    @property
    def domains(self) -> dict[str, list[str]]:
        """The ChinaNetCenter account's domains, each with its ``app/stream`` names.

        In a fixed order: ``live1.example.com``, ``live2.example.com``, ...
        """
        return self._chinanetcenter.domains

    @property
    def polyv(self) -> PolyvCredentials:
        """The Polyv app the simulator serves (app id, app secret)."""
        return self._polyv.credentials

    @property
    def channel_ids(self) -> list[str]:
        """The Polyv channels live now (numeric strings), in a fixed order."""
        return self._polyv.channel_ids

    @property
    def offline_channel_ids(self) -> list[str]:
        """Polyv channels that exist but are not live: asking about them is an error."""
        return self._polyv.offline_channel_ids

    # -- what happened -----------------------------------------------------------

    def arrivals(self, operation: str) -> list[float]:
        """When each request to ``operation`` arrived (``clock``), in order, refused ones too."""
        return list(self._log(operation).arrivals)

    def query_values(self, operation: str, name: str) -> list[str | None]:
        """Query parameter ``name`` of each request to ``operation``, in arrival order.

        ``None`` where a request did not carry it. For checks such as "every attempt
        sent a fresh ``random``" (Tencent) or ``timestamp`` (Polyv). Asking for
        ``usersig`` returns secrets: keep them out of logs and assertion messages.
        """
        return [query.get(name) for query in self._log(operation).queries]

    def violations(self, operation: str) -> int:
        """How many requests to ``operation`` were refused for exceeding the quota."""
        return self._log(operation).violations

    def max_in_window(self, operation: str, period: float | None = None) -> int:
        """The most arrivals to ``operation`` in any window of ``period`` seconds.

        ``period`` defaults to the operation's quota period; give it for an
        operation whose quota is not enforced.
        """
        log = self._log(operation)
        if period is None:
            quota = self._backend_of[operation].quotas[operation]
            if quota is None:
                raise ValueError(f"{operation} has no quota here: pass period=")
            period = quota.period
        return max_in_window(log.arrivals, period)

    def faults_injected(self, operation: str) -> dict[str, int]:
        """How many random faults of each kind ``operation`` got (kinds never drawn: absent)."""
        return dict(self._log(operation).faults)

    def reset(self) -> None:
        """Forget arrivals, violations, fault counts, scripts, quota windows and blocks.

        The fault dice restart from ``seed``, so a test after a reset sees the same
        faults as the first test would. Data and credentials do not change.
        """
        for operation in self._logs:
            self._logs[operation] = _OperationLog()
        self._windows.clear()
        self._dice.reset()

    # -- scripting ---------------------------------------------------------------

    def fail_next(
        self, operation: str, code: int, times: int = 1, *, message: str | None = None
    ) -> None:
        """Answer the next ``times`` requests to ``operation`` with vendor error ``code``.

        The answer is the one the vendor gives for ``code``. Tencent: HTTP 200,
        ``ActionStatus`` FAIL, ``ErrorCode`` ``code``. ChinaNetCenter: the HTTP
        status its error table gives (400, or 500 for ``24102500``), body ``code``
        as a string. Polyv: HTTP status and body ``code`` both ``code``, status
        ``fail`` from 500 up, ``error`` below. Scripts apply to requests that pass
        the quota check, before authentication, and take precedence over random
        faults. ``message`` defaults to the vendor's usual text for the code.
        """
        check_int("code", code, minimum=None)
        success = self._backend(operation).success_code
        if code == success:
            raise ValueError(f"code {code} means success: fail_next needs an error code")
        self._script(operation, _VendorError(code, message), times)

    def reply_next(
        self,
        operation: str,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str = "application/json",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests to ``operation`` with exactly this reply.

        For answers the vendor does not document: truncated JSON, an HTML error page,
        an unexpected status. Applies like :meth:`fail_next`.
        """
        check_int("status", status, minimum=100)
        raw = body.encode() if isinstance(body, str) else bytes(body)
        self._script(operation, _RawReply(status, raw, content_type), times)

    def _script(self, operation: str, reply: _VendorError | _RawReply, times: int) -> None:
        check_int("times", times, minimum=1)
        self._log(operation).scripts.append(_Script(reply, times))

    # -- the pipeline ------------------------------------------------------------

    def _build_app(self, backends: Iterable[Backend]) -> web.Application:
        app = web.Application()
        for backend in backends:
            for method, path, operation in backend.routes():
                app.router.add_route(method, path, self._handler(operation, backend))
        return app

    def _handler(
        self, operation: str, backend: Backend
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(operation, backend, request)

        return handle

    async def _serve(self, operation: str, backend: Backend, request: web.Request) -> web.Response:
        log = self._logs[operation]
        now = self._clock()
        log.arrivals.append(now)
        log.queries.append(request.query)
        quota = backend.quotas[operation]
        scope = (backend.provider, backend.quota_scope(operation, request))
        if quota is not None and not self._windows.admit(
            scope, quota, now, block=backend.block_seconds
        ):
            log.violations += 1
            return backend.rate_limited_reply()
        scripted = log.next_script()
        if scripted is not None:
            return _play(scripted, backend)
        fault = self._dice.draw(operation)
        if fault is None:
            return await backend.answer(operation, request)
        log.faults[fault] += 1
        return await self._inject(fault, operation, backend, request)

    async def _inject(
        self, fault: str, operation: str, backend: Backend, request: web.Request
    ) -> web.Response:
        if fault == "internal_error":
            return backend.internal_error_reply()
        if fault == "bad_gateway":
            return web.Response(status=502, body=_BAD_GATEWAY_PAGE, content_type="text/html")
        if fault == "drop_connection":
            return _drop_connection(request)
        await asyncio.sleep(self._faults.slow_delay)
        return await backend.answer(operation, request)

    def _log(self, operation: str) -> _OperationLog:
        try:
            return self._logs[operation]
        except KeyError:
            raise self._unknown(operation) from None

    def _backend(self, operation: str) -> Backend:
        try:
            return self._backend_of[operation]
        except KeyError:
            raise self._unknown(operation) from None

    def _unknown(self, operation: str) -> ValueError:
        known = ", ".join(sorted(self._backend_of))
        return ValueError(f"unknown operation {operation!r} (known: {known})")


def _play(reply: _VendorError | _RawReply, backend: Backend) -> web.Response:
    if isinstance(reply, _VendorError):
        return backend.error_reply(reply.code, reply.message)
    # A header rather than content_type=: aiohttp refuses a charset in that argument.
    headers = {"Content-Type": reply.content_type}
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _index_operations(backends: Iterable[Backend]) -> dict[str, Backend]:
    """Map each operation name to its backend; names must be unique across providers."""
    index: dict[str, Backend] = {}
    for backend in backends:
        for operation in backend.quotas:
            if operation in index:
                raise ValueError(f"operation {operation!r} is served by two providers")
            index[operation] = backend
    return index


def _check_fault_operations(faults: Faults, known: Mapping[str, Backend]) -> None:
    if not isinstance(faults, Faults):
        raise TypeError(f"faults must be a livestats.testing.Faults, not {faults!r}")
    unknown = sorted((faults.operations or frozenset()) - set(known))
    if unknown:
        raise ValueError(f"Faults.operations names unknown operations {unknown!r}")


def _settings(name: str, value: object, cls: type[_S]) -> _S:
    """``value``, or ``cls()`` for ``None``; anything else is a TypeError saying why."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    hint = (
        f" (credentials now go in {cls.__name__}(credentials=...))"
        if type(value).__name__.endswith("Credentials")
        else ""
    )
    raise TypeError(
        f"{name} must be a livestats.testing.{cls.__name__} or None, "
        f"not a {type(value).__name__}{hint}"
    )
