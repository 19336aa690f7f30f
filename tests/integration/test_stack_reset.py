"""Stack resets against real containers: snapshot after setup, writes, reset restores exactly.

Needs a Docker engine and the images of deploy/images/build.sh. Covers the stack layer only
(DockerStack.snapshot / reset and the strategies in agents/stack/reset/); the agent calling them
per unit is tests/integration/test_reset.py. Every stack made here is taken down by the `make`
fixture, and the module checks at the end that nothing of its run ids is left behind.

The measurement tests print reset times (run with `-s` to see them); they assert nothing about
timing, since the machine is shared.
"""

from __future__ import annotations

import statistics
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import psycopg
import pytest
import redis

from agents.stack import NullStack, check_engine, clean_cache, current_owner, load_stack_file
from agents.stack.compose import StackSpec, parse_stack
from agents.stack.docker import LABEL_RUN, DockerStack
from orchestrator.protocol.errors import StackFailed

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "integration"
RUN_PREFIX = "r" + uuid.uuid4().hex[:6]

# Setup writes a second database, rows, a sequence position and Redis keys of several types in
# two Redis databases, one with a TTL: everything a reset must bring back exactly.
SEED = """
import os, psycopg, redis
url = os.environ["DATABASE_URL"]
with psycopg.connect(url, autocommit=True) as db:
    db.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    db.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3) g")
    db.execute("CREATE SEQUENCE ticket")
    db.execute("SELECT nextval('ticket')")
    db.execute("CREATE DATABASE app")
with psycopg.connect(url.rsplit("/", 1)[0] + "/app", autocommit=True) as app:
    app.execute("CREATE TABLE settings (key text PRIMARY KEY, value text)")
    app.execute("INSERT INTO settings VALUES ('mode', 'seeded')")
cache = redis.Redis.from_url(os.environ["REDIS_URL"])
cache.set("greeting", "hello")
cache.set("session", "s1", ex=3600)
cache.hset("user:1", mapping={"name": "ada", "visits": 1})
cache.rpush("queue", "a", "b")
cache.set("binary", bytes(range(256)))
redis.Redis.from_url(os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/3").sadd("tags", "x", "y")
"""

STACK = """
services:
  db:
    image: orchestrate/postgres:15
    ports: ["5432"]
    healthcheck: {test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"], interval: 250ms, retries: 120}
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
    REDIS_URL: "redis://{cache.host}:{cache.port}/0"
  setup: ["python seed.py"]
  reset: {db: postgres, cache: redis}
  pytest_args: ["--dburi", "postgresql://postgres:postgres@{db.host}:{db.port}/app"]
  ready_timeout: 30
"""

MakeStack = Callable[..., DockerStack]


def spec_of(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), path=Path("test-stack.yml"))


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    check_engine()
    client = docker.from_env()
    yield client
    leftovers = [
        c.name
        for c in client.containers.list(all=True, filters={"label": LABEL_RUN})
        if c.labels.get(LABEL_RUN, "").startswith(RUN_PREFIX)
    ]
    client.close()
    assert leftovers == [], "stacks left behind"


@pytest.fixture
def make(engine: docker.DockerClient) -> Iterator[MakeStack]:
    """Make DockerStacks with fresh run ids; every one is taken down when the test ends."""
    made: list[DockerStack] = []

    def factory(spec: StackSpec, cwd: Path | None = None) -> DockerStack:
        stack = DockerStack(spec, f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}", "a0", current_owner(), cwd=cwd)
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        stack.down()
        if stack.cache_key is not None:  # the set-up state it committed: not left behind
            clean_cache(stack.cache_key)


def pg_state(url: str) -> dict[str, object]:
    """Everything the Postgres test checks, as plain values."""
    with psycopg.connect(url, autocommit=True) as db:
        databases = [row[0] for row in db.execute("SELECT datname FROM pg_database ORDER BY 1")]
        tables = [
            row[0]
            for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ]
        items = db.execute("SELECT id, name FROM items ORDER BY id").fetchall()
        ticket = db.execute("SELECT last_value FROM ticket").fetchone()
    with psycopg.connect(url.rsplit("/", 1)[0] + "/app") as app:
        settings = app.execute("SELECT key, value FROM settings").fetchall()
    return {"databases": databases, "tables": tables, "items": items, "ticket": ticket, "settings": settings}


