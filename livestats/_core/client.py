"""What every provider client shares: settings checks, the engine, lifecycle, quotas."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import aiohttp
import cattrs

from livestats._core.batch import check_concurrency
from livestats._core.clock import Clock
from livestats._core.convert import structure
from livestats._core.engine import Call, Engine
from livestats._core.limiter import Limiter, shared_limiter
from livestats._core.quota import Quota, resolve_quotas
from livestats._core.retry import RetryPolicy
from livestats._core.transport import HttpRequest, HttpResponse, Transport
from livestats._core.validate import check_limiter, check_seconds
from livestats.errors import ConfigurationError

__all__ = ["BaseClient"]

T = TypeVar("T")
Self = TypeVar("Self", bound="BaseClient")

#: Bulk helpers run at most this many calls at once unless told otherwise.
MAX_DEFAULT_CONCURRENCY = 100


class BaseClient:
    """A provider client: its quotas, its engine and its HTTP session's lifecycle.

    Subclasses set ``provider`` and ``default_quotas`` and say how an operation
    maps to a quota key (:meth:`quota_key`).
    """

    provider: ClassVar[str]
    default_quotas: ClassVar[dict[str, Quota]]

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None,
        quotas: dict[str, Quota | None] | None,
        limiter: Limiter | None,
        retry: RetryPolicy | None,
        timeout: float,
        clock: Clock | None,
        renew_credentials: Callable[[], bool] | None = None,
    ) -> None:
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise ConfigurationError("session must be an aiohttp.ClientSession")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry must be a livestats.RetryPolicy")
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError("clock must be a livestats.Clock")
        self._quotas = resolve_quotas(self.default_quotas, quotas, provider=self.provider)
        self._clock = clock or Clock()
        self._engine = Engine(
            provider=self.provider,
            transport=Transport(
                provider=self.provider,
                session=session,
                timeout=check_seconds(timeout, "timeout"),
            ),
            limiter=shared_limiter() if limiter is None else check_limiter(limiter),
            retry=retry or RetryPolicy(),
            clock=self._clock,
            renew_credentials=renew_credentials,
        )

    async def __aenter__(self: Self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client's own HTTP session (a session passed in stays open)."""
        await self._engine.transport.close()

    @property
    def quotas(self) -> dict[str, Quota | None]:
        """The quota in force for each operation (a copy)."""
        return dict(self._quotas)

    def quota_key(self, operation: str) -> str:
        """The limiter key of ``operation``'s quota."""
        raise NotImplementedError

    async def _run(
        self,
        operation: str,
        *,
        sign: Callable[[], HttpRequest],
        decode: Callable[[HttpResponse], T],
        wait_if_paused: bool = True,
    ) -> T:
        """Run one call of ``operation`` through the engine, under its quota."""
        return await self._engine.run(
            Call(
                operation=operation,
                quota_key=self.quota_key(operation),
                quota=self._quotas[operation],
                sign=sign,
                decode=decode,
                wait_if_paused=wait_if_paused,
            )
        )

    def _structure(
        self,
        converter: cattrs.Converter,
        data: Any,
        cls: type[T],
        operation: str,
        request_id: str | None = None,
    ) -> T:
        return structure(
            converter,
            data,
            cls,
            provider=self.provider,
            operation=operation,
            request_id=request_id,
        )

    def _concurrency(self, operation: str, concurrency: int | None) -> int:
        """The caller's concurrency, or one that keeps the operation's quota busy."""
        if concurrency is not None:
            return check_concurrency(concurrency)
        quota = self._quotas[operation]
        if quota is None:
            return MAX_DEFAULT_CONCURRENCY
        return min(quota.limit, MAX_DEFAULT_CONCURRENCY)
