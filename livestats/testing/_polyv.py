"""The Polyv half of the simulator: Tencent-CDN stream monitor info.

It answers ``GET /live/v3/channel/monitor/list-tencent-stream-info`` the way
``shared/docs/providers.md`` and the vendor page
(``shared/vendor-docs/polyv-tencent-stream-info.txt``) describe it. After the
pipeline's quota check, scripts and faults, a request is checked in this order:

1. ``appId`` is the simulated app and ``sign`` verifies (``invalid signature.``);
2. ``timestamp`` is 13 digits and within 3 minutes of ``wall_clock``, either way
   (``invalid timestamp.``);
3. ``channelId`` is present;
4. the window: ``startTime``/``endTime`` are 13-digit epoch milliseconds
   (default: the last 3 hours), start not after end, at most 7 days long, and not
   starting more than 7 days ago;
5. the channel exists and is live (``channel status not live``).

Every reply carries a ``Date`` header from ``wall_clock``, so a client can measure
its clock offset from it, as it must to keep its ``timestamp`` valid.

Where the vendor is silent, **the simulator's choice; the vendor's behaviour is
unconfirmed**:

- the HTTP status of an error is the number in its body's ``code`` (400, 403, 500);
- over the quota: HTTP 403 with code 403 and the vendor's text
  ``qps exceeds number of calls``; the IP block that follows lives in the pipeline;
- the texts for a missing ``channelId`` and for a bad window (all code 400);
- ``sign`` must be the uppercase hex digest, as documented ("32位大写");
- an ``endTime`` in the future is allowed; samples stop at ``wall_clock``;
- ``fail_next(..., 400)`` defaults to ``invalid signature.``, the vendor's own
  example of a 400.

Data: every live channel pushes all the time, with one sample every 5 minutes
(a few seconds after each 5-minute mark), a pure function of ``(seed, channel,
sample time)``. Numbers are strings, as the vendor really sends them, although
its page documents integers; ``time`` is Beijing time with milliseconds and
``timestamp`` is ``null``, as in the vendor's example.

:class:`PolyvSim` holds the settings (channels, quotas, credentials, block); the
simulator builds a :class:`PolyvBackend` from them with its own seed and wall clock.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime
from email.utils import formatdate
from typing import Any

import attrs
from aiohttp import web

from livestats._core.quota import Quota
from livestats.providers.polyv.quotas import DEFAULT_QUOTAS
from livestats.testing._shared import (
    BEIJING,
    Refused,
    VendorBackend,
    copy_quotas,
    credentials_of,
    digest,
    draw,
    int_at_least,
    non_empty_str,
    non_negative_seconds,
    picker,
    quota_table,
    quotas_of,
)

__all__ = ["PolyvBackend", "PolyvCredentials", "PolyvSim"]

PATH = "/live/v3/channel/monitor/list-tencent-stream-info"
OPERATION = "get_stream_info"

# Polyv's official Java SDK docs (docs/live/limit.md): going over the quota (1500
# calls per 10 s per source IP, whole host, in the provider's table) blocks the IP
# for 5 minutes.
DEFAULT_BLOCK_SECONDS = 300.0

BAD_REQUEST = 400
RATE_LIMITED = 403  # unconfirmed
INTERNAL_ERROR = 500

INVALID_SIGNATURE = "invalid signature."
INVALID_TIMESTAMP = "invalid timestamp."
NOT_LIVE = "channel status not live"
_MESSAGES = {
    BAD_REQUEST: INVALID_SIGNATURE,
    RATE_LIMITED: "qps exceeds number of calls",
    INTERNAL_ERROR: "internal error",
}

_TIMESTAMP_TOLERANCE_MS = 180_000
_DEFAULT_WINDOW_MS = 3 * 3_600_000
_MAX_WINDOW_MS = 7 * 86_400_000
_SAMPLE_EVERY_MS = 300_000
_SAMPLE_LAG_MS = 10_000  # a sample lands up to 10 s after its 5-minute mark
# The vendor example's value; it looks like the application part of a push URL.
_STREAM_URL = "recordf"
_ALPHABET = string.ascii_lowercase + string.digits


def _sign(params: Mapping[str, str | None], secret: str) -> str:
    """Polyv's request signature, as ``shared/docs/providers.md`` gives it.

    Drop ``sign`` and every parameter whose value is null or blank, sort the rest
    by key, concatenate ``key1value1key2value2...`` with raw (not URL-encoded)
    values, put the app secret at both ends, and take the MD5 of the UTF-8 bytes as
    uppercase hex. The provider package keeps its own copy; both are checked
    against the vendor's known answer.
    """
    kept = sorted(
        (key, value)
        for key, value in params.items()
        if key != "sign" and value is not None and value.strip()
    )
    text = secret + "".join(key + value for key, value in kept) + secret
    return hashlib.md5(text.encode()).hexdigest().upper()


_NAMESPACE = "polyv"  # keeps this module's seeded draws apart from the others'


def _token(seed: int, name: str, length: int) -> str:
    """``length`` lower-case letters and digits, fixed for ``seed`` and ``name``."""
    raw = digest(seed, _NAMESPACE, name, size=length)
    return "".join(_ALPHABET[byte % len(_ALPHABET)] for byte in raw)


@attrs.frozen(kw_only=True)
class PolyvCredentials:
    """The simulated Polyv account: its app id and app secret."""

    app_id: str = attrs.field(validator=non_empty_str)
    app_secret: str = attrs.field(repr=False, validator=non_empty_str)

    @classmethod
    def from_seed(cls, seed: int) -> PolyvCredentials:
        """Fixed credentials for ``seed``: a 10-character app id, a 32-character secret."""
        return cls(app_id=_token(seed, "app_id", 10), app_secret=_token(seed, "app_secret", 32))


@attrs.frozen(kw_only=True)
class PolyvSim:
    """What the simulator serves as Polyv: ``Simulator(polyv=PolyvSim(...))``.

    ``channels`` live channels and ``offline_channels`` that exist but are not
    live; ``quotas`` overrides the vendor's documented quota (``None`` turns it
    off); ``credentials`` default to :meth:`PolyvCredentials.from_seed` of the
    simulator's ``seed``; ``block_seconds`` is how long a source IP stays refused
    after going over the quota (0: no block, only the window).
    """

    channels: int = attrs.field(default=5, validator=int_at_least(0))
    offline_channels: int = attrs.field(default=2, validator=int_at_least(0))
    quotas: dict[str, Quota | None] | None = attrs.field(
        default=None,
        converter=copy_quotas,
        validator=quotas_of(DEFAULT_QUOTAS, [OPERATION], provider="polyv"),
    )
    credentials: PolyvCredentials | None = attrs.field(
        default=None, validator=credentials_of(PolyvCredentials)
    )
    block_seconds: float = attrs.field(
        default=DEFAULT_BLOCK_SECONDS, validator=non_negative_seconds
    )


def _is_millis(value: str) -> bool:
    return len(value) == 13 and value.isascii() and value.isdigit()


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _window(params: Mapping[str, str | None], now_ms: int) -> tuple[int, int]:
    """``(start, end)`` epoch milliseconds, checked against the 7-day rules."""
    bounds = []
    for name, default in (("startTime", now_ms - _DEFAULT_WINDOW_MS), ("endTime", now_ms)):
        value = params.get(name)
        if value is None or _is_blank(value):
            bounds.append(default)
        elif _is_millis(value):
            bounds.append(int(value))
        else:
            raise Refused(BAD_REQUEST, f"{name} must be a 13-digit epoch in milliseconds")
    start, end = bounds
    if start > end:
        raise Refused(BAD_REQUEST, "startTime must not be after endTime")
    if end - start > _MAX_WINDOW_MS:
        raise Refused(
            BAD_REQUEST, "the period between startTime and endTime must not exceed 7 days"
        )
    if start < now_ms - _MAX_WINDOW_MS:
        raise Refused(BAD_REQUEST, "only the last 7 days can be queried")
    return start, end


def _beijing_time(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms // 1000, BEIJING)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{epoch_ms % 1000:03d}"


class PolyvBackend(VendorBackend):
    """Serves stream monitor info for one simulated Polyv app (see the module docstring)."""

    __slots__ = (
        "_block_seconds",
        "_channels",
        "_credentials",
        "_offline",
        "_seed",
        "_wall_clock",
    )

    provider = "polyv"
    success_code = 200
    rate_limited_code = RATE_LIMITED
    internal_error_code = INTERNAL_ERROR

    def __init__(self, settings: PolyvSim, *, seed: int, wall_clock: Callable[[], float]) -> None:
        super().__init__(
            quota_table(DEFAULT_QUOTAS, [OPERATION], settings.quotas, provider="polyv")
        )
        self._seed = seed
        self._credentials = settings.credentials or PolyvCredentials.from_seed(seed)
        self._wall_clock = wall_clock
        self._block_seconds = float(settings.block_seconds)
        ids = self._channel_ids(settings.channels + settings.offline_channels)
        self._channels = ids[: settings.channels]
        self._offline = ids[settings.channels :]

    def _channel_ids(self, count: int) -> list[str]:
        """``count`` distinct 7-digit channel ids, fixed for the seed."""
        ids: dict[str, None] = {}
        attempt = 0
        while len(ids) < count:
            channel = 1_000_000 + draw(self._seed, _NAMESPACE, "channel", attempt) % 9_000_000
            ids[str(channel)] = None
            attempt += 1
        return list(ids)

    @property
    def credentials(self) -> PolyvCredentials:
        return self._credentials

    @property
    def channel_ids(self) -> list[str]:
        return list(self._channels)

    @property
    def offline_channel_ids(self) -> list[str]:
        return list(self._offline)

    # -- the Backend protocol ----------------------------------------------------

    @property
    def block_seconds(self) -> float:
        return self._block_seconds

    def routes(self) -> Iterable[tuple[str, str, str]]:
        return [("GET", PATH, OPERATION)]

    def quota_scope(self, operation: str, request: web.Request) -> Hashable:
        # Per source IP for the whole host: neither the operation nor the appId counts.
        return request.remote or ""

    def error_reply(self, code: int, message: str | None) -> web.Response:
        text = message if message is not None else _MESSAGES.get(code, "simulated failure")
        status = code if 100 <= code <= 599 else BAD_REQUEST
        return self._reply(status, code, "fail" if code >= 500 else "error", text, "")

    async def respond(self, operation: str, request: web.Request) -> web.Response:
        now_ms = int(self._wall_clock() * 1000)
        # The first value of each parameter: the one the vendor's servlet would read.
        params: dict[str, str | None] = {key: request.query.get(key) for key in request.query}
        self._verify_sign(params)
        self._check_timestamp(params.get("timestamp"), now_ms)
        channel = params.get("channelId")
        if channel is None or _is_blank(channel):
            raise Refused(BAD_REQUEST, "channelId is required")
        start, end = _window(params, now_ms)
        if channel not in self._channels:
            raise Refused(BAD_REQUEST, NOT_LIVE)
        data = self._samples(channel, start, min(end, now_ms))
        return self._reply(200, 200, "success", "", data)

    # -- checks ------------------------------------------------------------------

    def _verify_sign(self, params: Mapping[str, str | None]) -> None:
        app_id, sign = params.get("appId"), params.get("sign")
        expected = _sign(params, self._credentials.app_secret)
        # Nothing about the expected sign goes into the answer: it would let a caller
        # without the secret make a valid request.
        app_ok = app_id == self._credentials.app_id
        if not (
            app_ok and sign is not None and hmac.compare_digest(sign.encode(), expected.encode())
        ):
            raise Refused(BAD_REQUEST, INVALID_SIGNATURE)

    def _check_timestamp(self, timestamp: str | None, now_ms: int) -> None:
        if (
            timestamp is None
            or not _is_millis(timestamp)
            or abs(int(timestamp) - now_ms) > _TIMESTAMP_TOLERANCE_MS
        ):
            raise Refused(BAD_REQUEST, INVALID_TIMESTAMP)

    # -- the answer --------------------------------------------------------------

    def _samples(self, channel: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        marks = range(start_ms // _SAMPLE_EVERY_MS, end_ms // _SAMPLE_EVERY_MS + 1)
        samples = (self._sample(channel, mark) for mark in marks)
        return [sample for at, sample in samples if start_ms <= at <= end_ms]

    def _sample(self, channel: str, mark: int) -> tuple[int, dict[str, Any]]:
        """The sample taken just after 5-minute mark ``mark``, and when (epoch ms)."""

        pick = picker(self._seed, _NAMESPACE, channel, mark)
        at = mark * _SAMPLE_EVERY_MS + pick("lag", _SAMPLE_LAG_MS)
        return at, {
            "streamUrl": _STREAM_URL,
            "bitRate": str(500_000 + pick("bitrate", 3_500_000)),
            "audioFrameRate": str(40 + pick("audio", 11)),
            "videoFrameRate": str(10 + pick("video", 21)),
            "time": _beijing_time(at),
            "timestamp": None,
        }

    def _reply(self, status: int, code: int, state: str, message: str, data: Any) -> web.Response:
        doc = {"code": code, "status": state, "message": message, "data": data}
        headers = {"Date": formatdate(self._wall_clock(), usegmt=True)}
        return web.json_response(doc, status=status, headers=headers)
