"""The bundled integration case: a generated suite against a real Postgres per agent.

    python benchmarks/integration.py OUT_DIR --tests 3000 --seed 1   # only write the suite

The suite has the shape of a real public integration suite rather than of a synthetic one:
module-level test functions (no classes: orchestrate's unit is the module), a new connection
per test (psycopg 3, `psycopg.connect(os.environ["DATABASE_URL"])` in a function-scoped
fixture), a conftest whose `pytest_collection_modifyitems` marks every database test `db` and
moves the few `slow` ones to the end of the run (items of one module are then no longer
contiguous), and a table created by a setup migration (`migrate.py`, the stack file's `setup`).
Each test builds a few rows (a little CPU: sorting and hashing), inserts them, reads them back
and counts its module's rows: about 15 ms per test on an idle 2-core machine, partly latency
(connect with SCRAM authentication, round trips, commit) and partly CPU in the test and in
Postgres. The work is a fixed amount, not a fixed time, so on a busy machine tests get slower,
as real ones do. Every test writes under a token of its own, so tests never depend on each
other or on which process ran what before them.

The suite's durations are not known in advance, so neither is a lower bound: the case measures
one, `measured_bound`, from the serial run: max(serial CPU-seconds of the whole machine / cores,
serial wall / N). Serial pytest needs a Postgres too: `one_stack` brings up one copy of the
suite's stack file with orchestrate's own stack code (agents.stack, imported only there).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import textwrap
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.stack import StackEndpoints
    from benchmarks.methods import Context

__all__ = [
    "STACK_FILE",
    "WARM_STACK_FILE",
    "IntegrationModule",
    "IntegrationSuite",
    "IntegrationTest",
    "idle_stacks_cpu",
    "make_integration_suite",
    "measured_bound",
    "one_stack",
    "write_integration_suite",
]

STACK_FILE = "stack.yml"
# The same stack for `orchestrate up --stack` (the orchestrate-warm method): warm stacks must say
# how they are reset; this suite's tests write rows under tokens of their own and tolerate rows
# of earlier tests, as under serial pytest, so there is nothing to reset between units.
WARM_STACK_FILE = "stack-warm.yml"


@dataclass(frozen=True, slots=True)
class IntegrationTest:
    """One test function: how many rows it writes and how much work it does per row."""

    name: str
    rows: int
    work: int  # items sorted and hashed per row
    slow: bool = False


@dataclass(frozen=True, slots=True)
class IntegrationModule:
    """One test module (one orchestrate unit) of module-level test functions."""

    name: str  # file name, test_*.py
    tests: tuple[IntegrationTest, ...]


@dataclass(frozen=True, slots=True)
class IntegrationSuite:
    """A generated integration suite and the seed it came from."""

    modules: tuple[IntegrationModule, ...]
    seed: int

    @property
    def tests(self) -> int:
        return sum(len(m.tests) for m in self.modules)

    @property
    def slow_tests(self) -> int:
        return sum(t.slow for m in self.modules for t in m.tests)


# Names of the modules, as a real application's suite would have them (with a number each).
_TOPICS = ("accounts", "orders", "invoices", "sessions", "search", "audit", "exports", "webhooks")


def make_integration_suite(
    tests: int = 3000,
    *,
    seed: int = 1,
    work: int = 2000,
    tests_per_module: tuple[int, int] = (10, 90),
    rows: tuple[int, int] = (1, 4),
    slow_share: float = 0.02,
    slow_factor: int = 4,
) -> IntegrationSuite:
    """A suite of `tests` test functions over modules of `tests_per_module` tests.

    Each test writes `rows` rows (uniform) and does `work` x U[0.5, 1.5] work per row; a share
    `slow_share` of tests is marked slow and does `slow_factor` times that.
    """
    if tests < 1:
        raise ValueError(f"need at least one test, not {tests}")
    if not (1 <= tests_per_module[0] <= tests_per_module[1] and 1 <= rows[0] <= rows[1]):
        raise ValueError("tests_per_module and rows must be ranges (low <= high) of at least 1")
    if not 0 <= slow_share <= 1 or work < 1 or slow_factor < 1:
        raise ValueError("slow_share must be in [0, 1], work and slow_factor at least 1")
    rng = random.Random(seed)
    modules: list[IntegrationModule] = []
    left = tests
    while left:
        count = min(left, rng.randint(*tests_per_module))
        left -= count
        index = len(modules)
        module_tests: list[IntegrationTest] = []
        for n in range(count):
            slow = rng.random() < slow_share
            per_row = round(work * rng.uniform(0.5, 1.5)) * (slow_factor if slow else 1)
            module_tests.append(IntegrationTest(f"test_{n:03d}", rng.randint(*rows), per_row, slow))
        topic = _TOPICS[index % len(_TOPICS)]
        modules.append(IntegrationModule(f"test_{topic}_{index:03d}.py", tuple(module_tests)))
    return IntegrationSuite(tuple(modules), seed)


def write_integration_suite(suite: IntegrationSuite, directory: str | Path) -> Path:
    """Write the suite, its conftest, pytest.ini, migration and stack file into `directory`.

    The pytest.ini makes `directory` the rootdir, so the configuration of whatever project the
    directory lives in never applies to the benchmark.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(_PYTEST_INI, encoding="utf-8")
    (root / "conftest.py").write_text(_CONFTEST, encoding="utf-8")
    (root / "migrate.py").write_text(_MIGRATION, encoding="utf-8")
    (root / STACK_FILE).write_text(_STACK, encoding="utf-8")
    (root / WARM_STACK_FILE).write_text(_STACK + _WARM_RESET, encoding="utf-8")
    for module in suite.modules:
        (root / module.name).write_text(_module_source(module), encoding="utf-8")
    summary = {
        "seed": suite.seed,
        "tests": suite.tests,
        "modules": len(suite.modules),
        "slow_tests": suite.slow_tests,
        "rows": sum(t.rows for m in suite.modules for t in m.tests),
    }
    (root / "suite.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return root


def measured_bound(
    serial_cpu_seconds: Sequence[float], serial_seconds: Sequence[float], agents: Sequence[int], cores: int
) -> dict[str, float]:
    """{N: max(median serial CPU-seconds / cores, median serial wall / N)}; empty without both.

    The serial run's machine-wide CPU-seconds (the tests, pytest and Postgres) cannot be spread
    over fewer than `cores` cores, and its wall cannot be spread over fewer than N agents.
    """
    if not serial_cpu_seconds or not serial_seconds or cores < 1:
        return {}
    cpu = statistics.median(serial_cpu_seconds)
    wall = statistics.median(serial_seconds)
    return {str(n): max(cpu / cores, wall / n) for n in agents}


@contextmanager
def one_stack(stack_file: Path, cwd: Path, run_id: str) -> Iterator[tuple[StackEndpoints, float]]:
    """One copy of `stack_file`'s services, up with its setup run in `cwd`, removed on exit.

    Yields the endpoints (their `env` holds DATABASE_URL) and the seconds `up` took; orchestrate's
    own stack code does the work, so serial pytest gets the stack every agent gets.
    """
    from agents.stack import current_owner, load_stack_file, make_stack

    stack = make_stack(load_stack_file(stack_file), run_id, "serial", current_owner(), cwd=cwd)
    started = time.perf_counter()
    try:
        endpoints = stack.up()
        yield endpoints, time.perf_counter() - started
    finally:
        stack.down()


def idle_stacks_cpu(context: Context, agents: int, seconds: float = 20.0) -> dict[str, float]:
    """The machine's busy CPU-seconds over `seconds` while `agents` warm stacks stand idle.

    `orchestrate up --stack` brings them up (with the coordinator's collection stack, where the
    stack file asks for one), a few seconds pass for their start to settle, then /proc/stat is
    read around a sleep: Docker's daemons, the containers' health checks and servers, and
    anything else running, an upper bound on what the stacks cost while up.
    """
    from benchmarks.methods import BIN, machine_busy_seconds

    stack = context.warm_stack_file or context.stack_file
    up = [str(BIN / "orchestrate"), "up", "--agents", str(agents), "--stack", str(stack)]
    subprocess.run(up, cwd=context.suite_dir, env=context.env, capture_output=True, check=True)
    try:
        time.sleep(3.0)
        before = machine_busy_seconds() or 0.0
        time.sleep(seconds)
        busy = (machine_busy_seconds() or 0.0) - before
    finally:
        subprocess.run(
            [str(BIN / "orchestrate"), "down"], cwd=context.suite_dir, env=context.env, capture_output=True
        )
    return {"agents": agents, "seconds": seconds, "cpu_seconds": busy}


_PYTEST_INI = textwrap.dedent(
    """\
    [pytest]
    addopts = -p no:cacheprovider --strict-markers
    markers =
        db: uses the database (set by conftest.py)
        slow: a slower test; conftest.py runs these last
    """
)

_CONFTEST = textwrap.dedent(
    '''\
    """Generated by benchmarks/integration.py: the connection every test opens, and the collection hook."""

    import os

    import psycopg
    import pytest


    def pytest_collection_modifyitems(session, config, items):
        """Mark the tests that use the database `db`, and run the `slow` ones last."""
        for item in items:
            if "conn" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.db)
        items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


    @pytest.fixture
    def conn():
        """A new connection per test; committed when the test passes."""
        with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
            yield connection
    '''
)

_MIGRATION = textwrap.dedent(
    '''\
    """Generated by benchmarks/integration.py: the schema the tests write to (the stack's setup)."""

    import os

    import psycopg

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS records (
            id         bigserial PRIMARY KEY,
            module     text NOT NULL,
            token      text NOT NULL,
            position   int NOT NULL,
            digest     text NOT NULL,
            size       int NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (token, position)
        );
        CREATE INDEX IF NOT EXISTS records_module ON records (module);
    """

    if __name__ == "__main__":
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
            connection.execute(SCHEMA)
    '''
)

_STACK = textwrap.dedent(
    """\
    # Generated by benchmarks/integration.py: the Postgres every agent (and the serial run) brings up.
    services:
      db:
        image: orchestrate/postgres:15
        ports: ["5432"]
        healthcheck:
          test: ["CMD", "pg_isready", "--quiet", "--host=127.0.0.1", "--username=postgres"]
          interval: 250ms
          timeout: 5s
          retries: 120
    x-orchestrate:
      env:
        DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
      setup:
        - python migrate.py
      ready_timeout: 60
    """
)

_WARM_RESET = '  reset_commands: ["true"]  # the tests tolerate earlier tests\' rows: nothing to reset\n'

# Each module carries its own helpers, so nothing depends on how pytest sets up sys.path.
_MODULE_HEADER = textwrap.dedent(
    '''\
    """Generated by benchmarks/integration.py; do not edit."""

    import hashlib
    import json
    import uuid

    import pytest

    MODULE = __name__


    def build_rows(count, work):
        """The rows a test writes under a token of its own; `work` items sorted and hashed per row."""
        token = uuid.uuid4().hex
        rows = []
        for position in range(count):
            items = sorted((hash((token, position, i)) % 9973, i) for i in range(work))
            digest = hashlib.sha256(json.dumps(items).encode()).hexdigest()
            rows.append((MODULE, token, position, digest, len(items)))
        return token, rows


    def write_and_read(conn, count, work):
        token, rows = build_rows(count, work)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO records (module, token, position, digest, size) VALUES (%s, %s, %s, %s, %s)", rows
            )
            cursor.execute("SELECT position, digest FROM records WHERE token = %s ORDER BY position", (token,))
            assert cursor.fetchall() == [(row[2], row[3]) for row in rows]
            cursor.execute("SELECT count(*) FROM records WHERE module = %s", (MODULE,))
            (written,) = cursor.fetchone()
        assert written >= count
    '''
)


def _module_source(module: IntegrationModule) -> str:
    parts = [_MODULE_HEADER]
    for test in module.tests:
        marker = "@pytest.mark.slow\n" if test.slow else ""
        parts.append(
            f"\n{marker}def {test.name}(conn):\n    write_and_read(conn, {test.rows}, {test.work})\n"
        )
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the integration benchmark's suite and stack file.")
    parser.add_argument("directory", help="where to write the suite (created if missing)")
    parser.add_argument("--tests", type=int, default=3000)
    parser.add_argument("--work", type=int, default=2000, help="items sorted and hashed per row")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    suite = make_integration_suite(args.tests, seed=args.seed, work=args.work)
    root = write_integration_suite(suite, args.directory)
    print(
        f"{root}: {suite.tests} tests in {len(suite.modules)} modules ({suite.slow_tests} slow); "
        f"run it with `orchestrate run --stack {STACK_FILE}` there"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
