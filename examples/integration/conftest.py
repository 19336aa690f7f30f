"""Fixtures of the example integration suite: connections to this agent's Postgres and Redis.

The suite needs a running stack: under `orchestrate run ... --stack examples/integration/stack.yml`
every agent exports DATABASE_URL and REDIS_URL of its own stack. Without them the tests FAIL (as
errors naming the missing variable) rather than skip: a skipped integration suite reports green,
and a misconfigured CI job must not.

The tests deliberately use fixed table names, sequences, FLUSHDB and counters, as real suites do,
so they break when two processes share one stack. The claim below turns that sharing into a
deterministic failure.

Every class (a unit) starts from the state migrate.py left: stack.yml's `x-orchestrate.reset`
restores both stores before every unit, so no class cleans up after another. The reset drops and
recreates the database, terminating open connections, so the Postgres connection is held per
class, never per session (orchestrate's rule for suites that reset). Redis connections survive a
reset. Without a reset (plain pytest), `fresh_state` does the same per class, less thoroughly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

CLAIM_KEY = "orchestrate:example:claim"
CLAIM_REDIS_DB = 15


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: this suite needs a running stack; run it with "
            "`orchestrate run examples/integration --stack examples/integration/stack.yml`, "
            "or export DATABASE_URL and REDIS_URL of a stack you started yourself",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def database_url() -> str:
    return _required_env("DATABASE_URL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _required_env("REDIS_URL")


@pytest.fixture(scope="session")
def agent_identity(orchestrate_agent: str | None) -> str:
    """Who runs these tests: the orchestrate agent, else the xdist worker, else this process."""
    if orchestrate_agent:
        return f"agent:{os.environ.get('ORCHESTRATE_RUN_ID', '')}:{orchestrate_agent}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"xdist:{worker}" if worker else "pytest:serial"


@pytest.fixture(scope="class")
def db_connection(database_url: str) -> Iterator[psycopg.Connection]:
    """Per class, not per session: the reset before each unit terminates open connections."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as connection:
        yield connection


@pytest.fixture
def db(db_connection: psycopg.Connection) -> psycopg.Connection:
    """The session's autocommit connection; use `with db.transaction():` for a transaction."""
    return db_connection


@pytest.fixture(scope="session")
def redis_session(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def cache(redis_session: redis.Redis) -> redis.Redis:
    return redis_session


@pytest.fixture(scope="session")
def claim_redis(redis_url: str) -> Iterator[redis.Redis]:
    """Redis database 15, where the claim lives; the tests' FLUSHDB (database 0) keeps it."""
    # The database in the URL's path wins over a `db=` argument, so replace the path.
    claim_url = urlsplit(redis_url)._replace(path=f"/{CLAIM_REDIS_DB}").geturl()
    client = redis.Redis.from_url(claim_url, decode_responses=True, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="class", autouse=True)
def stack_claim(agent_identity: str, db_connection: psycopg.Connection, claim_redis: redis.Redis) -> str:
    """Claim this stack for this process, before each class; fail if another one holds it.

    Per class, because the reset before each unit takes the stack back to before any claim.
    Under orchestrate every agent has its own stack, so the claim always succeeds (a restarted
    worker of the same agent finds its own claim). When two processes share one stack (plain
    `pytest -n 2` against one DATABASE_URL, where nothing resets), whichever claims second fails
    on every test, however the tests were interleaved.
    """
    db_connection.execute(
        "INSERT INTO claims (slot, agent) VALUES (1, %s) ON CONFLICT (slot) DO NOTHING", (agent_identity,)
    )
    row = db_connection.execute("SELECT agent FROM claims WHERE slot = 1").fetchone()
    db_owner = row[0] if row else None
    claim_redis.setnx(CLAIM_KEY, agent_identity)
    cache_owner = claim_redis.get(CLAIM_KEY)
    if db_owner != agent_identity or cache_owner != agent_identity:
        pytest.fail(
            f"this stack is shared: {agent_identity} found it claimed by "
            f"{db_owner!r} (Postgres) / {cache_owner!r} (Redis); each agent needs its own stack",
            pytrace=False,
        )
    return agent_identity


@pytest.fixture(scope="class", autouse=True)
def fresh_state(stack_claim: str, db_connection: psycopg.Connection, redis_session: redis.Redis) -> None:
    """Start the class from the state migrate.py left, when orchestrate did not already do it.

    An agent whose stack resets (ORCHESTRATE_RESET=1) restored its snapshot before this unit, and
    that is exact: every table, sequence and key as after setup. Anywhere else (plain pytest, or a
    stack file without `reset`) this empties the tables and Redis database 0 instead. After the
    claim, so a process that does not own the stack changes nothing in it.
    """
    if os.environ.get("ORCHESTRATE_RESET") == "1":
        return
    db_connection.execute("TRUNCATE accounts, orders, products, audit_log RESTART IDENTITY CASCADE")
    db_connection.execute("ALTER SEQUENCE order_number_seq RESTART")
    redis_session.flushdb()
