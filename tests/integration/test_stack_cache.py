"""The set-up state cache against the real engine: setup once, cloned to every agent, kept by key.

Real Postgres and Redis (deploy/images/build.sh). Each test's setup inputs hold a fresh token,
so its cache key is its own; every stack is taken down and every image it committed removed by
the fixtures, and the module checks that nothing of its runs is left (containers, networks,
the lock, the images).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import psycopg
import pytest
import redis

from agents.stack import check_engine, clean_cache, current_owner, images, stack_cache_key
from agents.stack.compose import StackSpec, parse_stack
from agents.stack.docker import LABEL_RUN, DockerStack
from agents.stack.images import LABEL_CACHE, LABEL_CACHE_LOCK
from agents.stack.protocol import StackEndpoints
from orchestrator.protocol.errors import StackFailed

pytestmark = pytest.mark.docker

RUN_PREFIX = "c" + uuid.uuid4().hex[:6]

STACK = """
services:
  db:
    image: orchestrate/postgres:15
    ports: ["5432"]
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    tmpfs: ["/data"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
    REDIS_URL: "redis://{cache.host}:{cache.ports[6379]}/0"
  setup: ["python setup.py"]
  setup_inputs: ["migrations/**", "setup.py"]
  reset: {db: postgres, cache: redis}
  ready_timeout: 60
"""

# The setup: applies every migration file, seeds Redis, and counts its own runs in runs.txt.
SETUP = """
import os, pathlib, psycopg, redis
with open("runs.txt", "a") as runs:
    runs.write("ran\\n")
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
    for migration in sorted(pathlib.Path("migrations").iterdir()):
        connection.execute(migration.read_text())
client = redis.Redis.from_url(os.environ["REDIS_URL"])
client.set("seeded", pathlib.Path("migrations/0001.sql").read_text().split("--")[-1].strip())
client.close()
"""

MakeStack = Callable[..., DockerStack]


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    check_engine()
    client = docker.from_env()
    yield client
    containers = [
        c.name
        for c in client.containers.list(all=True, filters={"label": LABEL_RUN})
        if c.labels.get(LABEL_RUN, "").startswith(RUN_PREFIX)
    ]
    networks = [
        n.name
        for n in client.networks.list(filters={"label": LABEL_RUN})
        if (n.attrs.get("Labels") or {}).get(LABEL_RUN, "").startswith(RUN_PREFIX)
    ]
    locks = [c.name for c in client.containers.list(all=True, filters={"label": LABEL_CACHE_LOCK})]
    client.close()
    assert (containers, networks, locks) == ([], [], []), "left behind"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A run's directory: setup.py and one migration naming a fresh token (a key of its own)."""
    (tmp_path / "setup.py").write_text(SETUP)
    (tmp_path / "migrations").mkdir()
    token = uuid.uuid4().hex
    (tmp_path / "migrations" / "0001.sql").write_text(
        f"CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one'); -- {token}"
    )
    return tmp_path


@pytest.fixture
def make(engine: docker.DockerClient) -> Iterator[MakeStack]:
    """DockerStacks of one run each (or of `run_id`); all taken down, their cached images removed."""
    made: list[DockerStack] = []

    def factory(cwd: Path, agent_id: str = "0", run_id: str | None = None, extra: str = "") -> DockerStack:
        spec: StackSpec = parse_stack(textwrap.dedent(STACK) + extra, path=cwd / "stack.yml")
        run = run_id or f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}"
        stack = DockerStack(spec, run, agent_id, current_owner(), cwd=cwd)
        made.append(stack)
        return stack

    yield factory
    keys = {stack.cache_key for stack in made if stack.cache_key}
    for stack in made:
        stack.down()
    for key in keys:
        clean_cache(key)
    for key in keys:
        assert engine.api.images(filters={"label": f"{LABEL_CACHE}={key}"}) == []


def setup_runs(project: Path) -> int:
    return len((project / "runs.txt").read_text().splitlines())


def state_of(endpoints: StackEndpoints) -> tuple[list[tuple[int, str]], bytes | None]:
    with psycopg.connect(endpoints.env["DATABASE_URL"]) as connection:
        rows = connection.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    client = redis.Redis.from_url(endpoints.env["REDIS_URL"])
    seeded = client.get("seeded")
    client.close()
    return rows, seeded


def test_a_second_stack_with_the_same_key_skips_setup_and_has_its_state(
    make: MakeStack, project: Path
) -> None:
    first = make(project).up()
    assert (first.cache, setup_runs(project)) == ("miss", 1)
    expected = state_of(first)
    assert expected[0] == [(1, "one")] and expected[1]
    second = make(project).up()
    assert second.cache == "hit"
    assert second.setup_seconds == 0.0 and second.cache_saved_seconds > 0
    assert setup_runs(project) == 1  # the hit ran no setup
    assert state_of(second) == expected


