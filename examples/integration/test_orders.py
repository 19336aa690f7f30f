"""Orders with numbers from a sequence; each test resets the tables and the sequence first."""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg
import pytest


@pytest.fixture
def shop(db: psycopg.Connection) -> tuple[psycopg.Connection, int]:
    db.execute("TRUNCATE accounts, orders RESTART IDENTITY CASCADE")
    db.execute("ALTER SEQUENCE order_number_seq RESTART WITH 1000")
    row = db.execute("INSERT INTO accounts (owner, balance) VALUES ('shop', 0) RETURNING id").fetchone()
    assert row is not None
    return db, int(row[0])


def place_order(db: psycopg.Connection, account: int, amount: str, status: str = "new") -> int:
    row = db.execute(
        "INSERT INTO orders (account_id, amount, status) VALUES (%s, %s, %s) RETURNING number",
        (account, Decimal(amount), status),
    ).fetchone()
    assert row is not None
    return int(row[0])


class TestOrderNumbers:
    def test_numbers_come_from_the_sequence_in_order(self, shop: tuple[psycopg.Connection, int]) -> None:
        db, account = shop
        numbers = [place_order(db, account, "9.99") for _ in range(5)]
        time.sleep(0.25)
        assert numbers == [1000, 1001, 1002, 1003, 1004]

    def test_a_failed_insert_still_consumes_a_number(self, shop: tuple[psycopg.Connection, int]) -> None:
        db, account = shop
        assert place_order(db, account, "1.00") == 1000
        with pytest.raises(psycopg.errors.CheckViolation):
            place_order(db, account, "-1.00")
        time.sleep(0.15)
        assert place_order(db, account, "2.00") == 1002

    def test_currval_is_per_session(self, shop: tuple[psycopg.Connection, int], database_url: str) -> None:
        db, account = shop
        place_order(db, account, "3.00")
        with (
            psycopg.connect(database_url, autocommit=True) as other,
            pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState),
        ):
            other.execute("SELECT currval('order_number_seq')")
        assert db.execute("SELECT currval('order_number_seq')").fetchone() == (1000,)


class TestOrderWorkflow:
    def test_status_moves_forward(self, shop: tuple[psycopg.Connection, int]) -> None:
        db, account = shop
        number = place_order(db, account, "20.00")
        for status in ("paid", "shipped"):
            db.execute("UPDATE orders SET status = %s WHERE number = %s", (status, number))
            time.sleep(0.1)
        assert db.execute("SELECT status FROM orders WHERE number = %s", (number,)).fetchone() == ("shipped",)

    def test_unknown_status_is_refused(self, shop: tuple[psycopg.Connection, int]) -> None:
        db, account = shop
        with pytest.raises(psycopg.errors.CheckViolation):
            place_order(db, account, "5.00", status="lost")

    def test_revenue_report(self, shop: tuple[psycopg.Connection, int]) -> None:
        db, account = shop
        for amount, status in [("10.00", "paid"), ("15.50", "paid"), ("99.00", "new"), ("4.50", "shipped")]:
            place_order(db, account, amount, status)
        time.sleep(0.4)
        rows = db.execute("SELECT status, sum(amount) FROM orders GROUP BY status").fetchall()
        assert dict(rows) == {"paid": Decimal("25.50"), "new": Decimal("99.00"), "shipped": Decimal("4.50")}

    def test_deleting_an_account_deletes_its_orders(self, shop: tuple[psycopg.Connection, int]) -> None:
        db, account = shop
        place_order(db, account, "1.00")
        place_order(db, account, "2.00")
        db.execute("DELETE FROM accounts WHERE id = %s", (account,))
        time.sleep(0.1)
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
