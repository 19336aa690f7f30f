"""Unit tests of the agents' fixed costs: the store's start-up part, the model, `--agents auto`."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.model import AgentStatistics, Outcome, TestUnit, UnitEstimate, UnitSpan
from orchestrator.planning.durations.startup import (
    NO_STACK,
    StartupCosts,
    StartupHistory,
    StartupPrediction,
    load_factor,
    startup_key,
)
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.sizing import Capacity, choose_agents, in_process_pays, trim_agents
from orchestrator.planning.whatif import predict
from orchestrator.protocol import wire

KEY = startup_key("local", "")


def _agents(
    count: int, ready: float, stack_up: float = 0.0, down: float = 0.0
) -> tuple[AgentStatistics, ...]:
    return tuple(
        AgentStatistics(
            agent_id=i,
            ready_at=ready,
            stack_up_seconds=stack_up,
            worker_start_seconds=0.5,
            stack_down_seconds=down,
        )
        for i in range(count)
    )


def _estimates(*seconds: float) -> tuple[UnitEstimate, ...]:
    return tuple(UnitEstimate(TestUnit(f"t{i}.py", (f"t{i}.py::test",)), s) for i, s in enumerate(seconds))


def _per_agent(seconds: float, cores: int, teardown: float = 0.0):  # type: ignore[no-untyped-def]
    """Fixed costs of `seconds` per agent at load 1 on `cores` cores."""
    return lambda agents: StartupPrediction(
        agents, seconds * load_factor(agents, cores), teardown * load_factor(agents, cores)
    )


# -- the store's start-up part ----------------------------------------------------------------


def test_the_start_up_history_round_trips_through_the_store(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    store = DurationStore()
    store.update({"t.py::test_a": 1.0})
    store.startup.observe(KEY, _agents(2, ready=3.0, stack_up=2.0, down=1.0), capacity=2)
    store.save(path)

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert loaded.get("t.py::test_a") == 1.0
    assert loaded.startup.get(KEY) == StartupCosts(3.0, 2.0, 0.5, 1.0, 1)


def test_a_store_written_before_the_start_up_part_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    path.write_bytes(
        wire.pack(wire.message("durations", alpha=0.5, tests={"t.py::test_a": [2.0, 3]}, junit=[]))
    )

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert loaded.get("t.py::test_a") == 2.0
    assert len(loaded.startup) == 0


def test_a_start_up_part_of_an_unknown_format_is_left_out_not_the_tests(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    future = {"format": 99, "costs": {"anything": "new"}}
    path.write_bytes(
        wire.pack(wire.message("durations", tests={"t.py::test_a": [2.0, 3]}, junit=[], startup=future))
    )

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert loaded.get("t.py::test_a") == 2.0
    assert len(loaded.startup) == 0


def test_a_malformed_start_up_entry_makes_the_store_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    bad = {"format": 1, "costs": {KEY: [1.0, -2.0, 0.0, 0.0, 1]}}
    path.write_bytes(wire.pack(wire.message("durations", tests={}, junit=[], startup=bad)))

    _, warning = DurationStore.load(path)

    assert warning is not None and "malformed start-up entry" in warning


# -- the model --------------------------------------------------------------------------------


def test_keys_tell_backends_and_stacks_apart() -> None:
    assert startup_key("local", "") == f"local/{NO_STACK}"
    assert startup_key("local", "services: {}") != startup_key("ray", "services: {}")
    assert startup_key("local", "services: {}") != startup_key("local", "services: {a: {}}")


def test_a_run_is_normalised_by_its_load_and_averaged_like_durations() -> None:
    history = StartupHistory()
    # 4 agents on 2 cores, up after 4 s: 2 s each at load 1.
    history.observe(KEY, _agents(4, ready=4.0, down=1.0), capacity=2)
    assert history.predict(KEY, 4, 2) == StartupPrediction(4, 4.0, 1.0)
    assert history.predict(KEY, 1, 2) == StartupPrediction(1, 2.0, 0.5)
    assert history.predict(KEY, 12, 2) == StartupPrediction(12, 12.0, 3.0)
    # A second run at 2 agents (load 1) taking 1 s: the average moves halfway.
    history.observe(KEY, _agents(2, ready=1.0), capacity=2)
    costs = history.get(KEY)
    assert costs is not None and costs.runs == 2
    assert costs.ready == pytest.approx(1.5)
    assert history.predict("ray/no stack", 2, 2) is None


def test_agents_that_never_became_ready_teach_nothing_but_count_in_the_load() -> None:
    history = StartupHistory()
    agents = (*_agents(2, ready=2.0), AgentStatistics(agent_id=2, error="stack failed"))
    history.observe(KEY, agents, capacity=1)  # 3 agents on 1 core: load 3
    costs = history.get(KEY)
    assert costs is not None and costs.ready == pytest.approx(2.0 / 3)
    assert history.observe(KEY, (AgentStatistics(agent_id=0),), capacity=1) is None


def _working(agent_id: int, tests: int, first: float, last: float, busy: float) -> AgentStatistics:
    """An agent that ran `tests` tests of `busy` seconds in all, between `first` and `last`."""
    span = UnitSpan(f"u{agent_id}", first, last, 0.0, tests, Outcome.PASSED)
    return AgentStatistics(
        agent_id=agent_id, ready_at=0.5, tests=tests, busy_seconds=busy, finished_at=last, units=(span,)
    )


def test_each_tests_own_cost_around_it_is_learned_from_the_first_test_on() -> None:
    history = StartupHistory()
    # 2 agents on 2 cores, each 1,000 tests of 0.5 s in all, run between 10 s (after the
    # coordinator's collection: not counted) and 12.5 s: 2 ms a test around the tests.
    history.observe(KEY, (_working(0, 1000, 10.0, 12.5, 0.5), _working(1, 1000, 10.0, 12.5, 0.5)), capacity=2)
    costs = history.get(KEY)
    assert costs is not None and costs.per_test == pytest.approx(0.002)
    assert history.predict(KEY, 2, 2) == StartupPrediction(2, 0.5, 0.0)
    # A run of a handful of tests says nothing about it: the learned figure stays.
    history.observe(KEY, (_working(0, 5, 1.0, 9.0, 0.1),), capacity=2)
    costs = history.get(KEY)
    assert costs is not None and costs.per_test == pytest.approx(0.002)


def test_the_plan_adds_the_learned_cost_to_every_test() -> None:
    from orchestrator.planning.pipeline import prepare

    store = DurationStore()
    store.update({f"t.py::test_{i}": 0.001 for i in range(100)})
    units = [TestUnit("t.py", tuple(f"t.py::test_{i}" for i in range(100)))]
    assert prepare(units, store, 1, False).plan.makespan == pytest.approx(0.1)
    assert prepare(units, store, 1, False, per_test=0.002).plan.makespan == pytest.approx(0.3)


def test_a_start_up_entry_written_before_the_per_test_cost_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    older = {"format": 1, "costs": {KEY: [1.0, 0.5, 0.5, 0.2, 3]}}
    path.write_bytes(wire.pack(wire.message("durations", tests={}, junit=[], startup=older)))

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert loaded.startup.get(KEY) == StartupCosts(1.0, 0.5, 0.5, 0.2, 3, 0.0)


def test_predictions_carry_the_fixed_costs() -> None:
    (prediction,) = predict(_estimates(10.0, 10.0), [2], _per_agent(2.0, 4, teardown=0.5))
    assert prediction.makespan == 10.0
    assert prediction.wall_seconds == pytest.approx(12.5)
    (bare,) = predict(_estimates(10.0, 10.0), [2])
    assert bare.wall_seconds == bare.makespan == 10.0


# -- --agents auto ----------------------------------------------------------------------------


def test_auto_uses_every_core_when_start_up_is_cheap_against_the_tests() -> None:
    # 40 s of tests in 20 units, 2 s start-up per agent, 4 cores: 2 + 10 = 12 s at 4 agents.
    choice = choose_agents(_estimates(*[2.0] * 20), Capacity(4, "4 CPUs here"), _per_agent(2.0, 4))
    assert choice.agents == 4
    assert choice.prediction is not None and choice.prediction.wall_seconds == pytest.approx(12.0)
    assert "2.0s start-up + 10.0s tests" in choice.reason
    assert "at most 4: 4 CPUs here" in choice.reason


def test_auto_runs_a_tiny_suite_on_one_agent() -> None:
    choice = choose_agents(_estimates(0.05, 0.05, 0.05), Capacity(4, "4 CPUs here"), _per_agent(2.0, 4))
    assert choice.agents == 1


def test_auto_stays_within_capacity_and_the_unit_count() -> None:
    free = _per_agent(0.0, 64)
    assert choose_agents(_estimates(*[5.0] * 16), Capacity(8, "8 CPUs here"), free).agents == 8
    # 20 units: 7 agents finish as soon as 8 (3 units each at most), so 7.
    assert choose_agents(_estimates(*[5.0] * 20), Capacity(8, "8 CPUs here"), free).agents == 7
    assert choose_agents(_estimates(5.0, 5.0, 5.0), Capacity(8, "8 CPUs here"), free).agents == 3


def test_auto_weighs_each_count_with_the_units_split_cuts_for_it() -> None:
    # One 20 s class `--split` may cut: whole, a second agent finds nothing to do; cut into N
    # chunks for N agents, 4 agents of 1 s start-up finish it in 1 + 5 s.
    whole = _estimates(20.0)

    def cut(n: int) -> tuple[UnitEstimate, ...]:
        return _estimates(*[20.0 / n] * n)

    assert choose_agents(whole, Capacity(4, "4 CPUs here"), _per_agent(1.0, 4)).agents == 1
    choice = choose_agents(whole, Capacity(4, "4 CPUs here"), _per_agent(1.0, 4), cut=cut)
    assert choice.agents == 4
    assert choice.prediction is not None and choice.prediction.wall_seconds == pytest.approx(6.0)


def test_auto_without_start_up_history_is_one_agent_per_core() -> None:
    choice = choose_agents(_estimates(*[1.0] * 10), Capacity(4, "4 CPUs here"), lambda agents: None)
    assert choice.agents == 4
    assert "no start-up history" in choice.reason


def test_auto_on_a_small_machine_stops_where_start_up_outgrows_the_gain() -> None:
    # The case: 4.2 s of tests in 12 units, 2 cores, 2 s per agent at load 1.
    estimates = _estimates(*[0.35] * 12)
    choice = choose_agents(estimates, Capacity(2, "2 CPUs here"), _per_agent(2.0, 2))
    assert choice.agents == 2
    # Asked for 12, agents whose stacks would come up after the work is gone are not started.
    trimmed = trim_agents(estimates, 12, _per_agent(2.0, 2))
    assert 2 <= trimmed.agents < 12
    assert trimmed.reason.startswith(f"starting {trimmed.agents} of 12 agents")


def test_an_explicit_count_is_kept_when_every_agent_comes_up_in_time() -> None:
    estimates = _estimates(*[5.0] * 8)
    assert trim_agents(estimates, 4, _per_agent(2.0, 4)).agents == 4
    assert trim_agents(estimates, 4, lambda agents: None).agents == 4
    assert trim_agents(estimates, 20, lambda agents: None).agents == 8  # one per unit at most


def test_in_process_counts_the_cpu_of_tests_too_short_to_wait() -> None:
    """Held 1.8 ms each on 4 agents on 2 cores, computing 0.36 ms: this process pays the CPU."""

    def units(held: float, busy: float) -> tuple[UnitEstimate, ...]:
        return tuple(
            UnitEstimate(
                TestUnit(f"t{u}.py", tuple(f"t{u}.py::test_{n}" for n in range(100))), 100 * held, 0, busy
            )
            for u in range(50)
        )

    short = units(0.0018, 0.2)
    choice = choose_agents(short, Capacity(2, "2 CPUs here"), _per_agent(0.3, 2))
    assert choice.prediction is not None and choice.prediction.makespan < 5000 * 0.0018

    # their CPU (1.8 s) and pytest's own 0.4 ms a test here, against the agents' 3.8 s or more
    assert in_process_pays(short, choice, cores=2).startswith("in this process: predicted 3.8s")
    # 10 ms a test, a tenth of it computing: such tests wait, and this process would wait 50 s
    waiting = units(0.010, 0.1)
    assert in_process_pays(waiting, choose_agents(waiting, Capacity(2, "2"), _per_agent(0.3, 2)), 2) == ""
