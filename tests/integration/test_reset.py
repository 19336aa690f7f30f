"""Fresh state per unit (issue 14), through the real command: a dozen classes that each insert
the same primary key and count a Redis key from zero pass on 2 agents with `reset` on, and fail
without it.

Also shows that `x-orchestrate.pytest_args` reach each agent's worker (the suite reads its
database from `--dburi`) and never the coordinator's collection (the suite's conftest refuses
`--dburi` outside an agent's worker).

The stack layer (DockerStack.snapshot / reset) is tested alone in test_stack_reset.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_orchestrate, write_suite

UNITS = 12

STACK = """
services:
  db:
    image: orchestrate/postgres:15
    ports: ["5432"]
    healthcheck:
      test: ["CMD", "pg_isready", "--quiet", "--host=127.0.0.1", "--username=postgres"]
      interval: 250ms
      retries: 120
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"  # for seed.py
    REDIS_URL: "redis://{cache.host}:{cache.port}/0"
  setup: ["python seed.py"]
  pytest_args: ["--dburi", "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"]
  ready_timeout: 60
"""

RESET = """
  reset: {db: postgres, cache: redis}
"""

SEED = """
    # The stack's setup command: the state every unit must start from.
    import os

    import psycopg
    import redis

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
        db.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        db.execute("INSERT INTO items VALUES (0, 'from setup')")
    redis.Redis.from_url(os.environ["REDIS_URL"]).set("seeded", "yes")
"""

CONFTEST = """
    import os

    import psycopg
    import pytest
    import redis


    def pytest_addoption(parser):
        parser.addoption("--dburi", default=None, help="the database the tests use")


    def pytest_configure(config):
        # x-orchestrate.pytest_args belong to the agents' workers only, never to the collection.
        if config.getoption("--dburi") and "ORCHESTRATE_AGENT" not in os.environ:
            raise pytest.UsageError("--dburi reached a pytest process that is not an agent's worker")


    @pytest.fixture
    def db(request):
        uri = request.config.getoption("--dburi")
        assert uri, "--dburi was not passed: x-orchestrate.pytest_args did not reach the worker"
        # Per test, not per session: a reset terminates the connections still open (WITH (FORCE)).
        with psycopg.connect(uri, autocommit=True) as connection:
            yield connection


    @pytest.fixture
    def cache():
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        yield client
        client.close()
"""

UNIT = """

    class TestUnit{index:02d}:
        def test_inserts_the_same_key(self, db):
            db.execute("INSERT INTO items VALUES (1, 'unit {index:02d}')")
            assert db.execute("SELECT count(*) FROM items").fetchone() == (2,)

        def test_counts_from_zero(self, cache):
            assert cache.get("seeded") == b"yes"
            assert cache.incr("visits") == 1
"""


def suite() -> dict[str, str]:
    return {
        "stack.yml": STACK + RESET,
        "stack-without-reset.yml": STACK,
        "seed.py": SEED,
        "conftest.py": CONFTEST,
        "test_units.py": "".join(UNIT.format(index=index) for index in range(UNITS)),
    }


def outcomes(path: Path) -> dict[str, str]:
    return {test["node_id"]: test["outcome"] for test in json.loads(path.read_text())["tests"]}


@pytest.mark.docker
@pytest.mark.slow
def test_a_dozen_classes_pass_with_reset_and_fail_without(tmp_path: Path) -> None:
    write_suite(tmp_path, suite())
    common = ["run", "--agents", "2", "--backend", "local", "--durations", str(tmp_path / "d.msgpack")]

    with_reset = run_orchestrate([*common, "--stack", "stack.yml", "--results", "with.json"], tmp_path)
    assert with_reset.returncode == 0, with_reset.stdout + with_reset.stderr
    passed = outcomes(tmp_path / "with.json")
    assert len(passed) == 2 * UNITS and set(passed.values()) == {"passed"}
    # Both agents came up; how many units each ran is the scheduler's business (tests this fast
    # may all go to the agent whose stack was ready first).
    assert len(json.loads((tmp_path / "with.json").read_text())["agents"]) == 2

    without = run_orchestrate(
        [*common, "--stack", "stack-without-reset.yml", "--results", "without.json"], tmp_path
    )
    assert without.returncode == 1, without.stdout + without.stderr
    failed = [node for node, outcome in outcomes(tmp_path / "without.json").items() if outcome == "failed"]
    # Only the first unit on each agent finds the state setup left; every later one finds the
    # rows and counters of the units before it.
    assert len(failed) >= 2 * (UNITS - 2), without.stdout
    assert "duplicate key value violates unique constraint" in without.stdout
