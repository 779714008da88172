"""The ChinaNetCenter (Wangsu) half of the simulator: stream push durations.

It answers ``POST /api/report/domain/stream/duration`` the way
``shared/docs/providers.md`` and the vendor page
(``shared/vendor-docs/chinanetcenter-stream-push-duration.txt``) describe it. After
the pipeline's quota check, scripts and faults, a request is checked in this order:

1. authentication, by either of the vendor's two schemes (chosen by the scheme of
   the ``Authorization`` header):

   - API key: a ``Date`` header in RFC 1123 GMT form, and HTTP Basic with the
     account username and ``base64(HMAC-SHA1(api_key, <the exact Date string>))``;
   - AK/SK (``CNC-HMAC-SHA256``): ``x-cnc-auth-method: AKSK``, ``x-cnc-accessKey``
     and ``Authorization: CNC-HMAC-SHA256 Credential=<access key>,
     SignedHeaders=<names>, Signature=<hex>`` naming the account's access key,
     ``x-cnc-timestamp`` (epoch seconds) within :data:`AKSK_TIMESTAMP_TOLERANCE_S`
     of ``wall_clock``, ``SignedHeaders`` covering at least ``content-type`` and
     ``host``, every signed header present, and the signature
     (:func:`aksk_signature`) recomputed over the request exactly as received:
     method, path, query (empty for POST), the signed headers' values as sent
     (``Host`` included), the SHA-256 of the exact body bytes;
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
- AK/SK: how far ``x-cnc-timestamp`` may drift from the vendor's clock is
  unconfirmed: :data:`AKSK_TIMESTAMP_TOLERANCE_S` (15 minutes, either way) is the
  simulator's; ``x-cnc-auth-method`` and the signed header names are compared
  case-insensitively, and the names put in sorted order before the signature is
  recomputed;
- the quota counts per account user with the API key scheme (the username the
  request claims) and per access key with AK/SK (the ``x-cnc-accessKey`` it
  sends): the vendor says "per user", and whether an AK/SK request counts per
  access key or per user is unconfirmed;
- ``Content-Type`` is not checked (AK/SK must sign it, whatever it says): the
  vendor's own curl example posts its JSON as
  ``application/x-www-form-urlencoded``. Only JSON is served, so an ``Accept``
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
  ``endTime`` is a setting (:attr:`ChinaNetCenterSim.time_format`: ``epoch_s``,
  the vendor example's epoch seconds as strings; ``epoch_ms``; or ``text``,
  ``yyyy-MM-dd HH:mm:ss`` in the request's time zone), because the vendor does
  not document it.

Push sessions are a pure function of ``(seed, domain, stream, Beijing calendar
day)``: zero to three a day, each 1 to 120 minutes long, none overlapping. They
are fixed in absolute time, so ``X-Time-Zone`` moves the day boundaries of a query
but never the pushes themselves; a session belongs to the day (in the request's
time zone) it starts on, even when it runs past midnight.

:class:`ChinaNetCenterSim` holds the settings (domains, streams, quotas,
credentials, time format, domains per request); the simulator builds a
:class:`ChinaNetCenterBackend` from them with its own seed and wall clock.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs
from aiohttp import web

from livestats._core.quota import Quota
from livestats.providers.chinanetcenter.quotas import DEFAULT_QUOTAS
from livestats.testing._shared import (
    BEIJING,
    Refused,
    VendorBackend,
    copy_quotas,
    credentials_of,
    draw,
    hex_secret,
    int_at_least,
    json_object,
    non_empty_str,
    one_of,
    picker,
    quota_table,
    quotas_of,
)

__all__ = [
    "AKSK_TIMESTAMP_TOLERANCE_S",
    "TIME_FORMATS",
    "ChinaNetCenterBackend",
    "ChinaNetCenterCredentials",
    "ChinaNetCenterSim",
    "aksk_signature",
    "api_key_password",
]

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

#: How far (seconds, either way) an AK/SK ``x-cnc-timestamp`` may be from
#: ``wall_clock``. The simulator's choice: the vendor's tolerance is unconfirmed.
AKSK_TIMESTAMP_TOLERANCE_S = 15 * 60
AKSK_ALGORITHM = "CNC-HMAC-SHA256"
# The signed headers the vendor's SDK always signs; a signature without them
# would let a request be replayed at another host or with another body type.
_AKSK_REQUIRED_SIGNED = frozenset({"content-type", "host"})
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

_DEFAULT_TIME_ZONE = BEIJING
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


_NAMESPACE = "chinanetcenter"  # keeps this module's seeded draws apart from the others'


def _basic_username(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # HTTP Basic splits user and password at the first colon.
    if ":" in value:
        raise ValueError("ChinaNetCenterCredentials.username must not contain ':'")


def _header_value(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # The access key travels in a header and inside Authorization's comma list.
    if any(char in value for char in ", \r\n\t"):
        raise ValueError(
            f"ChinaNetCenterCredentials.{attribute.name} must not contain commas or white space"
        )


@attrs.frozen(kw_only=True)
class ChinaNetCenterCredentials:
    """The simulated ChinaNetCenter account, with the keys of both auth schemes.

    ``username`` and ``api_key`` for the API key scheme (HTTP Basic over ``Date``);
    ``access_key`` and ``secret_key`` for AK/SK (``CNC-HMAC-SHA256``).
    """

    username: str = attrs.field(validator=[non_empty_str, _basic_username])
    api_key: str = attrs.field(repr=False, validator=non_empty_str)
    access_key: str = attrs.field(validator=[non_empty_str, _header_value])
    secret_key: str = attrs.field(repr=False, validator=non_empty_str)

    @classmethod
    def from_seed(cls, seed: int) -> ChinaNetCenterCredentials:
        """Fixed credentials for ``seed``.

        ``sim-user-NNNNN``, a 32-hex-digit API key, ``sim-ak-`` and 16 hex digits,
        a 64-hex-digit secret key.
        """
        return cls(
            username=f"sim-user-{draw(seed, _NAMESPACE, 'username') % 100_000:05d}",
            api_key=hex_secret(seed, _NAMESPACE, "api_key", size=16),
            access_key=f"sim-ak-{hex_secret(seed, _NAMESPACE, 'access_key', size=8)}",
            secret_key=hex_secret(seed, _NAMESPACE, "secret_key", size=32),
        )


@attrs.frozen(kw_only=True)
class ChinaNetCenterSim:
    """What the simulator serves as ChinaNetCenter: ``Simulator(chinanetcenter=...)``.

    ``domains`` domains ``live1.example.com``, ``live2.example.com``, ..., each with
    ``streams_per_domain`` ``app/stream`` names; ``quotas`` overrides the vendor's
    documented quota (``None`` turns it off); ``credentials`` default to
    :meth:`ChinaNetCenterCredentials.from_seed` of the simulator's ``seed``.
    ``time_format`` is how ``startTime``/``endTime`` are written (``epoch_s``,
    ``epoch_ms`` or ``text``), since the vendor does not document it: test a
    client against each. ``max_domains`` is the account's domains-per-request
    limit (the vendor's default is 1).
    """

    domains: int = attrs.field(default=3, validator=int_at_least(0))
    streams_per_domain: int = attrs.field(default=4, validator=int_at_least(0))
    quotas: dict[str, Quota | None] | None = attrs.field(
        default=None,
        converter=copy_quotas,
        validator=quotas_of(DEFAULT_QUOTAS, [OPERATION], provider="chinanetcenter"),
    )
    credentials: ChinaNetCenterCredentials | None = attrs.field(
        default=None, validator=credentials_of(ChinaNetCenterCredentials)
    )
    time_format: str = attrs.field(default="epoch_s", validator=one_of(TIME_FORMATS))
    max_domains: int = attrs.field(default=1, validator=int_at_least(1))


def api_key_password(api_key: str, date_header: str) -> str:
    """The Basic-auth password for a request dated ``date_header``.

    ``base64(HMAC-SHA1(key=api_key, msg=date_header))``, over the exact header text.
    """
    digest = hmac.new(api_key.encode(), date_header.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aksk_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    signed_headers: Mapping[str, str],
    body: bytes,
    timestamp: str,
) -> str:
    """The AK/SK (``CNC-HMAC-SHA256``) signature, as ``shared/docs/providers.md`` gives it.

    ``signed_headers`` maps each signed header's name to its value as sent; names
    are lower-cased and sorted here, values lower-cased. Written from the document,
    independently of the SDK's signer; both are checked against the vendor's known
    answer.
    """
    headers = sorted((name.lower(), value) for name, value in signed_headers.items())
    canonical_headers = "".join(f"{name}:{value.lower()}\n" for name, value in headers)
    names = ";".join(name for name, _ in headers)
    canonical_request = "\n".join(
        (method, path, query, canonical_headers, names, hashlib.sha256(body).hexdigest())
    )
    string_to_sign = "\n".join(
        (AKSK_ALGORITHM, timestamp, hashlib.sha256(_raw(canonical_request)).hexdigest())
    )
    return hmac.new(secret_key.encode(), _raw(string_to_sign), hashlib.sha256).hexdigest()


def _raw(text: str) -> bytes:
    """``text`` as the bytes it was received as.

    aiohttp keeps header bytes that are not UTF-8 as surrogates, which a plain
    ``encode()`` refuses with an exception (an HTTP 500) rather than a 401.
    """
    return text.encode("utf-8", "surrogateescape")


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


def _scheme(header: str | None) -> tuple[str, str]:
    """``(scheme, rest)`` of an ``Authorization`` header; the scheme lower-cased."""
    scheme, _, rest = (header or "").strip().partition(" ")
    return scheme.lower(), rest


def _is_aksk(header: str | None) -> bool:
    return _scheme(header)[0] == AKSK_ALGORITHM.lower()


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic ...`` header, if it is one."""
    scheme, token = _scheme(header)
    if scheme != "basic":
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
        raise Refused(BAD_TIME_ZONE)
    sign, hours = match[1], int(match[2])
    # Real offsets run from GMT-12:00 to GMT+14:00.
    if hours > (14 if sign == "+" else 12):
        raise Refused(BAD_TIME_ZONE)
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
        raise Refused(INVALID_DATE)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Refused(INVALID_DATE) from None


def _date_range(body: Mapping[str, Any], today: date) -> tuple[date, date]:
    """The inclusive day range to answer for, by the vendor's date rules."""
    raw_from, raw_to = body.get("dateFrom"), body.get("dateTo")
    if _is_omitted(raw_from) and _is_omitted(raw_to):
        return today - timedelta(days=_DEFAULT_DAYS - 1), today
    if _is_omitted(raw_from) or _is_omitted(raw_to):
        raise Refused(INVALID_DATE)
    first, last = _parse_date(raw_from), _parse_date(raw_to)
    if first > today or first < _months_before(today, _HISTORY_MONTHS):
        raise Refused(INVALID_DATE)
    last = min(last, today)  # "结束时间如果大于当前时间,取当前时间"
    if first > last:
        raise Refused(INVALID_DATE)
    if (last - first).days > MAX_PERIOD_DAYS:
        raise Refused(PERIOD_TOO_LONG)
    return first, last


def _domain_entries(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``domainStream``, checked for shape only (24102002)."""
    entries = body.get("domainStream")
    if not isinstance(entries, list):
        raise Refused(MALFORMED_BODY)
    for entry in entries:
        if not isinstance(entry, dict):
            raise Refused(MALFORMED_BODY)
        streams = entry.get("stream")
        if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
            raise Refused(MALFORMED_BODY)
    return entries


def _aksk_fields(header: str) -> dict[str, str]:
    """``Credential``, ``SignedHeaders`` and ``Signature`` of a CNC-HMAC-SHA256 header."""
    fields = {}
    for part in _scheme(header)[1].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip()
    if not all(fields.get(name) for name in ("Credential", "SignedHeaders", "Signature")):
        raise Refused(
            UNAUTHORIZED,
            "The Authorization header must carry Credential, SignedHeaders and Signature.",
        )
    return fields


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise Refused(NO_BODY)
    return json_object(raw, code=MALFORMED_BODY)


def _error_body(code: int, message: str | None) -> web.Response:
    status, usual = _ERRORS.get(code, (code if 400 <= code <= 599 else 400, "simulated failure"))
    text = message if message is not None else usual
    return web.json_response({"code": str(code), "message": text}, status=status)


class ChinaNetCenterBackend(VendorBackend):
    """Serves stream push durations for one simulated account (see the module docstring)."""

    __slots__ = (
        "_credentials",
        "_domains",
        "_max_domains",
        "_seed",
        "_time_format",
        "_wall_clock",
    )

    provider = "chinanetcenter"
    success_code = 0
    rate_limited_code = RATE_LIMITED
    internal_error_code = INTERNAL_ERROR

    def __init__(
        self, settings: ChinaNetCenterSim, *, seed: int, wall_clock: Callable[[], float]
    ) -> None:
        super().__init__(
            quota_table(DEFAULT_QUOTAS, [OPERATION], settings.quotas, provider="chinanetcenter")
        )
        self._seed = seed
        self._credentials = settings.credentials or ChinaNetCenterCredentials.from_seed(seed)
        self._wall_clock = wall_clock
        self._time_format = settings.time_format
        self._max_domains = settings.max_domains
        apps = ("live", "game")
        self._domains = {
            f"live{d}.example.com": [
                f"{apps[s % 2]}/stream{s:02d}" for s in range(settings.streams_per_domain)
            ]
            for d in range(1, settings.domains + 1)
        }

    @property
    def credentials(self) -> ChinaNetCenterCredentials:
        return self._credentials

    @property
    def domains(self) -> dict[str, list[str]]:
        return {domain: list(streams) for domain, streams in self._domains.items()}

    # -- the Backend protocol ----------------------------------------------------

    def routes(self) -> Iterable[tuple[str, str, str]]:
        return [("POST", PATH, OPERATION)]

    def quota_scope(self, operation: str, request: web.Request) -> Hashable:
        # The key the request claims, authenticated or not: the access key with
        # AK/SK, the account user with Basic (see the module docstring).
        headers = request.headers
        if _is_aksk(headers.get("Authorization")):
            return ("access_key", headers.get("x-cnc-accessKey", ""), operation)
        credentials = _basic_auth(headers.get("Authorization"))
        return ("user", credentials[0] if credentials else "", operation)

    def error_reply(self, code: int, message: str | None) -> web.Response:
        if code == TOO_MANY_DOMAINS and message is None:
            limit = self._max_domains
            message = _ERRORS[code][1].format(count=limit + 1, limit=limit)
        return _error_body(code, message)

    async def respond(self, operation: str, request: web.Request) -> web.Response:
        raw = await request.read()
        if _is_aksk(request.headers.get("Authorization")):
            self._verify_aksk(request, raw)
        else:
            self._verify_basic(request.headers)
        tz = self._check_headers(request.headers)
        query = self._parse(_json_body(raw), tz, self._wall_clock())
        doc = {"code": "0", "message": "success", "data": self._durations(query)}
        return web.json_response(doc)

    # -- authentication ----------------------------------------------------------
    # Messages say what is wrong, never what was expected: that would be a secret.

    def _verify_basic(self, headers: Mapping[str, str]) -> None:
        date_header = headers.get("Date")
        if date_header is None:
            raise Refused(UNAUTHORIZED, "The Date header is missing.")
        if _parse_rfc1123(date_header) is None:
            raise Refused(UNAUTHORIZED, "The Date header is not an RFC 1123 GMT date.")
        credentials = _basic_auth(headers.get("Authorization"))
        if credentials is None:
            raise Refused(UNAUTHORIZED, "HTTP Basic authorization is required.")
        user, password = credentials
        expected = api_key_password(self._credentials.api_key, date_header)
        # Both compared in constant time, and always both, to leak nothing by timing.
        user_ok = hmac.compare_digest(user.encode(), self._credentials.username.encode())
        password_ok = hmac.compare_digest(password.encode(), expected.encode())
        if not (user_ok and password_ok):
            raise Refused(UNAUTHORIZED, "The username or the signature is wrong.")

    def _verify_aksk(self, request: web.Request, body: bytes) -> None:
        headers = request.headers
        fields = _aksk_fields(headers["Authorization"])
        if headers.get("x-cnc-auth-method", "").strip().upper() != "AKSK":
            raise Refused(UNAUTHORIZED, "The x-cnc-auth-method header must be AKSK.")
        access_key = headers.get("x-cnc-accessKey")
        if access_key is None:
            raise Refused(UNAUTHORIZED, "The x-cnc-accessKey header is missing.")
        timestamp = self._aksk_timestamp(headers.get("x-cnc-timestamp"))
        names = [name.strip().lower() for name in fields["SignedHeaders"].split(";")]
        if not _AKSK_REQUIRED_SIGNED.issubset(names):
            raise Refused(UNAUTHORIZED, "SignedHeaders must include content-type and host.")
        signed = {}
        for name in names:
            value = headers.get(name)
            if value is None:
                raise Refused(UNAUTHORIZED, f"The signed header {name!r} is missing.")
            signed[name] = value
        expected = aksk_signature(
            self._credentials.secret_key,
            method=request.method,
            path=request.rel_url.raw_path,
            query="" if request.method == "POST" else request.rel_url.raw_query_string,
            signed_headers=signed,
            body=body,
            timestamp=timestamp,
        )
        own_key = self._credentials.access_key.encode()
        # All three compared in constant time, and always all three.
        header_ok = hmac.compare_digest(_raw(access_key), own_key)
        credential_ok = hmac.compare_digest(_raw(fields["Credential"]), own_key)
        signature_ok = hmac.compare_digest(_raw(fields["Signature"]), expected.encode())
        if not (header_ok and credential_ok and signature_ok):
            raise Refused(UNAUTHORIZED, "The access key or the signature is wrong.")

    def _aksk_timestamp(self, header: str | None) -> str:
        # Twelve digits reach the year 33658; more is garbage, and int() of a long
        # enough string would raise instead of refusing.
        if header is None or not (header.isascii() and header.isdigit()) or len(header) > 12:
            raise Refused(UNAUTHORIZED, "The x-cnc-timestamp header must be epoch seconds.")
        if abs(int(header) - self._wall_clock()) > AKSK_TIMESTAMP_TOLERANCE_S:
            raise Refused(UNAUTHORIZED, "The x-cnc-timestamp header is too far from now.")
        return header

    # -- checks ------------------------------------------------------------------

    def _check_headers(self, headers: Mapping[str, str]) -> timezone:
        if not _accepts_json(headers.get("Accept")):
            raise Refused(BAD_ACCEPT)
        return _time_zone(headers.get("X-Time-Zone"))

    def _parse(self, body: Mapping[str, Any], tz: timezone, now: float) -> _Query:
        entries = _domain_entries(body)
        today = datetime.fromtimestamp(now, tz).date()
        first, last = _date_range(body, today)
        if len(entries) > self._max_domains:
            message = _ERRORS[TOO_MANY_DOMAINS][1].format(
                count=len(entries), limit=self._max_domains
            )
            raise Refused(TOO_MANY_DOMAINS, message)
        if not entries:
            raise Refused(INVALID_DOMAIN)
        streams: dict[str, list[str]] = {}
        for entry in entries:
            domain = entry.get("domain")
            if not isinstance(domain, str) or not domain.strip():
                raise Refused(INVALID_DOMAIN)
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
        day = start.astimezone(BEIJING).date()
        last_day = (end - timedelta(seconds=1)).astimezone(BEIJING).date()
        while day <= last_day:
            yield from self._sessions_of_day(domain, stream, day)
            day += timedelta(days=1)

    def _sessions_of_day(self, domain: str, stream: str, day: date) -> list[tuple[int, int]]:
        """``(start, end)`` epoch seconds of the pushes starting on Beijing day ``day``."""

        pick = picker(self._seed, _NAMESPACE, domain, stream, day.isoformat())
        midnight = int(datetime.combine(day, datetime.min.time(), BEIJING).timestamp())
        count = pick("count", _MAX_SESSIONS_PER_DAY + 1)
        if count == 0:
            return []
        # One slot per session; a session ends inside its slot, except the day's last,
        # which may run into the next day's quiet hours.
        slot = (_DAY_S - _QUIET_S) // count
        sessions = []
        for n in range(count):
            length = _MIN_SESSION_S + pick(f"length{n}", _MAX_SESSION_S - _MIN_SESSION_S + 1)
            room = slot if n == count - 1 else slot - length + 1
            begin = midnight + _QUIET_S + n * slot + pick(f"start{n}", room)
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
