"""The ``livestats`` command line, end to end, against a real simulator in a process of its own.

One ``livestats simulate --port 0`` process serves the module, and the only
credentials the runs get are the ``export`` lines it printed. Tests that fill a
quota window (Ctrl-C, ``| head``) or stop the simulator get one of their own, so
they cannot slow down or break the others.

Most runs go through :meth:`Cli.run`, which calls :func:`livestats.cli.main` in
this process as if it were a process of its own (see :func:`call_main`): starting
an interpreter costs more than most commands take. Where the process itself is
what is tested, the run is a real one: the console script and ``python -m``, exit
codes as the shell sees them, signals, pseudo-terminals, a pipe a producer keeps
open, and a reader that goes away. Every run, in-process or not, fails the test
if a traceback or any secret (the simulator's, or one a test put in the
environment or a config file) reached stdout or stderr.

A few waits have a deadline, :data:`PATIENCE`: they wait for something that takes
milliseconds (a result for an id already written, an exit after Ctrl-C) and exist
only to tell "never" apart from "later" without hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import attrs
import pytest

from livestats import (
    ChinaNetCenterClient,
    GiftCount,
    PolyvClient,
    RoomStats,
    RoomSummary,
    StreamDuration,
    StreamInfoSample,
    TencentClient,
)
from livestats._core import limiter as limiter_module
from livestats.cli import main
from livestats.testing import Simulator, TencentSim

ROOMS = 25
SEED = 3
PYTHON_M = (sys.executable, "-m", "livestats")
CONSOLE_SCRIPT = (str(Path(sys.executable).with_name("livestats")),)
ERROR_FIELDS = ["error", "error_type"]
#: How long to wait for something that takes milliseconds before calling it stuck.
PATIENCE = 2.0
#: How long anything at all may take before the suite gives up on a process.
HANG = 60.0
SECRET_VARIABLES = (
    "LIVESTATS_TENCENT_SECRET_KEY",
    "LIVESTATS_TENCENT_USERSIG",
    "LIVESTATS_CHINANETCENTER_API_KEY",
    "LIVESTATS_POLYV_APP_SECRET",
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: The smallest durations job: one stream of the simulator's first domain.
ONE_STREAM = ["chinanetcenter", "durations", "--domain", "live1.example.com", "live/stream00"]


def columns(cls: type) -> list[str]:
    """What the machine formats promise: the result class's fields, then the error fields."""
    return [field.name for field in attrs.fields(cls)] + ERROR_FIELDS


def plain(value: Any) -> Any:
    """A result as the machine formats write it: datetimes ISO 8601, timedeltas in seconds."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if attrs.has(type(value)):
        return {
            field.name: plain(getattr(value, field.name)) for field in attrs.fields(type(value))
        }
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def ok_row(value: Any) -> dict[str, Any]:
    return {**plain(value), "error": None, "error_type": None}


# -- running livestats -------------------------------------------------------------------


@attrs.frozen
class Run:
    """One finished ``livestats`` run (a process, or :func:`call_main`)."""

    returncode: int
    stdout: str
    stderr: str

    def jsonl(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def csv_rows(self) -> tuple[list[str], list[dict[str, str]]]:
        reader = csv.DictReader(io.StringIO(self.stdout, newline=""))
        rows = list(reader)
        return list(reader.fieldnames or []), rows

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def assert_clean(text: str, secrets: Mapping[str, str]) -> None:
    """No traceback and no secret in ``text`` (failures name the secret, never show it)."""
    assert "Traceback" not in text
    leaked = [name for name, value in secrets.items() if value in text]
    assert leaked == [], "secrets in the output"


def call_main(
    args: Sequence[str], env: Mapping[str, str], stdin: str | Path | None
) -> tuple[int, str, str]:
    """``livestats ARGS`` by :func:`livestats.cli.main` here, as in a process of its own.

    What such a process would have: exactly ``env`` as its environment; ``stdin``
    as text through a stream that is not a file (a pipe), a file (``< FILE``), or
    /dev/null; stdout and stderr that are files, never a terminal; no logging
    handler configured, so a warning reaches stderr through ``logging.lastResort``;
    a process-wide limiter of its own (``shared_limiter()``), whose slots leave
    with the run; and an argparse exit's code as the exit code. It runs in the main
    thread, so the Ctrl-C handler is installed (and removed) as there. Returns the
    exit code, stdout and stderr.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = Path(tmp, "stdout"), Path(tmp, "stderr")
        with contextlib.ExitStack() as stack:
            source: Any
            if isinstance(stdin, Path):
                source = stack.enter_context(stdin.open(encoding="utf-8"))
            elif stdin is None:
                source = stack.enter_context(open(os.devnull, encoding="utf-8"))
            else:
                source = io.StringIO(stdin)
            out = stack.enter_context(out_path.open("w", encoding="utf-8"))
            err = stack.enter_context(err_path.open("w", encoding="utf-8"))
            stack.enter_context(mock.patch.dict(os.environ, env, clear=True))
            stack.enter_context(mock.patch.multiple(sys, stdin=source, stdout=out, stderr=err))
            stack.enter_context(_no_logging_handlers())
            stack.enter_context(mock.patch.object(limiter_module, "_shared", None))
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse's: 2, after one line on stderr
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        return code, out_path.read_text(encoding="utf-8"), err_path.read_text(encoding="utf-8")


