"""The command line's settings: quotas and limiters, the config file, help, the debug log.

In-process runs (``Cli.run``) against a simulator in a thread, which counts what
reached it; a real Redis where the limiter is one; real processes where what is
tested is the interpreter without the ``cli`` extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from livestats.cli._log import logging_to_stderr, remember_secrets
from livestats.cli._main import build_parser
from livestats.testing import TencentSim, redis_server
from tests.test_cli import HANG, Cli, SimulatorThread, base_environment, without

ROOMS = 20


@pytest.fixture(scope="module")
def served() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=31, tencent=TencentSim(rooms=ROOMS)) as served:
        yield served


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def cli(served: SimulatorThread, home: Path) -> Iterator[Cli]:
    runner = Cli({**base_environment(home), **served.exports}, served.secrets)
    yield runner
    runner.close()


def quota_rows(run_stdout: str) -> dict[str, dict[str, str]]:
    return {row["operation"]: row for row in map(json.loads, run_stdout.splitlines())}


# -- 2. quotas: --quota, the limiter, livestats quotas ------------------------------------------


def test_quotas_shows_key_configured_effective_and_limiter(cli: Cli, home: Path) -> None:
    """`livestats quotas`: per provider and operation, what paces it and through what."""
    run = cli.run("quotas", "--format", "jsonl", "--quota", "get_room_stats=500/1")

    assert (run.returncode, run.stderr) == (0, "")
    rows = quota_rows(run.stdout)
    assert set(rows) == {
        "get_room_stats",
        "get_gift_count",
        "get_room_list",
        "get_stream_durations",
        "get_stream_info",
    }
    sdkappid = cli.env["LIVESTATS_TENCENT_SDKAPPID"]
    stats = rows["get_room_stats"]
    assert stats["provider"] == "tencent"
    assert stats["quota_key"] == f"tencent:{sdkappid}:get_room_stats"
    assert (stats["configured"], stats["effective"]) == ("500/1s", "500/1s")
    assert rows["get_room_list"]["configured"] == "10/1s"  # the vendor's, untouched
    default_file = home / ".cache" / "livestats" / "quotas.sqlite3"
    assert {row["limiter"] for row in rows.values()} == {f"SQLiteLimiter {default_file}"}


def test_quotas_without_credentials_shows_the_quotas_without_a_key(cli: Cli) -> None:
    env = without(cli.env, "LIVESTATS_POLYV_APP_ID", "LIVESTATS_POLYV_APP_SECRET")

    run = cli.run("quotas", env=env)

    assert (run.returncode, run.stderr) == (0, "")
    [polyv] = [line for line in run.stdout.splitlines() if line.startswith("polyv ")]
    assert "(no credentials)" in polyv
    assert "1500/10s" in polyv


def test_a_raised_quota_paces_the_run(cli: Cli, served: SimulatorThread, tmp_path: Path) -> None:
    """--quota replaces the vendor's figure for this run: at 3 per second, 5 rooms take
    two windows, and no second holds more than 3 of them."""
    env = {**cli.env, "LIVESTATS_LIMITER_PATH": str(tmp_path / "quotas.sqlite3")}
    before = served.sent("get_room_stats")
    ids = [f"room-{i:05d}" for i in range(5)]

    run = cli.run(
        "tencent", "room-stats", *ids, "--format", "jsonl", "--quota", "get_room_stats=3/1", env=env
    )

    assert run.returncode == 0
    arrivals = served.sim.arrivals("get_room_stats")[before:]
    assert len(arrivals) == 5
    assert max(sum(1 for t in arrivals if s <= t < s + 1.0) for s in arrivals) <= 3


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("get_room_stats", "expected OPERATION=REQUESTS/SECONDS"),
        ("get_room_stats=fast", "is not a quota"),
        ("get_room_stats=0/1", "Quota.limit"),
        ("get_room_stats=5/0", "Quota.period"),
        ("get_rooms=5/1", "unknown operation 'get_rooms'"),
    ],
)
def test_a_bad_quota_is_a_usage_error_naming_the_option(cli: Cli, value: str, says: str) -> None:
    run = cli.run("tencent", "room-stats", "room-00000", "--quota", value)

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert "argument --quota" in line
    assert says in line


def test_a_quota_of_another_provider_is_a_usage_error(cli: Cli) -> None:
    run = cli.run("tencent", "room-stats", "room-00000", "--quota", "get_stream_info=10/1")

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert "--quota" in line
    assert "not a tencent operation" in line


def test_quotas_from_the_config_file(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[tencent]\nquotas = { get_gift_count = "50/2" }\n', encoding="utf-8")

    run = cli.run("quotas", "--format", "jsonl", "--config", str(config))

    assert run.returncode == 0
    assert quota_rows(run.stdout)["get_gift_count"]["configured"] == "50/2s"


def test_the_limiter_table_names_the_sqlite_file(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    """[limiter] sqlite = PATH: the file every run shares, made where it says."""
    shared = tmp_path / "shared" / "quotas.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(f"[limiter]\nsqlite = {json.dumps(str(shared))}\n", encoding="utf-8")
    env = without(cli.env, "LIVESTATS_LIMITER_PATH")

    shown = cli.run("quotas", "--format", "jsonl", "--config", str(config), env=env)
    run = cli.run("tencent", "room-stats", "room-00000", "--config", str(config), env=env)

    assert {row["limiter"] for row in quota_rows(shown.stdout).values()} == {
        f"SQLiteLimiter {shared}"
    }
    assert run.returncode == 0
    assert shared.is_file()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.mark.parametrize("where", ["--redis", "[limiter]"])
def test_runs_share_quotas_through_redis(
    cli: Cli, redis_url: str, tmp_path: Path, where: str
) -> None:
    """--redis URL or [limiter] redis = URL: the quotas are kept in that Redis."""
    import redis

    config = tmp_path / "config.toml"
    config.write_text(f"[limiter]\nredis = {json.dumps(redis_url)}\n", encoding="utf-8")
    flags = ["--redis", redis_url] if where == "--redis" else ["--config", str(config)]

    shown = cli.run("quotas", "--format", "jsonl", *flags)
    run = cli.run("tencent", "room-stats", "room-00000", "--format", "jsonl", *flags)

    assert {row["limiter"] for row in quota_rows(shown.stdout).values()} == {
        f"RedisLimiter {redis_url}"
    }
    assert (run.returncode, run.stderr) == (0, "")
    client = redis.Redis.from_url(redis_url)
    try:
        sdkappid = cli.env["LIVESTATS_TENCENT_SDKAPPID"]
        assert any(sdkappid.encode() in key for key in client.keys("livestats*"))
    finally:
        client.close()


def test_a_redis_password_is_not_shown(cli: Cli) -> None:
    url = "redis://:hunter2-secret@127.0.0.1:9/0"

    run = cli.run("quotas", "--redis", url, secrets={"the Redis password": "hunter2-secret"})

    assert run.returncode == 0
    assert "RedisLimiter redis://:[secure]@127.0.0.1:9/0" in run.stdout


def test_redis_without_the_redis_extra_says_what_to_install(cli: Cli) -> None:
    with mock.patch.dict(sys.modules, {"redis": None, "redis.asyncio": None}):
        run = cli.run("tencent", "room-stats", "room-00000", "--redis", "redis://127.0.0.1:9/0")

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert line.startswith("livestats: error: --redis: ")
    assert "pip install 'livestats[redis]'" in line


# -- 8. help and config ------------------------------------------------------------------------


def _leaf_parsers(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, Any]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaf_parsers(sub, f"{path} {name}".strip())
            return
    yield path, parser


def test_every_option_has_help_and_every_command_examples_and_environment() -> None:
    parser = build_parser()
    leaves = dict(_leaf_parsers(parser))
    assert "tencent room-stats" in leaves
    assert "quotas" in leaves
    for name, command in [("", parser), *leaves.items()]:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
    for name, command in leaves.items():
        epilog = command.epilog or ""
        assert "examples:\n  livestats " in epilog, name
        assert "environment:\n" in epilog, name
        assert "LIVESTATS_CONFIG" in epilog, name
        provider = name.split()[0]
        if provider in ("tencent", "chinanetcenter", "polyv"):
            assert f"LIVESTATS_{provider.upper()}_BASE_URL" in epilog, name


def test_every_help_fits_80_columns(cli: Cli) -> None:
    env = {**cli.env, "COLUMNS": "80"}
    for name in ["", *dict(_leaf_parsers(build_parser()))]:
        run = cli.run(*name.split(), "--help", env=env)
        assert run.returncode == 0
        assert max(len(line) for line in run.stdout.splitlines()) < 80, name


def test_help_shows_the_examples_and_variables(cli: Cli) -> None:
    run = cli.run("chinanetcenter", "durations", "--help")

    assert run.returncode == 0
    assert "examples:" in run.stdout
    assert "LIVESTATS_CHINANETCENTER_ACCESS_KEY" in run.stdout


_WITHOUT_CLI = (
    "import sys\n"
    "sys.modules['rich'] = None\n"
    "sys.modules['tomli'] = None\n"
    "from livestats.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_work_without_the_cli_extra(flag: str, cli: Cli) -> None:
    """A plain `pip install livestats`: --help and --version work and say what to install."""
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CLI, flag],
        capture_output=True,
        encoding="utf-8",
        env=cli.env,
        timeout=HANG,
    )

    assert (proc.returncode, proc.stderr) == (0, "")
    if flag == "--help":
        assert "usage: livestats" in proc.stdout
        assert "pip install 'livestats[cli]'" in proc.stdout
    else:
        assert proc.stdout.startswith("livestats ")


def test_a_command_without_the_cli_extra_says_what_to_install(cli: Cli) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_CLI, "tencent", "rooms"],
        capture_output=True,
        encoding="utf-8",
        env=cli.env,
        timeout=HANG,
    )

    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [
        "livestats: error: this command needs rich: pip install 'livestats[cli]'"
    ]


def test_config_is_accepted_after_the_command(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    t = served.sim.tencent
    config = tmp_path / "config.toml"
    config.write_text(
        f'[tencent]\nsdkappid = {t.sdkappid}\nidentifier = "{t.identifier}"\n'
        f'secret_key = "{t.secret_key}"\nbase_url = "{served.sim.url}"\n',
        encoding="utf-8",
    )
    env = without(
        cli.env,
        "LIVESTATS_TENCENT_SDKAPPID",
        "LIVESTATS_TENCENT_IDENTIFIER",
        "LIVESTATS_TENCENT_SECRET_KEY",
    )

    run = cli.run("tencent", "rooms", "--format", "jsonl", "--config", str(config), env=env)

    assert (run.returncode, run.stderr) == (0, "")
    assert len(run.jsonl()) == ROOMS


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[tencnet]\nsdkappid = 1\n", "unknown table in {path}: [tencnet]"),
        ('[tencent]\nsecretkey = "x"\n', "unknown key under [tencent] in {path}: secretkey"),
        ('[limiter]\nredis_url = "x"\n', "unknown key under [limiter] in {path}: redis_url"),
        ('[tencent]\nquotas = { get_rooms = "1/1" }\n', "unknown tencent operation 'get_rooms'"),
        ('[tencent]\nquotas = { get_room_stats = "lots" }\n', "is not a quota"),
    ],
    ids=["table", "key", "limiter-key", "quota-operation", "quota-value"],
)
def test_unknown_tables_and_keys_in_the_config_are_named(
    cli: Cli, tmp_path: Path, text: str, says: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")

    run = cli.run("tencent", "room-stats", "room-00000", "--config", str(config))

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert says.format(path=config) in line


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (
            ["tencent", "rooms"],
            [
                "LIVESTATS_TENCENT_SDKAPPID",
                "LIVESTATS_TENCENT_IDENTIFIER",
                "LIVESTATS_TENCENT_SECRET_KEY or LIVESTATS_TENCENT_USERSIG",
            ],
        ),
        (
            ["chinanetcenter", "durations", "--domain", "d.example.com", "live/a"],
            [
                "LIVESTATS_CHINANETCENTER_USERNAME and LIVESTATS_CHINANETCENTER_API_KEY or "
                "LIVESTATS_CHINANETCENTER_ACCESS_KEY and LIVESTATS_CHINANETCENTER_SECRET_KEY"
            ],
        ),
        (["polyv", "stream-info", "1"], ["LIVESTATS_POLYV_APP_ID", "LIVESTATS_POLYV_APP_SECRET"]),
    ],
    ids=["tencent", "chinanetcenter", "polyv"],
)
def test_every_missing_credential_is_named_at_once(
    home: Path, command: list[str], missing: list[str]
) -> None:
    run = Cli(base_environment(home), {}).run(*command)

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert line.startswith("livestats: error: missing ")
    assert ", ".join(missing) in line


def test_half_an_ak_sk_pair_names_the_other_half(home: Path) -> None:
    env = {**base_environment(home), "LIVESTATS_CHINANETCENTER_ACCESS_KEY": "ak"}

    run = Cli(env, {}).run("chinanetcenter", "durations", "--domain", "d.example.com", "live/a")

    assert run.returncode == 2
    assert "set LIVESTATS_CHINANETCENTER_SECRET_KEY (" in run.stderr


def test_chinanetcenter_ak_sk_from_the_environment(cli: Cli, served: SimulatorThread) -> None:
    c = served.sim.chinanetcenter
    env = {
        **without(cli.env, "LIVESTATS_CHINANETCENTER_USERNAME", "LIVESTATS_CHINANETCENTER_API_KEY"),
        "LIVESTATS_CHINANETCENTER_ACCESS_KEY": c.access_key,
        "LIVESTATS_CHINANETCENTER_SECRET_KEY": c.secret_key,
    }
    domain, streams = next(iter(served.sim.domains.items()))

    run = cli.run(
        "chinanetcenter", "durations", "--domain", domain, *streams, "--format", "jsonl", env=env
    )

    assert (run.returncode, run.stderr) == (0, "")
    assert sorted(row["stream"] for row in run.jsonl()) == sorted(streams)


def test_verbose_shows_the_debug_log_without_secrets(cli: Cli) -> None:
    """-v (before or after the command) shows each request; Cli checks no secret shows."""
    run = cli.run("tencent", "room-stats", "room-00000", "-v", "--format", "jsonl")
    quiet = cli.run("tencent", "room-stats", "room-00000", "--format", "jsonl")
    before = cli.run("-v", "tencent", "room-stats", "room-00000", "--format", "jsonl")

    assert run.returncode == 0
    debug = [line for line in run.stderr_lines if line.startswith("livestats: debug: ")]
    assert any("get_room_stats POST" in line and "-> HTTP 200" in line for line in debug)
    assert quiet.stderr == ""
    assert "livestats: debug: " in before.stderr


def test_the_log_redacts_every_secret_the_command_line_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("livestats")
    with logging_to_stderr(verbose=True):
        remember_secrets(["s3cret-key-value"])
        logger.debug("signed with s3cret-key-value and more")
    assert capsys.readouterr().err == "livestats: debug: signed with [secure] and more\n"
