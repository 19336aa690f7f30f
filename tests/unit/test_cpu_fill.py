"""The dynamic scheduler fills one machine's CPU: among comparably long queued units, an agent
takes the one whose share of a core brings the other agents' running units closest to the
cores (scheduling/dynamic.py), and the estimates say that share (durations/estimate.py)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from orchestrator.model import Assignment, Plan, Shard, TestUnit, UnitEstimate
from orchestrator.planning.durations.estimate import estimate_units
from orchestrator.planning.durations.store import DurationStore, TestHistory
from orchestrator.planning.scheduling import DynamicScheduler, make_scheduler


def _plan(shards: Sequence[Sequence[tuple[float, float]]]) -> Plan:
    """Unit "a{agent}u{i}" of (seconds, busy) each, one test each."""
    return Plan(
        tuple(
            Shard(
                agent_id,
                tuple(
                    UnitEstimate(TestUnit(f"a{agent_id}u{i}", (f"a{agent_id}u{i}.py::t",)), seconds, 0, busy)
                    for i, (seconds, busy) in enumerate(units)
                ),
            )
            for agent_id, units in enumerate(shards)
        )
    )


def _ids(assignments: Sequence[Assignment]) -> list[tuple[int, str]]:
    return [(a.agent_id, a.unit.unit_id) for a in assignments]


SLEEPS, COMPUTES, COMPUTES_LESS = (1.1, 0.02), (0.9, 1.0), (0.8, 1.0)
# Enough work behind, so that nothing is near the end of the run.
REST = [(0.7, 1.0)] * 3


def _start(scheduler: DynamicScheduler, agents: int) -> list[tuple[int, str]]:
    for agent_id in range(agents):
        scheduler.add_agent(agent_id)
    return _ids(scheduler.schedule())


def test_four_agents_on_two_cores_begin_two_computing_and_two_waiting() -> None:
    plan = _plan([[SLEEPS, COMPUTES, COMPUTES_LESS, *REST]] * 4)

    # In plan order (longest first), all four would begin waiting on a blocking call at once.
    assert _start(DynamicScheduler(plan), 4) == [(0, "a0u0"), (1, "a1u0"), (2, "a2u0"), (3, "a3u0")]
    filled = DynamicScheduler(plan, cores=2)
    assert _start(filled, 4) == [(0, "a0u1"), (1, "a1u1"), (2, "a2u0"), (3, "a3u0")]

    # Agent 0's computing unit ends while two wait and one computes: it computes again.
    filled.unit_finished(0, "a0u1")
    filled.request_work(0)
    assert _ids(filled.schedule()) == [(0, "a0u2")]
    # Agent 2 stops waiting while two compute: the cores are full, it takes the waiting unit
    # left (its own queue is a2u1 and a2u2: both compute, so the first).
    filled.unit_finished(2, "a2u0")
    filled.request_work(2)
    assert _ids(filled.schedule()) == [(2, "a2u1")]


def test_a_unit_much_shorter_than_the_first_is_not_taken_before_it() -> None:
    # LPT's order protects the end of the run: a unit under half the first's length waits.
    plan = _plan([[(2.0, 0.02), COMPUTES]] * 2)
    assert _start(DynamicScheduler(plan, cores=2), 2) == [(0, "a0u0"), (1, "a1u0")]


def test_near_the_end_the_longest_unit_is_taken_first() -> None:
    # 6 s queued for 4 agents: less than twice the first unit's 1.1 s each, so LPT's order.
    plan = _plan([[SLEEPS, COMPUTES]] * 3 + [[COMPUTES, (0.3, 1.0)]])
    assert _start(DynamicScheduler(plan, cores=2), 4) == [(0, "a0u0"), (1, "a1u0"), (2, "a2u0"), (3, "a3u0")]


def test_units_without_recorded_cpu_keep_the_plan_order() -> None:
    plan = _plan([[(1.1, 1.0), (0.9, 1.0)]] * 4)
    assert _start(make_scheduler("dynamic", plan, cores=2), 4) == [(a, f"a{a}u0") for a in range(4)]


def test_a_thief_fills_the_cpu_from_its_victims_queue_too() -> None:
    # Agent 0 has nothing planned; agent 1 holds the queue it steals from.
    plan = _plan([[], [(1.2, 1.0), (1.0, 1.0), (0.9, 0.02), *REST, (0.6, 1.0)]])
    scheduler = DynamicScheduler(plan, cores=1)
    scheduler.add_agent(1)
    assert _ids(scheduler.schedule()) == [(1, "a1u0")]
    scheduler.add_agent(0)
    # One core, kept busy by agent 1: the thief takes the waiting unit, not the longer computing
    # one that plan order would give it.
    assert _ids(scheduler.schedule()) == [(0, "a1u2")]


def test_a_units_busy_share_is_its_recorded_cpu_over_its_seconds() -> None:
    store = DurationStore({f"m.py::t{i}": TestHistory(1.0, 1) for i in range(4)})
    store.update({}, cpu={"m.py::t0": 0.1, "m.py::t1": 0.3, "m.py::t2": 2.0})
    units = [
        TestUnit("waits", ("m.py::t0", "m.py::t1")),
        TestUnit("services", ("m.py::t2",)),  # a database computing beside it: at most a core
        TestUnit("unknown", ("m.py::t3", "m.py::new")),
    ]
    waits, services, unknown = estimate_units(units, store)
    assert waits.busy == pytest.approx(0.2)
    assert services.busy == 1.0
    assert unknown.busy == 1.0


def test_a_plan_with_test_groups_keeps_its_start_order() -> None:
    def grouped(agent_id: int, i: int, seconds: float, busy: float) -> UnitEstimate:
        unit = TestUnit(f"a{agent_id}u{i}", (f"a{agent_id}u{i}.py::t",), groups=(("db", 4),))
        return UnitEstimate(unit, seconds, 0, busy)

    shards = [[SLEEPS, COMPUTES, COMPUTES_LESS, *REST]] * 4
    plan = Plan(
        tuple(
            Shard(a, tuple(grouped(a, i, s, b) for i, (s, b) in enumerate(units)))
            for a, units in enumerate(shards)
        )
    )
    assert _start(DynamicScheduler(plan, cores=2), 4) == [(a, f"a{a}u0") for a in range(4)]
