"""UserSig (TLS-Sig-API v2): the vendor's known-answer vector, decoding, the renewing cache."""

from __future__ import annotations

import pytest

from livestats.providers.tencent.usersig import (
    UserSigCache,
    UserSigError,
    decode_usersig,
    generate_usersig,
)

# shared/docs/providers.md, "Known answer".
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"


def test_known_answer_vector() -> None:
    usersig = generate_usersig(1400000000, "xiaojun", KEY, now=1600000000, expire=15552000)
    decoded = decode_usersig(usersig)
    # Compare decoded fields, not strings: JSON spacing and zlib level vary by SDK.
    assert decoded.sig == "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M="
    assert (decoded.identifier, decoded.sdkappid, decoded.time, decoded.expire) == (
        "xiaojun",
        1400000000,
        1600000000,
        15552000,
    )
    assert decoded.matches(KEY)
    assert not decoded.matches(KEY[:-1] + "0")


def test_usersig_is_url_safe() -> None:
    usersig = generate_usersig(1400000000, "admin", KEY, now=1700000000)
    assert not set(usersig) & set("+/=")


@pytest.mark.parametrize("garbage", ["", "not-a-sig", "eJw*", "AAAA"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(UserSigError):
        decode_usersig(garbage)


def test_the_hmac_is_not_in_the_repr() -> None:
    decoded = decode_usersig(generate_usersig(1, "a", KEY, now=1))
    assert decoded.sig not in repr(decoded)


def test_cache_reuses_one_sig_and_renews_well_before_expiry() -> None:
    now = [1_700_000_000.0]
    cache = UserSigCache(
        sdkappid=1, identifier="admin", secret_key=KEY, expire=1000, clock=lambda: now[0]
    )
    first = cache.get()
    now[0] += 499
    assert cache.get() == first  # reused while more than half the validity remains
    now[0] += 1
    second = cache.get()
    assert second != first  # renewed at half-life, 500 s before expiry
    assert decode_usersig(second).time == 1_700_000_500
    cache.invalidate()
    now[0] += 1
    assert cache.get() != second


def test_cache_repr_hides_the_key_and_the_sig() -> None:
    cache = UserSigCache(sdkappid=1, identifier="admin", secret_key=KEY)
    sig = cache.get()
    assert KEY not in repr(cache)
    assert sig not in repr(cache)
