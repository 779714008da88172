"""Credentials and settings for the command line: environment variables over a config file.

Nothing here ever prints a value: messages name the variable or the file key.

The config file is TOML, ``--config PATH``, else ``$LIVESTATS_CONFIG``, else
``~/.config/livestats/config.toml`` if it exists::

    [tencent]
    sdkappid = 1400000000
    identifier = "administrator"
    secret_key = "..."          # or usersig = "..."
    region = "china"            # or base_url = "..."
    quotas = { get_room_stats = "500/1" }   # a raised limit (requests/seconds)

    [chinanetcenter]
    username = "..."            # with api_key; or access_key with secret_key
    api_key = "..."

    [polyv]
    app_id = "..."
    app_secret = "..."

    [limiter]                   # where runs share their quotas (default: a per-user file)
    redis = "redis://quotas.internal:6379/0"   # or sqlite = "/srv/livestats/quotas.sqlite3"

A table or key the command line does not know is an error naming it, so a typo
(``secretkey``) cannot leave a setting silently unset.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livestats import ConfigurationError, Quota

__all__ = [
    "ENVIRONMENT",
    "LIMITER_ENVIRONMENT",
    "MissingCredentials",
    "UsageError",
    "load_limiter_settings",
    "load_settings",
    "missing_credentials",
    "parse_quota",
]


class UsageError(Exception):
    """A mistake in how the command was called: exit code 2, one line, no traceback."""


class MissingCredentials(UsageError):
    """A provider's credentials are not all set (the message names every one missing)."""


#: Setting name -> environment variable, per provider. The README lists them.
ENVIRONMENT: dict[str, dict[str, str]] = {
    "tencent": {
        "sdkappid": "LIVESTATS_TENCENT_SDKAPPID",
        "identifier": "LIVESTATS_TENCENT_IDENTIFIER",
        "secret_key": "LIVESTATS_TENCENT_SECRET_KEY",
        "usersig": "LIVESTATS_TENCENT_USERSIG",
        "region": "LIVESTATS_TENCENT_REGION",
        "base_url": "LIVESTATS_TENCENT_BASE_URL",
    },
    "chinanetcenter": {
        "username": "LIVESTATS_CHINANETCENTER_USERNAME",
        "api_key": "LIVESTATS_CHINANETCENTER_API_KEY",
        "access_key": "LIVESTATS_CHINANETCENTER_ACCESS_KEY",
        "secret_key": "LIVESTATS_CHINANETCENTER_SECRET_KEY",
        "base_url": "LIVESTATS_CHINANETCENTER_BASE_URL",
        "time_zone": "LIVESTATS_CHINANETCENTER_TIME_ZONE",
        "max_domains_per_request": "LIVESTATS_CHINANETCENTER_MAX_DOMAINS_PER_REQUEST",
    },
    "polyv": {
        "app_id": "LIVESTATS_POLYV_APP_ID",
        "app_secret": "LIVESTATS_POLYV_APP_SECRET",
        "base_url": "LIVESTATS_POLYV_BASE_URL",
    },
}

#: The ``[limiter]`` keys and their environment variables (``None``: file only).
LIMITER_ENVIRONMENT: dict[str, str | None] = {
    "redis": "LIVESTATS_REDIS_URL",
    "sqlite": "LIVESTATS_LIMITER_PATH",
    "fallback": None,
}

#: The settings that are secrets: redacted from the log, never echoed.
SECRET_SETTINGS = frozenset({"secret_key", "usersig", "api_key", "app_secret"})

#: What each provider's settings must hold: alternatives of settings that go together.
CREDENTIALS: dict[str, list[list[tuple[str, ...]]]] = {
    "tencent": [[("sdkappid",)], [("identifier",)], [("secret_key",), ("usersig",)]],
    "chinanetcenter": [[("username", "api_key"), ("access_key", "secret_key")]],
    "polyv": [[("app_id",)], [("app_secret",)]],
}

DEFAULT_CONFIG = Path("~/.config/livestats/config.toml")


def _toml() -> Any:
    # Imported when a file is read, not with the module: `livestats --help` needs
    # nothing beyond the SDK (tomli is the cli extra's, on Python 3.10).
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # type: ignore[import-not-found, unused-ignore]  # pragma: no cover

    return tomli  # pragma: no cover


def _config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("LIVESTATS_CONFIG"):
        return Path(environ["LIVESTATS_CONFIG"]).expanduser()
    default = DEFAULT_CONFIG.expanduser()
    return default if default.is_file() else None


def _known_keys(table: str) -> set[str]:
    if table == "limiter":
        return set(LIMITER_ENVIRONMENT)
    return {*ENVIRONMENT[table], "quotas"}


