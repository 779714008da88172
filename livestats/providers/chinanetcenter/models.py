"""ChinaNetCenter (Wangsu) results."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

__all__ = ["PushSession", "StreamDuration"]


@attrs.frozen(kw_only=True)
class PushSession:
    """One uninterrupted push of a stream; times are aware, in the request's time zone."""

    start: datetime
    end: datetime
    duration: timedelta


@attrs.frozen(kw_only=True)
class StreamDuration:
    """How long one stream was pushed over the queried days.

    ``stream`` is the ``"app/stream"`` name as asked for. ``total`` is the sum the
    vendor reports (``sumTime``) over every request the query was split into;
    ``sessions`` are in time order. A stream the vendor did not report (no push
    in the period, or a domain it dropped as not the account's) has a zero total
    and no sessions.
    """

    domain: str
    stream: str
    total: timedelta
    sessions: tuple[PushSession, ...] = ()
