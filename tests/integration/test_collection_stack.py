"""A suite whose collection depends on its database (examples/by_server), run as the README says.

The coordinator collects against a stack of its own, with the stack file's per-agent
`--db-url` rendered for it, so its node ids are the workers' (`TestQueries_postgresql_15`):
the run gives test for test the outcomes of plain pytest against one Postgres, and
`--collect-only` through orchestrate prints what the workers run. The coordinator's stack stays
up until its session's last hook (the suite's pytest_unconfigure connects once more), though it
starts coming down beside the agents' stacks.
"""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_orchestrate, run_pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = "examples/by_server"
STACK = "examples/by_server/stack.yml"

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def one_postgres() -> Iterator[str]:
    """One Postgres for plain pytest (the user's single database), removed afterwards."""
    container = subprocess.run(
        ["docker", "run", "-d", "--rm", "-p", "127.0.0.1::5432", "orchestrate/postgres:15"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        port = (
            subprocess.run(
                ["docker", "port", container, "5432/tcp"], capture_output=True, text=True, check=True
            )
            .stdout.split(":")[-1]
            .strip()
        )
        url = f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def _outcomes(junit: Path) -> dict[str, str]:
    """(classname::name) -> outcome, from a JUnit file."""
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return outcomes


def test_collection_that_needs_the_database_matches_plain_pytest(tmp_path: Path, one_postgres: str) -> None:
    plain = run_pytest(
        [SUITE, "-p", "no:cacheprovider", "--db-url", one_postgres, f"--junitxml={tmp_path / 'plain.xml'}"],
        REPO,
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    run = run_orchestrate(
        [
            "run",
            SUITE,
            "--stack",
            STACK,
            "--agents",
            "2",
            "--durations",
            str(tmp_path / "durations.msgpack"),
            "--junitxml",
            str(tmp_path / "ours.xml"),
            "--",
            "-v",
        ],
        REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ours, theirs = _outcomes(tmp_path / "ours.xml"), _outcomes(tmp_path / "plain.xml")
    assert ours == theirs
    # The ids carry the server and its version; a capability skip happened at collection.
    assert any("TestQueries_postgresql_15" in key for key in ours)
    assert sorted(ours.values()).count("skipped") == 1
    assert (
        "collecting with the stack file's --db-url rendered for a stack of the coordinator's own"
        in run.stdout
    )
    # -v: each worker's own command line, its --db-url pointing at its own Postgres.
    worker_lines = [
        line for line in run.stdout.splitlines() if line.startswith("agent ") and " worker: " in line
    ]
    assert len(worker_lines) == 2 and all("--db-url postgresql://" in line for line in worker_lines)
    assert worker_lines[0].split("--db-url")[1] != worker_lines[1].split("--db-url")[1]
    assert one_postgres not in run.stdout


def test_collect_only_through_orchestrate_prints_what_the_workers_run(tmp_path: Path) -> None:
    run = run_orchestrate(
        ["run", SUITE, "--stack", STACK, "--agents", "2", "--", "--collect-only", "-q"],
        REPO,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test_queries.py::TestQueries_postgresql_15::test_roundtrip" in run.stdout
    assert "_memory" not in run.stdout
    assert "9 tests collected" in run.stdout


def test_without_the_collection_stack_the_difference_shows_both_sides(tmp_path: Path) -> None:
    stack = tmp_path / "stack.yml"
    stack.write_text((REPO / STACK).read_text() + "  collection_stack: false\n")
    run = run_orchestrate(
        ["run", SUITE, "--stack", str(stack), "--agents", "1", "--durations", str(tmp_path / "d.msgpack")],
        REPO,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "TestQueries_memory" in run.stdout and "TestQueries_postgresql_15" in run.stdout
    assert "pytest_args --db-url" in run.stdout
