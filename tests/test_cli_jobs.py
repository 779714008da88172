"""Batch jobs as people run them: refused credentials, resumed jobs, signals, bad input.

Most runs call :func:`livestats.cli.main` in this process (``Cli.run``) against a
simulator serving from a thread (:class:`SimulatorThread`), so a test can count
what reached the vendor. Signals are sent to real processes.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from livestats.testing import TencentSim
from tests.test_cli import (
    HANG,
    PYTHON_M,
    Cli,
    SimulatorThread,
    assert_clean,
    base_environment,
    wait_for,
)

ROOMS = 40


@pytest.fixture(scope="module")
def served() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=21, tencent=TencentSim(rooms=ROOMS)) as served:
        yield served


@pytest.fixture(scope="module")
def cli(served: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    home = tmp_path_factory.mktemp("home")
    runner = Cli({**base_environment(home), **served.exports}, served.secrets)
    yield runner
    runner.close()


def ids_file(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{room}\n" for room in ids), encoding="utf-8")
    return path


def rooms(n: int) -> list[str]:
    return [f"room-{i % ROOMS:05d}" for i in range(n)]


# -- 1. wrong credentials stop the job --------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "jsonl"])
def test_a_wrong_key_over_300_ids_sends_one_request_and_says_so_once(
    cli: Cli, served: SimulatorThread, tmp_path: Path, fmt: str
) -> None:
    """A wrong key must not cost a request and a line per id: at most a handful of
    requests, one line on stderr, exit 2, no rows."""
    path = ids_file(tmp_path / "ids.txt", rooms(300))
    env = {**cli.env, "LIVESTATS_TENCENT_SECRET_KEY": "wrong-" + "3" * 40}
    before = served.sent("get_room_stats")

    run = cli.run("tencent", "room-stats", "--input", str(path), "--format", fmt, env=env)

    assert served.sent("get_room_stats") - before <= 5
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr_lines
    assert line.startswith("livestats: error: tencent refused the credentials (")
    assert "70009" in line


def test_a_wrong_key_with_all_stops_at_the_room_list(cli: Cli, served: SimulatorThread) -> None:
    """--all: the room list itself is refused; the job stops in one line, exit 2."""
    env = {**cli.env, "LIVESTATS_TENCENT_SECRET_KEY": "wrong-" + "4" * 40}
    before = served.sent("get_room_list")

    run = cli.run("tencent", "room-stats", "--all", "--format", "jsonl", env=env)

    assert served.sent("get_room_list") - before == 1
    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert "tencent refused the credentials" in line


# -- 3. jobs resume ------------------------------------------------------------------------------


def interrupted(path: Path, rows: list[str], header: str | None = None) -> None:
    """What a killed run leaves: its complete rows, then a row cut short."""
    head = [header] if header else []
    cut = rows[-1][: len(rows[-1]) // 2]
    path.write_text("".join(head + rows[:-1]) + cut, encoding="utf-8")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_skips_what_was_written_and_asks_again_for_failures(
    cli: Cli, served: SimulatorThread, tmp_path: Path, fmt: str
) -> None:
    """An interrupted job finishes without sending again what it has: only the items
    not written, those that failed, and the one cut short are asked for."""
    ids = [*rooms(12), "no-such-room"]
    path = ids_file(tmp_path / "ids.txt", ids)
    out = tmp_path / f"stats.{fmt}"
    first = cli.run("tencent", "room-stats", "--input", str(path), "--format", fmt, "-o", str(out))
    assert first.returncode == 1  # no-such-room
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = (lines[0], lines[1:]) if fmt == "csv" else (None, lines)
    failed = [line for line in body if "NotFoundError" in line]
    good = [line for line in body if "NotFoundError" not in line]
    # Kept: 5 good rows and the failure; the 6th good row was cut short by the kill.
    interrupted(out, [*good[:5], *failed, good[5]], header)
    before = served.sent("get_room_stats")

    run = cli.run(
        "tencent", "room-stats", "--input", str(path), "--format", fmt, "-o", str(out), "--resume"
    )

    # 13 ids, 5 done: the other 7 good ones and the failed one are asked (again).
    assert served.sent("get_room_stats") - before == len(ids) - 5
    assert run.returncode == 1  # no-such-room still does not exist
    text = out.read_text(encoding="utf-8")
    if fmt == "csv":
        assert text.count("room_id,total_viewers") == 1  # one header
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert sorted(row["room_id"] for row in rows) == sorted(ids)  # one row per item
    assert [row["room_id"] for row in rows if row["error"]] == ["no-such-room"]


def test_resume_of_a_finished_job_sends_nothing(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    """A second --resume of a job that completed is a no-op: nothing sent, nothing added."""
    path = ids_file(tmp_path / "ids.txt", rooms(6))
    out = tmp_path / "stats.jsonl"
    args = ("tencent", "room-stats", "-i", str(path), "--format", "jsonl", "-o", str(out))
    assert cli.run(*args, "--resume").returncode == 0  # no file yet: a fresh start
    written = out.read_text(encoding="utf-8")
    before = served.sent("get_room_stats")

    again = cli.run(*args, "--resume")

    assert (again.returncode, again.stderr) == (0, "")
    assert served.sent("get_room_stats") == before
    assert out.read_text(encoding="utf-8") == written


def test_resume_of_gift_counts_and_durations_uses_their_keys(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    """Items are named by all their key fields: (room, account) and (domain, stream)."""
    pairs = ids_file(tmp_path / "pairs.txt", ["room-00000 anchor-00000", "room-00001 anchor-00001"])
    gifts = tmp_path / "gifts.jsonl"
    args = ("tencent", "gift-count", "-i", str(pairs), "--format", "jsonl", "-o", str(gifts))
    assert cli.run(*args).returncode == 0
    # A pair with the same room and another account is another item.
    pairs.write_text(pairs.read_text() + "room-00000 someone-else\n", encoding="utf-8")
    before = served.sent("get_gift_count")
    assert cli.run(*args, "--resume").returncode == 0
    assert served.sent("get_gift_count") - before == 1

    domain, streams = next(iter(served.sim.domains.items()))
    lines = ids_file(tmp_path / "streams.txt", [f"{domain} {s}" for s in streams[:2]])
    durations = tmp_path / "durations.csv"
    args = (
        "chinanetcenter",
        "durations",
        "-i",
        str(lines),
        "--format",
        "csv",
        "-o",
        str(durations),
    )
    assert cli.run(*args).returncode == 0
    before = served.sent("get_stream_durations")
    assert cli.run(*args, "--resume").returncode == 0
    assert served.sent("get_stream_durations") == before  # every stream of the domain done


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--format", "jsonl"], "--resume needs -o FILE"),
        (["--format", "json", "-o", "OUT"], "--resume needs --format jsonl or csv"),
        (["--format", "csv", "-o", "OTHER"], "other columns"),
        (["--format", "jsonl", "-o", "OTHER"], "not a JSON row"),
    ],
    ids=["no-output", "json", "other-csv", "not-jsonl"],
)
def test_resume_refuses_what_it_cannot_carry_on(
    cli: Cli, tmp_path: Path, flags: list[str], says: str
) -> None:
    """--resume never appends to a file it does not understand: a usage error, nothing sent."""
    other = tmp_path / "other.txt"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    flags = [
        str(other) if f == "OTHER" else str(tmp_path / "o") if f == "OUT" else f for f in flags
    ]

    run = cli.run("tencent", "room-stats", "room-00000", "--resume", *flags)

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert says in line
    assert other.read_text(encoding="utf-8") == "a,b\n1,2\n"


def test_a_job_killed_by_sigterm_resumes_to_exactly_one_row_per_id(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The promise end to end, with a real process and a real SIGTERM: the resumed run
    sends exactly the ids the first did not write, and the file ends complete."""
    with SimulatorThread(seed=22, tencent=TencentSim(rooms=120)) as served:
        env = {
            **base_environment(tmp_path_factory.mktemp("home")),
            **served.exports,
            "LIVESTATS_LIMITER_PATH": str(tmp_path / "quotas.sqlite3"),
        }
        ids = served.sim.room_ids  # 120 at 40/s: 3 s, interrupted after the first second
        path = ids_file(tmp_path / "ids.txt", ids)
        out = tmp_path / "stats.jsonl"
        args = ["tencent", "room-stats", "-i", str(path), "--format", "jsonl", "-o", str(out)]
        args += ["--quota", "get_room_stats=40/1"]
        with subprocess.Popen(
            [*PYTHON_M, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            encoding="utf-8",
        ) as proc:
            wait_for(
                lambda: out.exists() and out.read_text(encoding="utf-8").count("\n") >= 40, HANG
            )
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=HANG)
        assert proc.returncode == 143
        assert err.splitlines() == ["livestats: terminated"]
        written = len(out.read_text(encoding="utf-8").splitlines())
        assert 40 <= written < len(ids)
        before = served.sent("get_room_stats")

        cli = Cli(env, served.secrets)
        run = cli.run(*args, "--resume")

        assert run.returncode == 0
        assert served.sent("get_room_stats") - before == len(ids) - written
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == len(ids)
        assert all(row["error"] is None for row in rows)


