"""Warm stacks against the real engine: `up --stack` keeps them, runs borrow and reset them,
a stale one is replaced, `down` leaves nothing; the worker's start overlaps the stack's.

Real Postgres and Redis (deploy/images/build.sh), real `orchestrate` commands on a generated
suite. Each test's setup input holds a fresh token, so its cache key is its own; the images it
committed are removed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from conftest import ORCHESTRATE, load_results, run_orchestrate, write_suite

from agents.stack import clean_cache, load_stack_file, stack_cache_key
from agents.stack.containers import LABEL_RUN
from agents.stack.warm import WarmSlot

pytestmark = pytest.mark.docker

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
    tmpfs: ["/data"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
    REDIS_URL: "redis://{cache.host}:{cache.ports[6379]}/0"
  setup: ["python setup_db.py"]
  setup_inputs: ["setup_db.py", "seed.txt"]
  reset: {db: postgres, cache: redis}
  collection_stack: false
"""

SETUP = """
import os, pathlib, psycopg, redis
seed = pathlib.Path("seed.txt").read_text().strip()
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
    connection.execute("CREATE TABLE items (name text)")
    connection.execute("INSERT INTO items VALUES (%s)", (seed,))
redis.Redis.from_url(os.environ["REDIS_URL"]).set("seed", seed)
"""

# Each test finds exactly what setup left, then dirties both stores: only a reset before the
# next run lets that run pass again on the same (borrowed) stacks.
TESTS = """
import os, pathlib, psycopg, redis

def check_and_dirty():
    seed = pathlib.Path("seed.txt").read_text().strip()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        assert connection.execute("SELECT name FROM items").fetchall() == [(seed,)]
        connection.execute("INSERT INTO items VALUES ('written by a run')")
    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    assert sorted(store.keys()) == [b"seed"] and store.get("seed") == seed.encode()
    store.set("dirty", "1")

class TestOne:
    def test_finds_setup_state_only(self):
        check_and_dirty()

class TestTwo:
    def test_finds_setup_state_only(self):
        check_and_dirty()
        if os.environ.get("HANG_AFTER_WRITING"):  # the coordinator is killed meanwhile
            pathlib.Path("written").touch()
            import time
            time.sleep(300)
"""


@pytest.fixture
def suite(tmp_path: Path) -> Iterator[Path]:
    write_suite(tmp_path, {"stack.yml": STACK, "setup_db.py": SETUP, "test_warm_stack.py": TESTS})
    (tmp_path / "seed.txt").write_text(f"seed-{uuid.uuid4().hex[:8]}\n")
    keys = {stack_cache_key(load_stack_file(str(tmp_path / "stack.yml")), tmp_path)}
    yield tmp_path
    run_orchestrate(["down"], tmp_path)
    keys.add(stack_cache_key(load_stack_file(str(tmp_path / "stack.yml")), tmp_path))
    for key in keys:
        clean_cache(key)


def _warm_containers(warm_id: str) -> dict[str, str]:
    client = docker.from_env()
    try:
        return {
            c.name: c.id
            for c in client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={warm_id}"})
        }
    finally:
        client.close()


def _warm_networks(warm_id: str) -> list[str]:
    client = docker.from_env()
    try:
        return [n.name for n in client.networks.list(filters={"label": f"{LABEL_RUN}={warm_id}"})]
    finally:
        client.close()


