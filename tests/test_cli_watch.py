"""The watch commands end to end: real processes against ``livestats simulate``, real scrapes.

Each test starts a simulator process of its own with a few rooms, runs a watch at a
short ``--every`` as a subprocess, reads its output file while it runs, scrapes
``/metrics`` over HTTP and parses it as Prometheus does, then stops it with a
signal and checks what it left. :data:`EVERY` keeps each run to a second or two.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families

from livestats import BatchResult, RoomStats, Sweep
from tests.test_cli import (
    HANG,
    PYTHON_M,
    SimulatorProcess,
    assert_clean,
    base_environment,
    live_channels,
    wait_for,
)

ROOMS = 4
EVERY = 0.4
#: Every numeric field of RoomStats is a gauge of its own.
ROOM_FIGURES = [field.name for field in attrs.fields(RoomStats) if field.name != "room_id"]


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return base_environment(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def simulator(base_env: dict[str, str]) -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(base_env, rooms=ROOMS, seed=11)
    yield sim
    sim.stop()


@pytest.fixture
def env(simulator: SimulatorProcess, base_env: dict[str, str]) -> dict[str, str]:
    return {**base_env, **simulator.exports}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Watch:
    """A ``livestats ... watch`` process writing jsonl to a file."""

    def __init__(self, args: list[str], env: dict[str, str], output: Path) -> None:
        self.output = output
        self.proc = subprocess.Popen(
            [*PYTHON_M, *args, "--format", "jsonl", "-o", str(output)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            encoding="utf-8",
        )
        self.secrets = {
            k: v for k, v in env.items() if k.endswith(("SECRET_KEY", "APP_SECRET", "API_KEY"))
        }

    def rows(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        text = self.output.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def sweeps(self) -> dict[str, list[dict[str, Any]]]:
        """The rows written so far, by the sweep (``taken_at``) they belong to."""
        by_sweep: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows():
            by_sweep.setdefault(row["taken_at"], []).append(row)
        return by_sweep

    def wait_for_sweeps(self, count: int) -> None:
        wait_for(lambda: len(self.sweeps()) >= count or self.proc.poll() is not None, HANG)
        assert self.proc.poll() is None, self.proc.communicate()

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=HANG)
        assert_clean(out, self.secrets)
        assert_clean(err, self.secrets)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    started: list[Watch] = []
    yield started
    for watch in started:
        watch.kill()


def scrape(port: int) -> tuple[str, dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    """``/metrics``: its content type, and each sample's value by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=HANG) as answer:
        content_type = answer.headers["Content-Type"]
        text = answer.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return content_type, samples


def taken_at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- Tencent ----------------------------------------------------------------------------------


def test_tencent_watch_serves_metrics_and_stops_on_sigterm(
    env: dict[str, str], simulator: SimulatorProcess, tmp_path: Path, watches: list[Watch]
) -> None:
    port = free_port()
    watch = Watch(
        ["tencent", "watch", "--every", str(EVERY), "--metrics-port", str(port)],
        env,
        tmp_path / "rooms.jsonl",
    )
    watches.append(watch)
    watch.wait_for_sweeps(2)

    content_type, metrics = scrape(port)
    assert content_type.startswith("text/plain; version=")  # Prometheus's text format
    # The collected figures: one series per room and figure, equal to what was written.
    latest = watch.sweeps()
    rooms = simulator.reference.room_ids
    viewers = metrics["livestats_tencent_room_total_viewers"]
    assert sorted(labels[0][1] for labels in viewers) == rooms
    # The last row of each room: the sweep the gauges show.
    last = {row["room_id"]: row for rows in latest.values() for row in rows}
    for figure in ROOM_FIGURES:
        series = metrics[f"livestats_tencent_room_{figure}"]
        assert {labels: value for labels, value in series.items()} == {
            (("room_id", room),): float(last[room][figure]) for room in rooms
        }
    # The SDK's own metrics, from the same registry.
    requests = metrics["livestats_requests_total"]
    operations = {dict(labels)["operation"] for labels in requests}
    assert {"get_room_list", "get_room_stats"} <= operations
    assert all(dict(labels)["outcome"] == "ok" for labels in requests)
    assert sum(requests.values()) >= 2 * (ROOMS + 1)  # a listing and the rooms, per sweep
    quota = metrics["livestats_effective_quota"]
    assert (
        quota[
            (
                ("provider", "tencent"),
                ("quota_key", f"tencent:{env['LIVESTATS_TENCENT_SDKAPPID']}:get_room_stats"),
            )
        ]
        == 100.0
    )
    assert metrics["livestats_watch_sweeps_total"][(("provider", "tencent"),)] >= 2
    assert metrics["livestats_watch_sweep_items"][(("provider", "tencent"),)] == ROOMS
    assert metrics["livestats_watch_sweep_failed_items"][(("provider", "tencent"),)] == 0

    code, out, err = watch.stop(signal.SIGTERM)

    assert code == 143
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"livestats: serving metrics at http://127.0.0.1:{port}/metrics"
    assert lines[1:] == ["livestats: terminated"]
    # A valid file: every line JSON, every sweep whole, each room once a sweep.
    text = watch.output.read_text(encoding="utf-8")
    assert text.endswith("\n")
    sweeps = watch.sweeps()
    assert len(sweeps) >= 2
    assert sum(len(rows) for rows in sweeps.values()) == len(text.splitlines())
    for rows in sweeps.values():
        assert sorted(row["room_id"] for row in rows) == rooms
        assert all(row["error"] is None and row["total_viewers"] >= 0 for row in rows)
        assert list(rows[0]) == [
            "taken_at",
            *(f.name for f in attrs.fields(RoomStats)),
            "error",
            "error_type",
        ]
    # Drift-free: sweep k started k * every after the first (to the wall clock's jitter).
    starts = sorted(taken_at(t) for t in sweeps)
    for k, start in enumerate(starts):
        assert (start - starts[0]).total_seconds() == pytest.approx(k * EVERY, abs=0.1)


