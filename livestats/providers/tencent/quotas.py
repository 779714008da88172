"""Tencent Cloud Live default quotas, per SDKAppID and per API.

Each number is the vendor's published "maximum calling frequency"; an account with
raised limits overrides them with ``quotas=`` on the client.
"""

from __future__ import annotations

from livestats._core.quota import Quota

DEFAULT_QUOTAS: dict[str, Quota] = {
    # vendor page "get_room_stats", updated 2026-06 (zh and en both say 100/s);
    # shared/vendor-docs/tencent-get-room-stats.txt
    "get_room_stats": Quota(100, 1.0),
    # vendor page "Get Gift Statistics": "200 times/second";
    # shared/vendor-docs/tencent-get-gift-count.txt
    "get_gift_count": Quota(200, 1.0),
    # vendor page "Get Room List": 10 calls/s
    "get_room_list": Quota(10, 1.0),
}
