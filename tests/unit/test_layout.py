"""The layout stays readable: no module of ours over 400 lines, and every folder opens with its
design note (a package docstring saying what it owns, what it may import, its invariant)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for top in ("orchestrator", "agents") for p in (ROOT / top).rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_package_opens_with_a_design_note() -> None:
    missing = [
        p.parent.relative_to(ROOT).as_posix()
        for p in _modules()
        if p.name == "__init__.py" and not p.read_text().lstrip().startswith('"""')
    ]
    assert missing == []
