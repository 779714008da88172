"""What people see: progress bars that tell the truth, and tables for reading.

The bars are checked two ways: on a pseudo-terminal of 80 columns, read back
through a small terminal emulator that wraps at the width as a terminal does
(a line that would wrap is a failure), and unit by unit with an injected clock,
where rates and ETAs are exact. Tables are checked in process.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from livestats import Quota
from livestats.cli._inputs import Progress
from livestats.cli._progress import (
    Step,
    _CountColumn,
    _EtaColumn,
    _RateColumn,
)
from livestats.testing import TencentSim
from tests.test_cli import (
    ANSI,
    HANG,
    PYTHON_M,
    Cli,
    SimulatorThread,
    assert_clean,
    base_environment,
    exits_within,
    read_until,
)

ROOMS = 150
WIDTH = 80


@pytest.fixture(scope="module")
def served() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=41, tencent=TencentSim(rooms=ROOMS)) as served:
        yield served


@pytest.fixture(scope="module")
def cli(served: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    runner = Cli(
        {**base_environment(tmp_path_factory.mktemp("home")), **served.exports}, served.secrets
    )
    yield runner
    runner.close()


# -- a terminal of 80 columns --------------------------------------------------------------------


def run_on_terminal(
    args: Sequence[str], env: Mapping[str, str], *, columns: int = WIDTH
) -> tuple[int, str]:
    """Run livestats with stdout and stderr on a pty of ``columns`` x 24: exit code, output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        with subprocess.Popen(
            [*PYTHON_M, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=dict(env)
        ) as proc:
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


def terminal(raw: str, width: int = WIDTH) -> tuple[list[str], int]:
    """The lines a terminal ``width`` wide shows after ``raw``, and how often it wrapped.

    Text, CR, LF, cursor up (``ESC[nA``) and erase in line (``ESC[K``, ``ESC[2K``);
    other escapes change no text. A character written past the last column goes to
    the start of the next line, as on a terminal: each time is a wrap.
    """
    rows: list[list[str]] = [[]]
    row = col = wraps = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]", raw):
        if token == "\n":
            row, col = row + 1, 0
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
            continue
        else:
            if col >= width:
                wraps += 1
                row, col = row + 1, 0
            while row >= len(rows):
                rows.append([])
            line = rows[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = token
            else:
                line.append(token)
            col += 1
        while row >= len(rows):
            rows.append([])
    return ["".join(line).rstrip() for line in rows], wraps


def drawn(raw: str) -> list[str]:
    """Every state of the bar lines as drawn (each redraw starts at a CR)."""
    return [part for part in re.split(r"[\r\n]", ANSI.sub("", raw)) if part.strip()]


RATE = re.compile(r"(?P<rate>\d+\.\d) req/s of (?P<quota>\d+)/s|burst (?P<n>\d+) req of \d+/\d+s")


def test_a_file_job_on_80_columns_never_wraps_and_shows_requests_against_the_quota(
    cli: Cli, tmp_path: Path
) -> None:
    """The bar at 80 columns: one line, items of an estimated total (a file's size), the
    rate in requests against the quota (never above it unless labelled a burst), an ETA."""
    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"room-{i % ROOMS:05d}\n" for i in range(120)), encoding="utf-8")
    out = tmp_path / "out.jsonl"

    # 10 in flight: the input is read as the job goes, so its end is known only at the end.
    args = ["tencent", "room-stats", "-i", str(ids), "--concurrency", "10"]
    code, raw = run_on_terminal([*args, "--format", "jsonl", "-o", str(out)], cli.env)

    assert code == 0
    assert_clean(raw, cli.secrets)
    lines, wraps = terminal(raw)
    assert wraps == 0
    assert all(len(line) <= WIDTH for line in lines)
    states = drawn(raw)
    assert all(state.startswith("room stats ") for state in states)
    assert any("/~120 " in state for state in states)  # estimated from the file's size
    assert any("ETA 0:00:0" in state for state in states)
    assert "120/120" in states[-1]
    for state in states:
        found = RATE.search(state)
        assert found is not None, state
        if found["rate"]:
            assert float(found["rate"]) <= float(found["quota"]) * 1.01, state


