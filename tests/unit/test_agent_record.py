"""The session's record of an agent: the units it holds, found by node id."""

from __future__ import annotations

from orchestrator.agent_record import AgentRecord
from orchestrator.model import TestUnit


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
