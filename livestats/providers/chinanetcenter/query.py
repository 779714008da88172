"""Splitting a stream-duration query into requests the vendor accepts, and merging the answers.

The vendor refuses more than ``max_domains_per_request`` domains (1 by default)
and more than 31 days between ``dateFrom`` and ``dateTo`` in one request. A query
over more is planned as the product of domain groups and date windows; every
answer is merged back into one :class:`StreamDuration` per asked-for stream.

Days are read as inclusive (the vendor's example answer has pushes on its
``dateTo`` day), so windows do not overlap: ``[d, d+31]``, ``[d+32, ...]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta, timezone

import attrs

from livestats.providers.chinanetcenter.models import PushSession, StreamDuration
from livestats.providers.chinanetcenter.wire import MAX_SPAN, WireReport, parse_time

__all__ = ["Request", "merge", "plan"]


@attrs.frozen(kw_only=True)
class Request:
    """One request of a plan: some domains with their streams, and one date window."""

    domain_streams: dict[str, list[str]]
    date_from: date | None
    date_to: date | None


def date_windows(first: date, last: date) -> list[tuple[date, date]]:
    """Non-overlapping windows covering ``first..last``, none spanning more than 31 days.

    When the range has two days or more, no window is a single day (the vendor's
    text asks for ``dateTo`` after ``dateFrom``): a one-day remainder borrows a
    day from the window before it.
    """
    span = MAX_SPAN.days
    windows: list[tuple[date, date]] = []
    start = first
    while start <= last:
        end = min(start + timedelta(days=span), last)
        windows.append((start, end))
        start = end + timedelta(days=1)
    if len(windows) > 1 and windows[-1][0] == windows[-1][1]:
        (a, b), (c, _) = windows[-2], windows[-1]
        windows[-2:] = [(a, b - timedelta(days=1)), (c - timedelta(days=1), c)]
    return windows


def _groups(items: list[str], size: int) -> Iterator[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def plan(
    streams: Mapping[str, list[str]],
    date_from: date | None,
    date_to: date | None,
    *,
    max_domains: int,
) -> list[Request]:
    """Every request the query needs: domain groups times date windows."""
    windows: list[tuple[date | None, date | None]]
    if date_from is None or date_to is None:
        windows = [(None, None)]  # the vendor's default period: one request per group
    else:
        windows = list(date_windows(date_from, date_to))
    return [
        Request(
            domain_streams={domain: streams[domain] for domain in group},
            date_from=first,
            date_to=last,
        )
        for group in _groups(list(streams), max_domains)
        for first, last in windows
    ]


def merge(
    streams: Mapping[str, list[str]], reports: Iterable[WireReport], zone: timezone
) -> list[StreamDuration]:
    """One result per asked-for stream, in the order asked: totals added, sessions in order.

    The vendor names a stream ``domain/app/stream`` in its answer; it is matched
    back to the ``app/stream`` asked for. Streams nobody asked for are ignored.
    Raises ValueError for a session time or a duration that cannot be read
    (out of range included).
    """
    try:
        return _merge(streams, reports, zone)
    except OverflowError as exc:  # durations too large for a timedelta
        raise ValueError(f"duration out of range: {exc}") from None


def _merge(
    streams: Mapping[str, list[str]], reports: Iterable[WireReport], zone: timezone
) -> list[StreamDuration]:
    totals: dict[tuple[str, str], timedelta] = {
        (domain, name): timedelta(0) for domain, names in streams.items() for name in names
    }
    sessions: dict[tuple[str, str], list[PushSession]] = {key: [] for key in totals}
    for report in reports:
        for entry in report.data:
            prefix = f"{entry.domain}/"
            for stream in entry.streams:
                name = stream.stream.removeprefix(prefix)
                key = (entry.domain, name)
                if key not in totals:
                    continue
                totals[key] += timedelta(milliseconds=stream.sum_time_ms)
                sessions[key].extend(
                    PushSession(
                        start=parse_time(session.start_time, zone),
                        end=parse_time(session.end_time, zone),
                        duration=timedelta(milliseconds=session.duration_ms),
                    )
                    for session in stream.sessions
                )
    return [
        StreamDuration(
            domain=domain,
            stream=name,
            total=totals[(domain, name)],
            sessions=tuple(sorted(sessions[(domain, name)], key=lambda s: (s.start, s.end))),
        )
        for domain, name in totals
    ]
