"""How closely a run kept to a quota, from the arrival times the simulator recorded."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from livestats._core.quota import Quota
from livestats.testing._simulator import max_in_window

__all__ = ["PacingReport", "pacing_report"]


@attrs.frozen(kw_only=True)
class PacingReport:
    """``ratio`` is the achieved rate over the quota's rate; 1.0 is a quota used exactly.

    The achieved rate counts the windows a run occupied: ``calls / (span + period)``,
    where ``span`` is the time from the first arrival to the last. A run that
    fills every window with exactly ``limit`` calls scores 1.0, whatever its length,
    because its first burst and its last one each take a window.
    """

    calls: int
    span: float
    rate: float
    ratio: float
    busiest_window: int
    quota: Quota

    @property
    def exceeded(self) -> bool:
        return self.busiest_window > self.quota.limit

    def __str__(self) -> str:
        return (
            f"{self.calls} calls, {self.rate:.1f}/s = {self.ratio:.1%} of {self.quota}, "
            f"busiest {self.quota.period:g} s window {self.busiest_window}/{self.quota.limit}"
        )


def pacing_report(arrivals: Sequence[float], quota: Quota) -> PacingReport:
    times = sorted(arrivals)
    span = times[-1] - times[0] if times else 0.0
    rate = len(times) / (span + quota.period) if times else 0.0
    return PacingReport(
        calls=len(times),
        span=span,
        rate=rate,
        ratio=rate / quota.rate,
        busiest_window=max_in_window(times, quota.period),
        quota=quota,
    )
