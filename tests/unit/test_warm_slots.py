"""Warm stacks without Docker: a slot's lock, its record, and the stack files `up` refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.stack.protocol import StackEndpoints
from agents.stack.warm import WarmSlot, _read_record, _write_record, recorded
from orchestrator.protocol.errors import UsageError
from orchestrator.run.warm_stacks import WarmStacks, borrow_fields, check_resettable


def test_a_slot_is_borrowed_by_one_holder_at_a_time_and_freed_when_it_closes(tmp_path: Path) -> None:
    slot = WarmSlot("warm-x", 0, "h:1", tmp_path / "slots")
    first = slot.lock()
    assert first is not None
    assert slot.lock() is None  # another run holds it: that agent brings up a stack of its own
    assert WarmSlot("warm-x", 1, "h:1", tmp_path / "slots").lock() is not None  # another slot
    os.close(first)  # as when the holder's process dies
    again = slot.lock()
    assert again is not None
    os.close(again)


ENDPOINTS = StackEndpoints(
    env={"DATABASE_URL": "postgresql://172.18.0.2:5432/test"},
    services={"db": {"host": "172.18.0.2", "port": 5432, "ports": {"5432": 5432}}},
    pytest_args=("--db", "172.18.0.2"),
)


def test_a_record_round_trips_and_an_unreadable_one_counts_as_none(tmp_path: Path) -> None:
    slot = WarmSlot("warm-x", 0, "h:1", tmp_path)
    snapshots = {"db": b'[["postgres", "postgres", "snap"]]', "cache": b"\x00\xff"}
    _write_record(slot.record_path, "key1", snapshots, ENDPOINTS, True)
    record = _read_record(slot.record_path)
    assert record is not None and record[:2] == ("key1", snapshots)
    # What a run's agent reads before anything else, to start its worker on them at once.
    early = recorded(slot)
    assert early is not None and early.resets
    assert (early.endpoints.env, early.endpoints.services, early.endpoints.pytest_args) == (
        ENDPOINTS.env,
        ENDPOINTS.services,
        ENDPOINTS.pytest_args,
    )
    slot.record_path.write_text("{half")
    assert _read_record(slot.record_path) is None
    assert recorded(slot) is None
    assert _read_record(tmp_path / "missing.json") is None


def test_a_record_kept_before_endpoints_were_starts_no_worker_early(tmp_path: Path) -> None:
    slot = WarmSlot("warm-x", 0, "h:1", tmp_path)
    slot.record_path.write_text('{"key": "key1", "snapshots": {}}')
    assert _read_record(slot.record_path) == ("key1", {}, None)
    assert recorded(slot) is None


def test_only_agents_below_the_slot_count_borrow() -> None:
    stacks = WarmStacks(1, "h:1", "warm-x", "/s.yml", 2, "/d")
    assert borrow_fields(stacks, 1) == {"warm_id": "warm-x", "warm_owner": "h:1", "warm_dir": "/d"}
    assert borrow_fields(stacks, 2) == {}


STACK = """
services:
  db: {image: postgres:16}
  cache: {image: redis:7, ports: ["6379"]}
x-orchestrate:
  reset: {db: postgres}
"""


def test_up_refuses_a_service_no_reset_covers(tmp_path: Path) -> None:
    (tmp_path / "stack.yml").write_text(STACK)
    with pytest.raises(UsageError, match="names no strategy for cache"):
        check_resettable(str(tmp_path / "stack.yml"))
    (tmp_path / "commands.yml").write_text(STACK + '  reset_commands: ["python reseed.py"]\n')
    check_resettable(str(tmp_path / "commands.yml"))  # the commands take care of the rest


def test_the_summary_says_what_the_warm_stacks_did() -> None:
    from orchestrator.model import AgentStatistics
    from orchestrator.report.sections import warm_stacks_line

    stale = "replaced: stale: its cache key changed (stack file, images or setup inputs)"
    agents = [
        AgentStatistics(0, stack_warm="borrowed"),
        AgentStatistics(1, stack_warm=stale),
        AgentStatistics(2, stack_warm="busy"),
        AgentStatistics(3),
    ]
    assert warm_stacks_line(agents) == (
        "warm stacks: 1 borrowed (reset to their snapshot), 1 replaced (stale: its cache key changed "
        "(stack file, images or setup inputs)), 1 held by another run (those agents brought up their own)"
    )
    assert warm_stacks_line([AgentStatistics(0)]) == ""