@contextlib.contextmanager
def _no_logging_handlers() -> Iterator[None]:
    """No handler on the root logger (pytest's are put back after), as in a fresh process."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:] = saved


class Started:
    """A ``livestats`` process :meth:`Cli.start` started; :meth:`finish` waits for it."""

    def __init__(
        self, proc: subprocess.Popen[str], stdin: str | None, secrets: Mapping[str, str]
    ) -> None:
        self._proc = proc
        self._stdin = stdin
        self._secrets = secrets

    def finish(self) -> Run:
        """Its exit code and output, checked for tracebacks and secrets."""
        try:
            out, err = self._proc.communicate(self._stdin, timeout=HANG)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        assert_clean(out, self._secrets)
        assert_clean(err, self._secrets)
        return Run(self._proc.returncode, out, err)

    def kill(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
            self._proc.communicate()


class Cli:
    """Runs ``livestats`` with an environment pointing at a simulator.

    :meth:`run` in this process (:func:`call_main`); :meth:`start`,
    :meth:`run_process` and :meth:`run_in_pty` as real processes.
    """

    def __init__(self, env: Mapping[str, str], secrets: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.secrets = dict(secrets)
        self._started: list[Started] = []

    def start(
        self,
        *args: str,
        stdin: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        launcher: Sequence[str] = PYTHON_M,
    ) -> Started:
        """Start a run; several started together share the time their startups take.

        ``stdin``: text to pipe in, or a file to redirect from (``< FILE``).
        """
        env = self.env if env is None else env
        with contextlib.ExitStack() as stack:
            if isinstance(stdin, Path):
                source: Any = stack.enter_context(stdin.open("rb"))
            else:
                source = subprocess.DEVNULL if stdin is None else subprocess.PIPE
            proc = subprocess.Popen(
                [*launcher, *args],
                stdin=source,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                encoding="utf-8",
            )
        text = stdin if isinstance(stdin, str) else None
        started = Started(proc, text, {**self.secrets, **secrets_in(env), **(secrets or {})})
        self._started.append(started)
        return started

    def run(
        self,
        *args: str,
        stdin: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Run:
        """Run in this process; its output checked for tracebacks and secrets."""
        env = self.env if env is None else env
        code, out, err = call_main(args, env, stdin)
        for text in (out, err):
            assert_clean(text, {**self.secrets, **secrets_in(env), **(secrets or {})})
        return Run(code, out, err)

    def run_process(
        self,
        *args: str,
        stdin: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        launcher: Sequence[str] = PYTHON_M,
    ) -> Run:
        """Run as a real process, and wait for it."""
        return self.start(*args, stdin=stdin, env=env, secrets=secrets, launcher=launcher).finish()

    def run_in_pty(
        self, *args: str, terminal_stdin: bool = False, stderr: Path | None = None
    ) -> tuple[int, str]:
        """Run with stdout and stderr on a pseudo-terminal: exit code, and all it wrote there.

        ``stderr``: a file for stderr instead (``2>FILE``).
        """
        code, raw = run_in_pty(args, self.env, terminal_stdin=terminal_stdin, stderr=stderr)
        secrets = {**self.secrets, **secrets_in(self.env)}
        assert_clean(raw, secrets)
        if stderr is not None:
            assert_clean(stderr.read_text(encoding="utf-8"), secrets)
        return code, raw

    def close(self) -> None:
        """Kill what a failed test left running."""
        for started in self._started:
            started.kill()


def secrets_in(env: Mapping[str, str]) -> dict[str, str]:
    return {name: env[name] for name in SECRET_VARIABLES if env.get(name)}


def base_environment(home: Path) -> dict[str, str]:
    """This process's environment without any LIVESTATS_ setting, a HOME of its own, a TERM."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LIVESTATS_")
        and name not in {"NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM"}
    }
    env.update(HOME=str(home), TERM="xterm-256color")
    return env


