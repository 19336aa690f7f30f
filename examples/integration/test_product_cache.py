"""Cache-aside reads: products live in Postgres, Redis caches them; both stores reset per test."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import psycopg
import pytest
import redis


class ProductCatalog:
    """The application code under test: read-through cache with invalidation on write."""

    def __init__(self, db: psycopg.Connection, cache: redis.Redis) -> None:
        self.db = db
        self.cache = cache

    def get(self, product_id: int) -> dict[str, str] | None:
        cached = self.cache.get(f"product:{product_id}")
        if cached is not None:
            self.cache.incr("stats:hits")
            return dict(json.loads(cached))
        self.cache.incr("stats:misses")
        time.sleep(0.05)  # the slow query the cache exists for
        row = self.db.execute("SELECT name, price FROM products WHERE id = %s", (product_id,)).fetchone()
        if row is None:
            return None
        product = {"name": row[0], "price": str(row[1])}
        self.cache.set(f"product:{product_id}", json.dumps(product), ex=60)
        return product

    def set_price(self, product_id: int, price: str) -> None:
        self.db.execute("UPDATE products SET price = %s WHERE id = %s", (Decimal(price), product_id))
        self.cache.delete(f"product:{product_id}")


@pytest.fixture
def catalog(db: psycopg.Connection, cache: redis.Redis) -> ProductCatalog:
    db.execute("TRUNCATE products")
    db.execute(
        "INSERT INTO products (id, name, price) "
        "VALUES (1, 'widget', 2.50), (2, 'gadget', 10.00), (3, 'doohickey', 0.99)"
    )
    cache.flushdb()
    return ProductCatalog(db, cache)


class TestProductCache:
    def test_first_read_misses_then_hits(self, catalog: ProductCatalog) -> None:
        assert catalog.get(1) == {"name": "widget", "price": "2.50"}
        assert catalog.get(1) == {"name": "widget", "price": "2.50"}
        assert catalog.cache.mget("stats:hits", "stats:misses") == ["1", "1"]

    def test_price_change_invalidates(self, catalog: ProductCatalog) -> None:
        catalog.get(2)
        catalog.set_price(2, "12.00")
        time.sleep(0.2)
        assert catalog.get(2) == {"name": "gadget", "price": "12.00"}
        assert catalog.cache.get("stats:misses") == "2"

    def test_missing_product_is_not_cached(self, catalog: ProductCatalog) -> None:
        assert catalog.get(99) is None
        assert catalog.cache.exists("product:99") == 0

    def test_warm_cache_serves_everything(self, catalog: ProductCatalog) -> None:
        for _ in range(3):
            for product_id in (1, 2, 3):
                catalog.get(product_id)
        time.sleep(0.3)
        assert catalog.cache.mget("stats:hits", "stats:misses") == ["6", "3"]
        assert catalog.cache.dbsize() == 5  # three products and two counters
