"""What the simulator's vendor modules have in common, written once.

- seeded values: :func:`digest`, :func:`draw`, :func:`picker` and
  :func:`hex_secret`, pure functions of a seed and some names, through BLAKE2b
  rather than ``hash()`` (which is salted per process), so data and credentials
  never drift between runs (ChinaNetCenter and Polyv put their name first in the
  parts, so they never draw the same numbers; Tencent, the first, has none, and
  keeps it that way so its data do not change);
- settings checks: attrs validators for ints, durations, strings, credentials and
  quota overrides, whose messages name the class and field at fault (and never
  show a value that could be a secret);
- :func:`quota_table`: the provider's documented quotas, for the operations a
  backend serves, with the caller's overrides applied;
- :class:`Refused`, :func:`json_object` and :class:`VendorBackend`: how a backend
  stops a request with a vendor error, and the replies every backend derives from
  its :meth:`~VendorBackend.error_reply`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta, timezone
from typing import Any, ClassVar

import attrs
from aiohttp import web

from livestats._core.quota import Quota, resolve_quotas

__all__ = [
    "BEIJING",
    "Refused",
    "VendorBackend",
    "check_int",
    "copy_quotas",
    "credentials_of",
    "digest",
    "draw",
    "hex_secret",
    "int_at_least",
    "json_object",
    "non_empty_str",
    "non_negative_seconds",
    "one_of",
    "picker",
    "quota_table",
    "quotas_of",
]

#: The vendors' home time zone (ChinaNetCenter's default, Polyv's ``time``).
BEIJING = timezone(timedelta(hours=8))

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


# -- seeded values --------------------------------------------------------------


def digest(seed: int, *parts: object, size: int) -> bytes:
    """``size`` bytes that depend only on ``seed`` and ``parts``."""
    text = "\x1f".join(str(part) for part in (seed, *parts))
    return hashlib.blake2b(text.encode(), digest_size=size).digest()


def draw(seed: int, *parts: object) -> int:
    """A 64-bit number that depends only on ``seed`` and ``parts``."""
    return int.from_bytes(digest(seed, *parts, size=8), "big")


def picker(seed: int, *parts: object) -> Callable[[str, int], int]:
    """``pick(name, bound)``: a number in ``range(bound)`` drawn for ``parts + (name,)``."""

    def pick(name: str, bound: int) -> int:
        return draw(seed, *parts, name) % bound

    return pick


def hex_secret(seed: int, *parts: object, size: int) -> str:
    """``2 * size`` lower-case hex digits that depend only on ``seed`` and ``parts``."""
    return digest(seed, *parts, size=size).hex()


# -- settings checks ------------------------------------------------------------


def check_int(name: str, value: object, *, minimum: int | None) -> None:
    """Refuse anything but an int (``bool`` included) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")


def _field(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def int_at_least(minimum: int, maximum: int | None = None) -> Validator:
    """An attrs validator: an int (not a bool) in ``[minimum, maximum]``."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        name = _field(instance, attribute)
        check_int(name, value, minimum=minimum)
        if maximum is not None and isinstance(value, int) and value > maximum:
            raise ValueError(f"{name} must be at most {maximum}, not {value}")

    return check


def non_negative_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: a finite, non-negative int or float."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(
            f"{_field(instance, attribute)} must be a non-negative number of seconds, not {value!r}"
        )


def non_empty_str(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An attrs validator: a str that is not empty or blank; the value is never shown."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_field(instance, attribute)} must be a non-empty str")


def one_of(choices: Iterable[str]) -> Validator:
    """An attrs validator: one of ``choices``."""
    allowed = tuple(choices)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValueError(
                f"{_field(instance, attribute)} must be one of {', '.join(allowed)}, not {value!r}"
            )

    return check


def credentials_of(cls: type) -> Validator:
    """An attrs validator: ``None`` or an instance of ``cls``.

    The message names the type received, not its repr, which could hold a secret.
    """

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise TypeError(
                f"{_field(instance, attribute)} must be a livestats.testing.{cls.__name__} "
                f"or None, not a {type(value).__name__}"
            )

    return check


def quota_table(
    defaults: Mapping[str, Quota],
    operations: Iterable[str],
    overrides: Mapping[str, Quota | None] | None,
    *,
    provider: str,
) -> dict[str, Quota | None]:
    """The documented quota of each served operation, with ``overrides`` applied.

    ``defaults`` is the provider's table, which may list operations the simulator
    does not serve; an override naming one of those, or no operation at all, is a
    ValueError (:class:`livestats.ConfigurationError`).
    """
    served = {operation: defaults[operation] for operation in operations}
    return resolve_quotas(served, dict(overrides or {}), provider=provider)


def quotas_of(
    defaults: Mapping[str, Quota], operations: Iterable[str], *, provider: str
) -> Validator:
    """An attrs validator: overrides :func:`quota_table` accepts for this provider."""
    served = tuple(operations)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(
                f"{_field(instance, attribute)} must be a mapping of operation names "
                f"to livestats.Quota or None, not a {type(value).__name__}"
            )
        quota_table(defaults, served, value, provider=provider)

    return check


def copy_quotas(
    value: Mapping[str, Quota | None] | None,
) -> dict[str, Quota | None] | None:
    """An attrs converter: a private copy, so the caller's later edits change nothing.

    Anything but a mapping passes through, for :func:`quotas_of` to refuse.
    """
    return dict(value) if isinstance(value, Mapping) else value


# -- answering ------------------------------------------------------------------


class Refused(Exception):
    """Stops a request early with vendor error ``code`` (``message``: the usual text)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


def json_object(
    raw: bytes, *, code: int, not_json: str | None = None, not_object: str | None = None
) -> dict[str, Any]:
    """``raw`` as a JSON object, else :class:`Refused` with ``code`` and the message."""
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise Refused(code, not_json) from None
    if not isinstance(doc, dict):
        raise Refused(code, not_object)
    return doc


class VendorBackend:
    """The parts of the pipeline's ``Backend`` protocol that every vendor shares.

    A subclass names its :attr:`provider` and its vendor codes for success, "over
    the quota" and "internal error", passes its quota table to ``__init__``,
    implements :meth:`error_reply`, :meth:`respond`, ``routes`` and
    ``quota_scope``, and raises :class:`Refused` from anywhere inside
    :meth:`respond` to answer with a vendor error.
    """

    __slots__ = ("_quotas",)

    provider: ClassVar[str]
    success_code: ClassVar[int]
    rate_limited_code: ClassVar[int]
    internal_error_code: ClassVar[int]

    def __init__(self, quotas: Mapping[str, Quota | None]) -> None:
        self._quotas = quotas

    @property
    def quotas(self) -> Mapping[str, Quota | None]:
        return self._quotas

    @property
    def block_seconds(self) -> float:
        return 0.0

    def error_reply(self, code: int, message: str | None) -> web.Response:
        raise NotImplementedError

    def rate_limited_reply(self) -> web.Response:
        return self.error_reply(self.rate_limited_code, None)

    def internal_error_reply(self) -> web.Response:
        return self.error_reply(self.internal_error_code, None)

    async def answer(self, operation: str, request: web.Request) -> web.Response:
        try:
            return await self.respond(operation, request)
        except Refused as refused:
            return self.error_reply(refused.code, refused.message)

    async def respond(self, operation: str, request: web.Request) -> web.Response:
        """Authenticate, validate and answer; raise :class:`Refused` to refuse."""
        raise NotImplementedError