def test_all_shows_an_eta_once_the_room_list_is_read(cli: Cli, tmp_path: Path) -> None:
    """--all: the room count is the total once the list is read, and the ETA comes with it."""
    out = tmp_path / "out.jsonl"

    code, raw = run_on_terminal(
        ["tencent", "room-stats", "--all", "--format", "jsonl", "-o", str(out)], cli.env
    )

    assert code == 0
    _, wraps = terminal(raw)
    assert wraps == 0
    states = drawn(raw)
    listed = [s for s in states if s.startswith("rooms listed")]
    stats = [s for s in states if s.startswith("room stats")]
    assert listed
    assert any(f"{ROOMS}/{ROOMS}" in s for s in listed)
    assert any(re.search(rf"\d+/{ROOMS} .*ETA ", s) for s in stats)
    assert f"{ROOMS}/{ROOMS}" in stats[-1]
    assert all("ETA" not in s for s in stats if not re.search(rf"/{ROOMS}\b", s))


def test_the_demo_fits_80_columns(cli: Cli) -> None:
    """The demo's bars, summary table and legend, on a terminal of 80 columns: no wrap."""
    code, raw = run_on_terminal(["demo", "--rooms", "30", "--top", "10"], cli.env)

    assert code == 0
    lines, wraps = terminal(raw)
    assert wraps == 0
    header = next(line for line in lines if line.startswith("operation"))
    assert header.split() == [
        "operation",
        "items",
        "errors",
        "requests",
        "req/s",
        "quota",
        "busiest",
        "refused",
    ]
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("get_")}
    assert set(rows) == {
        "get_room_list",
        "get_room_stats",
        "get_gift_count",
        "get_stream_durations",
        "get_stream_info",
    }
    assert all(len(cells) == 8 for cells in rows.values())
    assert rows["get_stream_info"][2] == "2"  # the two offline channels
    assert any("answer ChannelNotLiveError" in line for line in lines)
    assert any(line.strip().startswith("busiest:") for line in lines)


# -- the bar's figures, on a clock of the test's own ----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shown(step: Step) -> str:
    task: Any = SimpleNamespace(fields={"step": step})
    return " | ".join(
        str(column.render(task)) for column in (_CountColumn(), _RateColumn(), _EtaColumn())
    )


def make_step(
    quota: Quota, *, total: int | None = None, source: Progress | None = None
) -> tuple[Step, FakeClock]:
    clock = FakeClock()
    step = Step(None, operation="op", quota=quota, total=total, source=source, clock=clock)
    return step, clock


def test_the_rate_counts_requests_not_items() -> None:
    """A room list of 20 rooms a call at 10 calls/s is 10 req/s of 10/s, not 200/s of 10/s."""
    step, clock = make_step(Quota(10, 1.0))
    for _ in range(60):  # six seconds of one call every 0.1 s
        clock.now += 0.1
        step.sent()
        for _ in range(20):
            step.advance()

    assert shown(step) == "1200 | 10.0 req/s of 10/s | "


def test_a_burst_is_labelled_as_such() -> None:
    """The quota's own burst (a window's worth at once) exceeds its rate; it says so."""
    step, clock = make_step(Quota(100, 1.0), total=300)
    for _ in range(100):
        step.sent()
    clock.now += 0.05

    assert shown(step) == "0/300 | burst 100 req of 100/1s | ETA 0:00:03"


def test_the_eta_is_what_is_left_at_the_rate_the_quota_allows() -> None:
    step, clock = make_step(Quota(100, 1.0), total=2000)
    start = clock.now
    for second in range(12):  # a window's worth at each second, as the limiter sends them
        clock.now = start + second
        for _ in range(100):
            step.sent()
            step.advance()

    assert shown(step) == "1200/2000 | 100.0 req/s of 100/s | ETA 0:00:08"


