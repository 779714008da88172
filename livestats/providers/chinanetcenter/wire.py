"""The ChinaNetCenter (Wangsu) wire format: API-key auth, the report body, the answer.

``POST /api/report/domain/stream/duration`` with a JSON body, a ``Date`` header in
RFC 1123 GMT, HTTP Basic auth whose password is ``base64(HMAC-SHA1(api_key,
Date))``, ``Accept: application/json`` and ``X-Time-Zone: GMT±hh:00`` (times in the
request and the answer are in that zone). Errors come with HTTP 400/500 and a
body ``code``; how a quota breach is signalled is unconfirmed (see
:func:`error_for`).
"""

from __future__ import annotations

import calendar
import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs

from livestats._core.answers import load_json, not_json
from livestats._core.convert import make_converter, wire
from livestats._core.http import HttpRequest, HttpResponse
from livestats._core.outcome import Refusal
from livestats.errors import (
    AuthenticationError,
    LiveStatsError,
    ProviderError,
    RateLimitedError,
    ResponseDecodingError,
)
from livestats.providers.chinanetcenter.auth import Auth, date_header, password

__all__ = [
    "CONVERTER",
    "DEFAULT_BASE_URL",
    "OPERATION",
    "PROVIDER",
    "date_header",
    "encode_body",
    "error_for",
    "open_answer",
    "parse_time",
    "parse_time_zone",
    "password",
    "refusal",
    "signed_request",
]

PROVIDER = "chinanetcenter"
DEFAULT_BASE_URL = "https://open.chinanetcenter.com"
PATH = "/api/report/domain/stream/duration"
OPERATION = "get_stream_durations"

#: The vendor's limits (vendor page, providers.md).
MAX_SPAN = timedelta(days=31)
KEPT_MONTHS = 6
DEFAULT_DAYS = 7

_TIME_ZONE = re.compile(r"^GMT([+-])(\d{2}):00$")

# Documented codes (vendor page). 24102019's text says "exceeds the limit" but is
# about domains, not frequency: known codes are classified before any guessing.
_INTERNAL = "24102500"
_KNOWN = {
    "24102014": "no request body",
    "24102013": "Accept header not acceptable",
    "24102020": "invalid X-Time-Zone",
    "24102002": "malformed request body",
    "24102006": "invalid date or period",
    "24102007": "period longer than the vendor allows",
    "24102008": "invalid domain",
    "24102019": "more domains than the account allows in one request "
    "(lower max_domains_per_request)",
    _INTERNAL: "internal error",
}
# Unconfirmed: how the vendor says "too many requests". providers.md: HTTP 429,
# or a code or message that speaks of frequency, limits or "too many".
_SOUNDS_RATE_LIMITED = re.compile(
    r"frequen|too many|rate.?limit|limit|throttl|qps|频率|频繁", re.IGNORECASE
)


def parse_time_zone(value: object) -> timezone:
    """``GMT+08:00`` → a fixed-offset timezone; raises ValueError for anything else."""
    match = _TIME_ZONE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"time_zone must look like 'GMT+08:00', not {value!r}")
    sign, hours = match.groups()
    offset = int(hours) * (-1 if sign == "-" else 1)
    if not -12 <= offset <= 14:
        raise ValueError(f"time_zone offset out of range: {value!r}")
    return timezone(timedelta(hours=offset))


def signed_request(
    base_url: str,
    body: bytes,
    *,
    auth: Auth,
    time_zone: str,
    now: float,
) -> HttpRequest:
    """The request for one attempt, signed afresh (its own ``Date`` or ``x-cnc-timestamp``)."""
    url = f"{base_url}{PATH}"
    auth_headers, derived = auth.headers(method="POST", url=url, body=body, now=now)
    return HttpRequest(
        method="POST",
        url=url,
        headers={
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Time-Zone": time_zone,
            **auth_headers,
        },
        body=body,
        secret_names=frozenset({"Authorization"}),
        derived_secrets=derived,
    )


def encode_body(
    domain_streams: dict[str, list[str]], date_from: date | None, date_to: date | None
) -> bytes:
    """The report body; dates are left out together to get the vendor's default period."""
    fields: dict[str, Any] = {}
    if date_from is not None and date_to is not None:
        fields["dateFrom"] = date_from.isoformat()
        fields["dateTo"] = date_to.isoformat()
    fields["domainStream"] = [
        {"domain": domain, "stream": streams} for domain, streams in domain_streams.items()
    ]
    return json.dumps(fields).encode()