def test_tencent_watch_of_the_rooms_in_a_file_stops_on_ctrl_c(
    env: dict[str, str], tmp_path: Path, watches: list[Watch]
) -> None:
    rooms = tmp_path / "rooms.txt"
    rooms.write_text(
        "# two rooms and one the vendor does not know\nroom-00001\nroom-00003\nno-such-room\n"
    )
    watch = Watch(
        ["tencent", "watch", "--every", str(EVERY), "--rooms", str(rooms)],
        env,
        tmp_path / "out.jsonl",
    )
    watches.append(watch)
    watch.wait_for_sweeps(2)
    code, out, err = watch.stop(signal.SIGINT)

    assert code == 130
    assert out == ""
    assert err.splitlines()[-1] == "livestats: interrupted"
    # Each failed room is reported on stderr, once a sweep, without the timestamp.
    failures = [line for line in err.splitlines() if "no-such-room" in line]
    assert failures
    assert all(line.startswith("livestats: no-such-room: NotFoundError") for line in failures)
    for rows in watch.sweeps().values():
        by_room = {row["room_id"]: row for row in rows}
        assert sorted(by_room) == ["no-such-room", "room-00001", "room-00003"]
        assert by_room["no-such-room"]["error_type"] == "NotFoundError"
        assert by_room["no-such-room"]["taken_at"] == rows[0]["taken_at"]


# -- Polyv and ChinaNetCenter ------------------------------------------------------------------


def test_polyv_watch_shows_each_live_channel_and_drops_the_rest(
    env: dict[str, str], simulator: SimulatorProcess, tmp_path: Path, watches: list[Watch]
) -> None:
    live = live_channels(simulator)[:2]
    offline = simulator.reference.offline_channel_ids[0]
    port = free_port()
    watch = Watch(
        ["polyv", "watch", "--every", str(EVERY), *live, offline, "--metrics-port", str(port)],
        env,
        tmp_path / "polyv.jsonl",
    )
    watches.append(watch)
    watch.wait_for_sweeps(2)
    _, metrics = scrape(port)
    code, _, _ = watch.stop(signal.SIGTERM)

    assert code == 143
    for name in ("bit_rate", "video_frame_rate", "audio_frame_rate"):
        series = metrics[f"livestats_polyv_{name}"]
        assert sorted(labels[0][1] for labels in series) == sorted(live)  # not the offline one
    for rows in watch.sweeps().values():
        by_channel = {row["channel_id"]: row for row in rows}
        assert sorted(by_channel) == sorted([*live, offline])  # the latest sample, or the error
        assert by_channel[offline]["error_type"] == "ChannelNotLiveError"
        assert all(by_channel[c]["bit_rate"] > 0 for c in live)


def test_chinanetcenter_watch_writes_todays_durations(
    env: dict[str, str], simulator: SimulatorProcess, tmp_path: Path, watches: list[Watch]
) -> None:
    domain, streams = next(iter(simulator.reference.domains.items()))
    watch = Watch(
        ["chinanetcenter", "watch", "--every", "1", "--domain", domain, *streams[:2]],
        env,
        tmp_path / "cnc.jsonl",
    )
    watches.append(watch)
    watch.wait_for_sweeps(1)
    code, _, _ = watch.stop(signal.SIGTERM)

    assert code == 143
    [rows, *_] = watch.sweeps().values()
    assert sorted(row["stream"] for row in rows) == sorted(streams[:2])
    assert all(row["domain"] == domain and row["error"] is None for row in rows)


