"""Unit tests of the duration estimates: known tests, and the guesses for unseen ones."""

from __future__ import annotations

import pytest

from orchestrator.model import TestUnit
from orchestrator.planning.durations.estimate import DEFAULT_TEST_SECONDS, cpu_share, estimate_units
from orchestrator.planning.durations.startup import StartupCosts, StartupHistory
from orchestrator.planning.durations.store import DurationStore, TestHistory, junit_key
from orchestrator.planning.pipeline import prepare
from orchestrator.planning.sizing import Capacity
from orchestrator.run.costs import RunCosts
from orchestrator.run.host_load import seconds_at_load_one


def _store(seconds_by_node_id: dict[str, float]) -> DurationStore:
    return DurationStore({n: TestHistory(s, 1) for n, s in seconds_by_node_id.items()})


def test_known_tests_sum_up_per_unit() -> None:
    store = _store({"a.py::test_1": 1.0, "a.py::test_2": 2.5, "b.py::T::test_1": 4.0})
    units = [TestUnit("a.py", ("a.py::test_1", "a.py::test_2")), TestUnit("b.py::T", ("b.py::T::test_1",))]

    estimates = estimate_units(units, store)

    assert [(e.unit, e.seconds, e.unseen_tests) for e in estimates] == [
        (units[0], 3.5, 0),
        (units[1], 4.0, 0),
    ]


def test_unseen_test_gets_the_median_of_its_module() -> None:
    # The module median (1.0) is not the mean (34.0): one very slow test does not count for more.
    store = _store({"a.py::test_1": 1.0, "a.py::T::test_2": 1.0, "a.py::test_3": 100.0, "b.py::test_1": 50.0})
    unit = TestUnit("a.py", ("a.py::test_1", "a.py::test_new", "a.py::T::test_new"))

    (estimate,) = estimate_units([unit], store)

    assert estimate.seconds == 3.0
    assert estimate.unseen_tests == 2


def test_unseen_module_gets_the_median_of_the_whole_store() -> None:
    store = _store({"a.py::test_1": 1.0, "a.py::test_2": 3.0, "b.py::test_1": 8.0})
    (estimate,) = estimate_units([TestUnit("new.py", ("new.py::test_1", "new.py::test_2"))], store)
    assert estimate.seconds == 6.0
    assert estimate.unseen_tests == 2


def test_empty_store_guesses_the_default_for_every_test() -> None:
    units = [TestUnit("a.py", ("a.py::test_1", "a.py::test_2")), TestUnit("b.py", ("b.py::test_1",))]
    estimates = estimate_units(units, DurationStore())
    assert [e.seconds for e in estimates] == pytest.approx([2 * DEFAULT_TEST_SECONDS, DEFAULT_TEST_SECONDS])
    assert [e.unseen_tests for e in estimates] == [2, 1]


def test_junit_imports_count_as_known_and_inform_the_module_median() -> None:
    store = DurationStore(
        junit={
            junit_key("tests/test_a.py::TestX::test_1[p]"): TestHistory(2.0, 1),
            junit_key("tests/test_a.py::test_2"): TestHistory(4.0, 1),
            junit_key("tests/test_b.py::test_1"): TestHistory(100.0, 1),
        }
    )
    unit = TestUnit(
        "tests/test_a.py",
        ("tests/test_a.py::TestX::test_1[p]", "tests/test_a.py::test_2", "tests/test_a.py::test_new"),
    )

    (estimate,) = estimate_units([unit], store)

    assert estimate.seconds == 2.0 + 4.0 + 3.0
    assert estimate.unseen_tests == 1


def test_module_median_uses_stored_tests_that_were_not_collected() -> None:
    # e.g. `-k` selected only the new test of the module: its siblings' history still counts.
    store = _store({"a.py::test_1": 7.0, "b.py::test_1": 1.0, "c.py::test_1": 1.0})
    (estimate,) = estimate_units([TestUnit("a.py", ("a.py::test_new",))], store)
    assert estimate.seconds == 7.0


def test_empty_unit_and_no_units() -> None:
    assert estimate_units([], DurationStore()) == ()
    (estimate,) = estimate_units([TestUnit("a.py", ())], DurationStore())
    assert (estimate.seconds, estimate.unseen_tests) == (0.0, 0)


