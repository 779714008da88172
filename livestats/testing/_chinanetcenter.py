"""The ChinaNetCenter (Wangsu) half of the simulator: stream push durations.

It answers ``POST /api/report/domain/stream/duration`` the way
``shared/docs/providers.md`` and the vendor page
(``shared/vendor-docs/chinanetcenter-stream-push-duration.txt``) describe it. After
the pipeline's quota check, scripts and faults, a request is checked in this order:

1. authentication: a ``Date`` header in RFC 1123 GMT form, and HTTP Basic with the
   account username and ``base64(HMAC-SHA1(api_key, <the exact Date string>))``;
2. headers: ``Accept`` (24102013), ``X-Time-Zone`` (24102020);
3. body: present (24102014), a JSON object whose ``domainStream`` is a list of
   ``{"domain": str, "stream": [str, ...]}`` (24102002), then the dates (24102006,
   24102007), then the domains (24102019, 24102008);
4. the answer: the push sessions of the requested streams in the date range.

Where the vendor is silent, **the simulator's choice; the vendor's behaviour is
unconfirmed**:

- a failed authentication is HTTP 401 with ``{"code": "401", ...}``, and a request
  over the quota HTTP 429 with ``{"code": "429", ...}``; ``Date`` is not checked for
  freshness, only for its form;
- ``Content-Type`` is not checked: the vendor's own curl example posts its JSON
  as ``application/x-www-form-urlencoded``. Only JSON is served, so an ``Accept``
  that does not allow ``application/json`` is refused although the vendor also
  speaks XML;
- ``dateFrom``/``dateTo`` that are ``null`` or blank count as omitted. Both omitted
  means the 7 calendar days ending today (today - 6 .. today); ``dateFrom`` equal
  to ``dateTo`` (one day) is accepted although the vendor says dateTo must be
  "greater"; a future ``dateTo`` is clamped to today *before* the 31-day span is
  measured; "the last half year" reads as "not before the same day 6 calendar
  months ago";
- an empty ``domainStream`` is 24102008 (no domain); a domain the account does not
  have is dropped from the answer; a known domain none of whose streams pushed is
  answered with an empty ``streamList``; a stream that did not push is left out;
- a session is reported once it has ended (by ``wall_clock``), in
  ``durationDetailList`` ordered by start time; the format of ``startTime`` and
  ``endTime`` is a constructor setting (``epoch_s``, the vendor example's epoch
  seconds as strings; ``epoch_ms``; or ``text``, ``yyyy-MM-dd HH:mm:ss`` in the
  request's time zone), because the vendor does not document it.

Push sessions are a pure function of ``(seed, domain, stream, Beijing calendar
day)``: zero to three a day, each 1 to 120 minutes long, none overlapping. They
are fixed in absolute time, so ``X-Time-Zone`` moves the day boundaries of a query
but never the pushes themselves; a session belongs to the day (in the request's
time zone) it starts on, even when it runs past midnight.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs
from aiohttp import web

from livestats._core.quota import Quota, resolve_quotas
from livestats.providers.chinanetcenter.quotas import DEFAULT_QUOTAS

__all__ = ["TIME_FORMATS", "ChinaNetCenterBackend", "ChinaNetCenterCredentials"]

PATH = "/api/report/domain/stream/duration"
OPERATION = "get_stream_durations"

#: How ``startTime``/``endTime`` can be rendered (the vendor's format is unconfirmed).
TIME_FORMATS = ("epoch_s", "epoch_ms", "text")

# Error codes the vendor documents, with their HTTP status and message.
NO_BODY = 24102014
BAD_ACCEPT = 24102013
BAD_TIME_ZONE = 24102020
MALFORMED_BODY = 24102002
INVALID_DATE = 24102006
PERIOD_TOO_LONG = 24102007
INVALID_DOMAIN = 24102008
TOO_MANY_DOMAINS = 24102019
INTERNAL_ERROR = 24102500
# The simulator's choice: the vendor's codes for these are unconfirmed.
UNAUTHORIZED = 401
RATE_LIMITED = 429

MAX_PERIOD_DAYS = 31
_HISTORY_MONTHS = 6
_DEFAULT_DAYS = 7

_ERRORS: dict[int, tuple[int, str]] = {
    NO_BODY: (
        400,
        "This operation requires a body. Ensure that the body is present and the "
        "Content-Type header is set.",
    ),
    BAD_ACCEPT: (400, "The accept header specified in your request is not acceptable."),
    # "in invalid" is the vendor's text, kept verbatim for clients that match on it.
    BAD_TIME_ZONE: (400, "The value of X-Time-Zone header specified in your request in invalid."),
    MALFORMED_BODY: (400, "There was an error in the body of your HTTP request."),
    INVALID_DATE: (400, "The date specified is invalid."),
    PERIOD_TOO_LONG: (
        400,
        f"You cannot specify a period greater than {MAX_PERIOD_DAYS} day(s).",
    ),
    # The double space is the vendor's (an empty placeholder, presumably).
    INVALID_DOMAIN: (400, "param:domain  is null or invalid."),
    TOO_MANY_DOMAINS: (
        400,
        "The request was rejected because the number of Domain({count}) exceeds the "
        "limit ({limit}).",
    ),
    INTERNAL_ERROR: (500, "We encountered an internal error. Please try again."),
    UNAUTHORIZED: (401, "Authentication failed."),
    RATE_LIMITED: (429, "Request frequency exceeds the limit."),
}

_BEIJING = timezone(timedelta(hours=8))
_DEFAULT_TIME_ZONE = _BEIJING
_TIME_ZONE = re.compile(r"GMT([+-])([0-9]{2}):00")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ACCEPTED_MEDIA = frozenset({"application/json", "application/*", "*/*"})

# RFC 1123 dates, parsed by hand: strptime's %a and %b follow the process locale.
_RFC1123 = re.compile(
    r"(?P<wday>[A-Z][a-z]{2}), (?P<day>[0-9]{2}) (?P<month>[A-Z][a-z]{2}) "
    r"(?P<year>[0-9]{4}) (?P<hh>[0-9]{2}):(?P<mm>[0-9]{2}):(?P<ss>[0-9]{2}) GMT"
)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Sessions are laid out per Beijing day (the vendor's home time zone). None starts in
# the first two hours of a day, so the day before's last one, up to two hours long,
# may run past midnight without overlapping.
_DAY_S = 86_400
_QUIET_S = 7_200
_MIN_SESSION_S = 60
_MAX_SESSION_S = 7_200
_MAX_SESSIONS_PER_DAY = 3


def _draw(seed: int, *parts: object) -> int:
    """A 64-bit number that depends only on ``seed`` and ``parts`` (as in ``_tencent``)."""
    text = "\x1f".join(str(part) for part in (seed, "chinanetcenter", *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _non_empty_str(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"ChinaNetCenterCredentials.{attribute.name} must be a non-empty str")


def _basic_username(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # HTTP Basic splits user and password at the first colon.
    if ":" in value:
        raise ValueError("ChinaNetCenterCredentials.username must not contain ':'")


@attrs.frozen(kw_only=True)
class ChinaNetCenterCredentials:
    """The simulated ChinaNetCenter account: its username and API key."""

    username: str = attrs.field(validator=[_non_empty_str, _basic_username])
    api_key: str = attrs.field(repr=False, validator=_non_empty_str)

    @classmethod
    def from_seed(cls, seed: int) -> ChinaNetCenterCredentials:
        """Fixed credentials for ``seed``: ``sim-user-NNNNN`` and a 32-hex-digit key."""
        key = hashlib.blake2b(f"{seed}\x1fchinanetcenter\x1fapi_key".encode(), digest_size=16)
        return cls(
            username=f"sim-user-{_draw(seed, 'username') % 100_000:05d}",
            api_key=key.hexdigest(),
        )


def api_key_password(api_key: str, date_header: str) -> str:
    """The Basic-auth password for a request dated ``date_header``.

    ``base64(HMAC-SHA1(key=api_key, msg=date_header))``, over the exact header text.
    """
    digest = hmac.new(api_key.encode(), date_header.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class _Refused(Exception):
    """Stops a request early with a vendor error code."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@attrs.frozen(kw_only=True)
