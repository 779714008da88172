"""The Tencent Cloud Live half of the simulator: endpoints, UserSig checks, room data.

It answers ``POST /v4/live_engine_http_srv/{get_room_stats,get_gift_count,
get_room_list}`` the way ``shared/docs/providers.md`` documents them: query
``sdkappid``, ``identifier``, ``usersig``, ``random``, ``contenttype=json``; a JSON
body; HTTP 200 with the ``ActionStatus``/``ErrorCode``/``ErrorInfo``/``RequestId``
envelope for every business answer, errors included.

Error codes. Where the vendor names one code for a situation it is used as is
(60007 over the quota, 70001 UserSig expired, 100001 internal error, 100002 invalid
parameter, 100004 room does not exist). The rest are **the simulator's choice; the
vendor's exact code is unconfirmed**:

- 60003 for any missing or malformed query parameter, an ``sdkappid`` other than
  the simulated app, an ``identifier`` other than its admin account, and
  ``contenttype`` other than ``json`` (the vendor lists 60002/60003/60009/60012/60015
  as "malformed request" without saying which is which, and 70016/70020 for an
  app served by another region);
- for a UserSig, checked in this order: cannot be decoded 70003; its SDKAppID is not
  the request's 70014; its identifier is not the request's 70013; its HMAC does not
  verify under the app's secret key 70009; expired (``now > time + expire``) 70001;
- 100002 for a body that is not a JSON object;
- 100004 for an unknown room in ``get_gift_count`` too, although that vendor page
  lists only 100001-100003.

Room data is a pure function of ``(seed, room id)`` (and the account, for gift
counts), through :func:`~livestats.testing._shared.draw`.

:class:`TencentSim` holds the settings (rooms, quotas, credentials); the simulator
builds a :class:`TencentBackend` from them with its own seed and wall clock.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import attrs
from aiohttp import web

from livestats._core.quota import Quota
from livestats.providers.tencent.quotas import DEFAULT_QUOTAS
from livestats.providers.tencent.usersig import UserSigError, decode_usersig
from livestats.testing._shared import (
    Refused,
    VendorBackend,
    copy_quotas,
    credentials_of,
    draw,
    hex_secret,
    int_at_least,
    json_object,
    non_empty_str,
    picker,
    quota_table,
    quotas_of,
)

__all__ = ["TencentBackend", "TencentCredentials", "TencentSim"]

PATH_PREFIX = "/v4/live_engine_http_srv/"
OPERATIONS = ("get_room_stats", "get_gift_count", "get_room_list")

BAD_REQUEST = 60003
RATE_LIMITED = 60007
SIG_EXPIRED = 70001
SIG_MALFORMED = 70003
SIG_INVALID = 70009
SIG_WRONG_IDENTIFIER = 70013
SIG_WRONG_SDKAPPID = 70014
INTERNAL_ERROR = 100001
INVALID_PARAMETER = 100002
ROOM_NOT_FOUND = 100004

_MESSAGES = {
    BAD_REQUEST: "invalid request",
    RATE_LIMITED: "REST API call frequency over limit",
    SIG_EXPIRED: "UserSig expired, please regenerate it",
    SIG_MALFORMED: "UserSig is malformed",
    SIG_INVALID: "UserSig verification failed",
    SIG_WRONG_IDENTIFIER: "identifier in UserSig does not match the request",
    SIG_WRONG_SDKAPPID: "SDKAppID in UserSig does not match the request",
    INTERNAL_ERROR: "server internal error, please try again",
    INVALID_PARAMETER: "invalid parameter",
    ROOM_NOT_FOUND: "room does not exist",
}

_REQUIRED_QUERY = ("sdkappid", "identifier", "usersig", "random", "contenttype")
_UINT32_MAX = 4_294_967_295
_ROOM_ID_MAX_BYTES = 48
_PAGE_MAX = 20
_CURSOR_PREFIX = "livestats-sim:"
# Verified UserSigs kept; a client signing every request would otherwise grow it forever.
_SIG_CACHE_SIZE = 4096
# Rooms were created in the 180 days after 2023-11-14 (a fixed date: data must not drift).
_CREATED_FROM = 1_700_000_000


@attrs.frozen(kw_only=True)
class TencentCredentials:
    """The simulated Tencent app: its SDKAppID, admin account and secret key."""

    sdkappid: int = attrs.field(validator=int_at_least(1, _UINT32_MAX))
    identifier: str = attrs.field(validator=non_empty_str)
    secret_key: str = attrs.field(repr=False, validator=non_empty_str)

    @classmethod
    def from_seed(cls, seed: int) -> TencentCredentials:
        """Fixed credentials for ``seed``: SDKAppID 14xxxxxxxx, ``administrator``, 64 hex."""
        return cls(
            sdkappid=1_400_000_000 + draw(seed, "sdkappid") % 100_000_000,
            identifier="administrator",
            secret_key=hex_secret(seed, "secret_key", size=32),
        )


@attrs.frozen(kw_only=True)
class TencentSim:
    """What the simulator serves as Tencent Cloud Live: ``Simulator(tencent=TencentSim(...))``.

    ``rooms`` rooms, ``room-00000``, ``room-00001``, ...; ``quotas`` overrides the
    vendor's documented quotas per operation (``None`` for one turns it off);
    ``credentials`` default to :meth:`TencentCredentials.from_seed` of the
    simulator's ``seed``.
    """

    rooms: int = attrs.field(default=200, validator=int_at_least(0))
    quotas: dict[str, Quota | None] | None = attrs.field(
        default=None,
        converter=copy_quotas,
        validator=quotas_of(DEFAULT_QUOTAS, OPERATIONS, provider="tencent"),
    )
    credentials: TencentCredentials | None = attrs.field(
        default=None, validator=credentials_of(TencentCredentials)
    )


@attrs.frozen(kw_only=True)
class _Room:
    room_id: str
    name: str
    owner: str
    cover_url: str
    category: tuple[int, ...]
    create_time: int
    activity_status: int
    viewers: int
    gifts_sent: int
    gift_coins: int
    unique_gift_senders: int
    likes: int
    messages: int

    def stats(self) -> dict[str, int]:
        return {
            "TotalViewers": self.viewers,
            "TotalGiftsSent": self.gifts_sent,
            "TotalGiftCoins": self.gift_coins,
            "TotalUniqueGiftSenders": self.unique_gift_senders,
            "TotalLikesReceived": self.likes,
            "TotalMsgCount": self.messages,
        }

    def listing(self) -> dict[str, Any]:
        return {
            "RoomName": self.name,
            "RoomId": self.room_id,
            "Owner_Account": self.owner,
            "CoverURL": self.cover_url,
            "Category": list(self.category),
            "CreateTime": self.create_time,
            "ActivityStatus": self.activity_status,
            # The simulator's choice: the vendor does not say how ViewCount relates
            # to get_room_stats' TotalViewers; here they are the same number.
            "ViewCount": self.viewers,
        }


def _make_room(seed: int, index: int) -> _Room:
    room_id = f"room-{index:05d}"

    pick = picker(seed, room_id)
    viewers = 1 + pick("viewers", 200_000)
    senders = pick("senders", viewers // 20 + 1)
    gifts = senders + pick("gifts", 5 * senders + 1)
    categories = {1 + pick(f"category{n}", 12) for n in range(1 + pick("categories", 3))}
    return _Room(
        room_id=room_id,
        name=f"Simulated room {index}",
        owner=f"anchor-{index:05d}",
        cover_url=f"https://example.com/covers/{room_id}.jpg",
        category=tuple(sorted(categories)),
        create_time=_CREATED_FROM + pick("created", 180 * 86_400),
        activity_status=pick("status", 2),
        viewers=viewers,
        gifts_sent=gifts,
        gift_coins=gifts * (1 + pick("price", 100)),
        unique_gift_senders=senders,
        likes=pick("likes", 10 * viewers + 1),
        messages=pick("messages", 3 * viewers + 1),
    )


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise Refused(INVALID_PARAMETER, f"{name} must be a non-empty string")
    return value


def _room_id(body: Mapping[str, Any]) -> str:
    room_id = _required_str(body, "RoomId")
    if len(room_id.encode()) > _ROOM_ID_MAX_BYTES:
        raise Refused(INVALID_PARAMETER, f"RoomId is longer than {_ROOM_ID_MAX_BYTES} bytes")
    return room_id


def _page_size(body: Mapping[str, Any]) -> int:
    count = body.get("Count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _PAGE_MAX:
        raise Refused(INVALID_PARAMETER, f"Count must be an integer from 1 to {_PAGE_MAX}")
    return count


def _is_uint32(text: str) -> bool:
    return text.isascii() and text.isdigit() and int(text) <= _UINT32_MAX


class TencentBackend(VendorBackend):
    """Serves the Tencent operations for one simulated app (see the module docstring)."""

    __slots__ = (
        "_by_views",
        "_credentials",
        "_rooms",
        "_seed",
        "_seq",
        "_verified",
        "_wall_clock",
    )

    provider = "tencent"
    success_code = 0
    rate_limited_code = RATE_LIMITED
    internal_error_code = INTERNAL_ERROR

    def __init__(self, settings: TencentSim, *, seed: int, wall_clock: Callable[[], float]) -> None:
        super().__init__(
            quota_table(DEFAULT_QUOTAS, OPERATIONS, settings.quotas, provider="tencent")
        )
        self._seed = seed
        self._credentials = settings.credentials or TencentCredentials.from_seed(seed)
        self._wall_clock = wall_clock
        rooms = (_make_room(seed, i) for i in range(settings.rooms))
        self._rooms = {room.room_id: room for room in rooms}
        self._by_views = sorted(self._rooms.values(), key=lambda r: (-r.viewers, r.room_id))
        self._verified: dict[str, int] = {}
        self._seq = 0

    @property
    def credentials(self) -> TencentCredentials:
        return self._credentials

    @property
    def room_ids(self) -> list[str]:
        return list(self._rooms)

    # -- the Backend protocol ----------------------------------------------------

    def routes(self) -> Iterable[tuple[str, str, str]]:
        return [("POST", PATH_PREFIX + operation, operation) for operation in OPERATIONS]

    def quota_scope(self, operation: str, request: web.Request) -> Hashable:
        # The vendor counts per SDKAppID and per API; a request naming another app
        # counts for that app.
        return (request.query.get("sdkappid", ""), operation)

    def error_reply(self, code: int, message: str | None) -> web.Response:
        text = message if message is not None else _MESSAGES.get(code, "simulated failure")
        return self._envelope(code, text, None)

    async def respond(self, operation: str, request: web.Request) -> web.Response:
        self._authenticate(request.query)
        body = json_object(
            await request.read(),
            code=INVALID_PARAMETER,
            not_json="request body is not valid JSON",
            not_object="request body must be a JSON object",
        )
        return self._envelope(0, "", self._business(operation, body))

    # -- authentication ----------------------------------------------------------

    def _authenticate(self, query: Mapping[str, str]) -> None:
        self._check_query(query)
        self._verify_usersig(query["usersig"])

    def _check_query(self, query: Mapping[str, str]) -> None:
        for name in _REQUIRED_QUERY:
            if not query.get(name):
                raise Refused(BAD_REQUEST, f"missing query parameter {name}")
        if query["contenttype"] != "json":
            raise Refused(BAD_REQUEST, "contenttype must be json")
        if not _is_uint32(query["random"]):
            raise Refused(BAD_REQUEST, "random must be a 32-bit unsigned integer")
        if query["sdkappid"] != str(self._credentials.sdkappid):
            raise Refused(BAD_REQUEST, "sdkappid is not the simulated app")
        if query["identifier"] != self._credentials.identifier:
            raise Refused(BAD_REQUEST, "identifier is not the app admin account")

    def _verify_usersig(self, usersig: str) -> None:
        expires_at = self._verified.get(usersig)
        if expires_at is None:
            expires_at = self._check_signature(usersig)
            if len(self._verified) >= _SIG_CACHE_SIZE:
                self._verified.clear()
            self._verified[usersig] = expires_at
        if self._wall_clock() > expires_at:
            raise Refused(SIG_EXPIRED)

    def _check_signature(self, usersig: str) -> int:
        """Verify everything but expiry; return the epoch second the sig expires at."""
        try:
            sig = decode_usersig(usersig)
        except UserSigError:
            raise Refused(SIG_MALFORMED) from None
        if sig.sdkappid != self._credentials.sdkappid:
            raise Refused(SIG_WRONG_SDKAPPID)
        if sig.identifier != self._credentials.identifier:
            raise Refused(SIG_WRONG_IDENTIFIER)
        if not sig.matches(self._credentials.secret_key):
            raise Refused(SIG_INVALID)
        return sig.expires_at

    # -- business answers --------------------------------------------------------

    def _business(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if operation == "get_room_stats":
            return self._find_room(_room_id(body)).stats()
        if operation == "get_gift_count":
            return self._gift_count(body)
        return self._room_list(body)

    def _find_room(self, room_id: str) -> _Room:
        try:
            return self._rooms[room_id]
        except KeyError:
            raise Refused(ROOM_NOT_FOUND) from None

    def _gift_count(self, body: Mapping[str, Any]) -> dict[str, int]:
        room_id = _room_id(body)
        account = _required_str(body, "From_Account")
        room = self._find_room(room_id)
        pick = picker(self._seed, room.room_id, account)
        count = pick("count", 500)
        return {
            # The vendor does not say what Sequence means; any positive int will do.
            "Sequence": 1 + pick("sequence", 100_000),
            "TotalCount": count,
            "TotalCoins": count * (1 + pick("price", 100)),
            "GiftSenderCount": 1 + pick("senders", count) if count else 0,
        }

    def _room_list(self, body: Mapping[str, Any]) -> dict[str, Any]:
        count = _page_size(body)
        cursor = body.get("Next")
        if not isinstance(cursor, str):
            raise Refused(INVALID_PARAMETER, "Next must be a string")
        start = self._decode_cursor(cursor)
        page = self._by_views[start : start + count]
        end = start + len(page)
        return {
            "Next": self._encode_cursor(end) if end < len(self._by_views) else "",
            "RoomList": [room.listing() for room in page],
        }

    def _encode_cursor(self, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()

    def _decode_cursor(self, cursor: str) -> int:
        if not cursor:
            return 0
        try:
            text = base64.b64decode(cursor, altchars=b"-_", validate=True).decode()
        except (binascii.Error, ValueError):
            text = ""
        digits = text.removeprefix(_CURSOR_PREFIX)
        offset = (
            int(digits)
            if text.startswith(_CURSOR_PREFIX) and digits.isascii() and digits.isdigit()
            else -1
        )
        if not 0 < offset < len(self._by_views):
            raise Refused(INVALID_PARAMETER, "Next is not a cursor this server returned")
        return offset

    # -- the envelope ------------------------------------------------------------

    def _envelope(self, code: int, message: str, payload: dict[str, Any] | None) -> web.Response:
        doc: dict[str, Any] = {
            "ActionStatus": "OK" if code == 0 else "FAIL",
            "ErrorInfo": message,
            "ErrorCode": code,
            "RequestId": self._request_id(),
        }
        if payload is not None:
            doc["Response"] = payload
        return web.json_response(doc)

    def _request_id(self) -> str:
        self._seq += 1
        return f"Id-{hex_secret(self._seed, 'request', self._seq, size=16)}-O-Seq-{self._seq}"
