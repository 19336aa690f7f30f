"""Heavier reporting queries: the long tail of the suite's durations (one to four seconds each).

One class per report, as a real suite grows them: each is a unit the planner can place alone.
No class cleans up before or after itself: each starts from the database as migrate.py left it
(empty tables, fresh sequences), restored by the stack's `x-orchestrate.reset` before every unit
(or by conftest.py's `fresh_state` when nothing resets the stack).
"""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg


class TestAuditReports:
    def test_bulk_audit_import(self, db: psycopg.Connection) -> None:
        with db.cursor() as cursor, cursor.copy("COPY audit_log (subject, detail) FROM STDIN") as copy:
            for n in range(20_000):
                copy.write_row((f"user{n % 250}", f"login #{n}"))
        time.sleep(1.5)
        assert db.execute("SELECT count(*), max(id) FROM audit_log").fetchone() == (20_000, 20_000)


class TestActivityReport:
    def test_activity_per_user(self, db: psycopg.Connection) -> None:
        db.execute(
            "INSERT INTO audit_log (subject, detail) "
            "SELECT 'user' || (n % 40), 'event ' || n FROM generate_series(1, 40000) AS n"
        )
        time.sleep(2.5)
        busiest = db.execute(
            "SELECT subject, count(*) FROM audit_log GROUP BY subject ORDER BY count(*) DESC, subject LIMIT 1"
        ).fetchone()
        assert busiest == ("user0", 1000)


class TestRevenueRollup:
    def test_monthly_revenue_rollup(self, db: psycopg.Connection) -> None:
        db.execute("INSERT INTO accounts (owner, balance) VALUES ('shop', 0)")
        db.execute(
            "INSERT INTO orders (account_id, amount, status, created_at) "
            "SELECT 1, 10.00, 'paid', timestamptz '2024-01-01' + (n || ' hours')::interval "
            "FROM generate_series(0, 24 * 90 - 1) AS n"
        )
        time.sleep(4.0)
        months = db.execute(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM'), sum(amount) FROM orders "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert months == [
            ("2024-01", Decimal("7440.00")),
            ("2024-02", Decimal("6960.00")),
            ("2024-03", Decimal("7200.00")),
        ]


class TestTableStatistics:
    def test_vacuum_analyze_stats(self, db: psycopg.Connection) -> None:
        db.execute("INSERT INTO audit_log (subject, detail) SELECT 's', 'd' FROM generate_series(1, 5000)")
        db.execute("ANALYZE audit_log")
        time.sleep(1.5)
        row = db.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'audit_log'").fetchone()
        assert row == (5000,)