def _check_document(document: Mapping[str, Any], path: Path) -> None:
    """Refuse tables and keys the command line does not know, naming each."""
    tables = sorted({*ENVIRONMENT, "limiter"})
    unknown_tables = [name for name in document if name not in tables]
    if unknown_tables:
        raise UsageError(
            f"unknown {_plural(unknown_tables, 'table')} in {path}: "
            f"{', '.join(f'[{name}]' for name in unknown_tables)} (known: {', '.join(tables)})"
        )
    for name, table in document.items():
        if not isinstance(table, dict):
            raise UsageError(f"[{name}] in {path} must be a table")
        known = _known_keys(name)
        unknown = [key for key in table if key not in known]
        if unknown:
            raise UsageError(
                f"unknown {_plural(unknown, 'key')} under [{name}] in {path}: "
                f"{', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        quotas = table.get("quotas")
        if quotas is not None and not isinstance(quotas, dict):
            raise UsageError(
                f'quotas under [{name}] in {path} must be a table, like {{ op = "500/1" }}'
            )


def _plural(items: list[str], word: str) -> str:
    return word if len(items) == 1 else word + "s"


def read_config(
    config: str | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], Path | None]:
    """The config file's tables (checked) and its path, or nothing when there is no file."""
    environ = os.environ if environ is None else environ
    path = _config_file(config, environ)
    if path is None:
        return {}, None
    toml = _toml()
    try:
        with path.open("rb") as handle:
            document: dict[str, Any] = toml.load(handle)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"cannot read config file {path}: not UTF-8 text (byte {exc.start})"
        ) from None
    except toml.TOMLDecodeError as exc:
        # TOMLDecodeError names a line and column, never the value there.
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    _check_document(document, path)
    return document, path


def load_settings(
    provider: str, *, config: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The provider's settings: the config file's table, overridden by the environment.

    ``quotas`` (from the file only) maps operation names to :class:`~livestats.Quota`.
    """
    environ = os.environ if environ is None else environ
    document, path = read_config(config, environ)
    settings: dict[str, Any] = dict(document.get(provider, {}))
    if "quotas" in settings:
        where = f"[{provider}] quotas in {path}"
        settings["quotas"] = {
            name: parse_quota(str(value), where=f"{where}: {name}")
            for name, value in settings["quotas"].items()
        }
    for name, variable in ENVIRONMENT[provider].items():
        if environ.get(variable):
            settings[name] = environ[variable]
    return settings


def load_limiter_settings(
    *, config: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``[limiter]`` table, overridden by ``LIVESTATS_REDIS_URL`` / ``LIVESTATS_LIMITER_PATH``.

    A variable replaces the whole table: ``LIVESTATS_LIMITER_PATH`` wins over a
    ``redis`` in the file, as any environment variable wins over the file.
    """
    environ = os.environ if environ is None else environ
    document, _ = read_config(config, environ)
    settings: dict[str, Any] = dict(document.get("limiter", {}))
    for name, variable in LIMITER_ENVIRONMENT.items():
        if variable is not None and environ.get(variable):
            return {name: environ[variable]}
    if "redis" in settings and "sqlite" in settings:
        raise UsageError("give one of redis or sqlite under [limiter] in the config file, not both")
    return settings


def missing_credentials(settings: Mapping[str, Any], provider: str) -> str | None:
    """Every credential ``settings`` lacks, named at once, or ``None`` when none is missing.

    Each need is a list of alternatives (Tencent's ``secret_key`` or ``usersig``;
    ChinaNetCenter's ``username`` and ``api_key``, or ``access_key`` and
    ``secret_key``). For a pair half given, only its other half is named.
    """
    variables = ENVIRONMENT[provider]
    missing_vars: list[str] = []
    missing_keys: list[str] = []
    for alternatives in CREDENTIALS[provider]:
        if any(all(settings.get(name) for name in group) for group in alternatives):
            continue
        started = [g for g in alternatives if any(settings.get(name) for name in g)]
        groups = started[:1] or alternatives
        missing_vars.append(
            " or ".join(
                " and ".join(variables[n] for n in g if not settings.get(n)) for g in groups
            )
        )
        missing_keys.append(
            " or ".join(" and ".join(n for n in g if not settings.get(n)) for g in groups)
        )
    if not missing_vars:
        return None
    return (
        f"missing {provider} settings: set {', '.join(missing_vars)} "
        f"(or {', '.join(missing_keys)} under [{provider}] in the config file)"
    )


_QUOTA = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def parse_quota(text: str, *, where: str) -> Quota:
    """``500/1`` (requests / seconds) as a :class:`~livestats.Quota`; ``where`` names the source."""
    found = _QUOTA.match(text)
    if found is None:
        raise UsageError(
            f"{where}: {text!r} is not a quota: give requests/seconds, like 500/1 or 300/300"
        )
    try:
        return Quota(int(found.group(1)), float(found.group(2)))
    except ConfigurationError as err:
        raise UsageError(f"{where}: {err}") from None