def test_a_vendor_slower_than_the_quota_sets_the_eta() -> None:
    step, clock = make_step(Quota(100, 1.0), total=1000)
    for _ in range(100):  # 20 requests a second for 5 s
        clock.now += 0.05
        step.sent()
        step.advance()

    assert shown(step) == "100/1000 | 20.0 req/s of 100/s | ETA 0:00:45"


def test_a_files_total_is_estimated_from_its_size() -> None:
    source = Progress(size=11_000, read=1_100, taken=100)
    step, _ = make_step(Quota(100, 1.0), source=source)

    assert shown(step).startswith("0/~1000 | ")
    source.done, source.taken = True, 987
    assert shown(step).startswith("0/987 | ")


# -- tables ------------------------------------------------------------------------------


def test_a_table_shows_lists_as_values_and_times_whole_with_their_zone(
    cli: Cli, served: SimulatorThread
) -> None:
    table = cli.run("tencent", "rooms")
    jsonl = cli.run("tencent", "rooms", "--format", "jsonl")

    assert table.returncode == 0
    header, rule, *lines = table.stdout.splitlines()
    assert header.split()[:4] == ["room_id", "room_name", "owner_account", "create_time"]
    assert rule.startswith("-" * 7)
    for row in jsonl.jsonl():
        line = next(line for line in lines if line.startswith(row["room_id"] + " "))
        created = datetime.fromisoformat(row["create_time"])
        assert created.isoformat(sep=" ") in line  # whole, with its zone
        assert line.endswith(", ".join(str(c) for c in row["category"]))


def test_a_table_shows_durations_as_hours_minutes_seconds(
    cli: Cli, served: SimulatorThread
) -> None:
    domain, streams = next(iter(served.sim.domains.items()))
    table = cli.run("chinanetcenter", "durations", "--domain", domain, *streams[:2])
    jsonl = cli.run(
        "chinanetcenter", "durations", "--domain", domain, *streams[:2], "--format", "jsonl"
    )

    assert table.returncode == 0
    for row in jsonl.jsonl():
        line = next(line for line in table.stdout.splitlines() if f" {row['stream']} " in line)
        total = timedelta(seconds=row["total"])
        hours, rest = divmod(round(total.total_seconds()), 3600)
        assert f" {hours}:{rest // 60:02d}:{rest % 60:02d} " in line
        if row["sessions"]:
            start = datetime.fromisoformat(row["sessions"][0]["start"])
            assert start.isoformat(sep=" ") in line


def test_a_failed_row_is_aligned_and_short_and_the_detail_is_on_stderr_once(cli: Cli) -> None:
    """The error short in the table (vendor code and message), in the columns after the
    key; the whole error once on stderr, each fact said once."""
    run = cli.run("tencent", "room-stats", "room-00000", "no-such-room")

    assert run.returncode == 1
    header, _, *lines = run.stdout.splitlines()
    failed = next(line for line in lines if line.startswith("no-such-room"))
    assert failed.index("ERROR") == header.index("total_viewers")
    assert failed.endswith("ERROR NotFoundError 100004: room does not exist")
    [line] = run.stderr_lines
    assert line.startswith("livestats: no-such-room: NotFoundError: [tencent.get_room_stats] ")
    assert line.count("room does not exist") == 1
    assert line.count("100004") == 1
    assert "request_id=" in line


def test_a_machine_format_carries_the_whole_error(cli: Cli) -> None:
    run = cli.run("tencent", "room-stats", "no-such-room", "--format", "jsonl")

    [row] = run.jsonl()
    assert row["error_type"] == "NotFoundError"
    assert "100004" in row["error"]
    assert "room does not exist" in row["error"]
    assert "request_id=" in row["error"]
