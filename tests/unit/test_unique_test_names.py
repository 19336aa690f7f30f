"""Test modules have unique basenames across tests/: pytest's default import mode (prepend, no
__init__.py) imports each by its basename, and two of one name make collection fail."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
