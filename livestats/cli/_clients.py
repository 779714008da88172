"""Clients and their limiter, from the command line's flags, environment and config file.

Every client of one run paces through one limiter, and by default every run on
the machine does too: a per-user SQLite file (:func:`limiter_path`), so two
overlapping cron jobs of one account spend each quota together, never twice.
``--redis URL`` (or ``[limiter] redis``) shares the quotas with every host that
uses that Redis instead.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from yarl import URL

from livestats import (
    ChinaNetCenterClient,
    ConfigurationError,
    Limiter,
    PolyvClient,
    Quota,
    RedisLimiter,
    SQLiteLimiter,
    TencentClient,
)
from livestats.cli._config import (
    SECRET_SETTINGS,
    MissingCredentials,
    UsageError,
    load_limiter_settings,
    load_settings,
    missing_credentials,
    parse_quota,
)
from livestats.cli._log import remember_secrets
from livestats.events import EventHandler

__all__ = [
    "OPERATIONS",
    "chinanetcenter_client",
    "configured_quotas",
    "describe_limiter",
    "limiter_path",
    "parse_quota_option",
    "polyv_client",
    "run_limiter",
    "tencent_client",
]

#: Each provider's operations, for ``--quota`` (whose names are unique across providers).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "tencent": tuple(TencentClient.default_quotas),
    "chinanetcenter": tuple(ChinaNetCenterClient.default_quotas),
    "polyv": tuple(PolyvClient.default_quotas),
}


def limiter_path() -> Path:
    """Where the command line keeps the quotas every run on this machine shares.

    ``$LIVESTATS_LIMITER_PATH``, else ``$XDG_CACHE_HOME/livestats/quotas.sqlite3``,
    else ``~/.cache/livestats/quotas.sqlite3``: per user, so two overlapping cron
    jobs of one user spend each quota together, never twice.
    """
    given = os.environ.get("LIVESTATS_LIMITER_PATH")
    if given:
        return Path(given)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "livestats" / "quotas.sqlite3"


def parse_quota_option(text: str) -> tuple[str, Quota]:
    """``--quota OPERATION=REQUESTS/SECONDS`` (argparse names the option in its error)."""
    operation, sep, value = text.partition("=")
    operation = operation.strip()
    known = sorted(op for ops in OPERATIONS.values() for op in ops)
    if not sep or not operation:
        raise argparse.ArgumentTypeError(
            f"expected OPERATION=REQUESTS/SECONDS, like get_room_stats=500/1, not {text!r}"
        )
    if operation not in known:
        raise argparse.ArgumentTypeError(
            f"unknown operation {operation!r} (known: {', '.join(known)})"
        )
    try:
        return operation, parse_quota(value, where=operation)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _quotas(args: argparse.Namespace, provider: str, settings: dict[str, Any]) -> dict[str, Quota]:
    """The file's ``quotas`` for ``provider``, then every ``--quota`` of its operations."""
    quotas: dict[str, Quota] = {}
    for name, quota in (settings.get("quotas") or {}).items():
        if name not in OPERATIONS[provider]:
            raise UsageError(
                f"unknown {provider} operation {name!r} in [{provider}] quotas of the config "
                f"file (known: {', '.join(OPERATIONS[provider])})"
            )
        quotas[name] = quota
    given = list(getattr(args, "quota", None) or [])
    for operation, quota in given:
        if operation in OPERATIONS[provider]:
            quotas[operation] = quota
    others = [op for op, _ in given if op not in OPERATIONS[provider]]
    if others and getattr(args, "provider", None) == provider:
        raise UsageError(
            f"argument --quota: {others[0]!r} is not a {provider} operation "
            f"(known: {', '.join(OPERATIONS[provider])})"
        )
    return quotas


