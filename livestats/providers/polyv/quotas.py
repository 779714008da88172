"""Polyv default quotas: one quota for the whole API host, per source IP.

Polyv counts every call from one source IP to its API host together, whatever the
endpoint and whatever the app id, so the table has one entry per operation but
every entry spends the same limiter key (see ``PolyvClient.quota_key``). An account
with a raised limit overrides it with ``quotas=`` on the client.
"""

from __future__ import annotations

from livestats._core.quota import Quota

DEFAULT_QUOTAS: dict[str, Quota] = {
    # Polyv's official Java SDK docs, docs/live/limit.md: 1500 calls per 10 s per
    # source IP across the whole API host; going over blocks the IP for 5 minutes.
    # burst=150: at most one second's share starts in any second, the rest spread
    # at 150/s. The block costs 5 minutes and its message speaks of "qps" ("qps
    # exceeds number of calls"), so a per-second limit may stand behind the
    # published one; a burst of 1500 in one second would be the way to meet it.
    "get_stream_info": Quota(1500, 10.0, burst=150),
}
