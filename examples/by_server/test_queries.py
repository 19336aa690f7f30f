"""Tests collected under the connected server's name (conftest.py), each class a unit."""

from __future__ import annotations

from typing import Any

import pytest


class TestQueries:
    __backend__ = True

    @pytest.mark.parametrize("n", range(5))
    def test_arithmetic(self, db: Any, n: int) -> None:
        if isinstance(db, dict):
            db["n"] = n * 2
            assert db["n"] == n * 2
            return
        assert db.execute("SELECT %s::int * 2", (n,)).fetchone()[0] == n * 2

    def test_roundtrip(self, db: Any) -> None:
        if isinstance(db, dict):
            return
        db.execute("CREATE TEMP TABLE t (x text)")
        db.execute("INSERT INTO t VALUES ('a')")
        assert db.execute("SELECT x FROM t").fetchone()[0] == "a"


class TestCapabilities:
    __backend__ = True

    @pytest.mark.needs_version(13)
    def test_gen_random_uuid(self, db: Any) -> None:
        assert len(str(db.execute("SELECT gen_random_uuid()").fetchone()[0])) == 36

    @pytest.mark.needs_version(99)
    def test_a_future_server(self, db: Any) -> None:
        raise AssertionError("never collected as runnable on Postgres 15")


def test_server_is_named(server: tuple[str, int]) -> None:
    assert server[0] in ("memory", "postgresql")
