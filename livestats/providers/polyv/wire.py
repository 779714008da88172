"""The Polyv live API wire format: signing, the answer envelope, error mapping, the converter.

Every call is a ``GET`` on the API host with the query ``appId``, ``timestamp``
(13-digit epoch ms, valid 3 minutes), the operation's own parameters and ``sign``.
An answer is ``{"code", "status", "message", "data"}``: ``code`` 200 with
``status`` "success" on success, 40x with "error" or 500 with "fail" otherwise.
Whether the HTTP status follows the body's ``code`` is **unconfirmed**, so an
answer is classified from its body first (known messages, then ``code``) and
from the HTTP status only when the body says nothing usable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import cattrs

from livestats._core.answers import http_date, load_json, not_json
from livestats._core.convert import make_converter
from livestats._core.http import HttpRequest, HttpResponse
from livestats.errors import (
    AuthenticationError,
    ChannelNotLiveError,
    CredentialsExpiredError,
    LiveStatsError,
    ProviderError,
    RateLimitedError,
    ResponseDecodingError,
)

__all__ = [
    "BASE_URL",
    "BLOCK_SECONDS",
    "CONVERTER",
    "PROVIDER",
    "epoch_ms",
    "open_envelope",
    "server_time",
    "sign",
    "signed_request",
]

PROVIDER = "polyv"
BASE_URL = "https://api.polyv.net"
STREAM_INFO_PATH = "/live/v3/channel/monitor/list-tencent-stream-info"

#: The query parameter that carries the signature. It is not the secret, but it is
#: derived from it and proves the request: kept out of logs all the same.
SECRET_PARAMS = frozenset({"sign"})

#: How long Polyv blocks the source IP after a quota breach (5 minutes, providers.md).
BLOCK_SECONDS = 300.0

#: Beijing time: the vendor's ``time`` values carry no zone, and all evidence says UTC+8.
BEIJING = timezone(timedelta(hours=8))

_SUCCESS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")


# -- signing ----------------------------------------------------------------------------


def signable(params: Mapping[str, str | None]) -> dict[str, str]:
    """The parameters that take part in the signature: no ``sign``, none null or blank."""
    return {
        key: value
        for key, value in params.items()
        if key != "sign" and value is not None and value.strip()
    }


def sign(params: Mapping[str, str | None], app_secret: str) -> str:
    """Polyv's signature: MD5 of ``secret + k1v1k2v2... + secret``, keys in ASCII order.

    Null and blank values are left out, values are used raw (not URL-encoded), and
    the digest is upper-case hex.
    """
    kept = signable(params)
    plain = "".join(f"{key}{kept[key]}" for key in sorted(kept))
    text = f"{app_secret}{plain}{app_secret}"
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds (exact integer arithmetic, no float rounding)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def signed_request(
    base_url: str,
    path: str,
    fields: Mapping[str, str | None],
    *,
    app_id: str,
    app_secret: str,
    timestamp_ms: int,
) -> HttpRequest:
    """The request for one attempt: a fresh ``timestamp`` and ``sign`` every time.

    Parameters that are null or blank are neither signed nor sent.
    """
    params = signable({"appId": app_id, "timestamp": str(timestamp_ms), **fields})
    params["sign"] = sign(params, app_secret)
    return HttpRequest(
        method="GET", url=f"{base_url}{path}", params=params, secret_names=SECRET_PARAMS
    )


# -- answers ------------------------------------------------------------------------------


def open_envelope(response: HttpResponse, operation: str) -> list[Any]:
    """The ``data`` list of a successful answer, or raise the error the answer means."""
    context: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "http_status": response.status,
    }
    try:
        doc = load_json(response.body)
    except ValueError:
        raise _not_json(response, context) from None
    if not isinstance(doc, dict):
        raise _off_envelope(response, "the answer is not a JSON object", context)
    code = _code(doc.get("code"))
    message = _message(doc)
    if code == _SUCCESS:
        return _data(doc, context)
    known = _error_for_message(code, message, context)
    if known is not None:
        raise known
    if code is None:
        raise _off_envelope(response, "the answer has no integer code", context)
    raise _error_for_code(code, message, doc.get("status"), context)


def _code(value: object) -> int | None:
    """The envelope's ``code``: an int, or a string of digits (tolerated, like the data's)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit():  # isdigit() alone lets "²" through to int()
        return int(text)
    return None


