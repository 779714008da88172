"""Quotas as data: at most ``limit`` requests in any ``period`` seconds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from livestats._core.validate import check_seconds, shown
from livestats.errors import ConfigurationError

#: The largest ``limit`` accepted: 2**53, the last integer a float (and so ``rate``, and
#: a Redis script's number) holds exactly. No vendor's quota comes near it.
MAX_LIMIT = 2**53


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ConfigurationError(
            f"Quota.{attribute.name} must be an int from 1 to 2**53, not {shown(value)}"
        )


def _period(value: object) -> float:
    return check_seconds(value, "Quota.period")


def _burst(instance: Quota, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is None:
        return
    _positive_int(instance, attribute, value)
    if value > instance.limit:
        raise ConfigurationError(
            f"Quota.burst must be at most the limit ({instance.limit}), not {shown(value)}"
        )


@attrs.frozen
class Quota:
    """At most ``limit`` requests in ANY interval of ``period`` seconds, as the provider sees them.

    ``burst`` (optional) smooths the start: at most that many requests start
    together, the rest follow at ``limit / period`` (a leaky bucket,
    ``aiolimiter.AsyncLimiter``, in front of the slots). The slots alone keep the
    quota; a leaky bucket alone would let about ``limit + burst`` into one window.

    >>> Quota(100, 1.0).rate
    100.0
    """

    limit: int = attrs.field(validator=_positive_int)
    period: float = attrs.field(converter=_period)
    burst: int | None = attrs.field(default=None, validator=_burst, kw_only=False)

    @property
    def rate(self) -> float:
        """The sustained rate the quota allows, in requests per second."""
        return self.limit / self.period

    def __str__(self) -> str:
        smooth = "" if self.burst is None else f" (burst {self.burst})"
        return f"{self.limit}/{self.period:g}s{smooth}"


#: What callers pass as ``quotas=``: an operation name mapped to a Quota, or to
#: ``None`` to turn pacing off for that operation.
QuotaOverrides = dict[str, "Quota | None"]


def resolve_quotas(
    defaults: Mapping[str, Quota], overrides: Mapping[str, Quota | None] | None, *, provider: str
) -> dict[str, Quota | None]:
    """Merge a provider's default table with a caller's overrides, refusing unknown names."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigurationError(
            f"quotas must be a mapping of operation name to Quota or None, not {shown(overrides)}"
        )
    merged: dict[str, Quota | None] = dict(defaults)
    for name, quota in (overrides or {}).items():
        if not isinstance(name, str) or name not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigurationError(
                f"unknown {provider} operation {shown(name)} in quotas (known: {known})"
            )
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(
                f"quotas[{name!r}] must be a livestats.Quota or None, not {shown(quota)}"
            )
        merged[name] = quota
    return merged
