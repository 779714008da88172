"""Quotas as data: at most ``limit`` requests in any ``period`` seconds."""

from __future__ import annotations

import attrs

from livestats._core.validate import check_seconds
from livestats.errors import ConfigurationError


def _positive_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"Quota.{attribute.name} must be a positive int, not {value!r}")


def _period(value: object) -> float:
    return check_seconds(value, "Quota.period")


@attrs.frozen
class Quota:
    """At most ``limit`` requests in ANY interval of ``period`` seconds, as the provider sees them.

    >>> Quota(100, 1.0).rate
    100.0
    """

    limit: int = attrs.field(validator=_positive_int)
    period: float = attrs.field(converter=_period)

    @property
    def rate(self) -> float:
        """The sustained rate the quota allows, in requests per second."""
        return self.limit / self.period

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


#: What callers pass as ``quotas=``: an operation name mapped to a Quota, or to
#: ``None`` to turn pacing off for that operation.
QuotaOverrides = dict[str, "Quota | None"]


def resolve_quotas(
    defaults: dict[str, Quota], overrides: dict[str, Quota | None] | None, *, provider: str
) -> dict[str, Quota | None]:
    """Merge a provider's default table with a caller's overrides, refusing unknown names."""
    merged: dict[str, Quota | None] = dict(defaults)
    for name, quota in (overrides or {}).items():
        if name not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigurationError(
                f"unknown {provider} operation {name!r} in quotas (known: {known})"
            )
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(
                f"quotas[{name!r}] must be a livestats.Quota or None, not {quota!r}"
            )
        merged[name] = quota
    return merged
