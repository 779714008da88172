"""``livestats quotas``: what each operation is paced by in this setting, and through what.

For every provider and operation: the quota key (which requests share the
quota: the same key in another process or host is the same budget), the quota
configured (the vendor's published figure, or a raised one from ``--quota`` or
the config file), the quota in effect now (lower when the limiter has learned
the vendor allows less) and the limiter the runs share it through. A provider
without credentials has no key yet: its quotas are shown, its key is not.
"""

from __future__ import annotations

import argparse
import sys

import attrs

from livestats import Quota
from livestats.cli._clients import CLIENTS, configured_quotas, describe_limiter
from livestats.cli._commands import Job
from livestats.cli._config import MissingCredentials
from livestats.cli._output import columns_of

__all__ = ["quotas"]


@attrs.frozen(kw_only=True)
class QuotaInUse:
    provider: str
    operation: str
    quota_key: str | None
    configured: str
    effective: str
    limiter: str


def _shown(quota: Quota | None) -> str:
    return "not paced" if quota is None else str(quota)


def _rows(args: argparse.Namespace) -> list[QuotaInUse]:
    limiter = describe_limiter(args)
    rows = []
    for provider, make in CLIENTS.items():
        try:
            client = make(args)
        except MissingCredentials:
            # No credentials, so no key: the quotas from the defaults, the file and --quota.
            for operation, quota in configured_quotas(args, provider).items():
                rows.append(
                    QuotaInUse(
                        provider=provider,
                        operation=operation,
                        quota_key=None,
                        configured=_shown(quota),
                        effective=_shown(quota),
                        limiter=limiter,
                    )
                )
            continue
        for operation, quota in client.quotas.items():
            rows.append(
                QuotaInUse(
                    provider=provider,
                    operation=operation,
                    quota_key=client.quota_key(operation),
                    configured=_shown(quota),
                    effective=_shown(client.effective_quota(operation)),
                    limiter=limiter,
                )
            )
    return rows


def _table(rows: list[QuotaInUse]) -> str:
    names = [field.name for field in attrs.fields(QuotaInUse)]
    cells = [[getattr(row, name) or "(no credentials)" for name in names] for row in rows]
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join(
        [line(names), line(["-" * w for w in widths]), *(line(values) for values in cells)]
    )


async def quotas(args: argparse.Namespace) -> int:
    """Print the quotas in force for every provider and operation, their keys and the limiter."""
    rows = _rows(args)
    if args.format == "table" and (not args.output or args.output == "-"):
        print(_table(rows))
        return 0
    with Job(args, columns_of(QuotaInUse), sys.stdout) as job:
        for row in rows:
            job.ok(row)
    return 0