def earliest_date(today: date) -> date:
    """The oldest day the vendor still reports: about six calendar months back."""
    month_index = today.year * 12 + today.month - 1 - KEPT_MONTHS
    year, month = divmod(month_index, 12)
    month += 1
    day = min(today.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


# -- the answer --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class WireSession:
    start_time: Any = attrs.field(metadata=wire("startTime"))
    end_time: Any = attrs.field(metadata=wire("endTime"))
    duration_ms: int = attrs.field(metadata=wire("duration", count=True))


@attrs.frozen(kw_only=True)
class WireStream:
    stream: str = attrs.field(metadata=wire("stream"))
    sum_time_ms: int = attrs.field(metadata=wire("sumTime", count=True))
    sessions: tuple[WireSession, ...] = attrs.field(default=(), metadata=wire("durationDetailList"))


@attrs.frozen(kw_only=True)
class WireDomain:
    domain: str = attrs.field(metadata=wire("domain"))
    streams: tuple[WireStream, ...] = attrs.field(default=(), metadata=wire("streamList"))


@attrs.frozen(kw_only=True)
class WireReport:
    data: tuple[WireDomain, ...] = attrs.field(metadata=wire("data"))


CONVERTER = make_converter()


def open_answer(response: HttpResponse) -> dict[str, Any]:
    """The answer document of a success, or raise the typed error it stands for."""
    context: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": OPERATION,
        "http_status": response.status,
    }
    try:
        doc = load_json(response.body)
    except ValueError:
        if response.status == 429:
            raise error_for(response.status, None, None, context) from None
        raise not_json(response, context) from None
    if not isinstance(doc, dict):
        raise _unreadable(response, context)
    code = doc.get("code")
    message = doc.get("message") if isinstance(doc.get("message"), str) else None
    if code in ("0", 0) and response.status < 400:
        return doc
    if code is None and response.status < 400:
        raise ResponseDecodingError("the answer has no code", **context)
    raise error_for(response.status, None if code is None else str(code), message, context)


def refusal(err: LiveStatsError) -> Refusal:
    """What an error answer asks the engine to do: refused credentials stop the client."""
    if isinstance(err, AuthenticationError):
        return Refusal.of(err, credentials_refused=True)
    return Refusal.of(err)


def error_for(
    status: int, code: str | None, message: str | None, context: dict[str, Any]
) -> LiveStatsError:
    """The one place a ChinaNetCenter answer picks an error class."""
    vendor: dict[str, Any] = {"vendor_code": code, "vendor_message": message}
    if code in _KNOWN:
        text = f"ChinaNetCenter error {code}: {_KNOWN[code]}"
        return ProviderError(text, retryable=code == _INTERNAL, **vendor, **context)
    said = f"{code or ''} {message or ''}"
    if status == 429 or _SOUNDS_RATE_LIMITED.search(said):
        return RateLimitedError("ChinaNetCenter: too many requests", **vendor, **context)
    if status in (401, 403):
        return AuthenticationError(
            f"ChinaNetCenter refused the credentials (HTTP {status})", **vendor, **context
        )
    return ProviderError(
        f"ChinaNetCenter error {code or f'HTTP {status}'}",
        retryable=status >= 500,
        **vendor,
        **context,
    )


def _unreadable(response: HttpResponse, context: dict[str, Any]) -> LiveStatsError:
    if response.status >= 500 or response.status == 429:
        return error_for(response.status, None, None, context)
    return ResponseDecodingError("the answer is not a JSON object", **context)


def parse_time(value: object, zone: timezone) -> datetime:
    """A time from the answer as an aware datetime in ``zone``.

    The vendor documents these fields as strings and its example shows epoch
    seconds; the format is unconfirmed, so epoch seconds or milliseconds (as
    numbers or strings) and date-time text in the request's time zone are all
    accepted. Raises ValueError for anything else, out-of-range times included.
    """
    try:
        return _parse_time(value, zone)
    except (OverflowError, OSError) as exc:  # far outside what datetime can hold
        raise ValueError(f"time out of range: {exc}") from None


def _parse_time(value: object, zone: timezone) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _from_epoch(int(text), zone)
        return _from_text(text, zone)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_epoch(value, zone)
    raise ValueError(f"expected a time, got {type(value).__name__}")


def _from_epoch(value: float, zone: timezone) -> datetime:
    # Epoch milliseconds have 13 digits for any date after 1973; seconds have 10.
    seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
    return datetime.fromtimestamp(seconds, tz=zone)


def _from_text(text: str, zone: timezone) -> datetime:
    parsed = datetime.fromisoformat(text.replace("/", "-"))
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)
