"""RetryPolicy arithmetic and the error tree's contract."""

from __future__ import annotations

import pickle
import random

import pytest

from livestats import (
    ConfigurationError,
    LiveStatsError,
    NotFoundError,
    ProviderError,
    Quota,
    RateLimitedError,
    RetryPolicy,
    TransportError,
    ValidationError,
)


def test_backoff_grows_exponentially_with_equal_jitter() -> None:
    policy = RetryPolicy(initial_wait=0.2, max_wait=5.0, rng=random.Random(1))
    for retry in range(1, 10):
        ceiling = min(5.0, 0.2 * 2 ** (retry - 1))
        waits = [policy.backoff(retry) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered


def test_retry_after_is_honoured_up_to_a_cap() -> None:
    policy = RetryPolicy(initial_wait=0.1, max_wait=0.1, max_retry_after=10.0)
    assert policy.backoff(1, retry_after=3.0) == 3.0
    assert policy.backoff(1, retry_after=3600.0) == 10.0


def test_instant_policy_never_waits() -> None:
    policy = RetryPolicy.instant(attempts=5)
    assert policy.attempts == 5
    assert policy.backoff(4, retry_after=30.0) == 0.0
    assert RetryPolicy.disabled().attempts == 1


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"attempts": 1.5}, {"timeout": -1}, {"initial_wait": "x"}]
)
def test_bad_policies_are_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limit", "period"),
    [(0, 1.0), (-5, 1.0), (1.5, 1.0), (True, 1.0), (5, 0), (5, float("inf")), (5, "1"), (5, True)],
)
def test_bad_quotas_are_configuration_errors(limit: object, period: object) -> None:
    with pytest.raises(ConfigurationError):
        Quota(limit, period)  # type: ignore[arg-type]


def test_errors_carry_their_context_and_survive_pickling() -> None:
    err = NotFoundError(
        "room does not exist",
        provider="tencent",
        operation="get_room_stats",
        vendor_code=100004,
        vendor_message="room not exist",
        request_id="Id-1",
        http_status=200,
    )
    text = str(err)
    for part in ("tencent.get_room_stats", "100004", "room not exist", "Id-1"):
        assert part in text
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is NotFoundError
    assert (copy.vendor_code, copy.request_id, copy.operation) == (100004, "Id-1", "get_room_stats")


def test_the_tree_lets_callers_catch_by_meaning() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ConfigurationError, ValidationError)
    assert issubclass(RateLimitedError, ProviderError)
    assert RateLimitedError("x").retryable
    assert TransportError("x").retryable
    assert not ProviderError("x").retryable
    assert ProviderError("x", retryable=True).retryable
    for cls in (ValidationError, TransportError, ProviderError):
        assert issubclass(cls, LiveStatsError)
