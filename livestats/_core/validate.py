"""Checks on what callers pass in, done before anything is sent."""

from __future__ import annotations

import math
from typing import Any

from yarl import URL

from livestats.errors import ConfigurationError, LiveStatsError, ValidationError

__all__ = ["check_base_url", "check_limiter", "check_seconds", "check_text", "shown"]


#: The longest wait or period accepted anywhere, in seconds (a year): longer is a mistake,
#: and event-loop timers misbehave far beyond it.
MAX_SECONDS = 365 * 24 * 3600.0


def shown(value: object, *, limit: int = 80) -> str:
    """``repr(value)`` for an error message: short, and never an error itself.

    ``repr`` of an int beyond Python's conversion limit (``10**5000``) raises
    ValueError, and so does that of any container holding one; a long value would
    flood the message.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[:limit]}..."


def check_text(
    value: object,
    name: str,
    *,
    error: type[ValidationError] = ValidationError,
    single_line: bool = True,
) -> str:
    """A non-empty string that UTF-8 can encode, on one line (whitespace alone counts as empty).

    Lone surrogates (from ``surrogateescape`` decoding, or JSON escapes) cannot be
    sent; a line break or other control character in a value that ends up in a
    header or a signature is an injection or a typo, never an id.
    """
    if not isinstance(value, str):
        raise error(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise error(f"{name} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{name} is not valid text (it holds a lone surrogate)") from None
    if single_line and not value.isprintable():
        raise error(f"{name} must not hold control characters (such as a line break)")
    return value


def check_base_url(value: object) -> str:
    """An absolute http(s) URL without query or fragment; returned without a trailing slash."""
    text = check_text(value, "base_url", error=ConfigurationError)
    try:
        url = URL(text)
    except ValueError:
        raise ConfigurationError(f"base_url {text!r} is not a URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ConfigurationError(
            f"base_url must be an absolute http(s) URL without query, not {text!r}"
        )
    return text.rstrip("/")


def check_limiter(limiter: Any) -> Any:
    """Anything with the limiter interface: ``acquire(key, quota)`` and ``pause(key, seconds)``."""
    if isinstance(limiter, type):
        raise ConfigurationError(
            f"limiter must be an instance, not the class {limiter.__name__}: "
            f"write {limiter.__name__}()"
        )
    if not (
        callable(getattr(limiter, "acquire", None)) and callable(getattr(limiter, "pause", None))
    ):
        raise ConfigurationError(
            "limiter must have acquire(key, quota) and pause(key, seconds), like LocalLimiter"
        )
    return limiter


def check_max_wait(
    value: object, name: str, *, error: type[LiveStatsError] = ConfigurationError
) -> float | None:
    """A bound on a wait: seconds from 0 (only what is free now) to a year, or
    ``math.inf`` (no bound, returned as ``None``)."""
    problem = f"{name} must be a number of seconds from 0 to {MAX_SECONDS:g}, or math.inf"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{problem}, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise error(f"{problem}, not an integer that large") from None
    if seconds == math.inf:
        return None
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS):
        raise error(f"{problem}, not {value!r}")
    return seconds


def check_seconds(value: object, name: str) -> float:
    """A positive, finite number of seconds, at most a year (bool is not a number here)."""
    problem = f"{name} must be a positive number of seconds, at most {MAX_SECONDS:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{problem}, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond any float: 10**400
        bits = value.bit_length()  # type: ignore[union-attr]
        raise ConfigurationError(f"{problem}, not an integer of {bits} bits") from None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise ConfigurationError(f"{problem}, not {value!r}")
    return seconds
