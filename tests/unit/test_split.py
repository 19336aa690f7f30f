"""Cutting oversized units: only splittable ones, into consecutive chunks of about total/N/4; naming
the long ones their scoped fixtures keep whole."""

from __future__ import annotations

from orchestrator.model import TestUnit, UnitEstimate
from orchestrator.planning.scheduling.lpt import plan_lpt
from orchestrator.planning.scheduling.split import kept_whole, split_oversized


def _unit(name: str, tests: int, splittable: bool) -> TestUnit:
    return TestUnit(name, tuple(f"{name}::test_{i}" for i in range(tests)), splittable)


def test_a_splittable_oversized_unit_is_cut_and_the_plan_reaches_the_bound() -> None:
    big = _unit("t.py::TestBig", 8, splittable=True)
    small = [_unit(f"t.py::TestS{i}", 1, splittable=True) for i in range(4)]
    estimates = [UnitEstimate(big, 8.0)] + [UnitEstimate(u, 1.0) for u in small]

    units = split_oversized(estimates, agents=4)

    # A quarter of an agent's share is 12 s / 4 / 4 = 0.75 s: the 8 s class becomes 8 chunks of
    # one test each.
    parts = [u for u in units if u.unit_id.startswith("t.py::TestBig [part")]
    assert len(parts) == 8
    # Consecutive, complete, in collection order: nothing lost, nothing twice.
    assert tuple(n for p in parts for n in p.node_ids) == big.node_ids
    per_test = {n: 1.0 for u in units for n in u.node_ids}
    plan = plan_lpt([UnitEstimate(u, sum(per_test[n] for n in u.node_ids)) for u in units], 4)
    unsplit = plan_lpt(estimates, 4)
    assert plan.makespan < unsplit.makespan == 8.0


def test_units_with_shared_fixtures_or_within_share_stay_whole() -> None:
    shared = _unit("t.py::TestShared", 8, splittable=False)
    fair = _unit("t.py::TestFair", 2, splittable=True)
    estimates = [UnitEstimate(shared, 8.0), UnitEstimate(fair, 1.0)]

    assert split_oversized(estimates, agents=2) == (shared, fair)
    assert split_oversized(estimates, agents=1) == (shared, fair)


def test_the_long_units_kept_whole_by_their_fixtures_are_named_longest_first() -> None:
    def held(name: str, tests: int) -> TestUnit:
        return TestUnit(name, tuple(f"{name}::t{i}" for i in range(tests)), kept_whole_by=("db",))

    longest, long, short = held("a::A", 5), held("a::B", 4), held("a::C", 3)
    free = _unit("a::D", 4, splittable=True)
    estimates = [
        UnitEstimate(long, 6.0),
        UnitEstimate(longest, 9.0),
        UnitEstimate(short, 1.0),
        UnitEstimate(free, 4.0),
    ]
    # An agent's share is 20 s / 2 = 10 s and no unit is longer: nothing caps the plan.
    assert kept_whole(estimates, agents=2) == ()
    # At 4 agents it is 5 s: the two held units above it, longest first; the cut one is not named.
    assert [e.unit.unit_id for e in kept_whole(estimates, agents=4)] == ["a::A", "a::B"]
    assert kept_whole(estimates, agents=1) == ()


def test_a_unit_is_cut_by_its_tests_known_seconds_so_each_long_test_is_a_chunk_of_its_own() -> None:
    big = _unit("t.py::TestBig", 12, splittable=True)
    other = _unit("t.py::TestOther", 1, splittable=False)
    seconds = {n: 1.0 if n.endswith(("_4", "_9")) else 0.1 for n in big.node_ids}
    estimates = [UnitEstimate(big, 3.0), UnitEstimate(other, 1.0)]

    # A chunk is 4 s / 2 / 4 = 0.5 s: the 1 s tests alone, the short ones about 0.5 s together.
    units = split_oversized(estimates, agents=2, test_seconds=seconds.get)

    parts = [[int(n.rpartition("_")[2]) for n in u.node_ids] for u in units[:-1]]
    assert parts == [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9], [10, 11]]
    assert units[-1] == other
    # Without the tests' seconds: equal counts, each about 0.5 s at the unit's mean.
    by_count = split_oversized(estimates, agents=2)
    assert [len(u.node_ids) for u in by_count[:-1]] == [2] * 6