class _Query:
    """A request that passed every check: what to answer."""

    first_day: date
    last_day: date
    tz: timezone
    now: float
    # Requested domains the account has, each with its requested streams, in order.
    streams: dict[str, list[str]]


def _parse_rfc1123(text: str) -> datetime | None:
    match = _RFC1123.fullmatch(text)
    if match is None or match["month"] not in _MONTHS or match["wday"] not in _WEEKDAYS:
        return None
    try:
        moment = datetime(
            int(match["year"]),
            _MONTHS.index(match["month"]) + 1,
            int(match["day"]),
            int(match["hh"]),
            int(match["mm"]),
            int(match["ss"]),
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None
    return moment if _WEEKDAYS[moment.weekday()] == match["wday"] else None


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic ...`` header, if it is one."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _time_zone(header: str | None) -> timezone:
    if header is None:
        return _DEFAULT_TIME_ZONE
    match = _TIME_ZONE.fullmatch(header.strip())
    if match is None:
        raise _Refused(BAD_TIME_ZONE)
    sign, hours = match[1], int(match[2])
    # Real offsets run from GMT-12:00 to GMT+14:00.
    if hours > (14 if sign == "+" else 12):
        raise _Refused(BAD_TIME_ZONE)
    return timezone(timedelta(hours=-hours if sign == "-" else hours))


def _accepts_json(header: str | None) -> bool:
    if header is None or not header.strip():
        return True
    media = {part.partition(";")[0].strip().lower() for part in header.split(",")}
    return not media.isdisjoint(_ACCEPTED_MEDIA)


def _months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped to the month's end)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def _is_omitted(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse_date(value: object) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise _Refused(INVALID_DATE)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Refused(INVALID_DATE) from None


def _date_range(body: Mapping[str, Any], today: date) -> tuple[date, date]:
    """The inclusive day range to answer for, by the vendor's date rules."""
    raw_from, raw_to = body.get("dateFrom"), body.get("dateTo")
    if _is_omitted(raw_from) and _is_omitted(raw_to):
        return today - timedelta(days=_DEFAULT_DAYS - 1), today
    if _is_omitted(raw_from) or _is_omitted(raw_to):
        raise _Refused(INVALID_DATE)
    first, last = _parse_date(raw_from), _parse_date(raw_to)
    if first > today or first < _months_before(today, _HISTORY_MONTHS):
        raise _Refused(INVALID_DATE)
    last = min(last, today)  # "结束时间如果大于当前时间,取当前时间"
    if first > last:
        raise _Refused(INVALID_DATE)
    if (last - first).days > MAX_PERIOD_DAYS:
        raise _Refused(PERIOD_TOO_LONG)
    return first, last


def _domain_entries(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``domainStream``, checked for shape only (24102002)."""
    entries = body.get("domainStream")
    if not isinstance(entries, list):
        raise _Refused(MALFORMED_BODY)
    for entry in entries:
        if not isinstance(entry, dict):
            raise _Refused(MALFORMED_BODY)
        streams = entry.get("stream")
        if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
            raise _Refused(MALFORMED_BODY)
    return entries


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise _Refused(NO_BODY)
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise _Refused(MALFORMED_BODY) from None
    if not isinstance(doc, dict):
        raise _Refused(MALFORMED_BODY)
    return doc


def _error_body(code: int, message: str | None) -> web.Response:
    status, usual = _ERRORS.get(code, (code if 400 <= code <= 599 else 400, "simulated failure"))
    text = message if message is not None else usual
    return web.json_response({"code": str(code), "message": text}, status=status)


class ChinaNetCenterBackend:
    """Serves stream push durations for one simulated account (see the module docstring)."""

    __slots__ = (
        "_credentials",
        "_domains",
        "_max_domains",
        "_quotas",
        "_seed",
        "_time_format",
        "_wall_clock",
    )

    def __init__(
        self,
        *,
        seed: int,
        quotas: dict[str, Quota | None] | None,
        credentials: ChinaNetCenterCredentials | None,
        wall_clock: Callable[[], float],
        domains: int,
        streams_per_domain: int,
        time_format: str,
        max_domains: int,
    ) -> None:
        _check_count("domains", domains, minimum=0)
        _check_count("streams_per_domain", streams_per_domain, minimum=0)
        _check_count("chinanetcenter_max_domains", max_domains, minimum=1)
        if time_format not in TIME_FORMATS:
            raise ValueError(
                f"chinanetcenter_time_format must be one of {', '.join(TIME_FORMATS)}, "
                f"not {time_format!r}"
            )
        if credentials is not None and not isinstance(credentials, ChinaNetCenterCredentials):
            raise TypeError("chinanetcenter must be a livestats.testing.ChinaNetCenterCredentials")
        self._seed = seed
        self._credentials = credentials or ChinaNetCenterCredentials.from_seed(seed)
        # The provider's table, for the operations served here (it may list more).
        served = {OPERATION: DEFAULT_QUOTAS[OPERATION]}
        self._quotas = resolve_quotas(served, quotas, provider="chinanetcenter")
        self._wall_clock = wall_clock
        self._time_format = time_format
        self._max_domains = max_domains
        apps = ("live", "game")
        self._domains = {
            f"live{d}.example.com": [
                f"{apps[s % 2]}/stream{s:02d}" for s in range(streams_per_domain)
            ]
            for d in range(1, domains + 1)
        }

    @property
    def credentials(self) -> ChinaNetCenterCredentials:
        return self._credentials

    @property
    def domains(self) -> dict[str, list[str]]:
        return {domain: list(streams) for domain, streams in self._domains.items()}

    # -- the Backend protocol ----------------------------------------------------

    @property
    def provider(self) -> str:
        return "chinanetcenter"

    @property
    def quotas(self) -> Mapping[str, Quota | None]:
        return self._quotas

    @property
    def block_seconds(self) -> float:
        return 0.0

    @property
    def success_code(self) -> int:
        return 0

    def routes(self) -> Iterable[tuple[str, str, str]]:
        return [("POST", PATH, OPERATION)]

    def quota_scope(self, operation: str, request: web.Request) -> Hashable:
        # Per account user: the one the request claims, authenticated or not.
        credentials = _basic_auth(request.headers.get("Authorization"))
        return (credentials[0] if credentials else "", operation)

    def error_reply(self, code: int, message: str | None) -> web.Response:
        if code == TOO_MANY_DOMAINS and message is None:
            limit = self._max_domains
            message = _ERRORS[code][1].format(count=limit + 1, limit=limit)
        return _error_body(code, message)

    def rate_limited_reply(self) -> web.Response:
        return _error_body(RATE_LIMITED, None)

    def internal_error_reply(self) -> web.Response:
        return _error_body(INTERNAL_ERROR, None)

    async def answer(self, operation: str, request: web.Request) -> web.Response:
        try:
            self._authenticate(request.headers)
            tz = self._check_headers(request.headers)
            body = await _json_object(request)
            query = self._parse(body, tz, self._wall_clock())
        except _Refused as refused:
            return self.error_reply(refused.code, refused.message)
        doc = {"code": "0", "message": "success", "data": self._durations(query)}
        return web.json_response(doc)

    # -- checks ------------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        # Messages say what is wrong, never what was expected: the password is a secret.
        date_header = headers.get("Date")
        if date_header is None:
            raise _Refused(UNAUTHORIZED, "The Date header is missing.")
        if _parse_rfc1123(date_header) is None:
            raise _Refused(UNAUTHORIZED, "The Date header is not an RFC 1123 GMT date.")
        credentials = _basic_auth(headers.get("Authorization"))
        if credentials is None:
            raise _Refused(UNAUTHORIZED, "HTTP Basic authorization is required.")
        user, password = credentials
        expected = api_key_password(self._credentials.api_key, date_header)
        # Both compared in constant time, and always both, to leak nothing by timing.
        user_ok = hmac.compare_digest(user.encode(), self._credentials.username.encode())
        password_ok = hmac.compare_digest(password.encode(), expected.encode())
        if not (user_ok and password_ok):
            raise _Refused(UNAUTHORIZED, "The username or the signature is wrong.")

    def _check_headers(self, headers: Mapping[str, str]) -> timezone:
        if not _accepts_json(headers.get("Accept")):
            raise _Refused(BAD_ACCEPT)
        return _time_zone(headers.get("X-Time-Zone"))

    def _parse(self, body: Mapping[str, Any], tz: timezone, now: float) -> _Query:
        entries = _domain_entries(body)
        today = datetime.fromtimestamp(now, tz).date()
        first, last = _date_range(body, today)
        if len(entries) > self._max_domains:
            message = _ERRORS[TOO_MANY_DOMAINS][1].format(
                count=len(entries), limit=self._max_domains
            )
            raise _Refused(TOO_MANY_DOMAINS, message)
        if not entries:
            raise _Refused(INVALID_DOMAIN)
        streams: dict[str, list[str]] = {}
        for entry in entries:
            domain = entry.get("domain")
            if not isinstance(domain, str) or not domain.strip():
                raise _Refused(INVALID_DOMAIN)
            if domain not in self._domains:
                continue  # "自动过滤掉无效域名": dropped, not refused
            wanted = streams.setdefault(domain, [])
            for stream in entry["stream"]:
                # Unknown streams are left out like streams that did not push.
                if stream in self._domains[domain] and stream not in wanted:
                    wanted.append(stream)
        return _Query(first_day=first, last_day=last, tz=tz, now=now, streams=streams)

    # -- the answer --------------------------------------------------------------

    def _durations(self, query: _Query) -> list[dict[str, Any]]:
        start = datetime.combine(query.first_day, datetime.min.time(), query.tz)
        end = datetime.combine(query.last_day + timedelta(days=1), datetime.min.time(), query.tz)
        window = (int(start.timestamp()), int(end.timestamp()))
        data = []
        for domain, streams in query.streams.items():
            stream_list = []
            for stream in streams:
                sessions = [
                    (begin, finish)
                    for begin, finish in self._sessions(domain, stream, start, end)
                    if window[0] <= begin < window[1] and finish <= query.now
                ]
                if sessions:
                    stream_list.append(self._stream_entry(domain, stream, sessions, query.tz))
            data.append({"domain": domain, "streamList": stream_list})
        return data

    def _sessions(
        self, domain: str, stream: str, start: datetime, end: datetime
    ) -> Iterator[tuple[int, int]]:
        """Every session of the Beijing days that overlap ``[start, end)``, in order."""
        day = start.astimezone(_BEIJING).date()
        last_day = (end - timedelta(seconds=1)).astimezone(_BEIJING).date()
        while day <= last_day:
            yield from self._sessions_of_day(domain, stream, day)
            day += timedelta(days=1)

    def _sessions_of_day(self, domain: str, stream: str, day: date) -> list[tuple[int, int]]:
        """``(start, end)`` epoch seconds of the pushes starting on Beijing day ``day``."""

        def draw(name: str, bound: int) -> int:
            return _draw(self._seed, domain, stream, day.isoformat(), name) % bound

        midnight = int(datetime.combine(day, datetime.min.time(), _BEIJING).timestamp())
        count = draw("count", _MAX_SESSIONS_PER_DAY + 1)
        if count == 0:
            return []
        # One slot per session; a session ends inside its slot, except the day's last,
        # which may run into the next day's quiet hours.
        slot = (_DAY_S - _QUIET_S) // count
        sessions = []
        for n in range(count):
            length = _MIN_SESSION_S + draw(f"length{n}", _MAX_SESSION_S - _MIN_SESSION_S + 1)
            room = slot if n == count - 1 else slot - length + 1
            begin = midnight + _QUIET_S + n * slot + draw(f"start{n}", room)
            sessions.append((begin, begin + length))
        return sessions

    def _stream_entry(
        self, domain: str, stream: str, sessions: list[tuple[int, int]], tz: timezone
    ) -> dict[str, Any]:
        details = [
            {
                "startTime": self._render(begin, tz),
                "endTime": self._render(finish, tz),
                "duration": (finish - begin) * 1000,
            }
            for begin, finish in sessions
        ]
        return {
            "stream": f"{domain}/{stream}",
            "sumTime": sum(detail["duration"] for detail in details),
            "durationDetailList": details,
        }

    def _render(self, epoch_s: int, tz: timezone) -> str:
        if self._time_format == "epoch_s":
            return str(epoch_s)
        if self._time_format == "epoch_ms":
            return str(epoch_s * 1000)
        return datetime.fromtimestamp(epoch_s, tz).strftime("%Y-%m-%d %H:%M:%S")


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int of at least {minimum}, not {value!r}")