def test_a_plan_mostly_guessed_says_so() -> None:
    """A first run's prediction is a guess (every test at DEFAULT_TEST_SECONDS): the run says so,
    and says nothing once fewer than a tenth of the tests are guessed."""
    from orchestrator.planning.scheduling.lpt import plan_lpt
    from orchestrator.report.tables import guessed_text

    units = [TestUnit(f"m{m}.py", tuple(f"m{m}.py::test_{t}" for t in range(10))) for m in range(3)]

    def said(store: DurationStore) -> str:
        return guessed_text(plan_lpt(estimate_units(units, store), 2))

    assert said(DurationStore({})) == (
        "orchestrate: no test has a recorded duration yet: a guessed prediction, re-estimated as tests end"
    )
    known = {f"m{m}.py::test_{t}": 1.0 for m in range(3) for t in range(10)}
    del known["m0.py::test_0"], known["m0.py::test_1"], known["m0.py::test_2"]
    assert said(_store(known)).startswith("orchestrate: 3 of 30 tests have no recorded duration yet: ")
    known["m0.py::test_0"] = 1.0
    assert said(_store(known)) == ""  # 2 of 30 guessed: under a tenth


@pytest.mark.parametrize(
    ("duration", "cpu", "load"),
    [
        (2.0, 1.0, 2.0),  # all CPU: twice as long at two agents a core
        (1.0, 0.0, 2.0),  # waiting on a service or sleeping: not stretched
        (1.5, 0.5, 2.0),  # half a second of CPU
        (3.5, 1.0, 3.5),  # 7 agents on 2 cores
        (1.0, 3.0, 2.0),  # threads on several cores: never more than `load` times
    ],
)
def test_more_agents_than_cores_stretch_each_test_back_as_the_load_did(
    duration: float, cpu: float, load: float
) -> None:
    """What the store keeps (its seconds at load one) comes back as it was measured at that load."""
    store = DurationStore({"a.py::test_1": TestHistory(seconds_at_load_one(duration, cpu, load), 1)})
    store.update({}, cpu={"a.py::test_1": cpu})
    units = [TestUnit("a.py", ("a.py::test_1",))]

    (at_load,) = estimate_units(units, store, load=load)
    (alone,) = estimate_units(units, store)

    assert at_load.seconds == pytest.approx(duration)
    assert alone.seconds == pytest.approx(seconds_at_load_one(duration, cpu, load))


def test_tests_without_recorded_cpu_are_not_stretched() -> None:
    store = _store({"a.py::test_1": 1.0, "a.py::test_2": 1.0})
    store.update({}, cpu={"a.py::test_1": 1.0})
    units = [TestUnit("a.py", ("a.py::test_1", "a.py::test_2", "a.py::test_new"))]

    (estimate,) = estimate_units(units, store, load=2.0)

    # test_1 all CPU: 2 s; test_2 never measured: 1 s; test_new guessed from its module: 1.5 s.
    assert estimate.seconds == pytest.approx(2.0 + 1.0 + 1.5)
    assert estimate.unseen_tests == 1


def test_the_cpu_share_is_the_recorded_cpu_over_the_seconds_of_the_tests_that_have_both() -> None:
    store = _store({"a.py::test_1": 1.0, "a.py::test_2": 3.0, "a.py::test_3": 5.0})
    store.update({}, cpu={"a.py::test_1": 1.0, "a.py::test_2": 0.6})
    units = [TestUnit("a.py", ("a.py::test_1", "a.py::test_2", "a.py::test_3", "a.py::test_new"))]

    assert cpu_share(units, store) == pytest.approx(1.6 / 4.0)
    assert cpu_share(units, _store({"a.py::test_1": 1.0})) is None  # no CPU recorded


@pytest.mark.parametrize(
    ("agents", "cpu", "expected"),
    [
        (4, None, 2.0),  # nothing recorded: each agent a core's worth, as before
        (4, 1.0, 2.0),  # computing tests: 4 agents want 4 cores of 2
        (4, 0.25, 1.0),  # mostly waiting: 4 agents want one core of 2, nothing is stretched
        (4, 1.5, 3.0),  # a local database computing half as much again as the worker
        (1, 1.0, 1.0),
    ],
)
def test_the_load_of_a_plan_is_the_cpu_its_agents_want_per_core(
    agents: int, cpu: float | None, expected: float
) -> None:
    store = _store({"a.py::test_1": 2.0})
    if cpu is not None:
        store.update({}, cpu={"a.py::test_1": 2.0 * cpu})
    costs = RunCosts(store, Capacity(8, ""), "local", cpus=2)

    assert costs.load(agents, [TestUnit("a.py", ("a.py::test_1",))]) == pytest.approx(expected)
    assert costs.load(agents) == pytest.approx(max(1.0, agents / 2))  # no units given


