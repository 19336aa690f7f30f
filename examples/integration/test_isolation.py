"""Proves, deterministically, that this process has the stack to itself.

The session fixture `stack_claim` (conftest.py) claimed the stack before the first test; these
tests check the claim from both stores and that the setup command ran before any test.
"""

from __future__ import annotations

import time

import psycopg
import redis


class TestStackIsolation:
    def test_postgres_claim_is_ours_alone(self, db: psycopg.Connection, stack_claim: str) -> None:
        rows = db.execute("SELECT agent FROM claims").fetchall()
        assert rows == [(stack_claim,)]

    def test_redis_claim_is_ours_alone(self, claim_redis: redis.Redis, stack_claim: str) -> None:
        assert [claim_redis.get(key) for key in claim_redis.keys("*")] == [stack_claim]

    def test_no_other_client_is_connected_to_postgres(self, db: psycopg.Connection) -> None:
        time.sleep(0.1)
        others = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchone()
        assert others == (0,)

    def test_setup_command_migrated_the_schema_first(self, db: psycopg.Connection) -> None:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [1, 2]
