"""``TencentClient``: room statistics, gift statistics and the room list of Tencent Cloud Live."""

from __future__ import annotations

import functools
import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, TypeVar

from livestats._core.batch import BatchResult, fan_out
from livestats._core.client import BaseClient, Wait, check_items
from livestats._core.engine import Signing
from livestats._core.http import HttpRequest, HttpResponse
from livestats._core.outcome import Outcome, Value
from livestats._core.poll import Sweep, check_every, fixed_items, poll
from livestats._core.quota import Quota
from livestats._core.sharing import Priority
from livestats._core.validate import check_base_url, check_text, shown
from livestats.errors import (
    ConfigurationError,
    LiveStatsError,
    ResponseDecodingError,
    ValidationError,
)
from livestats.providers.tencent import wire
from livestats.providers.tencent.models import GiftCount, RoomPage, RoomStats, RoomSummary
from livestats.providers.tencent.quotas import DEFAULT_QUOTAS
from livestats.providers.tencent.usersig import UserSigCache

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from livestats._core.settings import ClientOptions

__all__ = ["TencentClient"]

T = TypeVar("T")

#: The vendor caps ``RoomId`` at 48 bytes.
MAX_ROOM_ID_BYTES = 48
#: ``get_room_list`` takes ``Count`` from 1 to 20.
MAX_PAGE_SIZE = 20
#: SDKAppIDs are 10 digits; beyond a signed 64-bit int is a mistake (and its text
#: could pass Python's limit on int-to-text conversion, in the query and the UserSig).
MAX_SDKAPPID = 2**63 - 1