# -- refusals and the exporter's own behaviour ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["tencent", "watch"], "--every"),
        (["tencent", "watch", "--every", "0"], "--every"),
        (["tencent", "watch", "--every", "nan"], "--every"),
        (["tencent", "watch", "--every", "1", "--metrics-port", "70000"], "--metrics-port"),
        (["tencent", "watch", "--every", "1", "room-1", "--rooms", "x.txt"], "not both"),
        (["polyv", "watch", "--every", "1", "--window", "0", "1"], "--window"),
        (["polyv", "watch", "--every", "1", "--window", "172800", "1"], "window"),
    ],
)
def test_bad_watch_options_exit_2_in_one_line(
    env: dict[str, str], args: list[str], says: str
) -> None:
    run = subprocess.run(
        [*PYTHON_M, *args],
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=HANG,
        check=False,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert says in line


def test_a_port_in_use_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [*PYTHON_M, "tencent", "watch", "--every", "1", "--metrics-port", str(port)],
            env=env,
            capture_output=True,
            encoding="utf-8",
            timeout=HANG,
            check=False,
        )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"livestats: error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.fixture
def without_prometheus(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """An environment in which ``import prometheus_client`` fails, as where it is not installed."""
    shadow = tmp_path / "shadow" / "prometheus_client"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\n"
        "    \"No module named 'prometheus_client'\", name='prometheus_client'\n"
        ")\n"
    )
    path = os.pathsep.join(p for p in [str(shadow.parent), env.get("PYTHONPATH", "")] if p)
    return {**env, "PYTHONPATH": path}


def test_metrics_without_prometheus_client_say_what_to_install(
    without_prometheus: dict[str, str],
) -> None:
    run = subprocess.run(
        [*PYTHON_M, "tencent", "watch", "--every", "1", "--metrics-port", "0"],
        env=without_prometheus,
        capture_output=True,
        encoding="utf-8",
        timeout=HANG,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "livestats: error: --metrics-port needs prometheus-client: "
        "pip install 'livestats[prometheus]'"
    ]


def test_a_watch_without_metrics_needs_no_prometheus_client(
    without_prometheus: dict[str, str], tmp_path: Path, watches: list[Watch]
) -> None:
    watch = Watch(
        ["tencent", "watch", "--every", str(EVERY)], without_prometheus, tmp_path / "o.jsonl"
    )
    watches.append(watch)
    watch.wait_for_sweeps(1)
    code, _, err = watch.stop(signal.SIGTERM)
    assert (code, err) == (143, "livestats: terminated\n")


def sweep_of(rooms: dict[str, int], *, failed: tuple[str, ...] = ()) -> Sweep[str, RoomStats]:
    now = datetime.now(timezone.utc)
    results: list[BatchResult[str, RoomStats]] = [
        BatchResult(
            room,
            RoomStats(
                room_id=room,
                total_viewers=viewers,
                total_gifts_sent=0,
                total_gift_coins=0,
                total_unique_gift_senders=0,
                total_likes_received=0,
                total_msg_count=0,
            ),
        )
        for room, viewers in rooms.items()
    ]
    results += [BatchResult(room, error=RuntimeError("down")) for room in failed]
    return Sweep(started_at=now, finished_at=now + timedelta(seconds=1), results=results)


def test_a_room_that_leaves_the_latest_sweep_has_its_series_removed() -> None:
    from prometheus_client import generate_latest

    from livestats.cli._exporter import Exporter

    exporter = Exporter("tencent")

    def viewers() -> dict[str, float]:
        text = generate_latest(exporter.registry).decode()
        return {
            sample.labels["room_id"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "livestats_tencent_room_total_viewers"
            for sample in family.samples
        }

    exporter.record(sweep_of({"a": 1, "b": 2}))
    assert viewers() == {"a": 1.0, "b": 2.0}
    exporter.record(sweep_of({"b": 3, "c": 4}))  # a closed, c opened
    assert viewers() == {"b": 3.0, "c": 4.0}
    exporter.record(
        sweep_of({"c": 5}, failed=("b",))
    )  # b failed: no figure is better than an old one
    assert viewers() == {"c": 5.0}
    exporter.record(sweep_of({}))
    assert viewers() == {}


def test_the_demo_ends_with_a_short_watch(base_env: dict[str, str]) -> None:
    run = subprocess.run(
        [*PYTHON_M, "demo", "--rooms", "10", "--top", "2"],
        env=base_env,
        capture_output=True,
        encoding="utf-8",
        timeout=HANG,
        check=False,
    )
    assert (run.returncode, run.stderr) == (0, "")
    sweeps = [line.strip() for line in run.stdout.splitlines() if line.startswith("  sweep ")]
    assert len(sweeps) == 2
    offsets = [float(re.findall(r"\(\+([0-9.]+) s\)", line)[0]) for line in sweeps]
    assert offsets[0] == 0.0
    assert offsets[1] == pytest.approx(1.0, abs=0.1)
    assert all("5 rooms, 0 failed" in line for line in sweeps)
    assert run.stdout.rstrip().endswith(sweeps[-1])  # the watch comes last
