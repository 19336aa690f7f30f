"""Accounts and money transfers in Postgres; every test starts from an emptied `accounts` table."""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg
import pytest


def open_account(db: psycopg.Connection, owner: str, balance: str) -> int:
    row = db.execute(
        "INSERT INTO accounts (owner, balance) VALUES (%s, %s) RETURNING id", (owner, Decimal(balance))
    ).fetchone()
    assert row is not None
    return int(row[0])


def transfer(db: psycopg.Connection, source: int, target: int, amount: str) -> None:
    with db.transaction():
        db.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (Decimal(amount), source))
        db.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (Decimal(amount), target))


def balances(db: psycopg.Connection) -> dict[str, Decimal]:
    return {owner: balance for owner, balance in db.execute("SELECT owner, balance FROM accounts")}


@pytest.fixture
def empty_accounts(db: psycopg.Connection) -> psycopg.Connection:
    db.execute("TRUNCATE accounts, orders RESTART IDENTITY CASCADE")
    return db


class TestAccounts:
    def test_ids_start_at_one(self, empty_accounts: psycopg.Connection) -> None:
        ids = [open_account(empty_accounts, owner, "10.00") for owner in ("ada", "bob", "cy")]
        time.sleep(0.2)
        assert ids == [1, 2, 3]

    def test_owner_is_unique(self, empty_accounts: psycopg.Connection) -> None:
        open_account(empty_accounts, "ada", "1.00")
        with pytest.raises(psycopg.errors.UniqueViolation):
            open_account(empty_accounts, "ada", "2.00")
        time.sleep(0.1)
        assert empty_accounts.execute("SELECT count(*) FROM accounts").fetchone() == (1,)

    def test_transfer_moves_money(self, empty_accounts: psycopg.Connection) -> None:
        ada = open_account(empty_accounts, "ada", "100.00")
        bob = open_account(empty_accounts, "bob", "5.00")
        transfer(empty_accounts, ada, bob, "30.50")
        time.sleep(0.3)
        assert balances(empty_accounts) == {"ada": Decimal("69.50"), "bob": Decimal("35.50")}

    def test_overdraft_rolls_back_the_whole_transfer(self, empty_accounts: psycopg.Connection) -> None:
        ada = open_account(empty_accounts, "ada", "10.00")
        bob = open_account(empty_accounts, "bob", "0.00")
        with pytest.raises(psycopg.errors.CheckViolation):
            transfer(empty_accounts, ada, bob, "10.01")
        time.sleep(0.2)
        assert balances(empty_accounts) == {"ada": Decimal("10.00"), "bob": Decimal("0.00")}

    def test_many_transfers_keep_the_total(self, empty_accounts: psycopg.Connection) -> None:
        ids = [open_account(empty_accounts, f"user{n}", "50.00") for n in range(10)]
        for step in range(60):
            transfer(empty_accounts, ids[step % 10], ids[(step * 7 + 3) % 10], "1.25")
            time.sleep(0.01)
        total = empty_accounts.execute("SELECT sum(balance), count(*) FROM accounts").fetchone()
        assert total == (Decimal("500.00"), 10)