class TencentClient(BaseClient):
    """A client for one Tencent SDKAppID, authenticated as one app admin account.

    Give exactly one of ``secret_key`` (livestats makes the UserSig and renews it
    well before it expires) or ``usersig`` (used as given; when it expires, calls
    fail with :class:`~livestats.CredentialsExpiredError`).

    ``region`` picks the vendor host; ``base_url`` replaces it (simulator, proxy).
    The other keyword arguments are the settings every client shares
    (:class:`~livestats.ClientSettings`: ``settings``, ``session``, ``transport``,
    ``limiter``, ``retry``, ``timeout``, ``clock``, ``max_response_bytes``).

    Every operation is paced by its quota (``quotas=`` overrides the defaults;
    ``None`` turns pacing off for an operation) through ``limiter``: by default
    the process-wide :class:`~livestats.LocalLimiter`, so every client of one
    SDKAppID in the process shares its quota; pass a limiter shared across
    processes to share it wider.

    Quota keys are ``tencent:<sdkappid>:<operation>``.

    Credentials the vendor refuses for good (a wrong secret key, a bad UserSig,
    an account problem) stop the client: it sends nothing more with them, and
    every call fails at once with an :class:`~livestats.AuthenticationError`.
    """

    provider = wire.PROVIDER
    default_quotas = DEFAULT_QUOTAS

    def __init__(
        self,
        sdkappid: int | str,
        identifier: str,
        *,
        secret_key: str | None = None,
        usersig: str | None = None,
        region: str = "china",
        base_url: str | None = None,
        quotas: Mapping[str, Quota | None] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._sdkappid = _check_sdkappid(sdkappid)
        self._identifier = check_text(identifier, "identifier", error=ConfigurationError)
        if (secret_key is None) == (usersig is None):
            raise ConfigurationError("give exactly one of secret_key or usersig")
        if not isinstance(region, str) or region not in wire.HOSTS:
            raise ConfigurationError(
                f"unknown region {shown(region)} (known: {', '.join(wire.HOSTS)})"
            )
        self._base_url = check_base_url(base_url) if base_url is not None else wire.HOSTS[region]
        if secret_key is not None:
            secret = check_text(secret_key, "secret_key", error=ConfigurationError)
        else:
            secret = check_text(usersig, "usersig", error=ConfigurationError)
        super().__init__(
            dict(options),
            quotas=quotas,
            secrets=(secret,),
            renew_credentials=self._renew_usersig,
        )
        self._usersigs: UserSigCache | None = None
        self._fixed_usersig: str | None = None
        if secret_key is not None:
            self._usersigs = UserSigCache(
                sdkappid=self._sdkappid,
                identifier=self._identifier,
                secret_key=secret,
                clock=self._clock.wall,
            )
        else:
            self._fixed_usersig = secret

    def __repr__(self) -> str:
        credentials = "secret_key" if self._usersigs is not None else "usersig"
        return (
            f"<TencentClient sdkappid={self._sdkappid} identifier={self._identifier!r} "
            f"base_url={self._base_url!r} {credentials}=[secure]>"
        )

    def quota_key(self, operation: str) -> str:
        """The limiter key of ``operation``'s quota: ``tencent:<sdkappid>:<operation>``."""
        return f"{self.provider}:{self._sdkappid}:{operation}"

    # -- operations ------------------------------------------------------------------

    async def get_room_stats(
        self,
        room_id: str,
        *,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> RoomStats:
        """Statistics of one room. Raises :class:`~livestats.NotFoundError` for an unknown room.

        ``priority`` and ``max_wait`` say how the call waits for its quota slot
        (every call takes them; see :class:`~livestats.ClientSettings` and the
        README's "Sharing a quota between a web app and a batch").
        """
        room_id = _check_room_id(room_id)
        wait = self._wait(priority, max_wait)

        def decode(payload: dict[str, Any], request_id: str | None) -> RoomStats:
            return self._structure(
                wire.CONVERTER,
                {**payload, "RoomId": room_id},
                RoomStats,
                "get_room_stats",
                request_id,
            )

        return await self._call("get_room_stats", {"RoomId": room_id}, decode, wait)

    async def get_gift_count(
        self,
        room_id: str,
        from_account: str,
        *,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> GiftCount:
        """Gift statistics of ``from_account`` (the gift receiver) in ``room_id``."""
        room_id = _check_room_id(room_id)
        from_account = check_text(from_account, "from_account")
        wait = self._wait(priority, max_wait)
        fields = {"RoomId": room_id, "From_Account": from_account}

        def decode(payload: dict[str, Any], request_id: str | None) -> GiftCount:
            return self._structure(
                wire.CONVERTER, {**payload, **fields}, GiftCount, "get_gift_count", request_id
            )

        return await self._call("get_gift_count", fields, decode, wait)

    async def iter_rooms(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[RoomSummary, None]:
        """Every room, paging through ``get_room_list`` (``page_size`` rooms a call, 1..20)."""
        wait = self._wait(priority, max_wait)
        if (
            isinstance(page_size, bool)
            or not isinstance(page_size, int)
            or not (1 <= page_size <= MAX_PAGE_SIZE)
        ):
            raise ValidationError(f"page_size must be an int from 1 to {MAX_PAGE_SIZE}")
        cursor = ""
        seen: set[str] = set()
        while True:
            page, request_id = await self._call(
                "get_room_list", {"Next": cursor, "Count": page_size}, self._page, wait
            )
            for room in page.room_list:
                yield room
            if not page.next:
                return
            if page.next in seen:
                raise self._bad_answer("the room list cursor went back", request_id)
            seen.add(page.next)
            cursor = page.next

    def _page(self, payload: dict[str, Any], request_id: str | None) -> tuple[RoomPage, str | None]:
        page = self._structure(wire.CONVERTER, payload, RoomPage, "get_room_list", request_id)
        return page, request_id

    def get_room_stats_many(
        self,
        room_ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int | None = None,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[BatchResult[str, RoomStats], None]:
        """Statistics of many rooms, one :class:`~livestats.BatchResult` per id, as they finish.

        ``room_ids`` is read lazily (a generator of millions is fine); a bad id
        comes back as a result carrying a ValidationError. A single string is
        refused here, before anything is sent. If the credentials are refused
        the batch stops and raises (see :class:`~livestats.BatchResult`).
        """
        check_items(room_ids, "room_ids")
        self._wait(priority, max_wait)
        return fan_out(
            room_ids,
            functools.partial(self.get_room_stats, priority=priority, max_wait=max_wait),
            concurrency=self._concurrency("get_room_stats", concurrency),
        )

    def get_gift_count_many(
        self,
        pairs: Iterable[tuple[str, str]] | AsyncIterable[tuple[str, str]],
        *,
        concurrency: int | None = None,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[BatchResult[tuple[str, str], GiftCount], None]:
        """Gift statistics for many ``(room_id, from_account)`` pairs, as they finish."""
        check_items(pairs, "pairs")
        self._wait(priority, max_wait)

        async def one(pair: tuple[str, str]) -> GiftCount:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValidationError(f"expected a (room_id, from_account) pair, got {shown(pair)}")
            return await self.get_gift_count(*pair, priority=priority, max_wait=max_wait)

        return fan_out(pairs, one, concurrency=self._concurrency("get_gift_count", concurrency))

    def poll_room_stats(
        self,
        room_ids: Iterable[str] | None = None,
        *,
        every: float,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[Sweep[str, RoomStats], None]:
        """Statistics of rooms every ``every`` seconds: one :class:`~livestats.Sweep` per pass.

        ``room_ids=None`` polls every room: each sweep lists the rooms again
        (``get_room_list``), so rooms opened since join and closed ones leave.
        Otherwise the ids given (a plain iterable, read once here, duplicates
        dropped) are swept every time. Each sweep has one result per room, as
        :meth:`get_room_stats_many` gives them. Sweep k starts ``k * every``
        seconds after the first, on the client's clock; a sweep the quota cannot
        fit in ``every`` is reported (:class:`~livestats.events.SweepLate`) and the
        sweeps then run back to back. A failed room list ends the poller with its
        error. ``every`` and the ids are checked here, before anything is sent.
        """
        seconds = check_every(every)
        self._wait(priority, max_wait)
        if room_ids is None:

            async def listed() -> list[str]:
                return await self._listed_room_ids(priority, max_wait)

            items: Callable[[], Awaitable[Sequence[str]]] = listed
        else:
            items = fixed_items(_poll_room_ids(room_ids))

        def demand(rooms: int) -> dict[str, int]:
            if room_ids is not None:
                return {"get_room_stats": rooms}
            pages = max(1, math.ceil(rooms / MAX_PAGE_SIZE))
            return {"get_room_list": pages, "get_room_stats": rooms}

        return poll(
            provider=self.provider,
            every=seconds,
            clock=self._clock,
            sink=self._engine.sink,
            quotas=self._quotas,
            items=items,
            demand=demand,
            sweep=functools.partial(self.get_room_stats_many, priority=priority, max_wait=max_wait),
        )

    async def _listed_room_ids(self, priority: Priority, max_wait: float | None) -> list[str]:
        # The list is sorted by views and can shift between pages: a room seen
        # twice is swept once.
        rooms = self.iter_rooms(priority=priority, max_wait=max_wait)
        return list(dict.fromkeys([room.room_id async for room in rooms]))

    # -- the call path -----------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        fields: dict[str, Any],
        decode: Callable[[dict[str, Any], str | None], T],
        wait: Wait,
    ) -> T:
        """One call: the body encoded once, signed afresh per attempt, the answer classified."""
        body = wire.encode_body(fields)

        def sign(_: Signing) -> HttpRequest:
            return wire.signed_request(
                self._base_url,
                operation,
                body,
                sdkappid=self._sdkappid,
                identifier=self._identifier,
                usersig=self._current_usersig(),
            )

        def classify(response: HttpResponse) -> Outcome[T]:
            try:
                payload, request_id = wire.open_envelope(response, operation)
                return Value(value=decode(payload, request_id), request_id=request_id)
            except LiveStatsError as err:
                return wire.refusal(err)

        return await self._run(operation, sign=sign, classify=classify, wait=wait)

    def _current_usersig(self) -> str:
        if self._usersigs is not None:
            return self._usersigs.get()
        assert self._fixed_usersig is not None
        return self._fixed_usersig

    def _renew_usersig(self) -> bool:
        if self._usersigs is None:
            return False  # a UserSig given by the caller cannot be renewed here
        self._usersigs.invalidate()
        return True

    def _bad_answer(self, message: str, request_id: str | None) -> ResponseDecodingError:
        return ResponseDecodingError(
            message, provider=self.provider, operation="get_room_list", request_id=request_id
        )


def _check_sdkappid(given: object) -> int:
    value = given
    if isinstance(given, str):
        # isdigit() alone lets full-width digits through to int(); leading zeros are
        # dropped first so a long run of them stays within int()'s limit on text.
        digits = given.strip().lstrip("0") or "0"
        if digits.isascii() and digits.isdigit() and len(digits) <= len(str(MAX_SDKAPPID)):
            value = int(digits)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_SDKAPPID:
        raise ConfigurationError(
            f"sdkappid must be a positive integer below 2**63, not {shown(given)}"
        )
    return value


def _check_room_id(room_id: object) -> str:
    room_id = check_text(room_id, "room_id")
    if len(room_id.encode()) > MAX_ROOM_ID_BYTES:
        raise ValidationError(
            f"room_id must be at most {MAX_ROOM_ID_BYTES} UTF-8 bytes, got {len(room_id.encode())}"
        )
    return room_id


def _poll_room_ids(room_ids: object) -> list[str]:
    """The rooms a poller sweeps: checked, in the order given, each once."""
    check_items(room_ids, "room_ids")
    if not isinstance(room_ids, Iterable):
        raise ValidationError(
            "room_ids must be a plain iterable (it is read once and swept every time)"
        )
    rooms = list(dict.fromkeys(_check_room_id(room_id) for room_id in room_ids))
    if not rooms:
        raise ValidationError("room_ids is empty (give None to poll every room)")
    return rooms
