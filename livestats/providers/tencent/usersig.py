"""Tencent UserSig, TLS-Sig-API v2: generate, decode, verify, and a renewing cache.

The algorithm (``shared/docs/providers.md``, checked against Tencent's own SDKs):

1. ``content`` is four ``TLS.<name>:<value>`` lines, each ending in ``\\n``.
2. ``TLS.sig = base64(HMAC-SHA256(secret_key, content))``.
3. A JSON object of the fields and the sig, zlib-compressed, base64-encoded, then
   ``+`` -> ``*``, ``/`` -> ``-``, ``=`` -> ``_``.
4. A sig is expired when ``now > time + expire``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["UserSig", "UserSigCache", "UserSigError", "decode_usersig", "generate_usersig"]

#: Vendor advice: a validity of at least 24 hours.
DEFAULT_EXPIRE = 86_400
_TO_URL = str.maketrans("+/=", "*-_")
_FROM_URL = str.maketrans("*-_", "+/=")


class UserSigError(ValueError):
    """A string that is not a well-formed v2 UserSig, or whose signature does not match."""


def _content(identifier: str, sdkappid: int, now: int, expire: int) -> str:
    return (
        f"TLS.identifier:{identifier}\n"
        f"TLS.sdkappid:{sdkappid}\n"
        f"TLS.time:{now}\n"
        f"TLS.expire:{expire}\n"
    )


def _hmac_b64(secret_key: str, identifier: str, sdkappid: int, now: int, expire: int) -> str:
    mac = hmac.new(
        secret_key.encode(), _content(identifier, sdkappid, now, expire).encode(), hashlib.sha256
    )
    return base64.b64encode(mac.digest()).decode()


def generate_usersig(
    sdkappid: int, identifier: str, secret_key: str, *, now: int, expire: int = DEFAULT_EXPIRE
) -> str:
    """Return the UserSig for ``identifier``, valid from ``now`` (epoch s) for ``expire`` s."""
    doc = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": sdkappid,
        "TLS.expire": expire,
        "TLS.time": now,
        "TLS.sig": _hmac_b64(secret_key, identifier, sdkappid, now, expire),
    }
    packed = zlib.compress(json.dumps(doc, separators=(",", ":")).encode())
    return base64.b64encode(packed).decode().translate(_TO_URL)


@attrs.frozen(kw_only=True)
class UserSig:
    """The decoded fields of a v2 UserSig (``sig`` is the HMAC, kept out of the repr)."""

    identifier: str
    sdkappid: int
    time: int
    expire: int
    sig: str = attrs.field(repr=False)

    @property
    def expires_at(self) -> int:
        """Epoch second after which the sig is refused."""
        return self.time + self.expire

    def matches(self, secret_key: str) -> bool:
        """Whether ``sig`` is the HMAC of these fields under ``secret_key``."""
        expected = _hmac_b64(secret_key, self.identifier, self.sdkappid, self.time, self.expire)
        return hmac.compare_digest(expected, self.sig)


def decode_usersig(usersig: str) -> UserSig:
    """Decode a v2 UserSig into its fields, raising :class:`UserSigError` if malformed."""
    try:
        raw = zlib.decompress(base64.b64decode(usersig.translate(_FROM_URL), validate=True))
        doc: Any = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("TLS.ver") != "2.0":
            raise UserSigError("not a TLS-Sig-API v2 UserSig")
        fields = {
            "identifier": doc["TLS.identifier"],
            "sdkappid": doc["TLS.sdkappid"],
            "time": doc["TLS.time"],
            "expire": doc["TLS.expire"],
            "sig": doc["TLS.sig"],
        }
    except (binascii.Error, zlib.error, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, UserSigError):
            raise
        raise UserSigError("malformed UserSig") from None
    types = {"identifier": str, "sdkappid": int, "time": int, "expire": int, "sig": str}
    for name, kind in types.items():
        if isinstance(fields[name], bool) or not isinstance(fields[name], kind):
            raise UserSigError(f"UserSig field {name} has the wrong type")
    return UserSig(**fields)


@attrs.define(kw_only=True)
class UserSigCache:
    """One UserSig reused for every request and renewed well before it expires.

    A new sig is made once less than ``renew_fraction`` of its validity remains
    (by default half), or when :meth:`invalidate` is called after the provider
    said it expired (a skewed clock can make that happen early).
    """

    sdkappid: int
    identifier: str
    secret_key: str = attrs.field(repr=False)
    expire: int = DEFAULT_EXPIRE
    renew_fraction: float = 0.5
    clock: Callable[[], float] = time.time
    _current: str | None = attrs.field(default=None, init=False, repr=False)
    _renew_at: float = attrs.field(default=0.0, init=False)

    def get(self) -> str:
        """The sig to send now."""
        now = self.clock()
        if self._current is None or now >= self._renew_at:
            issued = int(now)
            self._current = generate_usersig(
                self.sdkappid, self.identifier, self.secret_key, now=issued, expire=self.expire
            )
            self._renew_at = issued + self.expire * (1.0 - self.renew_fraction)
        return self._current

    def invalidate(self) -> None:
        """Forget the current sig so the next :meth:`get` makes a fresh one."""
        self._current = None