def test_a_changed_migration_misses_and_sets_up_once_more(make: MakeStack, project: Path) -> None:
    first = make(project)
    first.up()
    (project / "migrations" / "0002.sql").write_text("INSERT INTO items VALUES (2, 'two');")
    second = make(project)
    endpoints = second.up()
    assert endpoints.cache == "miss" and setup_runs(project) == 2
    assert second.cache_key != first.cache_key
    assert state_of(endpoints)[0] == [(1, "one"), (2, "two")]
    (project / "README").write_text("not an input")  # outside setup_inputs: same key
    assert make(project).up().cache == "hit" and setup_runs(project) == 2


def test_agents_of_one_run_set_up_once_and_each_gets_its_own_identical_clone(
    make: MakeStack, project: Path
) -> None:
    run_id = f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}"
    stacks = [make(project, agent_id=str(agent), run_id=run_id) for agent in range(3)]
    with ThreadPoolExecutor(len(stacks)) as pool:
        endpoints = list(pool.map(lambda stack: stack.up(), stacks))
    assert sorted(e.cache for e in endpoints) == ["hit", "hit", "miss"]
    assert setup_runs(project) == 1
    states = [state_of(e) for e in endpoints]
    assert states[0] == states[1] == states[2] and states[0][0] == [(1, "one")]
    # Their own services: a write in one agent's database is in no other's.
    urls = {e.env["DATABASE_URL"] for e in endpoints}
    assert len(urls) == 3
    with psycopg.connect(endpoints[0].env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("INSERT INTO items VALUES (9, 'only in agent 0')")
    assert state_of(endpoints[1])[0] == [(1, "one")]


def test_the_per_unit_reset_returns_a_clone_to_the_state_after_setup(make: MakeStack, project: Path) -> None:
    make(project).up()
    stack = make(project)
    endpoints = stack.up()
    assert endpoints.cache == "hit"
    stack.snapshot()
    with psycopg.connect(endpoints.env["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("DELETE FROM items")
    client = redis.Redis.from_url(endpoints.env["REDIS_URL"])
    client.delete("seeded")
    client.set("dirty", 1)
    client.close()
    stack.reset()
    rows, seeded = state_of(endpoints)
    assert rows == [(1, "one")] and seeded
    client = redis.Redis.from_url(endpoints.env["REDIS_URL"])
    assert client.get("dirty") is None
    client.close()


def test_the_size_limit_removes_the_oldest_key_first(
    make: MakeStack, project: Path, engine: docker.DockerClient
) -> None:
    first = make(project, extra="  cache_max_mb: 1\n")
    first.up()
    first.down()  # its images are no longer in use: the limit may take them
    assert engine.api.images(filters={"label": f"{LABEL_CACHE}={first.cache_key}"})
    (project / "migrations" / "0002.sql").write_text("INSERT INTO items VALUES (2, 'two');")
    second = make(project, extra="  cache_max_mb: 1\n")
    assert second.up().cache == "miss"
    assert engine.api.images(filters={"label": f"{LABEL_CACHE}={first.cache_key}"}) == []
    assert len(engine.api.images(filters={"label": f"{LABEL_CACHE}={second.cache_key}"})) == 2


def test_a_failed_setup_releases_the_lock_and_caches_nothing(
    make: MakeStack, project: Path, engine: docker.DockerClient
) -> None:
    (project / "setup.py").write_text("import sys; print('migration 3 broke'); sys.exit(3)")
    run_id = f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}"
    stacks = [make(project, agent_id=str(agent), run_id=run_id) for agent in range(2)]

    def up(stack: DockerStack) -> str:
        try:
            stack.up()
        except StackFailed as exc:
            return str(exc)
        return "up"

    with ThreadPoolExecutor(len(stacks)) as pool:
        errors = list(pool.map(up, stacks))
    # Each agent ran the setup itself (the second once the first released the lock) and failed.
    assert all("exit code 3" in error and "migration 3 broke" in error for error in errors), errors
    key = stacks[0].cache_key
    assert engine.api.images(filters={"label": f"{LABEL_CACHE}={key}"}) == []
    assert engine.containers.list(all=True, filters={"label": f"{LABEL_CACHE_LOCK}={key}"}) == []


def test_a_lock_whose_holder_died_is_broken(
    make: MakeStack, project: Path, engine: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "STALE_SECONDS", 1.0)
    stack = make(project)
    key = stack_cache_key(stack.spec, project)
    # What an agent killed during its setup leaves: the lock, owned by a process that is gone.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owner = f"{socket.gethostname()}:{dead.stdout.strip()}"
    engine.api.create_container(
        "orchestrate/postgres:15",
        command=["true"],
        name=f"orch-cache-lock-{key[:20]}",
        labels={
            LABEL_RUN: f"{RUN_PREFIX}-dead",
            "orchestrate.agent": "0",
            "orchestrate.owner": owner,
            LABEL_CACHE_LOCK: key,
        },
    )
    started = time.monotonic()
    assert stack.up().cache == "miss"
    assert time.monotonic() - started < 30
