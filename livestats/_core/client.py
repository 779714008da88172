"""What every provider client shares: settings, the engine, lifecycle, quotas, bulk input."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import cattrs

from livestats._core.batch import check_concurrency
from livestats._core.convert import structure
from livestats._core.engine import INTERACTIVE, Call, Engine, Signing, Wait
from livestats._core.http import HttpRequest, HttpResponse
from livestats._core.limiter import shared_limiter
from livestats._core.outcome import Outcome
from livestats._core.quota import Quota, resolve_quotas
from livestats._core.settings import ClientSettings
from livestats._core.sharing import Priority
from livestats._core.transport import AiohttpTransport
from livestats._core.validate import check_max_wait, shown
from livestats.errors import ConfigurationError, ValidationError

__all__ = ["BaseClient", "Wait", "check_items"]

T = TypeVar("T")
Self = TypeVar("Self", bound="BaseClient")

#: Bulk helpers run at most this many calls at once unless told otherwise.
MAX_DEFAULT_CONCURRENCY = 100


class BaseClient:
    """A provider client: its settings, quotas, engine and transport's lifecycle.

    Subclasses set ``provider`` and ``default_quotas``, say how an operation maps
    to a quota key (:meth:`quota_key`) and describe each call as sign and
    classify functions; the engine does the rest.
    """

    provider: ClassVar[str]
    default_quotas: ClassVar[dict[str, Quota]]
    #: Whether a limit the limiter lowered after a refusal may grow back by itself.
    probe_up: ClassVar[bool] = True

    def __init__(
        self,
        options: dict[str, Any],
        *,
        quotas: Mapping[str, Quota | None] | None,
        secrets: Iterable[str] = (),
        renew_credentials: Callable[[], bool] | None = None,
    ) -> None:
        self._settings = settings = ClientSettings.resolve(options)
        self._quotas = resolve_quotas(self.default_quotas, quotas, provider=self.provider)
        self._clock = settings.clock
        transport = settings.transport or AiohttpTransport(
            session=settings.session, timeout=settings.timeout, clock=settings.clock
        )
        self._engine = Engine(
            provider=self.provider,
            transport=transport,
            limiter=shared_limiter() if settings.limiter is None else settings.limiter,
            retry=settings.retry,
            clock=settings.clock,
            max_response_bytes=settings.max_response_bytes,
            secrets=secrets,
            renew_credentials=renew_credentials,
            on_event=settings.on_event,
            probe_up=self.probe_up,
        )
        #: Each operation's quota key, made once (it depends on settings only).
        self._keys: dict[str, str] = {}
        #: The waits of calls that give no max_wait, made once.
        self._waits = {
            priority: Wait(priority, settings.max_wait)
            if (priority, settings.max_wait) != (Priority.INTERACTIVE, None)
            else INTERACTIVE
            for priority in Priority
        }

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
        """Close the client's own HTTP session (a session or transport passed in stays open).

        Every call after this raises :class:`~livestats.ClientClosedError`.
        """
        self._engine.close()
        if self._settings.transport is None:
            await self._engine.transport.close()

    @property
    def settings(self) -> ClientSettings:
        """The settings in force (share them: ``OtherClient(..., settings=client.settings)``)."""
        return self._settings

    @property
    def event_failures(self) -> int:
        """How many times the ``on_event`` handler raised (the first is logged, once)."""
        sink = self._engine.sink
        return 0 if sink is None else sink.failures

    @property
    def quotas(self) -> dict[str, Quota | None]:
        """The quota in force for each operation (a copy)."""
        return dict(self._quotas)

    def quota_key(self, operation: str) -> str:
        """The limiter key of ``operation``'s quota."""
        raise NotImplementedError

    def effective_quota(self, operation: str) -> Quota | None:
        """The quota ``operation`` is paced by now: the configured one, or the one set with
        :meth:`set_quota`, lowered by what the limiter learned from the vendor's
        refusals (see "Sharing a quota" in the README); ``None``: not paced.

        No I/O: a shared limiter answers from what this process last heard from it.
        """
        quota = self._quota_of(operation)
        if quota is None:
            return None
        return self._engine.effective_quota(self.quota_key(operation), quota)

    async def set_quota(self, operation: str, quota: Quota | None) -> None:
        """Pace ``operation`` by ``quota`` from now on (``None``: not at all).

        It takes effect at once, for calls already waiting too, and, through a
        shared limiter, in every process that shares the quota key; what the
        limiter had learned about the key is forgotten. This client's
        :attr:`quotas` shows it.
        """
        self._quota_of(operation)
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(f"quota must be a livestats.Quota or None, not {shown(quota)}")
        limiter = self._engine.limiter
        setter = getattr(limiter, "set_quota", None)
        if setter is None:
            raise ConfigurationError(
                f"the limiter ({type(limiter).__name__}) cannot change a quota at run time"
            )
        await setter(self.quota_key(operation), quota)
        self._quotas[operation] = quota

    def _quota_of(self, operation: str) -> Quota | None:
        if not isinstance(operation, str) or operation not in self._quotas:
            known = ", ".join(sorted(self._quotas))
            raise ConfigurationError(
                f"unknown {self.provider} operation {shown(operation)} (known: {known})"
            )
        return self._quotas[operation]

    def _wait(self, priority: object, max_wait: object) -> Wait:
        """How a call waits for its slot, checked before anything is sent."""
        if max_wait is None and isinstance(priority, Priority):
            return self._waits[priority]
        if not isinstance(priority, Priority):
            raise ValidationError(
                f"priority must be livestats.Priority.INTERACTIVE or .BULK, not {shown(priority)}"
            )
        return Wait(priority, check_max_wait(max_wait, "max_wait", error=ValidationError))

    async def _run(
        self,
        operation: str,
        *,
        sign: Callable[[Signing], HttpRequest],
        classify: Callable[[HttpResponse], Outcome[T]],
        wait: Wait,
        wait_if_paused: bool = True,
    ) -> T:
        """Run one call of ``operation`` through the engine, under its quota."""
        key = self._keys.get(operation)
        if key is None:
            key = self._keys[operation] = self.quota_key(operation)
        return await self._engine.run(
            Call(
                operation=operation,
                quota_key=key,
                quota=self._quotas[operation],
                sign=sign,
                classify=classify,
                wait_if_paused=wait_if_paused,
                wait=wait,
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


def check_items(items: object, what: str) -> Iterable[Any] | AsyncIterable[Any]:
    """The input of a bulk call: any iterable or async iterable of items, but not one string.

    A ``str`` is an iterable of characters, so ``get_room_stats_many("room-1")``
    would ask for six rooms called ``r``, ``o``, ...: refused here, before anything
    is sent. ``bytes`` likewise.
    """
    if isinstance(items, (str, bytes, bytearray, memoryview)):
        raise ValidationError(
            f"{what} must be an iterable of items, not one {type(items).__name__} "
            f"(for a single item, write [{items!r:.40}])"
        )
    if not isinstance(items, (Iterable, AsyncIterable)):
        raise ValidationError(
            f"{what} must be an iterable or async iterable, not {type(items).__name__}"
        )
    return items
