"""``ChinaNetCenterClient``: stream push durations from ChinaNetCenter (Wangsu)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from livestats._core.batch import BatchResult, fan_out
from livestats._core.client import BaseClient, Wait
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
from livestats.providers.chinanetcenter import query, wire
from livestats.providers.chinanetcenter.auth import AkSkAuth, ApiKeyAuth, Auth
from livestats.providers.chinanetcenter.models import StreamDuration
from livestats.providers.chinanetcenter.quotas import DEFAULT_QUOTAS

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from livestats._core.settings import ClientOptions

__all__ = ["ChinaNetCenterClient"]


class ChinaNetCenterClient(BaseClient):
    """A client for one ChinaNetCenter (Wangsu) account.

    Authenticate with exactly one pair: ``(username, api_key)`` (HTTP Basic over
    the ``Date`` header) or ``access_key=`` and ``secret_key=`` (AK/SK,
    ``CNC-HMAC-SHA256``, as the vendor's own SDK signs)::

        ChinaNetCenterClient("user", "api-key")
        ChinaNetCenterClient(access_key="AK...", secret_key="SK...")

    ``time_zone`` (``GMT±hh:00``) is sent as ``X-Time-Zone``: it decides what "a
    day" means in the query and the zone of every time in the answer.
    ``max_domains_per_request`` is the account's limit (1 unless the vendor
    raised it): a query over more domains is split, not refused. The other
    keyword arguments are the settings every client shares
    (:class:`~livestats.ClientSettings`).

    The quota, 300 calls per 300 s, belongs to the account user: every client of
    one username in the process shares it through the process-wide limiter, and
    a free window allows the full burst. Quota key:
    ``chinanetcenter:<username>:get_stream_durations``. With AK/SK the key is
    ``chinanetcenter:<access_key>:get_stream_durations``: whether the vendor
    counts per user or per access key is unconfirmed, and per key undercounts if
    one user runs several keys at once (keep to one key per account, or give
    those clients a quota of their share).

    Credentials the vendor refuses (HTTP 401/403) stop the client: it sends
    nothing more with them.
    """

    provider = wire.PROVIDER
    default_quotas = DEFAULT_QUOTAS

    def __init__(
        self,
        username: str | None = None,
        api_key: str | None = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        quotas: Mapping[str, Quota | None] | None = None,
        time_zone: str = "GMT+08:00",
        max_domains_per_request: int = 1,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._auth = _check_auth(username, api_key, access_key, secret_key)
        if not isinstance(time_zone, str) or not time_zone.isascii():
            # The pattern's \d takes any digit (full-width too), and the value is sent
            # as the X-Time-Zone header as given.
            raise ConfigurationError(
                f"time_zone must look like 'GMT+08:00', not {shown(time_zone)}"
            )
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
        self._base_url = check_base_url(base_url) if base_url is not None else wire.DEFAULT_BASE_URL
        super().__init__(dict(options), quotas=quotas, secrets=self._auth.secrets)

    def __repr__(self) -> str:
        if isinstance(self._auth, ApiKeyAuth):
            who = f"username={self._auth.username!r}"
            secret = "api_key"
        else:
            who = f"access_key={self._auth.access_key!r}"
            secret = "secret_key"
        return (
            f"<ChinaNetCenterClient {who} base_url={self._base_url!r} "
            f"time_zone={self._time_zone!r} {secret}=[secure]>"
        )

    def quota_key(self, operation: str) -> str:
        """``chinanetcenter:<username or access key>:<operation>``."""
        return f"{self.provider}:{self._auth.quota_owner}:{operation}"

    def today(self) -> date:
        """Today in the client's time zone, by its clock: the latest day one can ask for."""
        return datetime.fromtimestamp(self._clock.wall(), tz=self._zone).date()

    async def get_stream_durations(
        self,
        streams: Mapping[str, Iterable[str]],
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        priority: Priority = Priority.INTERACTIVE,
        max_wait: float | None = None,
    ) -> list[StreamDuration]:
        """Push durations of ``streams`` (domain → ``"app/stream"`` names), one per stream.

        Give both dates or neither (neither: the vendor's default, the last 7
        days). Dates are inclusive, in the client's time zone, not after today and
        not older than the vendor keeps (about 6 months). A query over several
        domains or more than 31 days is split into requests the vendor accepts,
        sent concurrently under the quota, and merged: totals added, sessions in
        time order. If any request fails for good, the query raises its error.
        ``priority`` and ``max_wait`` say how each request waits for its quota slot.
        """
        wanted = _check_streams(streams)
        self.check_period(date_from, date_to)
        wait = self._wait(priority, max_wait)
        requests = query.plan(wanted, date_from, date_to, max_domains=self._max_domains)
        reports: list[wire.WireReport] = []
        send = functools.partial(self._send, wait=wait)
        async with contextlib.aclosing(
            fan_out(requests, send, concurrency=len(requests))
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

    def get_stream_durations_many(
        self,
        streams: Mapping[str, Iterable[str]],
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        concurrency: int | None = None,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[BatchResult[str, list[StreamDuration]], None]:
        """Push durations domain by domain: one :class:`~livestats.BatchResult` per domain.

        Like :meth:`get_stream_durations`, but one domain's failure is that
        domain's result and spares the others. The streams and the period are
        checked here, before anything is sent.
        """
        wanted = _check_streams(streams)
        self.check_period(date_from, date_to)
        self._wait(priority, max_wait)

        async def one(domain: str) -> list[StreamDuration]:
            return await self.get_stream_durations(
                {domain: wanted[domain]},
                date_from=date_from,
                date_to=date_to,
                priority=priority,
                max_wait=max_wait,
            )

        return fan_out(
            list(wanted), one, concurrency=self._concurrency(wire.OPERATION, concurrency)
        )

    def poll_stream_durations(
        self,
        streams: Mapping[str, Iterable[str]],
        *,
        every: float,
        priority: Priority = Priority.BULK,
        max_wait: float | None = None,
    ) -> AsyncGenerator[Sweep[str, list[StreamDuration]], None]:
        """Today's push durations every ``every`` seconds: one :class:`~livestats.Sweep` per pass.

        Each sweep asks for today, in the client's time zone by its clock (so the
        figures start again from zero at midnight there), one query per domain as
        :meth:`get_stream_durations_many` sends them: a sweep has one
        :class:`~livestats.BatchResult` per domain, whose value is a
        :class:`StreamDuration` per stream asked for, and one domain's failure
        spares the others. Sweep k starts ``k * every`` seconds after the first,
        on the client's clock; a sweep the quota cannot fit in ``every`` (at the
        default 300 per 300 s, more domains than ``every`` seconds) is reported
        (:class:`~livestats.events.SweepLate`) and the sweeps then run back to
        back. The streams and ``every`` are checked here, before anything is sent.
        """
        seconds = check_every(every)
        wanted = _check_streams(streams)
        self._wait(priority, max_wait)

        def sweep(
            domains: Sequence[str],
        ) -> AsyncGenerator[BatchResult[str, list[StreamDuration]], None]:
            today = self.today()
            return self.get_stream_durations_many(
                {domain: wanted[domain] for domain in domains},
                date_from=today,
                date_to=today,
                priority=priority,
                max_wait=max_wait,
            )

        def demand(domains: int) -> dict[str, int]:
            # One query per domain, over one day: one request each.
            return {wire.OPERATION: domains}

        return poll(
            provider=self.provider,
            every=seconds,
            clock=self._clock,
            sink=self._engine.sink,
            quotas=self._quotas,
            items=fixed_items(list(wanted)),
            demand=demand,
            sweep=sweep,
        )

    # -- the call path -----------------------------------------------------------------

    async def _send(self, request: query.Request, *, wait: Wait) -> wire.WireReport:
        body = wire.encode_body(request.domain_streams, request.date_from, request.date_to)

        def sign(signing: Signing) -> HttpRequest:
            return wire.signed_request(
                self._base_url, body, auth=self._auth, time_zone=self._time_zone, now=signing.now
            )

        def classify(response: HttpResponse) -> Outcome[wire.WireReport]:
            try:
                doc = wire.open_answer(response)
                report = self._structure(wire.CONVERTER, doc, wire.WireReport, wire.OPERATION)
                return Value(value=report)
            except LiveStatsError as err:
                return wire.refusal(err)

        return await self._run(wire.OPERATION, sign=sign, classify=classify, wait=wait)

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
                raise ValidationError(f"{name} must be a datetime.date, not {shown(value)}")
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


def _check_auth(username: object, api_key: object, access_key: object, secret_key: object) -> Auth:
    """Exactly one credentials pair, each of its two parts given."""
    basic = username is not None or api_key is not None
    aksk = access_key is not None or secret_key is not None
    if basic == aksk:
        raise ConfigurationError(
            "give exactly one pair of credentials: (username, api_key) "
            "or access_key= and secret_key="
        )
    if basic:
        if username is None or api_key is None:
            raise ConfigurationError("give both username and api_key")
        if isinstance(username, str) and ":" in username:
            raise ConfigurationError("username must not contain ':' (HTTP Basic cannot carry it)")
        return ApiKeyAuth(
            check_text(username, "username", error=ConfigurationError),
            check_text(api_key, "api_key", error=ConfigurationError),
        )
    if access_key is None or secret_key is None:
        raise ConfigurationError("give both access_key and secret_key")
    return AkSkAuth(
        check_text(access_key, "access_key", error=ConfigurationError),
        check_text(secret_key, "secret_key", error=ConfigurationError),
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