def run_limiter(args: argparse.Namespace) -> Limiter:
    """The one limiter of this run (made once, kept on ``args``)."""
    made: Limiter | None = getattr(args, "_limiter", None)
    if made is not None:
        return made
    redis = getattr(args, "redis", None)
    settings = {"redis": redis} if redis else load_limiter_settings(config=args.config)
    limiter: Limiter
    if settings.get("redis"):
        url = str(settings["redis"])
        try:
            limiter = RedisLimiter(url, fallback=settings.get("fallback", "error"))
        except ConfigurationError as err:
            raise UsageError(f"{'--redis' if redis else 'the Redis URL'}: {err}") from None
        parsed = URL(url)
        remember_secrets([parsed.password, parsed.raw_password])
        shown = url.replace(f":{parsed.raw_password}@", ":[secure]@") if parsed.password else url
        args._limiter_text = f"RedisLimiter {shown}"
    else:
        if settings.get("fallback"):
            raise UsageError("fallback under [limiter] is for redis only")
        path = Path(settings["sqlite"]) if settings.get("sqlite") else limiter_path()
        limiter = SQLiteLimiter(path)
        args._limiter_text = f"SQLiteLimiter {path}"
    args._limiter = limiter
    return limiter


def describe_limiter(args: argparse.Namespace) -> str:
    """This run's limiter in one line, for ``livestats quotas`` (a Redis URL without password)."""
    run_limiter(args)
    text: str = args._limiter_text
    return text


def _settings(args: argparse.Namespace, provider: str) -> dict[str, Any]:
    settings = load_settings(provider, config=args.config)
    remember_secrets(value for name, value in settings.items() if name in SECRET_SETTINGS)
    for name in ("base_url", "region", "time_zone"):
        if getattr(args, name, None):
            settings[name] = getattr(args, name)
    missing = missing_credentials(settings, provider)
    if missing:
        raise MissingCredentials(missing)
    return settings


def tencent_client(
    args: argparse.Namespace, *, on_event: EventHandler | None = None
) -> TencentClient:
    settings = _settings(args, "tencent")
    return TencentClient(
        settings["sdkappid"],
        settings["identifier"],
        secret_key=settings.get("secret_key") or None,
        usersig=settings.get("usersig") or None,
        region=settings.get("region") or "china",
        base_url=settings.get("base_url") or None,
        quotas=_quotas(args, "tencent", settings),
        on_event=on_event,
        limiter=run_limiter(args),
    )


def chinanetcenter_client(
    args: argparse.Namespace, *, on_event: EventHandler | None = None
) -> ChinaNetCenterClient:
    settings = _settings(args, "chinanetcenter")
    try:
        max_domains = int(settings.get("max_domains_per_request") or 1)
    except ValueError:
        raise UsageError("max_domains_per_request must be a whole number") from None
    return ChinaNetCenterClient(
        settings.get("username") or None,
        settings.get("api_key") or None,
        access_key=settings.get("access_key") or None,
        secret_key=settings.get("secret_key") or None,
        base_url=settings.get("base_url") or None,
        time_zone=settings.get("time_zone") or "GMT+08:00",
        max_domains_per_request=max_domains,
        quotas=_quotas(args, "chinanetcenter", settings),
        on_event=on_event,
        limiter=run_limiter(args),
    )


def polyv_client(args: argparse.Namespace, *, on_event: EventHandler | None = None) -> PolyvClient:
    settings = _settings(args, "polyv")
    return PolyvClient(
        settings["app_id"],
        settings["app_secret"],
        base_url=settings.get("base_url") or None,
        quotas=_quotas(args, "polyv", settings),
        on_event=on_event,
        limiter=run_limiter(args),
    )


def configured_quotas(args: argparse.Namespace, provider: str) -> dict[str, Quota | None]:
    """The quotas a client of ``provider`` would get: defaults, the file's, then ``--quota``."""
    quotas: dict[str, Quota | None] = dict(CLASSES[provider].default_quotas)
    quotas.update(_quotas(args, provider, load_settings(provider, config=args.config)))
    return quotas


CLASSES: dict[str, type[TencentClient | ChinaNetCenterClient | PolyvClient]] = {
    "tencent": TencentClient,
    "chinanetcenter": ChinaNetCenterClient,
    "polyv": PolyvClient,
}

CLIENTS = {
    "tencent": tencent_client,
    "chinanetcenter": chinanetcenter_client,
    "polyv": polyv_client,
}
