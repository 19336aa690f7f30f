"""Fresh state per unit (issue 14), through the real command: a dozen classes that each insert
the same primary key and count a Redis key from zero pass on 2 agents with `reset` on, and fail
without it.

Also shows that `x-orchestrate.pytest_args` reach each agent's worker (the suite reads its
database from `--dburi`), and the coordinator's collection rendered for a stack of its own (the
suite's conftest connects to the database it is given, from pytest_configure).

Also: a unit retried after its worker crashed, or rerun by --reruns, starts from the snapshot;
a reset that fails makes its unit's tests errors naming the failure, and the agent goes on.

The stack layer (DockerStack.snapshot / reset) is tested alone in test_stack_reset.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest
from conftest import run_orchestrate, write_suite

from agents.stack.docker import LABEL_RUN

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
        # Every process given --dburi (each agent's worker, and the coordinator's collection
        # with the URI rendered for its own collection stack) reaches a live, set-up database.
        uri = config.getoption("--dburi")
        if uri:
            with psycopg.connect(uri, autocommit=True, connect_timeout=10) as db:
                db.execute("SELECT count(*) FROM items").fetchone()


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


# A unit whose test writes the same row on every try and fails its first try: by killing its
# worker after the write (the session retries it as a new unit) or by failing (--reruns 1). The
# retry runs on the same agent (one agent), after the reset; without it, it finds the row.
RETRIED = """
    import os
    from pathlib import Path

    import pytest

    MARKER = Path(__file__).with_name("first-try-{how}.done")


    class Test{how}:
        def test_a_retry_starts_from_the_snapshot(self, db):
            # What the first try wrote must be gone.
            assert db.execute("SELECT label FROM items WHERE id = 2").fetchall() == []
            db.execute("INSERT INTO items VALUES (2, 'written by the {how} test')")
            if not MARKER.exists():
                MARKER.write_text("done")
                {fail}
"""


def retried_suite(how: str, fail: str, reset: bool) -> dict[str, str]:
    return {
        "stack.yml": STACK + (RESET if reset else ""),
        "seed.py": SEED,
        "conftest.py": CONFTEST,
        # A unit that runs first and dirties the stack, so the retry's reset is a real one.
        "test_a_first.py": UNIT.format(index=0),
        f"test_b_{how.lower()}.py": RETRIED.format(how=how, fail=fail),
    }


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "fail", "args"),
    [
        ("Crash", "os._exit(3)  # the worker dies after the row was written", []),
        ("Rerun", "pytest.fail('first try fails after the row was written')", ["--reruns", "1"]),
    ],
)
def test_a_retried_unit_starts_from_the_snapshot(
    tmp_path: Path, how: str, fail: str, args: list[str]
) -> None:
    node_id = f"test_b_{how.lower()}.py::Test{how}::test_a_retry_starts_from_the_snapshot"
    common = ["run", "--agents", "1", "--backend", "local", "--durations", str(tmp_path / "d.msgpack"), *args]

    for reset in (True, False):
        directory = tmp_path / ("with" if reset else "without")
        write_suite(directory, retried_suite(how, fail, reset))
        run = run_orchestrate([*common, "--stack", "stack.yml", "--results", "r.json"], directory)
        document = json.loads((directory / "r.json").read_text())
        test = next(t for t in document["tests"] if t["node_id"] == node_id)
        first_try = "crashed" if how == "Crash" else "failed"
        assert [a["outcome"] for a in test["attempts"]][0] == first_try, run.stdout
        if reset:
            assert run.returncode == 0, run.stdout + run.stderr
            assert test["outcome"] == "passed"
            assert document["agents"][0]["resets"] >= 2  # before the unit, and before its retry
        else:
            assert run.returncode == 1, run.stdout + run.stderr
            assert test["outcome"] == "failed"
            assert f"('written by the {how} test',)" in run.stdout  # the retry found the first try's row


FAILING_RESET = """
  reset_commands: ["echo reseeding went wrong >&2; exit 3"]
"""

RUN_ID = """

    def pytest_sessionstart(session):
        # The agent's worker notes its run id, so the test can look for containers left behind.
        if "ORCHESTRATE_RUN_ID" in os.environ:
            with open(os.path.join(str(session.config.rootpath), "run-id"), "w") as out:
                out.write(os.environ["ORCHESTRATE_RUN_ID"])
"""


@pytest.mark.docker
@pytest.mark.slow
def test_a_failing_reset_makes_the_units_tests_errors(tmp_path: Path) -> None:
    files = suite()
    files["stack.yml"] = STACK + FAILING_RESET
    files["test_units.py"] = "".join(UNIT.format(index=index) for index in range(3))
    files["conftest.py"] = CONFTEST + RUN_ID
    write_suite(tmp_path, files)

    run = run_orchestrate(
        ["run", "--agents", "1", "--backend", "local", "--stack", "stack.yml", "--results", "r.json"],
        tmp_path,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    results = {t["node_id"]: t for t in json.loads((tmp_path / "r.json").read_text())["tests"]}
    # The first unit runs on the stack as setup left it (nothing to reset); every later unit's
    # reset fails, so its tests are errors that name the failing command and its output.
    outcomes = sorted(t["outcome"] for t in results.values())
    assert outcomes == ["error"] * 4 + ["passed"] * 2, run.stdout
    errors = [t for t in results.values() if t["outcome"] == "error"]
    message = json.dumps(errors[0]["attempts"][-1])
    assert "exit 3" in message and "reseeding went wrong" in message
    assert "reseeding went wrong" in run.stdout
    # The agent went on (every unit got its try) and took its stack down.
    engine = docker.from_env()
    run_id = (tmp_path / "run-id").read_text()
    try:
        assert engine.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}) == []
    finally:
        engine.close()