def redis_state(url: str) -> dict[tuple[int, bytes], tuple[object, bool]]:
    """(db, key) -> (its value, has a TTL) for every key of the databases the test uses.

    Values, not DUMP payloads: a set's serialised order may differ after a RESTORE.
    """
    state: dict[tuple[int, bytes], tuple[object, bool]] = {}
    base = url.rsplit("/", 1)[0]
    for number in (0, 3, 5):
        client = redis.Redis.from_url(f"{base}/{number}")
        for key in client.scan_iter():
            state[(number, key)] = (_value(client, key), client.pttl(key) > 0)
        client.close()
    return state


def _value(client: redis.Redis, key: bytes) -> object:
    kind = client.type(key)
    if kind == b"set":
        return frozenset(client.smembers(key))
    if kind == b"hash":
        return tuple(sorted(client.hgetall(key).items()))
    if kind == b"list":
        return tuple(client.lrange(key, 0, -1))
    if kind == b"zset":
        return tuple(client.zrange(key, 0, -1, withscores=True))
    return client.dump(key)


class TestResetRestoresExactly:
    def test_snapshot_writes_reset(self, make: MakeStack, tmp_path: Path) -> None:
        (tmp_path / "seed.py").write_text(textwrap.dedent(SEED))
        stack = make(spec_of(STACK), cwd=tmp_path)
        endpoints = stack.up()
        url, cache_url = endpoints.env["DATABASE_URL"], endpoints.env["REDIS_URL"]
        assert stack.resets is True
        assert stack.snapshot() > 0
        after_setup_pg, after_setup_redis = pg_state(url), redis_state(cache_url)
        assert after_setup_pg["items"] == [(1, "item 1"), (2, "item 2"), (3, "item 3")]
        assert len(after_setup_redis) == 6

        held = psycopg.connect(url, autocommit=True)  # like a session-scoped fixture's connection
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("INSERT INTO items VALUES (4, 'new')")
            db.execute("UPDATE items SET name = 'changed' WHERE id = 1")
            db.execute("DELETE FROM items WHERE id = 2")
            db.execute("SELECT nextval('ticket')")
            db.execute("CREATE TABLE scratch (x int)")
            db.execute("CREATE DATABASE made_by_a_test")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/app", autocommit=True) as app:
            app.execute("UPDATE settings SET value = 'dirty'")
        cache = redis.Redis.from_url(cache_url)
        cache.set("greeting", "changed")
        cache.delete("queue")
        cache.hincrby("user:1", "visits", 5)
        cache.persist("session")
        cache.set("new", "key")
        redis.Redis.from_url(cache_url.rsplit("/", 1)[0] + "/5").set("elsewhere", "1")
        assert pg_state(url) != after_setup_pg and redis_state(cache_url) != after_setup_redis

        seconds = stack.reset()
        assert seconds > 0
        assert pg_state(url) == after_setup_pg
        assert redis_state(cache_url) == after_setup_redis
        # A connection held across the reset was terminated (WITH (FORCE)): fixtures must reconnect.
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
        held.close()
        # A client that stays connected to Redis keeps working.
        assert cache.get("greeting") == b"hello"
        cache.close()

        # Again, from the restored state: resets repeat.
        stack.reset()
        assert pg_state(url) == after_setup_pg
        assert redis_state(cache_url) == after_setup_redis

    def test_pytest_args_are_rendered_per_stack(self, make: MakeStack, tmp_path: Path) -> None:
        (tmp_path / "seed.py").write_text(textwrap.dedent(SEED))
        endpoints = make(spec_of(STACK), cwd=tmp_path).up()
        db = endpoints.services["db"]  # the container's own address and port, or the published ones
        expected = f"postgresql://postgres:postgres@{db['host']}:{db['port']}/app"
        assert endpoints.pytest_args == ("--dburi", expected)

    def test_reset_commands_run_after_the_strategies_with_the_stack_env(
        self, make: MakeStack, tmp_path: Path
    ) -> None:
        spec = spec_of(
            """
            services:
              cache: {image: orchestrate/redis:7, ports: ["6379"], healthcheck: {disable: true}}
            x-orchestrate:
              env: {REDIS_URL: "redis://{cache.host}:{cache.port}/0"}
              reset: {cache: redis}
              reset_commands:
                - python -c "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL']).incr('resets')"
                - echo "$REDIS_URL" >> resets.txt
            """
        )
        stack = make(spec, cwd=tmp_path)
        endpoints = stack.up()
        stack.snapshot()
        stack.reset()
        stack.reset()
        client = redis.Redis.from_url(endpoints.env["REDIS_URL"])
        # FLUSHALL came first each time, so the counter the command writes starts from zero.
        assert client.get("resets") == b"1"
        client.close()
        assert (tmp_path / "resets.txt").read_text().splitlines() == [endpoints.env["REDIS_URL"]] * 2


