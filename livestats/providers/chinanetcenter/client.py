"""``ChinaNetCenterClient``: stream push durations from ChinaNetCenter (Wangsu)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime

import aiohttp

from livestats._core.batch import fan_out
from livestats._core.client import BaseClient
from livestats._core.clock import Clock
from livestats._core.limiter import Limiter
from livestats._core.quota import Quota
from livestats._core.retry import RetryPolicy
from livestats._core.transport import HttpRequest, HttpResponse
from livestats._core.validate import check_base_url, check_text
from livestats.errors import ConfigurationError, ResponseDecodingError, ValidationError
from livestats.providers.chinanetcenter import query, wire
from livestats.providers.chinanetcenter.models import StreamDuration
from livestats.providers.chinanetcenter.quotas import DEFAULT_QUOTAS

__all__ = ["ChinaNetCenterClient"]


class ChinaNetCenterClient(BaseClient):
    """A client for one ChinaNetCenter (Wangsu) account, authenticated with its API key.

    ``time_zone`` (``GMT±hh:00``) is sent as ``X-Time-Zone``: it decides what "a
    day" means in the query and the zone of every time in the answer.
    ``max_domains_per_request`` is the account's limit (1 unless the vendor
    raised it): a query over more domains is split, not refused.

    The quota, 300 calls per 300 s, belongs to the account user: every client of
    one username in the process shares it through the process-wide limiter, and
    a free window allows the full burst. Quota key:
    ``chinanetcenter:<username>:get_stream_durations``.
    """

    provider = wire.PROVIDER
    default_quotas = DEFAULT_QUOTAS

    def __init__(
        self,
        username: str,
        api_key: str,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        quotas: dict[str, Quota | None] | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        time_zone: str = "GMT+08:00",
        max_domains_per_request: int = 1,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._username = check_text(username, "username", error=ConfigurationError)
        self._api_key = check_text(api_key, "api_key", error=ConfigurationError)
        try:
            self._zone = wire.parse_time_zone(time_zone)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self._time_zone = time_zone
        if (
            isinstance(max_domains_per_request, bool)
            or not isinstance(max_domains_per_request, int)
            or max_domains_per_request < 1
        ):
            raise ConfigurationError("max_domains_per_request must be a positive int")
        self._max_domains = max_domains_per_request
        self._base_url = check_base_url(base_url) if base_url else wire.DEFAULT_BASE_URL
        super().__init__(
            session=session,
            quotas=quotas,
            limiter=limiter,
            retry=retry,
            timeout=timeout,
            clock=clock,
        )

    def __repr__(self) -> str:
        return (
            f"<ChinaNetCenterClient username={self._username!r} base_url={self._base_url!r} "
            f"time_zone={self._time_zone!r} api_key=[secure]>"
        )

    def quota_key(self, operation: str) -> str:
        """``chinanetcenter:<username>:<operation>``."""
        return f"{self.provider}:{self._username}:{operation}"

    def today(self) -> date:
        """Today in the client's time zone, by its clock: the latest day one can ask for."""
        return datetime.fromtimestamp(self._clock.wall(), tz=self._zone).date()

    async def get_stream_durations(
        self,
        streams: Mapping[str, Iterable[str]],
        *,
        date_from: date | None = None,
        date_to: date | None = None,
    ) -> list[StreamDuration]:
        """Push durations of ``streams`` (domain → ``"app/stream"`` names), one per stream.

        Give both dates or neither (neither: the vendor's default, the last 7
        days). Dates are inclusive, in the client's time zone, not after today and
        not older than the vendor keeps (about 6 months). A query over several
        domains or more than 31 days is split into requests the vendor accepts,
        sent concurrently under the quota, and merged: totals added, sessions in
        time order. If any request fails for good, the query raises its error.
        """
        wanted = _check_streams(streams)
        self.check_period(date_from, date_to)
        requests = query.plan(wanted, date_from, date_to, max_domains=self._max_domains)
        reports: list[wire.WireReport] = []
        async with contextlib.aclosing(
            fan_out(requests, self._send, concurrency=len(requests))
        ) as results:
            async for result in results:
                reports.append(result.unwrap())
        try:
            return query.merge(wanted, reports, self._zone)
        except ValueError as exc:
            raise ResponseDecodingError(
                f"unreadable push session time: {exc}",
                provider=self.provider,
                operation=wire.OPERATION,
            ) from exc

    # -- the call path -----------------------------------------------------------------

    async def _send(self, request: query.Request) -> wire.WireReport:
        body = wire.encode_body(request.domain_streams, request.date_from, request.date_to)

        def sign() -> HttpRequest:
            return wire.signed_request(
                self._base_url,
                body,
                username=self._username,
                api_key=self._api_key,
                time_zone=self._time_zone,
                now=self._clock.wall(),
            )

        def decode(response: HttpResponse) -> wire.WireReport:
            doc = wire.open_answer(response)
            return self._structure(wire.CONVERTER, doc, wire.WireReport, wire.OPERATION)

        return await self._run(wire.OPERATION, sign=sign, decode=decode)

    def check_period(self, date_from: date | None, date_to: date | None) -> None:
        """Raise :class:`~livestats.ValidationError` if the vendor would refuse these dates.

        :meth:`get_stream_durations` checks them too; this lets a caller with many
        queries over one period find out once, before sending any.
        """
        if (date_from is None) != (date_to is None):
            raise ValidationError("give both date_from and date_to, or neither")
        if date_from is None or date_to is None:
            return
        for name, value in (("date_from", date_from), ("date_to", date_to)):
            if isinstance(value, datetime) or not isinstance(value, date):
                raise ValidationError(f"{name} must be a datetime.date, not {value!r}")
        if date_from > date_to:
            raise ValidationError(f"date_from {date_from} is after date_to {date_to}")
        today = self.today()
        if date_to > today:
            raise ValidationError(f"date_to {date_to} is in the future (today is {today})")
        earliest = wire.earliest_date(today)
        if date_from < earliest:
            raise ValidationError(
                f"date_from {date_from} is older than the vendor keeps "
                f"(about {wire.KEPT_MONTHS} months: {earliest} or later)"
            )


def _check_streams(streams: object) -> dict[str, list[str]]:
    """Domain → distinct ``app/stream`` names, in the order given."""
    if not isinstance(streams, Mapping) or not streams:
        raise ValidationError("streams must be a non-empty mapping of domain to stream names")
    wanted: dict[str, list[str]] = {}
    for domain, names in streams.items():
        domain = check_text(domain, "domain").strip()
        if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
            raise ValidationError(f"the streams of {domain} must be a list of names")
        checked = [_check_stream(name, domain) for name in names]
        if not checked:
            raise ValidationError(f"no streams given for {domain}")
        # dict.fromkeys: distinct names in the order given, across repeats of a domain.
        wanted[domain] = list(dict.fromkeys([*wanted.get(domain, []), *checked]))
    return wanted


def _check_stream(name: object, domain: str) -> str:
    name = check_text(name, f"a stream name of {domain}")
    app, _, stream = name.strip().partition("/")
    if not app or not stream:
        raise ValidationError(f"stream names are 'app/stream', got {name!r} for {domain}")
    return name.strip()
