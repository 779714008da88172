"""The public surface: what `livestats` exports, and who may use what lies beneath it."""

from __future__ import annotations

import ast
from pathlib import Path

import livestats
import livestats.testing

ROOT = Path(__file__).parent.parent
PRIVATE = ("livestats._core", "livestats.providers")


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{path.name}: {name}" for name in names if name.startswith(PRIVATE)]
    return found


def test_the_command_line_uses_only_the_public_api() -> None:
    """The CLI is a thin layer over what users get: it imports nothing private."""
    files = sorted((ROOT / "livestats" / "cli").glob("*.py"))
    assert files
    assert [hit for path in files for hit in _private_imports(path)] == []


def test_the_examples_use_only_the_public_api() -> None:
    files = sorted((ROOT / "examples").glob("*.py"))
    assert files
    assert [hit for path in files for hit in _private_imports(path)] == []


def test_every_export_exists_once() -> None:
    """``__all__`` names what is there, each once (ruff keeps it sorted)."""
    for module in (livestats, livestats.testing):
        exported = list(module.__all__)
        assert len(exported) == len(set(exported))
        missing = [name for name in exported if not hasattr(module, name)]
        assert missing == []
