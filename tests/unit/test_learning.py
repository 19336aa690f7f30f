"""LiveEstimate: unseen tests re-estimated from what their module's ended tests took."""

from __future__ import annotations

import pytest

from orchestrator.model import TestUnit, UnitEstimate
from orchestrator.planning.durations.learning import LiveEstimate, finish_in
from orchestrator.run.host_load import seconds_at_load_one


def _unit(unit_id: str, tests: int, seconds: float, unseen: int) -> UnitEstimate:
    node_ids = tuple(f"{unit_id}::test_{n}" for n in range(tests))
    return UnitEstimate(TestUnit(unit_id, node_ids), seconds, unseen_tests=unseen)


def test_guessed_tests_take_their_modules_mean_and_known_ones_keep_their_plan() -> None:
    live = LiveEstimate(
        [_unit("a.py::A", 4, 0.4, unseen=4), _unit("b.py::B", 2, 0.2, unseen=2), _unit("c.py::C", 2, 6.0, 0)]
    )
    assert live.remaining_seconds() == pytest.approx(6.6)  # the plan, before anything ended

    live.ended("a.py::A::test_0", 2.0)
    live.ended("a.py::A::test_1", 4.0)

    # a.py: 2 left at its mean of 3 s; b.py has no ended test: the mean of all (3 s); c.py planned.
    assert live.remaining_seconds() == pytest.approx(2 * 3.0 + 2 * 3.0 + 6.0)
    live.ended("c.py::C::test_0", 10.0)  # a known test ending slow changes only its own share
    assert live.remaining_seconds() == pytest.approx(2 * 3.0 + 2 * (16.0 / 3) + 3.0)
    assert (live.tests_ended, live.tests) == (3, 8)


def test_a_test_ends_once_and_unknown_ids_are_ignored() -> None:
    live = LiveEstimate([_unit("a.py::A", 2, 1.0, unseen=0)])
    live.ended("a.py::A::test_0", 5.0)
    live.ended("a.py::A::test_0", 5.0)
    live.ended("elsewhere.py::test_x", 5.0)
    assert live.tests_ended == 1
    assert live.remaining_seconds() == pytest.approx(0.5)


def test_the_eta_is_the_remaining_work_at_the_pace_measured_so_far() -> None:
    live = LiveEstimate([_unit("a.py::A", 4, 4.0, unseen=0), _unit("b.py::B", 4, 4.0, unseen=0)])
    # Nothing ended: the plan as it is, over the agents.
    assert live.eta([0.0, 0.0], 0.0, []) == pytest.approx(4.0)
    # One agent ready, the other in 2 s: 2 s alone, then 3 s each.
    assert live.eta([0.0, 2.0], 0.0, []) == pytest.approx(5.0)
    live.ended("a.py::A::test_0", 1.0)
    live.ended("b.py::B::test_0", 1.0)
    # Two agents spent 3 s for 2 s of planned tests (load, resets): everything left is 1.5 x slower.
    assert live.eta([0.0, 0.0], 3.0, []) == pytest.approx(1.5 * 6.0 / 2)
    # One agent still holds all of A's three tests left and must run them itself.
    held = [[f"a.py::A::test_{n}" for n in range(4)], []]
    assert live.eta([0.0] * 4, 3.0, held) == pytest.approx(1.5 * 3.0)
    # A test still running 2 s into its 1 s estimate already says the pace is slower; one 0.5 s
    # into it counts as on plan so far.
    assert live.eta([0.0, 0.0], 3.0, [], [("a.py::A::test_1", 2.0)]) == pytest.approx(5 / 3 * 6.0 / 2)
    assert live.eta([0.0, 0.0], 3.0, [], [("a.py::A::test_1", 0.5)]) == pytest.approx(3.5 / 2.5 * 6.0 / 2)
    # Work the estimates do not hold (resets to come) is shared like the rest.
    assert live.eta([0.0, 0.0], 3.0, [], overhead=2.0) == pytest.approx((1.5 * 6.0 + 2.0) / 2)


def test_work_is_shared_by_agents_as_they_join() -> None:
    assert finish_in(6.0, [0.0, 0.0, 0.0]) == pytest.approx(2.0)
    assert finish_in(6.0, [0.0, 10.0]) == pytest.approx(6.0)  # done before the second joins
    assert finish_in(6.0, [0.0, 2.0]) == pytest.approx(4.0)  # 2 s alone, then 2 s for both
    assert finish_in(1.0, []) == float("inf")


@pytest.mark.parametrize(
    ("duration", "cpu", "load", "expected"),
    [
        (2.0, 1.0, 2.0, 1.0),  # all CPU, two agents a core: it took twice its time alone
        (1.0, 0.0, 2.0, 1.0),  # waiting on a service or sleeping: not stretched
        (1.5, 0.5, 2.0, 1.0),  # half a second of CPU stretched by one more agent per core
        (1.0, 0.5, 1.0, 1.0),  # alone on its core: as measured
        (1.0, 3.0, 2.0, 0.5),  # threads on several cores: never below duration / load
    ],
)
def test_a_duration_is_stored_as_it_would_be_alone(
    duration: float, cpu: float, load: float, expected: float
) -> None:
    assert seconds_at_load_one(duration, cpu, load) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("duration", "cpu", "wait", "services", "expected"),
    [
        (2.0, 1.0, 1.0, 0.0, 1.0),  # computing all along, half of it waiting for a CPU
        (1.0, 0.0, 0.0, 0.0, 1.0),  # sleeping: nothing waited, nothing taken out
        (1.0, 0.5, 0.0, 0.0, 1.0),  # alone on its core: as measured, whatever the agents per core
        # 0.2 s of its own CPU stretched to 0.4 s; its database's 0.2 s of CPU stretched alike.
        (1.0, 0.4, 0.2, 0.2, 0.6),
        # A database far busier than the worker: never more than if the whole test was stretched
        # as the worker's own CPU was (by 1.5x here: at least 2/3 of it stays).
        (1.0, 1.1, 0.05, 1.0, 1.0 - 0.05 / 0.15),
    ],
)
def test_a_measured_wait_for_a_cpu_is_what_the_load_cost(
    duration: float, cpu: float, wait: float, services: float, expected: float
) -> None:
    # The agents per core (4 here) only count where no wait was measured.
    assert seconds_at_load_one(duration, cpu, 4.0, wait, services) == pytest.approx(expected)


def test_without_a_measured_wait_the_load_is_inferred_from_the_agents_per_core() -> None:
    assert seconds_at_load_one(2.0, 1.0, 2.0, -1.0) == pytest.approx(1.0)
    assert seconds_at_load_one(2.0, 1.0, 2.0, -1.0, 0.5) == pytest.approx(1.0)