class TestFailures:
    def test_postgres_strategy_on_a_redis_service_names_it(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              cache: {image: orchestrate/redis:7, ports: ["6379"], healthcheck: {disable: true}}
            x-orchestrate:
              reset: {cache: postgres}
            """
        )
        stack = make(spec)
        stack.up()
        with pytest.raises(StackFailed) as caught:
            stack.snapshot()
        assert caught.value.service == "cache"
        message = str(caught.value)
        assert message.startswith("service 'cache': the postgres reset runs psql in the service's container")
        assert "is 'cache' a PostgreSQL server?" in message

    def test_redis_strategy_on_a_postgres_service_names_it(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              db:
                image: orchestrate/postgres:15
                ports: ["5432"]
                healthcheck: {test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"], interval: 250ms}
            x-orchestrate:
              reset: {db: redis}
            """
        )
        stack = make(spec)
        stack.up()
        with pytest.raises(StackFailed) as caught:
            stack.snapshot()
        assert caught.value.service == "db"
        assert "is 'db' a Redis server?" in str(caught.value)

    def test_failing_reset_command_names_it(self, make: MakeStack, tmp_path: Path) -> None:
        spec = spec_of(
            """
            services:
              cache: {image: orchestrate/redis:7, ports: ["6379"], healthcheck: {disable: true}}
            x-orchestrate:
              reset_commands: ["true", "echo reseeding; echo 'fixtures.json: no such file' >&2; exit 3"]
            """
        )
        stack = make(spec, cwd=tmp_path)
        stack.up()
        assert stack.resets is True
        assert stack.snapshot() >= 0
        with pytest.raises(StackFailed) as caught:
            stack.reset()
        message = str(caught.value)
        assert message.startswith("reset command \"echo reseeding; echo 'fixtures.json: no such file'")
        assert "failed with exit code 3" in message
        assert "fixtures.json: no such file" in caught.value.logs

    def test_reset_of_a_stopped_service_names_it(
        self, make: MakeStack, engine: docker.DockerClient, tmp_path: Path
    ) -> None:
        (tmp_path / "seed.py").write_text(textwrap.dedent(SEED))
        stack = make(spec_of(STACK), cwd=tmp_path)
        stack.up()
        stack.snapshot()
        (db,) = engine.containers.list(
            filters={"label": [f"{LABEL_RUN}={stack.run_id}", "orchestrate.service=db"]}
        )
        db.stop(timeout=5)
        with pytest.raises(StackFailed) as caught:
            stack.reset()
        assert caught.value.service == "db"
        assert str(caught.value).startswith("service 'db': ")

    def test_reset_before_snapshot_is_a_bug(self, make: MakeStack, tmp_path: Path) -> None:
        (tmp_path / "seed.py").write_text(textwrap.dedent(SEED))
        stack = make(spec_of(STACK), cwd=tmp_path)
        stack.up()
        with pytest.raises(RuntimeError):
            stack.reset()

    def test_null_stack_resets_nothing(self) -> None:
        stack = NullStack()
        assert stack.resets is False
        assert stack.snapshot() == 0.0 and stack.reset() == 0.0