def _costs_of(
    classes: dict[str, float], cpu_share_of_seconds: float | None
) -> tuple[RunCosts, list[TestUnit]]:
    """One test per class, of `classes`' seconds, computing that share of them (None: not recorded)."""
    store = _store({f"a.py::{name}::test_1": seconds for name, seconds in classes.items()})
    if cpu_share_of_seconds is not None:
        store.update({}, cpu={f"a.py::{n}::test_1": s * cpu_share_of_seconds for n, s in classes.items()})
    units = [TestUnit(f"a.py::{name}", (f"a.py::{name}::test_1",)) for name in classes]
    return RunCosts(store, Capacity(8, ""), "local", cpus=2), units


def test_a_run_at_more_agents_than_cores_is_told_when_as_many_as_cores_would_finish_sooner() -> None:
    # One long computing class beside three short ones: at 4 agents on 2 cores the long one is
    # stretched twice over and sets the end; at 2 it is not.
    costs, units = _costs_of({"TestLong": 1.0, "TestA": 0.1, "TestB": 0.1, "TestC": 0.1}, 1.0)
    four = costs.load(4, units)
    assert four == pytest.approx(2.0)
    predicted = prepare(units, costs.store, 4, False, 0.0, four).plan.makespan
    assert predicted == pytest.approx(2.0)

    assert costs.fewer_agents_text(units, 4, False, predicted) == (
        "orchestrate: 2 agents would likely finish sooner on these 2 cores: predicted 1.0s against 2.0s "
        "(`--agents auto` plans for no more agents than keep the cores busy)"
    )


@pytest.mark.parametrize(
    ("classes", "share", "agents"),
    [
        ({"TestLong": 1.0, "TestA": 0.1, "TestB": 0.1, "TestC": 0.1}, None, 4),  # no CPU recorded
        ({"TestA": 1.0, "TestB": 1.0, "TestC": 1.0, "TestD": 1.0}, 1.0, 4),  # alike: 2.0s either way
        ({"TestLong": 1.0, "TestA": 0.1}, 1.0, 2),  # no more agents than cores
    ],
)
def test_no_fewer_agents_line_where_they_would_not_finish_a_tenth_sooner(
    classes: dict[str, float], share: float | None, agents: int
) -> None:
    costs, units = _costs_of(classes, share)
    predicted = prepare(units, costs.store, agents, False, 0.0, costs.load(agents, units)).plan.makespan

    assert costs.fewer_agents_text(units, agents, False, predicted) == ""


@pytest.mark.parametrize(
    ("seconds", "share", "ceiling", "history", "expected"),
    [
        (2.0, 0.2, 8, True, 8),  # tests that wait four fifths of their time: up to 2 / 0.2 agents
        (2.0, 0.45, 8, True, 4),
        (2.0, 0.2, 6, True, 6),  # at most the ceiling (agents per core, one engine's networks)
        (2.0, 1.0, 8, True, 2),  # computing tests: one agent per core, as before
        (2.0, None, 8, True, 2),  # no CPU recorded
        (2.0, 0.2, 0, True, 2),  # a cluster: its capacity is its CPUs
        (2.0, 0.2, 8, False, 2),  # no start-up history: one agent per core, as before
        (0.001, 0.4, 8, True, 2),  # a millisecond's test: its time beyond its CPU is the protocol's
    ],
)
def test_auto_looks_beyond_the_cores_for_tests_that_wait(
    seconds: float, share: float | None, ceiling: int, history: bool, expected: int
) -> None:
    store = _store({"a.py::T::test_1": seconds})
    if share is not None:
        store.update({}, cpu={"a.py::T::test_1": seconds * share})
    if history:
        store.startup = StartupHistory({"local": StartupCosts(0.5, 0.0, 0.5, 0.0)})
    costs = RunCosts(store, Capacity(2, "2 CPUs here"), "local", cpus=2, ceiling=ceiling)

    capacity = costs.auto_capacity(estimate_units([TestUnit("a.py::T", ("a.py::T::test_1",))], store))

    assert capacity.agents == expected
    if expected > 2:
        assert capacity.why == f"2 CPUs here, and the tests compute {share:.0%} of their time"
