"""The project as a newcomer meets it: the README's commands, its pytest example, the licence.

The README is the test's input: its first command, and its pytest example copied
into a project of its own and run there by pytest, as a reader would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the cli extra's tomli
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

from tests.test_cli import HANG

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _module(requirement: str) -> str:
    """The module a requirement installs (``prometheus-client>=1``: prometheus_client)."""
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()
    return "opentelemetry" if name.startswith("opentelemetry-") else name.replace("-", "_")


def _not_in_the_cli_extra() -> list[str]:
    """Modules only other extras bring (dev, redis, metrics): the demo must not import them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    given = {_module(r) for r in [*project["dependencies"], *extras["cli"]]}
    others = {
        _module(r)
        for name, requirements in extras.items()
        for r in requirements
        if not r.startswith("livestats[")
    }
    return sorted(others - given)


def test_the_first_command_installs_only_what_the_demo_needs() -> None:
    first = re.search(r"```sh\n(.*?)\n```", README, re.S)
    assert first is not None
    assert first.group(1) == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[cli]' && .venv/bin/livestats demo"
    )
    # The test command stays as CI runs it.
    assert (
        "<!-- test-command -->\n```sh\nscripts/bootstrap && .venv/bin/python -m pytest -q\n```"
        in (README)
    )


def test_the_demo_runs_with_the_cli_extra_alone() -> None:
    """`livestats demo` after `pip install '.[cli]'`: nothing only another extra brings."""
    assert {"redis", "pytest", "prometheus_client"} <= set(_not_in_the_cli_extra())
    block = "".join(f"sys.modules[{name!r}] = None\n" for name in _not_in_the_cli_extra())
    code = f"import sys\n{block}from livestats.cli import main\nsys.exit(main(sys.argv[1:]))\n"

    proc = subprocess.run(
        [sys.executable, "-c", code, "demo", "--rooms", "10", "--top", "3"],
        capture_output=True,
        encoding="utf-8",
        timeout=HANG,
        cwd=ROOT,
    )

    assert (proc.returncode, proc.stderr) == (0, "")
    assert "get_room_stats" in proc.stdout


def _pytest_example() -> str:
    found = re.search(r"<!-- pytest-example -->\n```python\n(.*?)```", README, re.S)
    assert found is not None, "README.md has no pytest example after <!-- pytest-example -->"
    return found.group(1)


def _run_pytest(project: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # A project of its own: no ini file, so pytest-asyncio runs in its default strict
    # mode; livestats' plugin comes from its installed entry point, as for a user.
    (project / "test_viewers.py").write_text(_pytest_example(), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *flags, "test_viewers.py"],
        capture_output=True,
        encoding="utf-8",
        timeout=HANG,
        cwd=project,
    )


def test_the_pytest_example_runs_as_copied_into_a_fresh_project(tmp_path: Path) -> None:
    proc = _run_pytest(tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_without_pytest_asyncio_the_fixture_says_what_to_install(tmp_path: Path) -> None:
    proc = _run_pytest(tmp_path, "-p", "no:asyncio")

    assert proc.returncode != 0
    assert "the livestats_simulator fixture is async and needs pytest-asyncio" in proc.stdout
    assert "pip install pytest-asyncio" in proc.stdout
    assert "fixture 'livestats_simulator' not found" not in proc.stdout


def test_the_simulators_data_is_documented_where_the_examples_use_it() -> None:
    section = README.split("## Testing your code against the simulator", 1)[1].split("\n## ", 1)[0]
    for name in ("sim.room_ids", "sim.domains", "sim.channel_ids", "sim.offline_channel_ids"):
        assert name in section
    assert "room-00000" in section
    assert "live1.example.com" in section


def test_the_licence_is_in_the_repository_and_declared_for_the_wheel() -> None:
    """An MIT LICENSE at the root; pyproject says MIT and ships the file (PEP 639)."""
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]


@pytest.mark.parametrize("command", ["livestats demo", "livestats quotas", "--resume"])
def test_the_readme_names_what_the_command_line_offers(command: str) -> None:
    assert command in README
