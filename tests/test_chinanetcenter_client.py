"""ChinaNetCenterClient against the simulator: splitting, merging, quota, errors, input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from livestats import (
    AuthenticationError,
    ChinaNetCenterClient,
    ConfigurationError,
    LocalLimiter,
    ProviderError,
    Quota,
    RateLimitedError,
    RetryPolicy,
    StreamDuration,
    ValidationError,
)
from livestats.testing import ChinaNetCenterSim, Simulator

CST = timezone(timedelta(hours=8))
OP = "get_stream_durations"
MakeClient = Callable[..., ChinaNetCenterClient]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(
        seed=11, chinanetcenter=ChinaNetCenterSim(domains=3, streams_per_domain=3)
    ) as simulator:
        yield simulator


@pytest.fixture
async def make_client(sim: Simulator) -> AsyncIterator[MakeClient]:
    clients: list[ChinaNetCenterClient] = []

    def make(**kwargs: Any) -> ChinaNetCenterClient:
        kwargs.setdefault("retry", RetryPolicy.instant())
        kwargs.setdefault("limiter", LocalLimiter())
        client = ChinaNetCenterClient(
            sim.chinanetcenter.username, sim.chinanetcenter.api_key, base_url=sim.url, **kwargs
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def _today() -> date:
    return datetime.now(CST).date()


def _totals(results: list[StreamDuration]) -> dict[tuple[str, str], timedelta]:
    return {(r.domain, r.stream): r.total for r in results}


async def test_one_domain_over_the_vendor_default_period(
    sim: Simulator, make_client: MakeClient
) -> None:
    domain, streams = next(iter(sim.domains.items()))
    results = await make_client().get_stream_durations({domain: streams})
    assert [(r.domain, r.stream) for r in results] == [(domain, s) for s in streams]
    assert any(r.sessions for r in results), "the simulator pushes most days"
    for result in results:
        assert result.total == sum((s.duration for s in result.sessions), timedelta(0))
        starts = [s.start for s in result.sessions]
        assert starts == sorted(starts)
        for session in result.sessions:
            assert session.start.utcoffset() == timedelta(hours=8)
            assert session.end - session.start == session.duration
    assert len(sim.arrivals(OP)) == 1


async def test_a_3_domain_70_day_query_is_split_into_accepted_requests_and_merged(
    sim: Simulator, make_client: MakeClient
) -> None:
    """Nine requests (3 domains x windows of 32, 32 and 7 days), all accepted, merged right."""
    client = make_client()
    last = _today()
    first = last - timedelta(days=70)
    results = await client.get_stream_durations(sim.domains, date_from=first, date_to=last)
    # Every request was accepted: a refusal (400) is not retried and would have raised.
    assert len(sim.arrivals(OP)) == 9
    assert sim.violations(OP) == 0
    assert len(results) == sum(len(s) for s in sim.domains.values())

    # Any other partition of the same days must add up to the same totals and sessions.
    reference: dict[tuple[str, str], timedelta] = {}
    sessions: dict[tuple[str, str], int] = {}
    start = first
    while start <= last:
        end = min(start + timedelta(days=9), last)
        for part in await client.get_stream_durations(sim.domains, date_from=start, date_to=end):
            key = (part.domain, part.stream)
            reference[key] = reference.get(key, timedelta(0)) + part.total
            sessions[key] = sessions.get(key, 0) + len(part.sessions)
        start = end + timedelta(days=1)
    assert _totals(results) == reference
    assert {(r.domain, r.stream): len(r.sessions) for r in results} == sessions
    assert sum(reference.values(), timedelta(0)) > timedelta(0)


async def test_domains_per_request_follow_the_account_limit() -> None:
    async with Simulator(seed=3, chinanetcenter=ChinaNetCenterSim(domains=3, max_domains=2)) as sim:
        client = ChinaNetCenterClient(
            sim.chinanetcenter.username,
            sim.chinanetcenter.api_key,
            base_url=sim.url,
            max_domains_per_request=2,
            limiter=LocalLimiter(),
        )
        async with client:
            results = await client.get_stream_durations(sim.domains)
        assert len(sim.arrivals(OP)) == 2
        assert len(results) == sum(len(s) for s in sim.domains.values())


@pytest.mark.parametrize("time_format", ["epoch_s", "epoch_ms", "text"])
async def test_every_time_format_reads_the_same(time_format: str) -> None:
    async def collect(fmt: str) -> list[StreamDuration]:
        async with Simulator(
            seed=5, chinanetcenter=ChinaNetCenterSim(domains=1, time_format=fmt)
        ) as sim:
            client = ChinaNetCenterClient(
                sim.chinanetcenter.username,
                sim.chinanetcenter.api_key,
                base_url=sim.url,
                limiter=LocalLimiter(),
            )
            async with client:
                return await client.get_stream_durations(sim.domains)

    assert await collect(time_format) == await collect("epoch_s")


async def test_another_time_zone_moves_the_days_and_the_times(
    sim: Simulator, make_client: MakeClient
) -> None:
    results = await make_client(time_zone="GMT-05:00").get_stream_durations(sim.domains)
    sessions = [s for r in results for s in r.sessions]
    assert sessions
    assert all(s.start.utcoffset() == timedelta(hours=-5) for s in sessions)


async def test_a_domain_the_account_does_not_have_comes_back_empty(
    sim: Simulator, make_client: MakeClient
) -> None:
    results = await make_client().get_stream_durations({"not-mine.example.org": ["live/x"]})
    assert results == [
        StreamDuration(domain="not-mine.example.org", stream="live/x", total=timedelta(0))
    ]


# -- quota ------------------------------------------------------------------------------


async def test_a_free_window_allows_the_full_burst(sim: Simulator, make_client: MakeClient) -> None:
    """Five domains at once under a 5-per-300-s quota: no wait for a later window."""
    async with Simulator(
        seed=2, chinanetcenter=ChinaNetCenterSim(domains=5, quotas={OP: Quota(5, 300.0)})
    ) as big:
        client = ChinaNetCenterClient(
            big.chinanetcenter.username,
            big.chinanetcenter.api_key,
            base_url=big.url,
            quotas={OP: Quota(5, 300.0)},
            limiter=LocalLimiter(),
        )
        async with client:
            results = await asyncio.wait_for(client.get_stream_durations(big.domains), 5.0)
        assert len(results) == sum(len(s) for s in big.domains.values())
        assert big.violations(OP) == 0


async def test_clients_of_one_account_share_the_quota() -> None:
    quota = Quota(4, 0.3)
    async with Simulator(
        seed=4, chinanetcenter=ChinaNetCenterSim(domains=4, quotas={OP: quota})
    ) as sim:
        limiter = LocalLimiter()  # what the process-wide default limiter does for everyone
        clients = [
            ChinaNetCenterClient(
                sim.chinanetcenter.username,
                sim.chinanetcenter.api_key,
                base_url=sim.url,
                quotas={OP: quota},
                limiter=limiter,
            )
            for _ in range(2)
        ]
        await asyncio.gather(*(c.get_stream_durations(sim.domains) for c in clients))
        for client in clients:
            await client.close()
        assert len(sim.arrivals(OP)) == 8
        assert sim.violations(OP) == 0
        assert sim.max_in_window(OP) <= 4


# -- errors and retries -------------------------------------------------------------------


async def test_internal_errors_are_retried(sim: Simulator, make_client: MakeClient) -> None:
    sim.fail_next(OP, 24102500, times=2)
    await make_client().get_stream_durations(sim.domains)
    assert len(sim.arrivals(OP)) == len(sim.domains) + 2  # two requests answered twice


async def test_a_refusal_is_not_retried_and_fails_the_query(
    sim: Simulator, make_client: MakeClient
) -> None:
    sim.fail_next(OP, 24102008)
    domain = next(iter(sim.domains))
    with pytest.raises(ProviderError) as info:
        await make_client().get_stream_durations({domain: sim.domains[domain]})
    assert info.value.vendor_code == "24102008"
    assert not info.value.retryable
    assert len(sim.arrivals(OP)) == 1


async def test_rate_limiting_lowers_the_limit_and_retries(
    sim: Simulator, make_client: MakeClient
) -> None:
    """A 429 with no Retry-After lowers the learned limit (70%) and the call is retried."""
    domain = next(iter(sim.domains))
    client = make_client(quotas={OP: Quota(10, 0.2)})
    sim.reply_next(OP, body='{"code": "429", "message": "Too Many Requests"}', status=429)
    results = await client.get_stream_durations({domain: sim.domains[domain]})
    assert results
    assert len(sim.arrivals(OP)) == 2
    assert client.effective_quota(OP) == Quota(7, 0.2)


async def test_persistent_rate_limiting_is_a_typed_error(
    sim: Simulator, make_client: MakeClient
) -> None:
    domain = next(iter(sim.domains))
    client = make_client(quotas={OP: None}, retry=RetryPolicy.instant(attempts=2))
    sim.reply_next(OP, body='{"code": "429", "message": "Too Many Requests"}', status=429, times=5)
    with pytest.raises(RateLimitedError):
        await client.get_stream_durations({domain: sim.domains[domain]})


async def test_a_wrong_api_key_is_refused(sim: Simulator) -> None:
    client = ChinaNetCenterClient(
        sim.chinanetcenter.username, "not-the-key", base_url=sim.url, limiter=LocalLimiter()
    )
    async with client:
        with pytest.raises(AuthenticationError):
            await client.get_stream_durations(sim.domains)


# -- bad input ----------------------------------------------------------------------------


def _days_ago(days: int) -> date:
    return _today() - timedelta(days=days)


@pytest.mark.parametrize(
    ("streams", "kwargs", "fragment"),
    [
        ({}, {}, "non-empty mapping"),
        (["a.com"], {}, "mapping"),
        ({"": ["live/a"]}, {}, "domain"),
        ({"a.com": []}, {}, "no streams"),
        ({"a.com": "live/a"}, {}, "list of names"),
        ({"a.com": ["nostream"]}, {}, "app/stream"),
        ({"a.com": ["live/"]}, {}, "app/stream"),
        ({"a.com": [""]}, {}, "stream name"),
        ({"a.com": ["live/a"]}, {"date_from": _days_ago(3)}, "both"),
        ({"a.com": ["live/a"]}, {"date_to": _days_ago(3)}, "both"),
        ({"a.com": ["live/a"]}, {"date_from": _days_ago(1), "date_to": _days_ago(3)}, "after"),
        ({"a.com": ["live/a"]}, {"date_from": _days_ago(1), "date_to": _days_ago(-1)}, "future"),
        ({"a.com": ["live/a"]}, {"date_from": _days_ago(400), "date_to": _days_ago(1)}, "older"),
        (
            {"a.com": ["live/a"]},
            {"date_from": datetime.now(), "date_to": datetime.now()},
            "datetime.date",
        ),
    ],
)
async def test_bad_input_fails_before_sending(
    sim: Simulator,
    make_client: MakeClient,
    streams: object,
    kwargs: dict[str, Any],
    fragment: str,
) -> None:
    with pytest.raises(ValidationError, match=fragment):
        await make_client().get_stream_durations(streams, **kwargs)  # type: ignore[arg-type]
    assert sim.arrivals(OP) == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"time_zone": "UTC+8"}, "time_zone"),
        ({"max_domains_per_request": 0}, "max_domains_per_request"),
        ({"base_url": "not a url"}, "base_url"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        ChinaNetCenterClient("user", "key", **kwargs)


def test_repr_hides_the_api_key() -> None:
    client = ChinaNetCenterClient("user", "very-secret-api-key")
    assert "very-secret-api-key" not in repr(client)
    assert "[secure]" in repr(client)
