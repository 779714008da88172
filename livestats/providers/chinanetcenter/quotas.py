"""ChinaNetCenter (Wangsu) default quotas, per account user."""

from __future__ import annotations

from livestats._core.quota import Quota

DEFAULT_QUOTAS: dict[str, Quota] = {
    # vendor page "查询多域名多流名的推流时长": "单用户调用频率:300/5min";
    # shared/vendor-docs/chinanetcenter-stream-push-duration.txt
    "get_stream_durations": Quota(300, 300.0),
}