def _run(root: Path, results: str) -> dict[str, object]:
    run = run_orchestrate(
        ["run", "--stack", "stack.yml", "--agents", "2", "--results", results, "--", "-p", "no:randomly"],
        root,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "borrowing the 2 warm stacks" in run.stdout
    assert "warm stacks: " in run.stdout  # the summary's line: borrowed, or replaced and why
    assert set(load_results(root / results).values()) == {"passed"}
    document: dict[str, object] = json.loads((root / results).read_text())
    return document


def _warm(document: dict[str, object]) -> list[str]:
    agents = document["agents"]
    assert isinstance(agents, list)
    return [agent["stack_warm"] for agent in sorted(agents, key=lambda a: a["agent_id"])]


def test_warm_stacks_are_borrowed_reset_replaced_when_stale_and_removed_by_down(suite: Path) -> None:
    up = run_orchestrate(["up", "--stack", "stack.yml", "--agents", "2"], suite, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((suite / ".orchestrate" / "warm-stacks.json").read_text())
    warm_id = state["warm_id"]
    kept = _warm_containers(warm_id)
    assert len(kept) == 4  # two agents, each with its own Postgres and Redis

    # Two runs on the same stacks: the second passes only because each stack was reset to
    # its snapshot before its first unit (the first run's tests left rows and keys behind).
    first = _run(suite, "r1.json")
    assert _warm(first) == ["borrowed", "borrowed"]
    second = _run(suite, "r2.json")
    assert _warm(second) == ["borrowed", "borrowed"]
    assert _warm_containers(warm_id) == kept, "a borrowed stack is the same containers"
    # The worker started while the stack was being reset: before it was ready.
    for agent in second["agents"]:  # type: ignore[attr-defined]
        timeline = agent["timeline"]
        assert (
            timeline["started"] <= timeline["worker_started"] < timeline["stack_ready"] <= timeline["ready"]
        )

    # A setup input changes: the cache key does, and no run may use the old state.
    (suite / "seed.txt").write_text(f"seed-{uuid.uuid4().hex[:8]}\n")
    stale = _run(suite, "r3.json")  # its tests check the new seed: they fail on an old stack
    assert [w.split(":")[0] for w in _warm(stale)] == ["replaced", "replaced"]
    assert all("stale" in w for w in _warm(stale))
    replaced = _warm_containers(warm_id)
    assert len(replaced) == 4 and not set(replaced.values()) & set(kept.values())
    again = _run(suite, "r4.json")
    assert _warm(again) == ["borrowed", "borrowed"]

    down = run_orchestrate(["down"], suite)
    assert down.returncode == 0, down.stderr
    assert "removed the 2 warm stacks" in down.stdout
    assert _warm_containers(warm_id) == {}
    assert _warm_networks(warm_id) == []
    assert not (suite / ".orchestrate" / "warm-stacks.json").exists()


def test_up_refuses_a_stack_that_cannot_be_reset(tmp_path: Path) -> None:
    write_suite(
        tmp_path,
        {"stack.yml": STACK.replace("  reset: {db: postgres, cache: redis}\n", "  reset: {db: postgres}\n")},
    )
    up = run_orchestrate(["up", "--stack", "stack.yml", "--agents", "1"], tmp_path)
    assert up.returncode == 4
    assert "names no strategy for cache" in up.stderr and "Traceback" not in up.stderr
    assert not (tmp_path / ".orchestrate" / "warm-stacks.json").exists()


def test_a_run_killed_mid_test_leaves_a_stack_the_next_run_resets(suite: Path) -> None:
    up = run_orchestrate(["up", "--stack", "stack.yml", "--agents", "1"], suite, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((suite / ".orchestrate" / "warm-stacks.json").read_text())
    command = [*ORCHESTRATE, "run", "--stack", "stack.yml", "--agents", "1"]
    env = dict(os.environ, HANG_AFTER_WRITING="1")
    log = suite / "killed-run.log"
    with log.open("w") as output:
        killed = subprocess.Popen(
            command, cwd=suite, env=env, stdout=output, stderr=output, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while not (suite / "written").exists():  # the test wrote its rows and keys, then hangs
            assert killed.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        os.killpg(killed.pid, signal.SIGKILL)  # the coordinator only: its agent sees it go
        killed.wait(30)
    slot = WarmSlot(state["warm_id"], 0, state["owner"], Path(state["directory"]))
    deadline = time.monotonic() + 60
    while (fd := slot.lock()) is None:  # the orphaned agent lets go of the stack it borrowed
        assert time.monotonic() < deadline, "the killed run's agent kept the warm stack"
        time.sleep(0.1)
    os.close(fd)
    # The stack is kept (not removed) and dirty; the next run resets it before its first unit.
    assert len(_warm_containers(state["warm_id"])) == 2
    after = run_orchestrate(["run", "--stack", "stack.yml", "--agents", "1", "--results", "r.json"], suite)
    assert after.returncode == 0, after.stdout + after.stderr
    assert _warm(json.loads((suite / "r.json").read_text())) == ["borrowed"]


# The coordinator's collection reads the database its `env` names, then dirties it: a second
# run collects correctly only on a collection stack reset to its snapshot before it.
COLLECTING_CONFTEST = """
import os, pathlib, psycopg

def pytest_collection_modifyitems(config, items):
    if os.environ.get("ORCHESTRATE_AGENT"):
        return  # a worker: only the coordinator's collection is checked here
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        rows = connection.execute("SELECT name FROM items").fetchall()
        connection.execute("INSERT INTO items VALUES ('written by a collection')")
    with open("collected.log", "a") as log:
        log.write(repr(rows) + "\\n")
"""


def test_the_coordinators_collection_stack_is_kept_warm_and_reset_too(suite: Path) -> None:
    (suite / "stack.yml").write_text(STACK.replace("  collection_stack: false\n", ""))
    (suite / "conftest.py").write_text(COLLECTING_CONFTEST)
    up = run_orchestrate(["up", "--stack", "stack.yml", "--agents", "1"], suite, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "1 warm stacks and one for the coordinator's collection" in up.stdout
    state = json.loads((suite / ".orchestrate" / "warm-stacks.json").read_text())
    kept = _warm_containers(state["warm_id"])
    assert len(kept) == 4  # the agent's Postgres and Redis, and the collection stack's

    seed = (suite / "seed.txt").read_text().strip()
    for results in ("r1.json", "r2.json"):
        run = run_orchestrate(["run", "--stack", "stack.yml", "--agents", "1", "--results", results], suite)
        assert run.returncode == 0, run.stdout + run.stderr
        assert (
            "for a stack of the coordinator's own (a warm stack of `orchestrate up`, reset in" in run.stdout
        )
        assert _warm(json.loads((suite / results).read_text())) == ["borrowed"]
    # Both collections saw the state after setup: the second one's stack was reset first.
    assert (suite / "collected.log").read_text().splitlines() == [repr([(seed,)])] * 2
    assert _warm_containers(state["warm_id"]) == kept, "the same containers, none of a run's own"


def test_a_worker_started_on_endpoints_the_slot_no_longer_has_is_replaced(suite: Path) -> None:
    """A run's agent starts its worker on the endpoints the slot's record holds, before it asks
    the engine anything; when the borrowed stack's endpoints are not those, that worker goes
    and another starts on the stack's own (its tests would reach nothing), and the record is
    written anew for the next run."""
    up = run_orchestrate(["up", "--stack", "stack.yml", "--agents", "1"], suite, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((suite / ".orchestrate" / "warm-stacks.json").read_text())
    record_path = WarmSlot(state["warm_id"], 0, state["owner"], Path(state["directory"])).record_path
    record = json.loads(record_path.read_text())
    true_endpoints = record["endpoints"]
    assert true_endpoints["env"]["REDIS_URL"].startswith("redis://")
    # As if the containers had been given other addresses since: nothing listens on port 1.
    record["endpoints"] = {
        **true_endpoints,
        "env": {name: "redis://127.0.0.1:1/0" for name in true_endpoints["env"]},
    }
    record_path.write_text(json.dumps(record))

    run = run_orchestrate(["run", "--stack", "stack.yml", "--agents", "1", "--results", "r1.json"], suite)

    assert run.returncode == 0, run.stdout + run.stderr
    assert set(load_results(suite / "r1.json").values()) == {"passed"}
    document = json.loads((suite / "r1.json").read_text())
    assert _warm(document) == ["borrowed"]
    assert document["agents"][0]["worker_restarts"] == 0  # replaced before it ran, not restarted
    assert json.loads(record_path.read_text())["endpoints"] == true_endpoints
    again = run_orchestrate(["run", "--stack", "stack.yml", "--agents", "1", "--results", "r2.json"], suite)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(load_results(suite / "r2.json").values()) == {"passed"}
