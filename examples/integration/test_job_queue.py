"""A Redis list used as a job queue, with a processed-jobs counter and a dead-letter list."""

from __future__ import annotations

import json
import time

import pytest
import redis

QUEUE = "jobs:pending"
DONE = "jobs:done"
DEAD = "jobs:dead"


@pytest.fixture
def queue(cache: redis.Redis) -> redis.Redis:
    cache.delete(QUEUE, DONE, DEAD, "jobs:processed")
    return cache


def work_off(client: redis.Redis) -> int:
    """Process every pending job (simulated work); returns how many were processed."""
    processed = 0
    while (popped := client.rpop(QUEUE)) is not None:
        raw = str(popped)
        job = json.loads(raw)
        time.sleep(0.02)
        if job.get("poison"):
            client.lpush(DEAD, raw)
        else:
            client.lpush(DONE, job["id"])
            client.incr("jobs:processed")
        processed += 1
    return processed


class TestJobQueue:
    def test_jobs_run_in_fifo_order(self, queue: redis.Redis) -> None:
        for n in range(10):
            queue.lpush(QUEUE, json.dumps({"id": n}))
        assert work_off(queue) == 10
        assert [int(item) for item in reversed(queue.lrange(DONE, 0, -1))] == list(range(10))

    def test_processed_counter_matches(self, queue: redis.Redis) -> None:
        for n in range(20):
            queue.lpush(QUEUE, json.dumps({"id": n}))
        work_off(queue)
        assert queue.get("jobs:processed") == "20"
        assert queue.llen(QUEUE) == 0

    def test_poison_jobs_go_to_the_dead_letter_list(self, queue: redis.Redis) -> None:
        for n in range(6):
            queue.lpush(QUEUE, json.dumps({"id": n, "poison": n % 3 == 0}))
        work_off(queue)
        assert queue.llen(DEAD) == 2
        assert queue.llen(DONE) == 4

    def test_blocking_pop_times_out_on_an_empty_queue(self, queue: redis.Redis) -> None:
        started = time.monotonic()
        assert queue.brpop([QUEUE], timeout=1) is None
        assert time.monotonic() - started >= 0.9
