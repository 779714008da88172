"""Every error livestats raises.

::

    LiveStatsError                    base of everything below
    ├── ValidationError (ValueError)  bad input, raised before anything is sent
    │   └── ConfigurationError        bad client settings (credentials, ids, region)
    ├── ClientClosedError (RuntimeError)  the client was used after close()
    ├── LimiterUnavailableError       a shared limiter's store (Redis) failed
    ├── TransportError                no answer: connection refused or reset, timeout
    ├── ResponseDecodingError         an answer that is not what the vendor documents
    │   └── ResponseTooLargeError     an answer longer than ``max_response_bytes``
    └── ProviderError                 the provider answered with an error
        ├── AuthenticationError       credentials refused
        │   └── CredentialsExpiredError   renewable (livestats renews and retries once)
        ├── RateLimitedError          the provider (or a gateway: HTTP 429) says too many requests
        ├── RedirectError             HTTP 3xx: livestats follows no redirect
        ├── NotFoundError             the thing asked about does not exist
        └── ChannelNotLiveError       Polyv: the channel is not live on Tencent CDN

Every error carries what is known of the failed call: ``provider``,
``operation``, ``vendor_code``, ``vendor_message``, ``request_id`` and
``http_status`` (``None`` where unknown), and keeps its cause
(``raise ... from exc``). ``retryable`` says whether livestats treats the
failure as transient. No error text ever holds a secret: messages are built
from these fields, never from a signed URL, and any text that came from the vendor
or a gateway (an error message, a page title) has every secret and derived
credential the client knows replaced by ``[secure]``.

``dooms_batch`` marks an error after which the client can do no more work of this
kind (credentials refused for good, the client closed, the shared limiter gone).
A bulk call that meets one stops taking items from its input, gives every item it
had already taken its result, and raises the error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

__all__ = [
    "AuthenticationError",
    "ChannelNotLiveError",
    "ClientClosedError",
    "ConfigurationError",
    "CredentialsExpiredError",
    "LimiterUnavailableError",
    "LiveStatsError",
    "NotFoundError",
    "ProviderError",
    "RateLimitedError",
    "RedirectError",
    "ResponseDecodingError",
    "ResponseTooLargeError",
    "TransportError",
    "ValidationError",
]


class LiveStatsError(Exception):
    """Base of every error raised by livestats."""

    #: Whether a retry may succeed where this attempt failed.
    retryable: bool = False
    #: Whether a bulk call that meets this error must stop (see the module docstring).
    dooms_batch: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        vendor_code: int | str | None = None,
        vendor_message: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        dooms_batch: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        self.vendor_code = vendor_code
        self.vendor_message = vendor_message
        self.request_id = request_id
        self.http_status = http_status
        #: Seconds the provider asked the caller to wait before trying again, if it said.
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable
        if dooms_batch is not None:
            self.dooms_batch = dooms_batch

    def __str__(self) -> str:
        parts = [self.message]
        where = ".".join(p for p in (self.provider, self.operation) if p)
        details = [
            f"{name}={value!r}"
            for name, value in (
                ("vendor_code", self.vendor_code),
                ("vendor_message", self.vendor_message),
                ("http_status", self.http_status),
                ("request_id", self.request_id),
            )
            if value is not None and value != ""
        ]
        if where:
            parts.insert(0, f"[{where}]")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields survive pickling (multiprocessing workers send errors back).
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))

    def _evolve(self: E, **changes: Any) -> E:
        """A new error of the same class with ``changes`` applied; this one is left alone.

        The engine finishes an error this way (redaction, ``until``) instead of
        mutating one a provider made, which other code may still hold.
        """
        state = {**self.__dict__, **changes}
        return _rebuild(type(self), state.get("message", self.message), state)


E = TypeVar("E", bound=LiveStatsError)


def _rebuild(cls: type[E], message: str, state: dict[str, object]) -> E:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ValidationError(LiveStatsError, ValueError):
    """Bad input, found before anything was sent."""


class ConfigurationError(ValidationError):
    """A client was built with settings that cannot work (credentials, ids, region)."""


class ClientClosedError(LiveStatsError, RuntimeError):
    """The client was used after :meth:`close` (or after its ``async with`` block)."""

    dooms_batch = True
    #: Nothing was sent: the quota slot goes back unused.
    request_sent = False


class LimiterUnavailableError(LiveStatsError):
    """A shared limiter could not use its store (Redis, the SQLite file): no slot granted.

    Raised rather than sending unpaced: a quota shared by several processes cannot
    be kept without the store. A ``RedisLimiter`` waits up to its
    ``outage_timeout`` for Redis first; ``RedisLimiter(fallback="local")`` paces with
    its own record of the slots instead. A bulk call that meets it stops (``dooms_batch``):
    without the store no item could be paced, and failing the rest of the input one
    by one would burn it.
    """

    dooms_batch = True


class TransportError(LiveStatsError):
    """No usable answer arrived: connection refused or reset, or a timeout.

    ``request_sent`` says whether the request may have reached the provider
    (``False`` for a connection that was never made: refused, DNS failure); only a
    request that may have arrived keeps its quota slot.
    """

    retryable = True

    def __init__(self, message: str, *, request_sent: bool = True, **context: Any) -> None:
        super().__init__(message, **context)
        self.request_sent = request_sent


class ResponseDecodingError(LiveStatsError):
    """The provider's answer is not what its documentation describes.

    Retryable when the body could not be read at all (empty, cut short: a
    transient fault); not when a well-formed answer does not fit the model.
    """


class ResponseTooLargeError(ResponseDecodingError):
    """The answer is longer than the client's ``max_response_bytes`` (decompressed).

    Reading stops at the limit, so a huge body or a compression bomb never sits
    in memory whole. Not retried: the same question would get the same answer.
    """


class ProviderError(LiveStatsError):
    """The provider answered, and the answer is an error."""


class AuthenticationError(ProviderError):
    """The provider refused the credentials or the signature."""


class CredentialsExpiredError(AuthenticationError):
    """The signature has expired; a client holding the secret renews it and retries once."""


class RateLimitedError(ProviderError):
    """The provider says the caller sent too many requests.

    ``until`` is the wall-clock time (aware ``datetime``) before which the
    provider will refuse calls, where known.
    """

    retryable = True

    def __init__(self, message: str, *, until: datetime | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.until = until


class RedirectError(ProviderError):
    """The answer is an HTTP redirect (3xx). livestats follows none and retries none.

    A vendor API does not redirect its callers; a redirect comes from a proxy or
    a wrong ``base_url``, and following it would send signed requests elsewhere.
    """


class NotFoundError(ProviderError):
    """The room, account or channel asked about does not exist."""


class ChannelNotLiveError(ProviderError):
    """Polyv says the channel is not live (or not on Tencent CDN), so it has no stream info.

    The endpoint serves only channels that stream through Tencent CDN and are live
    now. The vendor documents one text for this, ``channel status not live``; any
    message saying "not live" lands here. Not retried: asking again at once will
    not make the channel live.
    """