# -- measured cost ---------------------------------------------------------------------------

WIDE_SCHEMA = """
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXECUTE format('CREATE TABLE t%s (id serial PRIMARY KEY, name text NOT NULL, payload text,
                    created timestamptz NOT NULL DEFAULT now())', i);
    EXECUTE format('CREATE INDEX t%s_name ON t%s (name)', i, i);
    EXECUTE format('INSERT INTO t%s (name, payload) SELECT ''n'' || g, repeat(md5(g::text), 2)
                    FROM generate_series(1, 230) g', i);
  END LOOP;
END $$;
"""


def _median_reset(stack: DockerStack, times: int = 5) -> float:
    stack.reset()  # the first one warms caches; not counted
    return statistics.median(stack.reset() for _ in range(times))


class TestMeasuredCost:
    @pytest.mark.slow
    def test_reset_of_100_tables(self, make: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
        spec = spec_of(
            """
            services:
              db:
                image: orchestrate/postgres:15
                ports: ["5432"]
                healthcheck: {test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"], interval: 250ms}
              cache: {image: orchestrate/redis:7, ports: ["6379"], healthcheck: {disable: true}}
            x-orchestrate:
              env:
                DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
                REDIS_URL: "redis://{cache.host}:{cache.port}/0"
              reset: {db: postgres}
            """
        )
        stack = make(spec)
        endpoints = stack.up()
        with psycopg.connect(endpoints.env["DATABASE_URL"], autocommit=True) as db:
            db.execute("CREATE DATABASE test")
        test_url = endpoints.env["DATABASE_URL"].rsplit("/", 1)[0] + "/test"
        with psycopg.connect(test_url, autocommit=True) as db:
            db.execute(WIDE_SCHEMA)
            tables = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
            size = db.execute(
                "SELECT pg_database_size('test') - pg_database_size('template0'), pg_database_size('test')"
            ).fetchone()
        assert tables == (100,) and size is not None
        snapshot_seconds = stack.snapshot()
        median = _median_reset(stack)
        redis_spec = spec_of(
            """
            services:
              cache: {image: orchestrate/redis:7, ports: ["6379"], healthcheck: {disable: true}}
            x-orchestrate:
              env: {REDIS_URL: "redis://{cache.host}:{cache.port}/0"}
              reset: {cache: redis}
            """
        )
        redis_stack = make(redis_spec)
        redis_url = redis_stack.up().env["REDIS_URL"]
        client = redis.Redis.from_url(redis_url)
        with client.pipeline() as pipe:
            for number in range(1000):
                pipe.set(f"key:{number}", "x" * 100)
            pipe.execute()
        client.close()
        redis_snapshot = redis_stack.snapshot()
        redis_median = _median_reset(redis_stack)
        with capsys.disabled():
            print(
                f"\nreset cost: postgres, 100 tables, {(size[0]) / 1e6:.1f} MB of data over an empty "
                f"database ({size[1] / 1e6:.1f} MB in all, 2 databases snapshotted): snapshot "
                f"{snapshot_seconds:.3f} s, reset median {median:.3f} s"
                f"\nreset cost: redis, 1000 keys of 100 bytes: snapshot {redis_snapshot:.3f} s, "
                f"reset median {redis_median:.3f} s"
            )

    def test_reset_of_the_example_database(self, make: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
        base = load_stack_file(EXAMPLE / "stack.yml")
        spec = StackSpec(
            path=base.path,
            services=base.services,
            env=base.env,
            setup=base.setup,
            ready_timeout=base.ready_timeout,
            reset={"db": "postgres", "cache": "redis"},
        )
        stack = make(spec, cwd=REPO)
        stack.up()
        snapshot_seconds = stack.snapshot()
        median = _median_reset(stack)
        with capsys.disabled():
            print(
                f"\nreset cost: the example stack (postgres + redis): snapshot {snapshot_seconds:.3f} s, "
                f"reset median {median:.3f} s"
            )
