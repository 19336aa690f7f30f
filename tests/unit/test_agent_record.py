"""The session's record of an agent: the units it holds, found by node id."""

from __future__ import annotations

from orchestrator.model import TestUnit
from orchestrator.run.agent_record import AgentRecord


def test_the_held_unit_of_a_test_until_it_is_dropped() -> None:
    record = AgentRecord(0, 0.0)
    big = TestUnit("test_big.py", tuple(f"test_big.py::test_{i}" for i in range(50_000)))
    record.hold(big)
    record.hold(TestUnit("test_small.py::TestS", ("test_small.py::TestS::test_a",)))

    assert record.unit_holding("test_big.py::test_49999") == "test_big.py"
    assert record.unit_holding("test_small.py::TestS::test_a") == "test_small.py::TestS"
    assert record.drop("test_big.py") is big
    assert record.unit_holding("test_big.py::test_0") is None
    assert record.drop("test_big.py") is None
    assert [u.unit_id for u in record.drop_all()] == ["test_small.py::TestS"]
    assert record.units == {} and record.unit_holding("test_small.py::TestS::test_a") is None


def test_a_retry_held_beside_its_original_unit_keeps_its_own_entry() -> None:
    record = AgentRecord(0, 0.0)
    record.hold(TestUnit("m.py::T", ("m.py::T::a", "m.py::T::b")))
    record.hold(TestUnit("m.py::T (crash 1)", ("m.py::T::a",)))

    record.drop("m.py::T")

    assert record.unit_holding("m.py::T::a") == "m.py::T (crash 1)"
    assert record.unit_holding("m.py::T::b") is None


def test_the_running_test_is_the_first_held_one_with_no_end() -> None:
    record = AgentRecord(0, 0.0)
    record.hold(TestUnit("m.py::T", ("m.py::T::a", "m.py::T::b", "m.py::T::c")))
    record.hold(TestUnit("m.py::U", ("m.py::U::a",)))
    final = {"m.py::T::a"}

    def is_open(node_id: str) -> bool:
        return node_id not in final

    assert record.running_test(is_open) == "m.py::T::b"  # a is final: it ended
    # b crashed here and waits for its retry (still open): the agent has moved on to c.
    record.mark_ended("m.py::T::b")
    assert record.running_test(is_open) == "m.py::T::c"
    record.mark_ended("m.py::T::c")
    assert record.running_test(is_open) == "m.py::U::a"
    record.mark_ended("m.py::U::a")
    assert record.running_test(is_open) is None


def test_a_retry_held_on_the_agent_it_crashed_on_is_its_running_test_again() -> None:
    record = AgentRecord(0, 0.0)
    record.hold(TestUnit("m.py::T", ("m.py::T::a", "m.py::T::b")))
    record.mark_ended("m.py::T::a")  # crashed, retried ...
    record.mark_ended("m.py::T::b")
    record.hold(TestUnit("m.py::T (crash 1)", ("m.py::T::a",)))  # ... here

    assert record.running_test(lambda node_id: True) == "m.py::T::a"
    record.drop("m.py::T")
    assert record.running_test(lambda node_id: True) == "m.py::T::a"
    record.mark_ended("m.py::T::a")
    assert record.running_test(lambda node_id: True) is None
    record.drop_all()
    record.hold(TestUnit("m.py::T", ("m.py::T::a",)))  # what ended under a dropped unit is forgotten
    assert record.running_test(lambda node_id: True) == "m.py::T::a"


def test_what_the_running_unit_has_left_is_its_prediction_less_what_it_ran() -> None:
    record = AgentRecord(0, 0.0)
    assert record.running_left({}, 10.0) == 0.0  # holds nothing
    record.hold(TestUnit("m.py::T", ("m.py::T::a", "m.py::T::b")))
    record.hold(TestUnit("m.py::U", ("m.py::U::a",)))
    predicted = {"m.py::T": 5.0, "m.py::U": 1.0}
    assert record.running_left(predicted, 10.0) == 5.0  # no test of it ended yet
    record.unit_started["m.py::T"] = 9.0  # its first test began at 9 s
    assert record.running_left(predicted, 10.5) == 3.5
    assert record.running_left(predicted, 20.0) == 0.0  # past its prediction
    record.drop("m.py::T")
    assert record.running_left(predicted, 20.0) == 1.0  # the next one runs now
    record.hold(TestUnit("m.py::T (crash 1)", ("m.py::T::a",)))
    record.drop("m.py::U")
    assert record.running_left(predicted, 20.0) == 0.0  # a retry: not planned
