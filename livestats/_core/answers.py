"""Answers that did not come from the API itself: gateway and proxy pages."""

from __future__ import annotations

import json
import re
from typing import Any

from livestats._core.transport import HttpResponse
from livestats.errors import LiveStatsError, ProviderError, ResponseDecodingError

__all__ = ["load_json", "not_json"]

_TITLE = re.compile(rb"<title>\s*(.*?)\s*</title>", re.IGNORECASE | re.DOTALL)


def not_json(response: HttpResponse, context: dict[str, Any]) -> LiveStatsError:
    """The error for a body that is not JSON.

    A 5xx or an HTML page is a gateway or proxy answering instead of the API:
    transient by experience, so retryable, with the page's title as the vendor
    message. Anything else is an answer livestats cannot read.
    """
    head = response.body[:2048]
    looks_html = response.content_type == "text/html" or head.lstrip()[:1] == b"<"
    if response.status >= 500 or looks_html:
        match = _TITLE.search(head)
        title = match.group(1).decode("utf-8", "replace")[:200] if match else None
        what = "an HTML error page" if looks_html else "a non-JSON answer"
        return ProviderError(
            f"HTTP {response.status}: {what}", vendor_message=title, retryable=True, **context
        )
    return ResponseDecodingError("the answer is not JSON", **context)


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``; ValueError for anything that is not one.

    ``json.loads`` raises RecursionError, not ValueError, for a body nested too
    deeply (``[[[[...``): an answer livestats cannot read all the same.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
