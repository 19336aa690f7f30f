"""Counters, hashes and expiry in Redis; every test starts with FLUSHDB."""

from __future__ import annotations

import time

import pytest
import redis


@pytest.fixture
def fresh(cache: redis.Redis) -> redis.Redis:
    cache.flushdb()
    return cache


class TestCounters:
    def test_page_views_count_up(self, fresh: redis.Redis) -> None:
        for _ in range(25):
            fresh.incr("page:views")
        time.sleep(0.2)
        assert fresh.get("page:views") == "25"

    def test_incrby_and_decr(self, fresh: redis.Redis) -> None:
        fresh.incrby("stock:widget", 10)
        fresh.decr("stock:widget")
        fresh.decrby("stock:widget", 4)
        time.sleep(0.1)
        assert int(fresh.get("stock:widget") or 0) == 5

    def test_keyspace_holds_exactly_what_we_wrote(self, fresh: redis.Redis) -> None:
        fresh.mset({f"key:{n}": n for n in range(12)})
        time.sleep(0.3)
        assert fresh.dbsize() == 12
        assert sorted(fresh.keys("key:*")) == sorted(f"key:{n}" for n in range(12))


class TestHashesAndExpiry:
    def test_session_hash_round_trip(self, fresh: redis.Redis) -> None:
        fresh.hset("session:42", mapping={"user": "ada", "role": "admin"})
        fresh.hincrby("session:42", "hits", 3)
        time.sleep(0.15)
        assert fresh.hgetall("session:42") == {"user": "ada", "role": "admin", "hits": "3"}

    def test_keys_expire(self, fresh: redis.Redis) -> None:
        fresh.set("otp:ada", "123456", px=300)
        assert fresh.get("otp:ada") == "123456"
        time.sleep(0.5)
        assert fresh.get("otp:ada") is None

    def test_rate_limiter_window(self, fresh: redis.Redis) -> None:
        allowed = 0
        for _ in range(8):
            hits = fresh.incr("ratelimit:ada")
            if hits == 1:
                fresh.expire("ratelimit:ada", 2)
            allowed += hits <= 5
        time.sleep(0.1)
        assert allowed == 5
        assert 0 < fresh.ttl("ratelimit:ada") <= 2
