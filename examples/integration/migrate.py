"""Apply the example application's schema to DATABASE_URL; the stack file's setup command.

Run once per agent by orchestrate (x-orchestrate.setup in stack.yml) after Postgres is ready and
before any test. Idempotent, so it can also be run by hand against a stack brought up manually.
"""

from __future__ import annotations

import os
import sys
from typing import LiteralString

import psycopg

MIGRATIONS: dict[int, LiteralString] = {
    1: """
        -- One row at most: the agent whose tests own this database (see test_isolation.py).
        CREATE TABLE claims (
            slot       int PRIMARY KEY DEFAULT 1 CHECK (slot = 1),
            agent      text NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE accounts (
            id      serial PRIMARY KEY,
            owner   text NOT NULL UNIQUE,
            balance numeric(12, 2) NOT NULL CHECK (balance >= 0)
        );
        CREATE SEQUENCE order_number_seq;
        CREATE TABLE orders (
            id         serial PRIMARY KEY,
            number     bigint NOT NULL UNIQUE DEFAULT nextval('order_number_seq'),
            account_id int NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            amount     numeric(12, 2) NOT NULL CHECK (amount > 0),
            status     text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid', 'shipped')),
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE products (
            id    int PRIMARY KEY,
            name  text NOT NULL,
            price numeric(10, 2) NOT NULL
        );
    """,
    2: """
        CREATE INDEX orders_account_status ON orders (account_id, status);
        CREATE TABLE audit_log (
            id      bigserial PRIMARY KEY,
            subject text NOT NULL,
            detail  text NOT NULL
        );
    """,
}


def migrate(database_url: str) -> list[int]:
    """Apply the migrations not yet recorded in schema_migrations; returns the versions applied."""
    applied: list[int] = []
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in sorted(MIGRATIONS.items()):
            with connection.transaction():
                # The advisory lock serialises concurrent runs against one database.
                connection.execute("SELECT pg_advisory_xact_lock(4242)")
                done = connection.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                ).fetchone()
                if done:
                    continue
                connection.execute(sql)
                connection.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
    return applied


def main() -> int:
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("migrate.py: DATABASE_URL is not set", file=sys.stderr)
        return 2
    applied = migrate(url)
    print(f"migrate.py: applied {applied or 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
