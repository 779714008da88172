"""Checks on what callers pass in, done before anything is sent."""

from __future__ import annotations

import math
from typing import Any

from yarl import URL

from livestats.errors import ConfigurationError, ValidationError

__all__ = ["check_base_url", "check_limiter", "check_seconds", "check_text"]


def check_text(value: object, name: str, *, error: type[ValidationError] = ValidationError) -> str:
    """A non-empty string (whitespace alone counts as empty)."""
    if not isinstance(value, str):
        raise error(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise error(f"{name} must not be empty")
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
    if not (
        callable(getattr(limiter, "acquire", None)) and callable(getattr(limiter, "pause", None))
    ):
        raise ConfigurationError(
            "limiter must have acquire(key, quota) and pause(key, seconds), like LocalLimiter"
        )
    return limiter


def check_seconds(value: object, name: str) -> float:
    """A positive, finite number of seconds (bool is not a number here)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)
