"""livestats: live-streaming statistics from vendor HTTP APIs, never over their quotas.

The public surface is what this module exports; everything under ``livestats._core``
and ``livestats.providers`` is private layout.
"""

from __future__ import annotations

from livestats._core.batch import BatchResult
from livestats._core.clock import Clock
from livestats._core.http import HttpRequest, HttpResponse, Transport
from livestats._core.limiter import Limiter, LocalLimiter, Permit, shared_limiter
from livestats._core.poll import Sweep
from livestats._core.quota import Quota
from livestats._core.redis_limiter import RedisLimiter
from livestats._core.retry import RetryPolicy
from livestats._core.settings import DEFAULT_MAX_RESPONSE_BYTES, ClientSettings
from livestats._core.sharing import Priority
from livestats._core.sqlite_limiter import SQLiteLimiter
from livestats._core.transport import AiohttpTransport
from livestats.errors import (
    AuthenticationError,
    ChannelNotLiveError,
    ClientClosedError,
    ConfigurationError,
    CredentialsExpiredError,
    LimiterUnavailableError,
    LiveStatsError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    RedirectError,
    ResponseDecodingError,
    ResponseTooLargeError,
    TransportError,
    ValidationError,
)
from livestats.providers.chinanetcenter.client import ChinaNetCenterClient
from livestats.providers.chinanetcenter.models import PushSession, StreamDuration
from livestats.providers.polyv.client import PolyvClient
from livestats.providers.polyv.models import StreamInfoSample
from livestats.providers.tencent.client import TencentClient
from livestats.providers.tencent.models import GiftCount, RoomStats, RoomSummary

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AiohttpTransport",
    "AuthenticationError",
    "BatchResult",
    "ChannelNotLiveError",
    "ChinaNetCenterClient",
    "ClientClosedError",
    "ClientSettings",
    "Clock",
    "ConfigurationError",
    "CredentialsExpiredError",
    "GiftCount",
    "HttpRequest",
    "HttpResponse",
    "Limiter",
    "LimiterUnavailableError",
    "LiveStatsError",
    "LocalLimiter",
    "NotFoundError",
    "Permit",
    "PolyvClient",
    "Priority",
    "ProviderError",
    "PushSession",
    "Quota",
    "RateLimitedError",
    "RedirectError",
    "RedisLimiter",
    "ResponseDecodingError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "RoomStats",
    "RoomSummary",
    "SQLiteLimiter",
    "StreamDuration",
    "StreamInfoSample",
    "Sweep",
    "TencentClient",
    "Transport",
    "TransportError",
    "ValidationError",
    "__version__",
    "shared_limiter",
]