class SimulatorProcess:
    """``livestats simulate --port 0`` in a subprocess, and what it printed.

    ``reference`` is an unstarted :class:`Simulator` with the same rooms and seed:
    the same data (room ids, domains and their streams) for the tests to ask for.
    """

    def __init__(self, env: Mapping[str, str], *, rooms: int = ROOMS, seed: int = SEED) -> None:
        self.reference = Simulator(seed=seed, tencent=TencentSim(rooms=rooms))
        self.header: list[str] = []
        self.exports: dict[str, str] = {}
        self._stopped: tuple[int, str] | None = None
        self._proc = subprocess.Popen(
            [*PYTHON_M, "simulate", "--port", "0", "--rooms", str(rooms), "--seed", str(seed)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            encoding="utf-8",
        )
        try:
            self._read_exports()
        except BaseException:
            self.stop()
            raise
        found = re.search(r"listening on (http://\S+)", self.header[0])
        assert found is not None, self.header[0]
        self.url = found.group(1)

    def _read_exports(self) -> None:
        assert self._proc.stdout is not None
        while "LIVESTATS_POLYV_APP_SECRET" not in self.exports:
            line = self._proc.stdout.readline()
            if not line:
                raise RuntimeError("livestats simulate ended before printing its credentials")
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                self.exports[name] = value
            else:
                self.header.append(line.strip())

    @property
    def secrets(self) -> dict[str, str]:
        return secrets_in(self.exports)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a person stops it: its exit code and what it wrote on stderr."""
        if self._stopped is None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
            try:
                _, err = self._proc.communicate(timeout=HANG)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                _, err = self._proc.communicate()
            self._stopped = (self._proc.returncode, err)
        return self._stopped


class SimulatorThread:
    """A :class:`Simulator` serving from a thread and loop of its own.

    For in-process runs that must see what reached the simulator (how many
    requests, which) while :func:`call_main` runs its own event loop here.
    """

    def __init__(self, **settings: Any) -> None:
        self.sim = Simulator(**settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop).result(HANG)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.close(), self._loop).result(HANG)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(HANG)
        self._loop.close()

    @property
    def exports(self) -> dict[str, str]:
        """What ``livestats simulate`` would print for this simulator."""
        sim = self.sim
        t, c, p = sim.tencent, sim.chinanetcenter, sim.polyv
        return {
            "LIVESTATS_TENCENT_BASE_URL": sim.url,
            "LIVESTATS_TENCENT_SDKAPPID": str(t.sdkappid),
            "LIVESTATS_TENCENT_IDENTIFIER": t.identifier,
            "LIVESTATS_TENCENT_SECRET_KEY": t.secret_key,
            "LIVESTATS_CHINANETCENTER_BASE_URL": sim.url,
            "LIVESTATS_CHINANETCENTER_USERNAME": c.username,
            "LIVESTATS_CHINANETCENTER_API_KEY": c.api_key,
            "LIVESTATS_POLYV_BASE_URL": sim.url,
            "LIVESTATS_POLYV_APP_ID": p.app_id,
            "LIVESTATS_POLYV_APP_SECRET": p.app_secret,
        }

    @property
    def secrets(self) -> dict[str, str]:
        c = self.sim.chinanetcenter
        return {
            **secrets_in(self.exports),
            "the AK/SK secret key": c.secret_key,
        }

    def sent(self, operation: str) -> int:
        """How many requests to ``operation`` have arrived so far."""
        return len(self.sim.arrivals(operation))


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return base_environment(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def simulator(base_env: dict[str, str]) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(base_env)
    yield sim
    sim.stop()


@pytest.fixture
def fresh_simulator(base_env: dict[str, str]) -> Iterator[SimulatorProcess]:
    """A simulator of the test's own, whose quota windows no other test touches."""
    sim = SimulatorProcess(base_env, seed=SEED + 1)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def cli(simulator: SimulatorProcess, base_env: dict[str, str]) -> Iterator[Cli]:
    runner = Cli({**base_env, **simulator.exports}, simulator.secrets)
    yield runner
    runner.close()


def without(env: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in names}


def room_ids(n: int) -> list[str]:
    return [f"room-{i:05d}" for i in range(n)]


def by_key(rows: Sequence[dict[str, Any]], *key: str) -> dict[Any, dict[str, Any]]:
    index = {tuple(row[k] for k in key): row for row in rows}
    assert len(index) == len(rows), "duplicate keys"
    return index


# -- reading processes that are still running ----------------------------------------------


def read_until(fd: int, done: Callable[[bytes], bool], timeout: float) -> bytes:
    """Read ``fd`` until ``done(what was read)`` or ``timeout`` seconds or EOF."""
    data = b""
    deadline = time.monotonic() + timeout
    while not done(data):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty master reads EIO once every slave end is closed
            break
        if not chunk:
            break
        data += chunk
    return data


def exits_within(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.01)


def run_in_pty(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    terminal_stdin: bool = False,
    stderr: Path | None = None,
) -> tuple[int, str]:
    """Run livestats with stdout and stderr on a pseudo-terminal: exit code, all it wrote."""
    master, slave = pty.openpty()
    try:
        with contextlib.ExitStack() as stack:
            errors: Any = slave if stderr is None else stack.enter_context(stderr.open("wb"))
            proc = subprocess.Popen(
                [*PYTHON_M, *args],
                stdin=slave if terminal_stdin else subprocess.DEVNULL,
                stdout=slave,
                stderr=errors,
                env=dict(env),
            )
        with proc:
            os.close(slave)
            slave = -1
            output = read_until(master, lambda _: False, HANG)
            if not exits_within(proc, HANG):
                proc.kill()
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return proc.returncode, output.decode("utf-8", errors="replace")


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after ``raw``: enough of one for rich's live display.

    Handles text, CR, LF, cursor up (``ESC[nA``) and erase in line (``ESC[K``,
    ``ESC[2K``); other escapes (colours, cursor visibility) change no text.
    """
    rows: list[list[str]] = [[]]
    row = col = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]", raw):
        if token == "\n":
            row += 1
            col = 0
            if row == len(rows):
                rows.append([])
        elif token == "\r":
            col = 0
        elif token.startswith("\x1b["):
            kind, count = token[-1], token[2:-1]
            if kind == "A":
                row = max(0, row - int(count or 1))
            elif kind == "K" and count == "2":
                rows[row] = []
            elif kind == "K" and count in ("", "0"):
                del rows[row][col:]
        else:
            line = rows[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = token
            else:
                line.append(token)
            col += 1
    return ["".join(line).rstrip() for line in rows]


def toml_config(exports: Mapping[str, str], **overrides: str) -> str:
    """A config file holding the simulator's credentials (``overrides``: key = value)."""
    tencent: dict[str, str | int] = {
        "sdkappid": int(exports["LIVESTATS_TENCENT_SDKAPPID"]),
        "identifier": exports["LIVESTATS_TENCENT_IDENTIFIER"],
        "secret_key": exports["LIVESTATS_TENCENT_SECRET_KEY"],
        "base_url": exports["LIVESTATS_TENCENT_BASE_URL"],
    }
    cnc: dict[str, str | int] = {
        "username": exports["LIVESTATS_CHINANETCENTER_USERNAME"],
        "api_key": exports["LIVESTATS_CHINANETCENTER_API_KEY"],
        "base_url": exports["LIVESTATS_CHINANETCENTER_BASE_URL"],
    }
    polyv: dict[str, str | int] = {
        "app_id": exports["LIVESTATS_POLYV_APP_ID"],
        "app_secret": exports["LIVESTATS_POLYV_APP_SECRET"],
        "base_url": exports["LIVESTATS_POLYV_BASE_URL"],
    }
    sections = {"tencent": tencent, "chinanetcenter": cnc, "polyv": polyv}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition("__")
        sections[section][key] = value
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
        for name, table in sections.items()
    )


def past_days() -> tuple[date, date]:
    """A week that has surely ended in every time zone, and is well within 6 months."""
    last = datetime.now(timezone.utc).date() - timedelta(days=2)
    return last - timedelta(days=6), last


def past_hour() -> tuple[datetime, datetime]:
    """Half an hour that has ended: its samples are the same whenever they are asked for."""
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=1)
    return end - timedelta(minutes=30), end


def tencent_client(sim: SimulatorProcess) -> TencentClient:
    e = sim.exports
    return TencentClient(
        e["LIVESTATS_TENCENT_SDKAPPID"],
        e["LIVESTATS_TENCENT_IDENTIFIER"],
        secret_key=e["LIVESTATS_TENCENT_SECRET_KEY"],
        base_url=sim.url,
    )


def live_channels(sim: SimulatorProcess) -> list[str]:
    line = next(line for line in sim.header if line.startswith("# live Polyv channels:"))
    return line.partition(":")[2].replace(",", " ").split()


# -- each command, end to end ---------------------------------------------------------------


def test_room_stats_of_ids_given_as_arguments(cli: Cli, simulator: SimulatorProcess) -> None:
    ids = room_ids(3)
    run = cli.run("tencent", "room-stats", *ids, "--format", "jsonl")

    assert (run.returncode, run.stderr) == (0, "")
    rows = run.jsonl()
    assert all(list(row) == columns(RoomStats) for row in rows)

    async def expected() -> dict[tuple[str], dict[str, Any]]:
        async with tencent_client(simulator) as client:
            return {(room,): ok_row(await client.get_room_stats(room)) for room in ids}

    assert by_key(rows, "room_id") == asyncio.run(expected())


def test_room_stats_reads_ids_from_an_input_file(cli: Cli, tmp_path: Path) -> None:
    ids = room_ids(4)
    path = tmp_path / "rooms.txt"
    path.write_text("# rooms to watch\n\n" + "\n".join(f"  {room}  " for room in ids) + "\n")

    run = cli.run("tencent", "room-stats", "--input", str(path), "--format", "csv")

    assert (run.returncode, run.stderr) == (0, "")
    header, rows = run.csv_rows()
    assert header == columns(RoomStats)
    assert sorted(row["room_id"] for row in rows) == ids
    assert all(row["error"] == row["error_type"] == "" for row in rows)
    assert all(int(row["total_viewers"]) >= 0 for row in rows)


@pytest.mark.parametrize("how", ["piped", "input-dash", "redirected-file"])
def test_room_stats_reads_ids_on_stdin(cli: Cli, tmp_path: Path, how: str) -> None:
    ids = room_ids(3)
    text = "\n".join(ids) + "\n"
    path = tmp_path / "rooms.txt"
    path.write_text(text)
    flags = ["--input", "-"] if how == "input-dash" else []
    stdin = path if how == "redirected-file" else text

    run = cli.run("tencent", "room-stats", *flags, "--format", "json", stdin=stdin)

    assert (run.returncode, run.stderr) == (0, "")
    rows = json.loads(run.stdout)
    assert sorted(row["room_id"] for row in rows) == ids
    assert all(list(row) == columns(RoomStats) and row["error"] is None for row in rows)


def test_room_stats_all_collects_every_room(cli: Cli, simulator: SimulatorProcess) -> None:
    run = cli.run("tencent", "room-stats", "--all")  # the default format: a table

    assert (run.returncode, run.stderr) == (0, "")
    header, rule, *body = run.stdout.splitlines()
    assert header.split() == columns(RoomStats)[:-2]
    assert set(rule) == {"-", " "}
    assert sorted(line.split()[0] for line in body) == simulator.reference.room_ids


def test_gift_count_of_room_account_lines(cli: Cli) -> None:
    lines = "room-00000 anchor-a\nroom-00001\tanchor-b\nroom-00002,anchor-c\n# no more\n"
    run = cli.run("tencent", "gift-count", "--format", "jsonl", stdin=lines)

    assert (run.returncode, run.stderr) == (0, "")
    rows = run.jsonl()
    assert all(list(row) == columns(GiftCount) and row["error"] is None for row in rows)
    assert set(by_key(rows, "room_id", "from_account")) == {
        ("room-00000", "anchor-a"),
        ("room-00001", "anchor-b"),
        ("room-00002", "anchor-c"),
    }


def test_gift_count_with_account_for_lines_that_give_none(cli: Cli) -> None:
    run = cli.run(
        "tencent",
        "gift-count",
        "--account",
        "fan-1",
        "--format",
        "csv",
        stdin="room-00000\nroom-00001 someone-else\n",
    )

    assert (run.returncode, run.stderr) == (0, "")
    header, rows = run.csv_rows()
    assert header == columns(GiftCount)
    assert {(row["room_id"], row["from_account"]) for row in rows} == {
        ("room-00000", "fan-1"),
        ("room-00001", "someone-else"),
    }
    assert all(int(row["total_coins"]) >= 0 for row in rows)


def test_rooms_lists_every_room(cli: Cli, simulator: SimulatorProcess) -> None:
    run = cli.run("tencent", "rooms", "--format", "jsonl")

    assert (run.returncode, run.stderr) == (0, "")
    rows = run.jsonl()
    assert all(list(row) == columns(RoomSummary) for row in rows)

    async def every_room() -> list[dict[str, Any]]:
        async with tencent_client(simulator) as client:
            return [ok_row(room) async for room in client.iter_rooms()]

    expected = asyncio.run(every_room())
    assert len(expected) == ROOMS
    assert rows == expected


def test_durations_of_streams_given_with_domain(cli: Cli, simulator: SimulatorProcess) -> None:
    domain, streams = next(iter(simulator.reference.domains.items()))
    first, last = past_days()
    run = cli.run(
        "chinanetcenter",
        "durations",
        "--domain",
        domain,
        *streams[:2],
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
        "--format",
        "jsonl",
    )

    assert (run.returncode, run.stderr) == (0, "")
    rows = run.jsonl()
    assert all(list(row) == columns(StreamDuration) for row in rows)
    e = simulator.exports

    async def expected() -> list[StreamDuration]:
        async with ChinaNetCenterClient(
            e["LIVESTATS_CHINANETCENTER_USERNAME"],
            e["LIVESTATS_CHINANETCENTER_API_KEY"],
            base_url=simulator.url,
        ) as client:
            return await client.get_stream_durations(
                {domain: streams[:2]}, date_from=first, date_to=last
            )

    durations = asyncio.run(expected())
    assert by_key(rows, "domain", "stream") == {(d.domain, d.stream): ok_row(d) for d in durations}
    assert sum(row["total"] for row in rows) > 0  # sessions were there to be reported


def test_durations_of_domain_stream_lines(cli: Cli, simulator: SimulatorProcess) -> None:
    (one, one_streams), (two, two_streams) = list(simulator.reference.domains.items())[:2]
    wanted = {(one, one_streams[0]), (one, one_streams[1]), (two, two_streams[0])}
    lines = f"{one} {one_streams[0]}\n{one},{one_streams[1]}\n\n{two} {two_streams[0]}\n"
    run = cli.run("chinanetcenter", "durations", "--format", "csv", stdin=lines)

    assert (run.returncode, run.stderr) == (0, "")
    header, rows = run.csv_rows()
    assert header == columns(StreamDuration)
    assert {(row["domain"], row["stream"]) for row in rows} == wanted
    for row in rows:  # nested values are JSON inside the cell
        sessions = json.loads(row["sessions"])
        assert float(row["total"]) == pytest.approx(sum(s["duration"] for s in sessions))


def test_stream_info_of_channels(cli: Cli, simulator: SimulatorProcess) -> None:
    channels = live_channels(simulator)[:2]
    start, end = past_hour()
    run = cli.run(
        "polyv",
        "stream-info",
        *channels,
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--format",
        "jsonl",
    )

    assert (run.returncode, run.stderr) == (0, "")
    rows = run.jsonl()
    assert all(list(row) == columns(StreamInfoSample) for row in rows)
    e = simulator.exports

    async def samples() -> list[dict[str, Any]]:
        async with PolyvClient(
            e["LIVESTATS_POLYV_APP_ID"], e["LIVESTATS_POLYV_APP_SECRET"], base_url=simulator.url
        ) as client:
            return [
                ok_row(sample)
                for channel in channels
                for sample in await client.get_stream_info(channel, start=start, end=end)
            ]

    expected = asyncio.run(samples())
    assert expected  # live channels have samples every few minutes
    assert sorted(rows, key=json.dumps) == sorted(expected, key=json.dumps)


def test_the_console_script_runs_commands_and_passes_exit_codes(cli: Cli) -> None:
    # The other real processes run `python -m livestats`.
    assert Path(CONSOLE_SCRIPT[0]).is_file()
    run = cli.run_process(
        "tencent",
        "room-stats",
        "room-00000",
        "no-such-room",
        "--format",
        "jsonl",
        launcher=CONSOLE_SCRIPT,
    )

    assert run.returncode == 1
    rows = by_key(run.jsonl(), "room_id")
    assert rows[("room-00000",)]["error"] is None
    assert rows[("no-such-room",)]["error_type"] == "NotFoundError"


# -- credentials ------------------------------------------------------------------------------


def test_base_url_flag_wins_over_the_environment(cli: Cli, simulator: SimulatorProcess) -> None:
    # The environment points at a port where nothing listens: only the flag can work.
    nowhere = "http://127.0.0.1:9"
    env = {**cli.env, **{name: nowhere for name in cli.env if name.endswith("_BASE_URL")}}
    flag = ("--base-url", simulator.url)
    runs = [
        cli.run("tencent", "rooms", *flag, "--format", "jsonl", env=env),
        cli.run(*ONE_STREAM, *flag, "--format", "jsonl", env=env),
        cli.run(
            "polyv", "stream-info", live_channels(simulator)[0], *flag, "--format", "jsonl", env=env
        ),
    ]

    for run in runs:
        assert (run.returncode, run.stderr) == (0, "")
        assert run.jsonl()


@pytest.mark.parametrize(
    ("where", "command"),
    [
        ("--config", ["tencent", "rooms"]),
        ("LIVESTATS_CONFIG", ONE_STREAM),
        ("default path", ["polyv", "stream-info", "LIVE"]),
    ],
    ids=["--config", "LIVESTATS_CONFIG", "default-path"],
)
def test_credentials_from_a_config_file(
    cli: Cli,
    simulator: SimulatorProcess,
    base_env: dict[str, str],
    tmp_path: Path,
    where: str,
    command: list[str],
) -> None:
    if where == "default path":
        home = tmp_path / "home"
        path = home / ".config" / "livestats" / "config.toml"
        env = {**base_env, "HOME": str(home)}
        flags: list[str] = []
    else:
        path = tmp_path / "livestats.toml"
        env = dict(base_env)
        flags = ["--config", str(path)] if where == "--config" else []
        if where == "LIVESTATS_CONFIG":
            env["LIVESTATS_CONFIG"] = str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_config(simulator.exports))
    command = [live_channels(simulator)[0] if arg == "LIVE" else arg for arg in command]

    run = cli.run(*flags, *command, "--format", "jsonl", env=env)

    assert (run.returncode, run.stderr) == (0, "")
    rows = run.jsonl()
    assert rows
    assert all(row["error"] is None for row in rows)


def test_environment_overrides_the_config_file(
    cli: Cli, simulator: SimulatorProcess, base_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "livestats.toml"
    wrong = "0" * 64
    path.write_text(toml_config(simulator.exports, tencent__secret_key=wrong))
    right = simulator.exports["LIVESTATS_TENCENT_SECRET_KEY"]
    env = {**base_env, "LIVESTATS_TENCENT_SECRET_KEY": right}

    command = ("--config", str(path), "tencent", "room-stats", "room-00000")
    secrets = {"the file's secret_key": wrong}
    run = cli.run(*command, env=env, secrets=secrets)
    # The file alone, with its wrong key, is refused: the file really is read.
    refused = cli.run(*command, env=base_env, secrets=secrets)

    assert (run.returncode, run.stderr) == (0, "")
    assert refused.returncode == 2
    assert "tencent refused the credentials" in refused.stderr


#: Which setting each run lacks (the rest come from the simulator's exports).
MISSING_CREDENTIALS: dict[str, tuple[list[str], str]] = {
    "tencent-sdkappid": (["tencent", "rooms"], "LIVESTATS_TENCENT_SDKAPPID"),
    "tencent-secret-key": (
        ["tencent", "room-stats", "room-00000"],
        "LIVESTATS_TENCENT_SECRET_KEY",
    ),
    "chinanetcenter-api-key": (ONE_STREAM, "LIVESTATS_CHINANETCENTER_API_KEY"),
    "polyv-app-secret": (["polyv", "stream-info", "1234567"], "LIVESTATS_POLYV_APP_SECRET"),
}


@pytest.mark.parametrize("case", MISSING_CREDENTIALS)
def test_a_missing_credential_is_named_in_one_line(early_exits: dict[str, Run], case: str) -> None:
    run = early_exits[case]
    missing = MISSING_CREDENTIALS[case][1]

    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr_lines
    assert line.startswith("livestats: error: ")
    assert missing in line


#: Each provider's command, and the secret that is wrong in its run.
REFUSED: dict[str, tuple[list[str], str]] = {
    "tencent": (["tencent", "room-stats", "room-00000"], "LIVESTATS_TENCENT_SECRET_KEY"),
    "chinanetcenter": (ONE_STREAM, "LIVESTATS_CHINANETCENTER_API_KEY"),
    "polyv": (["polyv", "stream-info", "LIVE"], "LIVESTATS_POLYV_APP_SECRET"),
}


@pytest.fixture(scope="module")
def refused_runs(cli: Cli, simulator: SimulatorProcess) -> dict[str, Run]:
    """The :data:`REFUSED` runs; Cli checks the wrong secret never shows."""
    runs = {}
    for name, (command, variable) in REFUSED.items():
        args = [live_channels(simulator)[0] if arg == "LIVE" else arg for arg in command]
        env = {**cli.env, variable: "wrong-" + "9" * 40}
        runs[name] = cli.run(*args, "--format", "jsonl", env=env)
    return runs


@pytest.mark.parametrize("provider", REFUSED)
def test_refused_credentials_stop_the_job_in_one_line_without_the_secret(
    refused_runs: dict[str, Run], provider: str
) -> None:
    """Refused credentials are a setting to fix, not an item that failed: exit 2, one line
    naming the provider and where its settings come from, no error rows."""
    run = refused_runs[provider]

    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr_lines
    assert line.startswith(f"livestats: error: {provider} refused the credentials (")
    assert f"LIVESTATS_{provider.upper()}_*" in line


@pytest.mark.parametrize("case", ["config-malformed", "config-missing"])
def test_an_unreadable_config_file_is_a_usage_error(early_exits: dict[str, Run], case: str) -> None:
    run = early_exits[case]  # Cli checks the secret in the broken file never shows

    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr_lines
    assert line.startswith("livestats: error: ")
    assert f"{case}.toml" in line


# -- streaming --------------------------------------------------------------------------------


def test_results_stream_out_while_stdin_is_still_open(cli: Cli) -> None:
    ids = room_ids(10)
    first, rest = ids[:5], ids[5:]
    with subprocess.Popen(
        [*PYTHON_M, "tencent", "room-stats", "--format", "jsonl", "--progress"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        # The bar is drawn once the job runs: from here, results take milliseconds.
        started = read_until(proc.stderr.fileno(), lambda seen: b"room stats" in seen, HANG)
        assert b"room stats" in started
        proc.stdin.write("".join(f"{room}\n" for room in first).encode())
        proc.stdin.flush()
        early = read_until(proc.stdout.fileno(), lambda seen: seen.count(b"\n") >= 5, PATIENCE)
        proc.stdin.write("".join(f"{room}\n" for room in rest).encode())
        out, err = proc.communicate(timeout=HANG)  # closes stdin

    assert proc.returncode == 0
    assert_clean((early + out + err).decode(), cli.secrets)
    rows = [json.loads(line) for line in (early + out).splitlines()]
    assert sorted(row["room_id"] for row in rows) == ids
    complete = early[: early.rfind(b"\n") + 1].splitlines()
    assert sorted(json.loads(line)["room_id"] for line in complete) == first


# -- output formats -------------------------------------------------------------------------


BAD_ID = "r" * 49  # over Tencent's 48 bytes: refused before anything is sent


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_failed_items_are_rows_and_the_job_goes_on(cli: Cli, fmt: str) -> None:
    ids = ["room-00000", "no-such-room", BAD_ID, "room-00001"]
    run = cli.run("tencent", "room-stats", *ids, "--format", fmt)

    assert run.returncode == 1
    if fmt == "csv":
        header, rows = run.csv_rows()
        assert header == columns(RoomStats)
        empty: str | None = ""
    else:
        rows = run.jsonl()
        empty = None
    index = by_key(rows, "room_id")
    assert sorted(room for (room,) in index) == sorted(ids)
    for room in ("room-00000", "room-00001"):
        assert index[(room,)]["error"] == index[(room,)]["error_type"] == empty
        assert index[(room,)]["total_viewers"] not in ("", None)
    assert index[("no-such-room",)]["error_type"] == "NotFoundError"
    assert index[(BAD_ID,)]["error_type"] == "ValidationError"
    for room in ("no-such-room", BAD_ID):
        assert index[(room,)]["error"]
        assert index[(room,)]["total_viewers"] == empty
    # Each failure told once on stderr, naming its item.
    assert len(run.stderr_lines) == 2
    assert any("no-such-room" in line and "NotFoundError" in line for line in run.stderr_lines)
    assert any(BAD_ID in line and "ValidationError" in line for line in run.stderr_lines)


def test_json_is_an_array_even_when_there_is_nothing(cli: Cli) -> None:
    run = cli.run("tencent", "room-stats", "--format", "json", stdin="# nothing today\n")

    assert (run.returncode, run.stderr) == (0, "")
    assert json.loads(run.stdout) == []


def test_output_goes_to_the_file_given(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    run = cli.run(
        "tencent", "room-stats", "room-00000", "no-such-room", "--format", "json", "-o", str(path)
    )

    assert run.returncode == 1
    assert run.stdout == ""
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert sorted(row["room_id"] for row in rows) == ["no-such-room", "room-00000"]
    assert all(list(row) == columns(RoomStats) for row in rows)


# -- progress ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def terminal_run(cli: Cli) -> tuple[int, str]:
    """Room stats of three rooms with stdout and stderr on a terminal, as a person runs it."""
    return cli.run_in_pty("tencent", "room-stats", *room_ids(3), "--format", "jsonl")


def test_progress_bar_under_a_terminal(terminal_run: tuple[int, str]) -> None:
    code, raw = terminal_run

    assert code == 0
    text = ANSI.sub("", raw)
    assert "room stats" in text
    assert "3/3" in text
    assert "of 100/s" in text  # the rate against the quota
    assert "ETA" in text
    assert text.count('"room_id"') == 3


def test_no_progress_under_a_terminal(cli: Cli) -> None:
    code, raw = cli.run_in_pty(
        "tencent", "room-stats", *room_ids(3), "--format", "jsonl", "--no-progress"
    )

    assert code == 0
    assert "of 100/s" not in raw
    assert "ETA" not in raw
    lines = [line for line in screen(raw) if line]
    assert sorted(json.loads(line)["room_id"] for line in lines) == room_ids(3)


def test_results_and_progress_bar_keep_to_their_own_lines(terminal_run: tuple[int, str]) -> None:
    code, raw = terminal_run

    assert code == 0
    results = [line for line in screen(raw) if '"room_id"' in line]
    assert len(results) == 3
    for line in results:
        assert line.startswith("{"), "a result shares its line with the progress bar"
        assert line.endswith("}"), "a result was broken over lines"
        json.loads(line)


def test_results_stay_on_stdout_when_the_bar_goes_elsewhere(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "progress.log"  # livestats ... --progress 2>progress.log
    code, raw = cli.run_in_pty(
        "tencent", "room-stats", *room_ids(2), "--format", "jsonl", "--progress", stderr=log
    )

    assert code == 0
    progress = ANSI.sub("", log.read_text(encoding="utf-8"))
    assert "room stats" in progress
    assert '"room_id"' not in progress
    assert ANSI.sub("", raw).count('"room_id"') == 2


def test_progress_forced_when_piped(cli: Cli) -> None:
    # Piped without --progress there is none: every run above that went well checks
    # that stderr is empty.
    run = cli.run("tencent", "room-stats", *room_ids(3), "--format", "jsonl", "--progress")

    assert run.returncode == 0
    text = ANSI.sub("", run.stderr)
    assert "room stats" in text
    assert "3/3" in text
    assert "of 100/s" in text
    assert "ETA" in text
    assert sorted(row["room_id"] for row in run.jsonl()) == room_ids(3)  # stdout untouched


def test_no_ids_from_a_terminal_is_a_usage_error(cli: Cli) -> None:
    code, raw = cli.run_in_pty("tencent", "room-stats", terminal_stdin=True)

    assert code == 2
    [line] = [line for line in screen(raw) if line]
    assert line.startswith("livestats: error: no ids")


# -- exit codes ---------------------------------------------------------------------------


def _usage_errors() -> dict[str, list[str]]:
    _, last = past_days()
    return {
        "bad-format": ["tencent", "rooms", "--format", "xml"],
        "unknown-command": ["youtube", "rooms"],
        "unknown-subcommand": ["tencent", "room-list"],
        "no-command": [],
        "bad-from": [*ONE_STREAM, "--from", "2026-13-01", "--to", last.isoformat()],
        "all-and-ids": ["tencent", "room-stats", "--all", "room-00000"],
        "bad-start": ["polyv", "stream-info", "1", "--start", "yesterday"],
        "unwritable-output": ["tencent", "rooms", "-o", "/no/such/dir/out.json"],
    }


USAGE_ERRORS = _usage_errors()


@pytest.fixture(scope="module")
def early_exits(
    cli: Cli, base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    """The runs that must stop before any request.

    Usage errors, missing credentials, and config files that cannot be read.
    """
    runs = {name: cli.run(*args) for name, args in USAGE_ERRORS.items()}
    for name, (command, missing) in MISSING_CREDENTIALS.items():
        runs[name] = cli.run(*command, env=without(cli.env, missing))
    configs = tmp_path_factory.mktemp("configs")
    secret = "s3cret-" + "7" * 30
    (configs / "config-malformed.toml").write_text(
        f'[tencent]\nsdkappid = 1400000000\nsecret_key = "{secret}\n'  # unterminated
    )
    for name in ("config-malformed", "config-missing"):
        runs[name] = cli.run(
            "--config",
            str(configs / f"{name}.toml"),
            "tencent",
            "rooms",
            env=base_env,
            secrets={"the secret in the file": secret},
        )
    return runs


@pytest.mark.parametrize("case", USAGE_ERRORS)
def test_usage_errors_exit_2_in_one_line(early_exits: dict[str, Run], case: str) -> None:
    run = early_exits[case]

    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr_lines
    assert line.startswith("livestats")
    assert "error: " in line


def test_from_without_to_is_a_usage_error(cli: Cli) -> None:
    first, _ = past_days()
    run = cli.run(
        "chinanetcenter",
        "durations",
        "--domain",
        "live1.example.com",
        "live/stream00",
        "live/stream02",
        "--from",
        first.isoformat(),
    )

    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr_lines
    assert line.startswith("livestats: error: ")
    assert "--to" in line


def test_ctrl_c_keeps_what_completed_and_exits_130(
    fresh_simulator: SimulatorProcess, base_env: dict[str, str], tmp_path: Path
) -> None:
    # 400 ids at the default 100/s take about 4 s: the job is interrupted well before.
    ids = [f"room-{i % ROOMS:05d}" for i in range(400)]
    path = tmp_path / "stats.json"
    env = {**base_env, **fresh_simulator.exports}
    with subprocess.Popen(
        [*PYTHON_M, "tencent", "room-stats", *ids, "--format", "json", "-o", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        encoding="utf-8",
    ) as proc:
        wait_for(lambda: path.exists() and '"room_id"' in path.read_text(encoding="utf-8"), HANG)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=HANG)

    assert proc.returncode == 130
    assert out == ""
    assert err.splitlines() == ["livestats: interrupted"]  # and no traceback, no secret
    rows = json.loads(path.read_text(encoding="utf-8"))  # the array was closed
    assert 1 <= len(rows) < len(ids)
    assert all(row["room_id"] in ids and row["error"] is None for row in rows)


def test_ctrl_c_while_stdin_is_open_exits_at_once(cli: Cli) -> None:
    with subprocess.Popen(
        [*PYTHON_M, "tencent", "room-stats", "--format", "jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        # One id, then a long comment line: read a line or 64 KiB at a time, the id
        # gets through, and then the reader waits for more.
        proc.stdin.write(b"room-00000\n#" + b"-" * 70_000 + b"\n")
        proc.stdin.flush()
        first = read_until(proc.stdout.fileno(), lambda seen: b"\n" in seen, HANG)
        assert b'"room-00000"' in first
        proc.send_signal(signal.SIGINT)
        prompt = exits_within(proc, PATIENCE)
        _, err = proc.communicate(timeout=HANG)  # closing stdin ends any wait

    assert (prompt, proc.returncode) == (True, 130)
    assert_clean(err.decode(), cli.secrets)


def test_reader_going_away_exits_141_quietly(
    fresh_simulator: SimulatorProcess, base_env: dict[str, str]
) -> None:
    # 101 ids: whatever the first 100 do, the 101st comes a quota window later, after
    # the reader left (`livestats ... | head -1`).
    ids = [f"room-{i % ROOMS:05d}" for i in range(101)]
    with subprocess.Popen(
        [*PYTHON_M, "tencent", "room-stats", *ids, "--format", "jsonl"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**base_env, **fresh_simulator.exports},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = json.loads(proc.stdout.readline())
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=HANG)

    assert first["room_id"] in ids
    assert proc.returncode == 141
    assert err == b""


# -- simulate and demo ------------------------------------------------------------------------


def test_simulate_prints_credentials_that_work_and_stops_on_ctrl_c(
    fresh_simulator: SimulatorProcess, base_env: dict[str, str]
) -> None:
    sim = fresh_simulator
    assert {
        sim.exports[f"LIVESTATS_{p}_BASE_URL"] for p in ("TENCENT", "CHINANETCENTER", "POLYV")
    } == {sim.url}
    domain, streams = next(iter(sim.reference.domains.items()))
    channel = live_channels(sim)[0]
    cli = Cli({**base_env, **sim.exports}, sim.secrets)  # nothing but what it printed
    rooms = cli.run("tencent", "rooms", "--format", "jsonl")
    durations = cli.run(
        "chinanetcenter", "durations", "--domain", domain, *streams, "--format", "jsonl"
    )
    info = cli.run("polyv", "stream-info", channel, "--format", "jsonl")

    assert (rooms.returncode, rooms.stderr) == (0, "")
    assert sorted(row["room_id"] for row in rooms.jsonl()) == sim.reference.room_ids
    assert (durations.returncode, durations.stderr) == (0, "")
    assert sorted(row["stream"] for row in durations.jsonl()) == sorted(streams)
    assert (info.returncode, info.stderr) == (0, "")
    assert info.jsonl()
    assert {row["channel_id"] for row in info.jsonl()} == {channel}

    assert sim.stop() == (130, "livestats: interrupted\n")


def test_demo_collects_from_every_operation_without_a_refusal(cli: Cli) -> None:
    run = cli.run("demo", "--rooms", "50")

    assert (run.returncode, run.stderr) == (0, "")
    table: dict[str, list[str]] = {}
    for line in run.stdout.splitlines():
        cells = line.split()
        if len(cells) == 8 and cells[0].startswith("get_"):
            table[cells[0]] = cells
    assert set(table) == {
        "get_room_list",
        "get_room_stats",
        "get_gift_count",
        "get_stream_durations",
        "get_stream_info",
    }
    assert {operation: cells[-1] for operation, cells in table.items()} == dict.fromkeys(table, "0")
    assert table["get_room_stats"][1] == "50"  # items: every room
    # Piped, it keeps to a terminal's 80 columns, and says which errors are expected.
    assert max(len(line) for line in run.stdout.splitlines()) <= 80
    assert table["get_stream_info"][2] == "2"
    assert "The 2 get_stream_info errors are expected" in run.stdout