# -- 4. signals ---------------------------------------------------------------------------------


def test_sigterm_keeps_what_completed_and_closes_the_json_array(cli: Cli, tmp_path: Path) -> None:
    """SIGTERM is Ctrl-C for a job run by cron or systemd: in-flight work cancelled, what
    completed flushed, the JSON array closed, exit 143 (128 + 15)."""
    path = ids_file(tmp_path / "ids.txt", rooms(100))
    out = tmp_path / "stats.json"
    args = ["tencent", "room-stats", "-i", str(path), "--format", "json", "-o", str(out)]
    env = {**cli.env, "LIVESTATS_LIMITER_PATH": str(tmp_path / "quotas.sqlite3")}
    with subprocess.Popen(
        [*PYTHON_M, *args, "--quota", "get_room_stats=20/1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        encoding="utf-8",
    ) as proc:
        wait_for(lambda: out.exists() and '"room_id"' in out.read_text(encoding="utf-8"), HANG)
        proc.send_signal(signal.SIGTERM)
        stdout, err = proc.communicate(timeout=HANG)

    assert proc.returncode == 143
    assert stdout == ""
    assert err.splitlines() == ["livestats: terminated"]
    assert_clean(err, cli.secrets)
    rows = json.loads(out.read_text(encoding="utf-8"))  # valid: the array was closed
    assert 1 <= len(rows) < 100
    assert all(row["error"] is None for row in rows)


# -- 7. no traceback, ever ------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_named_with_its_line(cli: Cli, tmp_path: Path) -> None:
    """Non-UTF-8 input: one line naming the file and the line, exit 2, never a traceback."""
    path = tmp_path / "ids.txt"
    path.write_bytes(b"room-00000\n# a comment\nroom-\xff\xfe01\nroom-00002\n")

    run = cli.run("tencent", "room-stats", "--input", str(path), "--format", "jsonl")

    assert run.returncode == 2
    assert [row["room_id"] for row in run.jsonl()] == ["room-00000"]
    [line] = run.stderr_lines
    assert line == f"livestats: error: {path} line 3: not UTF-8 text"


def test_stdin_that_is_not_utf8_is_named_with_its_line(cli: Cli) -> None:
    proc = subprocess.run(
        [*PYTHON_M, "tencent", "room-stats", "--format", "jsonl"],
        input=b"room-00000\n\xc3(\n",
        capture_output=True,
        env=cli.env,
        timeout=HANG,
    )

    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == ["livestats: error: stdin line 2: not UTF-8 text"]


def test_extra_words_on_a_line_are_an_error_for_that_line_not_a_request(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    """A line of two words is not a room id: its own error row naming the line, and the
    rest of the job goes on."""
    path = ids_file(tmp_path / "ids.txt", ["room-00000", "room-00001 room-00002", "room-00003"])
    before = served.sent("get_room_stats")

    run = cli.run("tencent", "room-stats", "--input", str(path), "--format", "jsonl")

    assert served.sent("get_room_stats") - before == 2
    assert run.returncode == 1
    rows = {row["room_id"]: row for row in run.jsonl()}
    assert set(rows) == {"room-00000", "room-00001 room-00002", "room-00003"}
    bad = rows["room-00001 room-00002"]
    assert bad["error_type"] == "ValidationError"
    assert bad["error"] == f"{path} line 2: expected one room id, not 2 words"
    [line] = run.stderr_lines
    assert f"{path} line 2" in line


def test_a_lone_dash_among_the_ids_reads_stdin_there(cli: Cli) -> None:
    """``-`` is standard input, as in other Unix tools, never sent as a room id."""
    run = cli.run(
        "tencent",
        "room-stats",
        "room-00000",
        "-",
        "room-00003",
        "--format",
        "jsonl",
        stdin="room-00001\nroom-00002\n",
    )

    assert (run.returncode, run.stderr) == (0, "")
    assert sorted(row["room_id"] for row in run.jsonl()) == rooms(4)


def test_gift_count_without_an_account_is_a_usage_error(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    """Rooms given as arguments need --account; a line without one is an error row."""
    run = cli.run("tencent", "gift-count", "room-00000")
    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert "--account" in line

    path = ids_file(tmp_path / "pairs.txt", ["room-00000 anchor-00000", "room-00001"])
    before = served.sent("get_gift_count")
    run = cli.run("tencent", "gift-count", "--input", str(path), "--format", "jsonl")
    assert served.sent("get_gift_count") - before == 1
    assert run.returncode == 1
    bad = next(row for row in run.jsonl() if row["error"])
    assert bad["room_id"] == "room-00001"
    assert bad["error"] == (
        f"{path} line 2: a room without an account: give 'room account', or --account"
    )


def test_a_bad_chinanetcenter_line_is_named(
    cli: Cli, served: SimulatorThread, tmp_path: Path
) -> None:
    domain, streams = next(iter(served.sim.domains.items()))
    path = ids_file(tmp_path / "streams.txt", [f"{domain} {streams[0]}", "# ok", streams[1]])
    before = served.sent("get_stream_durations")

    run = cli.run("chinanetcenter", "durations", "--input", str(path))

    assert served.sent("get_stream_durations") == before  # read whole before sending
    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert line.startswith(f"livestats: error: {path} line 3: expected 'domain app/stream'")


def test_simulate_on_a_busy_port_is_one_line(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli.run("simulate", "--port", str(port))

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert line.startswith(f"livestats: error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port" in line


@pytest.mark.parametrize("case", ["directory", "not-utf8"])
def test_an_unreadable_config_file_is_one_line(cli: Cli, tmp_path: Path, case: str) -> None:
    path = tmp_path / "config.toml"
    if case == "directory":
        path.mkdir()
    else:
        path.write_bytes(b'[tencent]\nidentifier = "adm\xffin"\n')

    run = cli.run("--config", str(path), "tencent", "rooms")

    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr_lines
    assert line.startswith(f"livestats: error: cannot read config file {path}: ")
