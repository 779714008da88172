"""Reading answers the same way for every provider: JSON, gateway pages, Retry-After."""

from __future__ import annotations

import json
import math
import re
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

from livestats._core.http import HttpResponse
from livestats.errors import LiveStatsError, ProviderError, ResponseDecodingError

__all__ = ["http_date", "load_json", "not_json", "retry_after_seconds"]

_TITLE = re.compile(rb"<title>\s*(.*?)\s*</title>", re.IGNORECASE | re.DOTALL)


def not_json(response: HttpResponse, context: dict[str, Any]) -> LiveStatsError:
    """The error for a body that is not JSON.

    A 5xx or an HTML page is a gateway or proxy answering instead of the API:
    transient by experience, so retryable, with the page's title as the vendor
    message. A success status with a body that cannot be read (empty, cut short)
    is a transient fault too, retried like a 502. Anything else is an answer
    livestats cannot read.
    """
    head = response.body[:2048]
    looks_html = response.content_type == "text/html" or head.lstrip()[:1] == b"<"
    if response.status >= 500 or looks_html:
        match = _TITLE.search(head)
        # Not cut here: the engine scrubs secrets first, then cuts (a cut could split one).
        title = match.group(1).decode("utf-8", "replace") if match else None
        what = "an HTML error page" if looks_html else "a non-JSON answer"
        return ProviderError(
            f"HTTP {response.status}: {what}", vendor_message=title, retryable=True, **context
        )
    if 200 <= response.status < 300:
        what = "empty" if not response.body.strip() else "not JSON (cut short?)"
        return ResponseDecodingError(f"the answer is {what}", retryable=True, **context)
    return ResponseDecodingError("the answer is not JSON", **context)


def http_date(value: str) -> float | None:
    """An HTTP date (``Thu, 17 May 2012 19:37:58 GMT``) as epoch seconds; None if not one."""
    if not value.strip():
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC with the source's zone unknown (RFC 5322)
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp()
    return seconds if math.isfinite(seconds) else None


def retry_after_seconds(response: HttpResponse, *, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (RFC 9110: seconds or an HTTP date).

    ``now`` is the local wall clock in epoch seconds, to turn a date into a wait. A
    date in the past is a wait of zero; a header that is neither form is ignored.
    """
    value = response.header("Retry-After").strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), 10**9))
    moment = http_date(value)
    return None if moment is None else max(0.0, moment - now)


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``; ValueError for anything that is not one.

    ``json.loads`` raises RecursionError, not ValueError, for a body nested too
    deeply (``[[[[...``): an answer livestats cannot read all the same.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
