"""Tencent Cloud Live results. Field meanings are the vendor's (see each docstring)."""

from __future__ import annotations

from datetime import datetime

import attrs

from livestats._core.convert import wire

__all__ = ["GiftCount", "RoomStats", "RoomSummary"]


@attrs.frozen(kw_only=True)
class RoomStats:
    """Statistics of one live room (``get_room_stats``)."""

    room_id: str = attrs.field(metadata=wire("RoomId"))
    #: Cumulative room entries, not unique people.
    total_viewers: int = attrs.field(metadata=wire("TotalViewers", count=True))
    #: Gifts received by the room.
    total_gifts_sent: int = attrs.field(metadata=wire("TotalGiftsSent", count=True))
    total_gift_coins: int = attrs.field(metadata=wire("TotalGiftCoins", count=True))
    total_unique_gift_senders: int = attrs.field(
        metadata=wire("TotalUniqueGiftSenders", count=True)
    )
    total_likes_received: int = attrs.field(metadata=wire("TotalLikesReceived", count=True))
    total_msg_count: int = attrs.field(metadata=wire("TotalMsgCount", count=True))


@attrs.frozen(kw_only=True)
class GiftCount:
    """Gifts one account received in one room (``get_gift_count``)."""

    room_id: str = attrs.field(metadata=wire("RoomId"))
    #: The gift receiver (the vendor's ``From_Account``).
    from_account: str = attrs.field(metadata=wire("From_Account"))
    #: The vendor does not document its meaning.
    sequence: int = attrs.field(metadata=wire("Sequence"))
    total_count: int = attrs.field(metadata=wire("TotalCount", count=True))
    total_coins: int = attrs.field(metadata=wire("TotalCoins", count=True))
    gift_sender_count: int = attrs.field(metadata=wire("GiftSenderCount", count=True))


@attrs.frozen(kw_only=True)
class RoomSummary:
    """One entry of the room list (``get_room_list``), sorted by ``view_count`` descending.

    ``cover_url`` and ``category`` default to empty when an answer leaves them
    out: the vendor does not say they are always present (tolerant by choice).
    """

    room_id: str = attrs.field(metadata=wire("RoomId"))
    room_name: str = attrs.field(metadata=wire("RoomName"))
    owner_account: str = attrs.field(metadata=wire("Owner_Account"))
    #: Aware UTC datetime (the wire carries epoch seconds).
    create_time: datetime = attrs.field(metadata=wire("CreateTime"))
    activity_status: int = attrs.field(metadata=wire("ActivityStatus"))
    view_count: int = attrs.field(metadata=wire("ViewCount", count=True))
    cover_url: str = attrs.field(default="", metadata=wire("CoverURL"))
    category: tuple[int, ...] = attrs.field(default=(), metadata=wire("Category"))


@attrs.frozen(kw_only=True)
class RoomPage:
    """One answer of ``get_room_list`` (a wire model; callers get :class:`RoomSummary`)."""

    #: Cursor of the next page; empty when this page is the last.
    next: str = attrs.field(metadata=wire("Next"))
    room_list: tuple[RoomSummary, ...] = attrs.field(metadata=wire("RoomList"))
