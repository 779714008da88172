"""livestats: live-streaming statistics from vendor HTTP APIs, never over their quotas.

The public surface is what this module exports; everything under ``livestats._core``
and ``livestats.providers`` is private layout.
"""

from __future__ import annotations

from livestats._core.batch import BatchResult
from livestats._core.clock import Clock
from livestats._core.limiter import Limiter, LocalLimiter, Permit, shared_limiter
from livestats._core.quota import Quota
from livestats._core.retry import RetryPolicy
from livestats.errors import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    CredentialsExpiredError,
    LiveStatsError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    ResponseDecodingError,
    TransportError,
    ValidationError,
)
from livestats.providers.tencent.client import TencentClient
from livestats.providers.tencent.models import GiftCount, RoomStats, RoomSummary

__version__ = "0.1.0.dev0"

__all__ = [
    "AuthenticationError",
    "BatchResult",
    "ClientClosedError",
    "Clock",
    "ConfigurationError",
    "CredentialsExpiredError",
    "GiftCount",
    "Limiter",
    "LiveStatsError",
    "LocalLimiter",
    "NotFoundError",
    "Permit",
    "ProviderError",
    "Quota",
    "RateLimitedError",
    "ResponseDecodingError",
    "RetryPolicy",
    "RoomStats",
    "RoomSummary",
    "TencentClient",
    "TransportError",
    "ValidationError",
    "__version__",
    "shared_limiter",
]
