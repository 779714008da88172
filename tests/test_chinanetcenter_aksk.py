"""ChinaNetCenter's AK/SK scheme (CNC-HMAC-SHA256): the vendor SDK's vector, and a client on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone

import pytest

from livestats import (
    AuthenticationError,
    ChinaNetCenterClient,
    ConfigurationError,
    HttpRequest,
    HttpResponse,
    LocalLimiter,
    RetryPolicy,
)
from livestats.providers.chinanetcenter.auth import AkSkAuth, aksk_signature, host_header
from livestats.testing import ChinaNetCenterSim, MockTransport, Simulator

CST = timezone(timedelta(hours=8))
OP = "get_stream_durations"

# The known answer from the vendor's own Python SDK (wangsu-sdk-python 1.0.0), providers.md.
VECTOR_BODY = (
    b'{"dateFrom":"2021-08-10","dateTo":"2021-08-12",'
    b'"domainStream":[{"domain":"www.a.com","stream":["test/steam0"]}]}'
)
VECTOR_SIGNATURE = "dc472ba7117849910d71bad57963ac483f5918821eb5ab699ebb824cbb41f9c0"


def test_the_signature_matches_the_vendor_sdk() -> None:
    signature = aksk_signature(
        "testSecretKey",
        method="POST",
        path="/api/report/domain/stream/duration",
        query="",
        headers={"Content-Type": "application/json", "Host": "open.chinanetcenter.com"},
        body=VECTOR_BODY,
        timestamp="1628600000",
    )
    assert signature == VECTOR_SIGNATURE


def test_the_headers_carry_the_vector_signature() -> None:
    """The whole header set, as the SDK sends it, for the vector's request."""
    auth = AkSkAuth("testAccessKey", "testSecretKey")
    headers, derived = auth.headers(
        method="POST",
        url="https://open.chinanetcenter.com/api/report/domain/stream/duration",
        body=VECTOR_BODY,
        now=1628600000.7,
    )
    assert headers["x-cnc-auth-method"] == "AKSK"
    assert headers["x-cnc-accessKey"] == "testAccessKey"
    assert headers["x-cnc-timestamp"] == "1628600000"
    assert headers["Host"] == "open.chinanetcenter.com"
    assert headers["Authorization"] == (
        "CNC-HMAC-SHA256 Credential=testAccessKey, SignedHeaders=content-type;host, "
        f"Signature={VECTOR_SIGNATURE}"
    )
    assert derived == (VECTOR_SIGNATURE,)
    assert "testSecretKey" not in repr(auth)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://open.chinanetcenter.com/x", "open.chinanetcenter.com"),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("https://example.test:443/x", "example.test"),
        ("http://[::1]:9000/x", "[::1]:9000"),
    ],
)
def test_the_signed_host_is_the_one_sent(url: str, host: str) -> None:
    """The signature covers the Host header as sent: a base_url's host and port."""
    assert host_header(url) == host


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"access_key": "ak"},
        {"secret_key": "sk"},
        {"username": "u", "api_key": "k", "access_key": "ak", "secret_key": "sk"},
        {"username": "u"},
        {"username": "u:v", "api_key": "k"},
    ],
)
def test_exactly_one_complete_pair_of_credentials(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        ChinaNetCenterClient(**kwargs)  # type: ignore[arg-type]


def test_the_quota_key_is_the_access_key_and_the_repr_hides_the_secret() -> None:
    client = ChinaNetCenterClient(access_key="AK123", secret_key="very-secret-sk")
    assert client.quota_key(OP) == "chinanetcenter:AK123:get_stream_durations"
    assert "very-secret-sk" not in repr(client)
    assert "AK123" in repr(client)


async def test_every_attempt_is_signed_afresh_over_its_exact_body() -> None:
    """Each request's signature verifies against the bytes and host actually sent."""
    seen: list[HttpRequest] = []

    def vendor(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        status = 502 if len(seen) == 1 else 200
        return HttpResponse(status=status, body=b'{"code": "0", "message": "ok", "data": []}')

    client = ChinaNetCenterClient(
        access_key="AK1",
        secret_key="SK1",
        base_url="http://127.0.0.1:9",
        transport=MockTransport(vendor),
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
    )
    today = datetime.now(CST).date()
    await client.get_stream_durations({"a.example": ["live/s"]}, date_from=today, date_to=today)
    assert len(seen) == 2
    for request in seen:
        headers = dict(request.headers)
        assert request.body is not None
        expected = aksk_signature(
            "SK1",
            method="POST",
            path="/api/report/domain/stream/duration",
            query="",
            headers=headers,
            body=request.body,
            timestamp=headers["x-cnc-timestamp"],
        )
        assert headers["Authorization"].endswith(f"Signature={expected}")
        assert headers["Host"] == "127.0.0.1:9"
        assert json.loads(request.body)["domainStream"][0]["domain"] == "a.example"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=5, chinanetcenter=ChinaNetCenterSim(domains=2)) as simulator:
        yield simulator


async def test_a_client_on_aksk_is_answered_by_the_simulator(sim: Simulator) -> None:
    """The simulator verifies AK/SK independently of the client's signer."""
    creds = sim.chinanetcenter
    async with ChinaNetCenterClient(
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        base_url=sim.url,
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
    ) as client:
        today = client.today()
        durations = await client.get_stream_durations(
            sim.domains, date_from=today - timedelta(days=40), date_to=today
        )
    wanted = sum(len(streams) for streams in sim.domains.values())
    assert len(durations) == wanted
    assert sim.violations(OP) == 0


async def test_a_wrong_secret_key_is_refused_once_and_stops_the_client(sim: Simulator) -> None:
    creds = sim.chinanetcenter
    async with ChinaNetCenterClient(
        access_key=creds.access_key,
        secret_key="not-the-secret-key",
        base_url=sim.url,
        limiter=LocalLimiter(),
        retry=RetryPolicy.instant(),
    ) as client:
        today: date = client.today()
        for _ in range(3):
            with pytest.raises(AuthenticationError) as info:
                await client.get_stream_durations(sim.domains, date_from=today, date_to=today)
            assert "not-the-secret-key" not in str(info.value)
    assert len(sim.arrivals(OP)) == 1
