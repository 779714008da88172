"""Credentials and settings for the command line: environment variables over a config file.

Nothing here ever prints a value: messages name the variable or the file key.

The config file is TOML, ``--config PATH``, else ``$LIVESTATS_CONFIG``, else
``~/.config/livestats/config.toml`` if it exists::

    [tencent]
    sdkappid = 1400000000
    identifier = "administrator"
    secret_key = "..."          # or usersig = "..."
    region = "china"            # or base_url = "..."

    [chinanetcenter]
    username = "..."
    api_key = "..."

    [polyv]
    app_id = "..."
    app_secret = "..."
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

__all__ = ["ENVIRONMENT", "UsageError", "load_settings"]


class UsageError(Exception):
    """A mistake in how the command was called: exit code 2, one line, no traceback."""


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

DEFAULT_CONFIG = Path("~/.config/livestats/config.toml")


def _config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("LIVESTATS_CONFIG"):
        return Path(environ["LIVESTATS_CONFIG"]).expanduser()
    default = DEFAULT_CONFIG.expanduser()
    return default if default.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
            return document
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        # TOMLDecodeError names a line and column, never the value there.
        raise UsageError(f"cannot read config file {path}: {exc}") from None


def load_settings(
    provider: str, *, config: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The provider's settings: the config file's section, overridden by the environment."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    path = _config_file(config, environ)
    if path is not None:
        section = _read_file(path).get(provider, {})
        if not isinstance(section, dict):
            raise UsageError(f"[{provider}] in {path} must be a table")
        settings.update(section)
    for name, variable in ENVIRONMENT[provider].items():
        if environ.get(variable):
            settings[name] = environ[variable]
    return settings


def require(settings: Mapping[str, Any], provider: str, *names: str) -> None:
    """Refuse to start without every one of ``names``, naming where each can come from."""
    missing = [name for name in names if not settings.get(name)]
    if missing:
        where = ", ".join(ENVIRONMENT[provider][name] for name in missing)
        raise UsageError(
            f"missing {provider} settings: set {where} (or {', '.join(missing)} "
            f"under [{provider}] in the config file)"
        )
