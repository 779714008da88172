"""The Tencent Cloud Live REST wire format: hosts, signing, the answer envelope, error codes.

Every call is ``POST <host>/v4/live_engine_http_srv/<operation>`` with a JSON
body and the query ``sdkappid, identifier, usersig, random, contenttype=json``.
Business errors, rate limiting included, come back as HTTP 200 with a non-zero
``ErrorCode``; other statuses only from gateways or the network, so an answer is
classified from its body first.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import cattrs

from livestats._core.answers import load_json, not_json
from livestats._core.convert import make_converter
from livestats._core.http import HttpRequest, HttpResponse
from livestats._core.outcome import Refusal
from livestats.errors import (
    AuthenticationError,
    CredentialsExpiredError,
    LiveStatsError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    ResponseDecodingError,
)

PROVIDER = "tencent"
PATH = "/v4/live_engine_http_srv/"

#: Vendor hosts by region (vendor pages for each API, and providers.md).
HOSTS = {
    "china": "https://console.tim.qq.com",
    "singapore": "https://adminapisgp.im.qcloud.com",
    "silicon-valley": "https://adminapiusa.im.qcloud.com",
    "jakarta": "https://adminapiidn.im.qcloud.com",
}

#: Query parameters whose values are secret.
SECRET_PARAMS = frozenset({"usersig"})

#: ``70050``: bad UserSig and too many attempts; the vendor asks for 60 s of quiet.
LOCKOUT_CODE = 70050
LOCKOUT_SECONDS = 60.0

# Error codes, from the vendor pages and its common error code list (providers.md).
_RATE_LIMITED = {60007, 60011, 60018, 60019}
_TRANSIENT = {100001, 60008, 60014}
_NOT_FOUND = {100004}
_EXPIRED = {70001}
# Bad UserSig (70003/70009/70013/70014), SDKAppID and host region mismatch
# (70016/70020), lockout (70050), and account or configuration problems
# (60006/60016/60017/60020/60021): the caller must fix credentials or account.
_AUTH = {70003, 70009, 70013, 70014, 70016, 70020, 70050, 60006, 60016, 60017, 60020, 60021}


def make_wire_converter() -> cattrs.Converter:
    conv = make_converter()

    def epoch_seconds(value: Any, _: type) -> datetime:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected epoch seconds, got {type(value).__name__}")
        return datetime.fromtimestamp(value, tz=timezone.utc)

    conv.register_structure_hook(datetime, epoch_seconds)
    return conv


#: The one converter of the Tencent wire format.
CONVERTER = make_wire_converter()


def signed_request(
    base_url: str,
    operation: str,
    body: bytes,
    *,
    sdkappid: int,
    identifier: str,
    usersig: str,
    rng: Callable[[int], int] = random.getrandbits,
) -> HttpRequest:
    """The request for one attempt: a new ``random`` and the current UserSig every time."""
    return HttpRequest(
        method="POST",
        url=f"{base_url}{PATH}{operation}",
        params={
            "sdkappid": str(sdkappid),
            "identifier": identifier,
            "usersig": usersig,
            "random": str(rng(32)),
            "contenttype": "json",
        },
        headers={"Content-Type": "application/json"},
        body=body,
        secret_names=SECRET_PARAMS,
    )


def encode_body(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields).encode()  # default arguments reuse json's cached encoder


def open_envelope(response: HttpResponse, operation: str) -> tuple[dict[str, Any], str | None]:
    """The ``Response`` object of a successful answer and its request id, or raise.

    Raises the typed error for a vendor error code, a gateway failure (5xx, HTML
    pages: retryable) or an answer that does not follow the envelope.
    """
    context: dict[str, Any] = {
        "provider": PROVIDER,
        "operation": operation,
        "http_status": response.status,
    }
    try:
        doc = load_json(response.body)
    except ValueError:
        raise not_json(response, context) from None
    if not isinstance(doc, dict):
        raise ResponseDecodingError("the answer is not a JSON object", **context)
    request_id = doc.get("RequestId") if isinstance(doc.get("RequestId"), str) else None
    code = doc.get("ErrorCode")
    if isinstance(code, bool) or not isinstance(code, int):
        if response.status >= 500:
            raise ProviderError(f"HTTP {response.status}", retryable=True, **context)
        raise ResponseDecodingError(
            "the answer has no integer ErrorCode", request_id=request_id, **context
        )
    info = doc.get("ErrorInfo") if isinstance(doc.get("ErrorInfo"), str) else None
    if code != 0:
        raise error_for_code(code, info, request_id=request_id, **context)
    payload = doc.get("Response")
    if not isinstance(payload, dict):
        raise ResponseDecodingError(
            "a successful answer without a Response object", request_id=request_id, **context
        )
    return payload, request_id


def refusal(err: LiveStatsError) -> Refusal:
    """What an error answer asks the engine to do.

    - 70001, the UserSig expired: make a new one and retry once;
    - 70050, too many bad UserSigs: the vendor wants 60 s of quiet from the whole
      client; the credentials are not refused for good (another process's bad
      sigs can cause it), so the call fails and later calls wait the quiet out;
    - any other authentication or account error: the credentials are refused,
      and nothing more is sent with them;
    - the rest as the error says (rate limits and 100001 retried).
    """
    if isinstance(err, CredentialsExpiredError):
        return Refusal.of(err, renew_credentials=True)
    if err.vendor_code == LOCKOUT_CODE:
        return Refusal.of(err, pause_client=LOCKOUT_SECONDS)
    if isinstance(err, AuthenticationError):
        return Refusal.of(err, credentials_refused=True)
    return Refusal.of(err)


def error_for_code(code: int, info: str | None, **context: Any) -> LiveStatsError:
    """The one place a Tencent ``ErrorCode`` picks an error class."""
    message = f"Tencent error {code}"
    if code in _RATE_LIMITED:
        return RateLimitedError(
            f"{message}: too many requests", vendor_code=code, vendor_message=info, **context
        )
    if code in _EXPIRED:
        return CredentialsExpiredError(
            f"{message}: UserSig expired", vendor_code=code, vendor_message=info, **context
        )
    if code in _AUTH:
        return AuthenticationError(message, vendor_code=code, vendor_message=info, **context)
    if code in _NOT_FOUND:
        return NotFoundError(
            f"{message}: room does not exist", vendor_code=code, vendor_message=info, **context
        )
    return ProviderError(
        message, vendor_code=code, vendor_message=info, retryable=code in _TRANSIENT, **context
    )
