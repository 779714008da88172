"""ChinaNetCenter's two ways to sign a request: the API key (Basic + Date) and AK/SK.

Both are pure functions of the credentials, the exact request and the time:
:meth:`headers` is called afresh for every attempt, and returns the headers to
send together with every derived secret a gateway could echo (so the engine can
scrub it from error texts).

- :class:`ApiKeyAuth`: a ``Date`` header in RFC 1123 GMT (built locale-free) and
  HTTP Basic with the account username and ``base64(HMAC-SHA1(api_key, Date))``.
- :class:`AkSkAuth`: ``CNC-HMAC-SHA256`` as the vendor's own Python SDK signs
  (``wangsu-sdk-python`` 1.0.0, ``AkSkAuth.py``): a canonical request over the
  method, path, query, the ``content-type`` and ``host`` headers and the SHA-256
  of the exact body bytes, signed with HMAC-SHA256 of the secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate

import attrs
from yarl import URL

__all__ = ["AkSkAuth", "ApiKeyAuth", "Auth", "aksk_signature", "date_header", "password"]

CONTENT_TYPE = "application/json"
AKSK_ALGORITHM = "CNC-HMAC-SHA256"
#: The headers AK/SK signs: lower-case, sorted, ``;``-joined.
AKSK_SIGNED_HEADERS = "content-type;host"


def password(api_key: str, date_header: str) -> str:
    """The Basic-auth password: ``base64(HMAC-SHA1(api_key, Date))``."""
    digest = hmac.new(api_key.encode(), date_header.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def date_header(epoch_seconds: float) -> str:
    """RFC 1123 GMT, built without the locale (``Thu, 17 May 2012 19:37:58 GMT``)."""
    return formatdate(epoch_seconds, usegmt=True)


def host_header(url: str) -> str:
    """The ``Host`` header a request to ``url`` carries: the host, and the port unless default."""
    parsed = URL(url)
    host = parsed.raw_host or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return host if parsed.is_default_port() else f"{host}:{parsed.port}"


def aksk_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    timestamp: str,
) -> str:
    """The lower-case hex ``Signature`` of one request (``headers`` holds the signed ones)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = AKSK_SIGNED_HEADERS.split(";")
    canonical_headers = "".join(f"{name}:{lowered[name].lower()}\n" for name in names)
    canonical_request = "\n".join(
        (
            method.upper(),
            path,
            query,
            canonical_headers,
            AKSK_SIGNED_HEADERS,
            hashlib.sha256(body).hexdigest(),
        )
    )
    string_to_sign = "\n".join(
        (AKSK_ALGORITHM, timestamp, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    return hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


@attrs.frozen(repr=False)
class ApiKeyAuth:
    """The API-key scheme; its quota belongs to the account user."""

    username: str
    api_key: str

    def __repr__(self) -> str:
        return f"ApiKeyAuth(username={self.username!r}, api_key=[secure])"

    @property
    def quota_owner(self) -> str:
        return self.username

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key,)

    def headers(
        self, *, method: str, url: str, body: bytes, now: float
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        when = date_header(now)
        secret = password(self.api_key, when)
        token = base64.b64encode(f"{self.username}:{secret}".encode()).decode()
        return (
            {"Date": when, "Authorization": f"Basic {token}"},
            (token, secret),
        )


@attrs.frozen(repr=False)
class AkSkAuth:
    """The AK/SK scheme (``CNC-HMAC-SHA256``).

    Its quota key is the access key: whether the vendor counts its 300 calls per
    5 minutes per account user or per access key is **unconfirmed**. Per key may
    undercount when one user has several keys in use at once: give those clients
    one limiter key by passing the same ``quotas`` owner through a shared limiter,
    or keep to one key per account.

    How far ``x-cnc-timestamp`` may drift from the vendor's clock is unconfirmed
    too; the local wall clock (corrected, if the engine learned an offset) is used.
    """

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"AkSkAuth(access_key={self.access_key!r}, secret_key=[secure])"

    @property
    def quota_owner(self) -> str:
        return self.access_key

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret_key,)

    def headers(
        self, *, method: str, url: str, body: bytes, now: float
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        parsed = URL(url)
        timestamp = str(int(now))
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": host_header(url),
            "x-cnc-auth-method": "AKSK",
            "x-cnc-accessKey": self.access_key,
            "x-cnc-timestamp": timestamp,
        }
        signature = aksk_signature(
            self.secret_key,
            method=method,
            path=parsed.raw_path,
            query="" if method.upper() == "POST" else parsed.raw_query_string,
            headers=headers,
            body=body,
            timestamp=timestamp,
        )
        headers["Authorization"] = (
            f"{AKSK_ALGORITHM} Credential={self.access_key}, "
            f"SignedHeaders={AKSK_SIGNED_HEADERS}, Signature={signature}"
        )
        return headers, (signature,)


#: Either scheme.
Auth = ApiKeyAuth | AkSkAuth