def _message(doc: Mapping[str, Any]) -> str | None:
    """``message``, or else the ``error.desc`` the vendor's field list also documents."""
    message = doc.get("message")
    if isinstance(message, str) and message.strip():
        return message
    error = doc.get("error")
    desc = error.get("desc") if isinstance(error, dict) else None
    return desc if isinstance(desc, str) and desc.strip() else None


def _data(doc: Mapping[str, Any], context: dict[str, Any]) -> list[Any]:
    data = doc.get("data")
    if not isinstance(data, list):
        raise ResponseDecodingError(
            f"a successful answer whose data is {type(data).__name__}, not a list",
            vendor_code=_SUCCESS,
            **context,
        )
    return data


def _error_for_message(
    code: int | None, message: str | None, context: dict[str, Any]
) -> ProviderError | None:
    """The error a known vendor message names, whatever its code (codes are not all known)."""
    text = (message or "").casefold()
    fields: dict[str, Any] = {"vendor_code": code, "vendor_message": message, **context}
    if "qps exceeds" in text:
        return _blocked(fields)
    if "invalid timestamp" in text:
        return CredentialsExpiredError(
            "Polyv refused the request's timestamp: the local clock is more than "
            "3 minutes off Polyv's",
            **fields,
        )
    if "invalid signature" in text:
        return AuthenticationError(
            "Polyv refused the signature: check the app id and app secret", **fields
        )
    if "not live" in text:
        return ChannelNotLiveError("the channel is not live on Tencent CDN", **fields)
    return None


def _blocked(fields: dict[str, Any]) -> RateLimitedError:
    # The vendor's code for this answer is unconfirmed: it is known by its message.
    return RateLimitedError(
        "Polyv blocked this source IP for exceeding its quota of calls to the API host",
        retry_after=BLOCK_SECONDS,
        **fields,
    )


def _error_for_code(
    code: int, message: str | None, status: object, context: dict[str, Any]
) -> ProviderError:
    """An error the message did not name: ``code`` 500 / ``status`` "fail" is transient."""
    if 500 <= code < 600 or status == "fail":
        retryable = True
    elif 400 <= code < 500:
        retryable = False
    else:  # a code the vendor does not document: let the HTTP status decide
        retryable = context["http_status"] >= 500
    return ProviderError(
        f"Polyv error {code}",
        vendor_code=code,
        vendor_message=message,
        retryable=retryable,
        **context,
    )


def _not_json(response: HttpResponse, context: dict[str, Any]) -> LiveStatsError:
    head = response.body[:2048]
    if b"qps exceeds" in head.lower():
        # How the block is sent is unconfirmed: a plain-text answer is taken at its word.
        return _blocked({"vendor_message": head.decode("utf-8", "replace").strip(), **context})
    return not_json(response, context)


def _off_envelope(response: HttpResponse, problem: str, context: dict[str, Any]) -> LiveStatsError:
    """JSON that is not Polyv's envelope: a gateway's doing when 5xx, else undecodable."""
    if response.status >= 500:
        return ProviderError(f"HTTP {response.status}: {problem}", retryable=True, **context)
    return ResponseDecodingError(problem, **context)


def server_time(response: HttpResponse) -> float | None:
    """Polyv's clock (epoch s, 1 s resolution) from the ``Date`` header, if it has a usable one."""
    return http_date(response.header("Date"))


# -- converter ------------------------------------------------------------------------------


def _beijing_time(value: Any, _: type) -> datetime:
    """``"2023-04-07 09:45:24.443"`` (or without the fraction) as an aware UTC+8 datetime.

    The vendor's field table calls ``time`` an Array, but its format line and its
    sample both show this string; the string is what is accepted.
    """
    if not isinstance(value, str):
        raise TypeError(f"expected a time string, got {type(value).__name__}")
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    raise ValueError(f"expected a time like '2023-04-07 09:45:24.443', got {value[:40]!r}")


def make_wire_converter() -> cattrs.Converter:
    conv = make_converter()
    conv.register_structure_hook(datetime, _beijing_time)
    return conv


#: The one converter of the Polyv wire format.
CONVERTER = make_wire_converter()
