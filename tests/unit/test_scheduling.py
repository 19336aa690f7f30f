"""Unit tests of LPT planning and of both schedulers, driven by a small simulated run.

The simulation stands in for the session: agents run the units they hold one after the other
in simulated time (a heap of events, no sleeping), ask for work when they hold nothing, and
may die; the session's part (trimming finished tests off a dead agent's units, requeueing
the rest) is done the way the protocol describes.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from orchestrator.model import Assignment, Plan, Shard, TestUnit, UnitEstimate
from orchestrator.planning.durations.estimate import estimate_units
from orchestrator.planning.durations.store import DurationStore, TestHistory
from orchestrator.planning.scheduling import (
    DynamicScheduler,
    PlannedSeconds,
    Scheduler,
    StaticScheduler,
    make_scheduler,
    plan_lpt,
)
from orchestrator.protocol.errors import InternalError, UsageError

SCHEDULER_KINDS = ["static", "dynamic"]


def _estimates(seconds: Iterable[float], tests_per_unit: int = 4) -> list[UnitEstimate]:
    return [
        UnitEstimate(
            TestUnit(f"m{i:04}.py", tuple(f"m{i:04}.py::test_{k}" for k in range(tests_per_unit))), s
        )
        for i, s in enumerate(seconds)
    ]


def _random_estimates(rng: random.Random, units: int) -> list[UnitEstimate]:
    return _estimates(round(rng.lognormvariate(0, 1.2), 3) for _ in range(units))


# -- LPT -------------------------------------------------------------------------------------


def test_lpt_textbook_case() -> None:
    # LPT's known weak spot: 3,3,2,2,2 on two agents gives 7 where 6 is possible.
    plan = plan_lpt(_estimates([3, 3, 2, 2, 2]), 2)
    assert [[u.seconds for u in s.units] for s in plan.shards] == [[3, 2, 2], [3, 2]]
    assert plan.makespan == 7
    assert plan.makespan <= 4 / 3 * 6


def test_lpt_is_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(7)
    estimates = _estimates(rng.choice([1.0, 2.0, 3.0]) for _ in range(300))  # many ties
    reference = plan_lpt(estimates, 7)
    for _ in range(5):
        rng.shuffle(estimates)
        plan = plan_lpt(estimates, 7)
        assert plan == reference
        assert plan.fingerprint() == reference.fingerprint()


def test_lpt_breaks_ties_by_unit_id_then_agent_id() -> None:
    plan = plan_lpt(_estimates([1, 1, 1, 1]), 3)
    assert [[u.unit.unit_id for u in s.units] for s in plan.shards] == [
        ["m0000.py", "m0003.py"],
        ["m0001.py"],
        ["m0002.py"],
    ]


@pytest.mark.parametrize("seed", range(20))
def test_lpt_is_within_four_thirds_of_the_optimum_on_small_inputs(seed: int) -> None:
    rng = random.Random(seed)
    agents = rng.randint(2, 3)
    seconds = [rng.randint(1, 20) for _ in range(rng.randint(agents + 1, 8))]
    optimum = min(
        max(sum(s for s, a in zip(seconds, choice, strict=True) if a == agent) for agent in range(agents))
        for choice in itertools.product(range(agents), repeat=len(seconds))
    )
    plan = plan_lpt(_estimates(seconds), agents)
    assert plan.makespan <= (4 / 3 - 1 / (3 * agents)) * optimum + 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_lpt_quality_on_random_inputs(seed: int) -> None:
    rng = random.Random(seed)
    estimates = _random_estimates(rng, rng.randint(1, 500))
    agents = rng.randint(1, 32)

    plan = plan_lpt(estimates, agents)

    assert plan.agents == agents
    assert sorted(u.unit.unit_id for s in plan.shards for u in s.units) == sorted(
        e.unit.unit_id for e in estimates
    )
    assert plan.makespan <= plan.lower_bound * 4 / 3 + plan.longest_unit_seconds
    # Graham's bound for any greedy list schedule, and LPT is one.
    assert plan.makespan <= plan.total_seconds / agents + plan.longest_unit_seconds + 1e-9
    for shard in plan.shards:
        assert [u.seconds for u in shard.units] == sorted((u.seconds for u in shard.units), reverse=True)


def test_lpt_with_more_agents_than_units_leaves_shards_empty() -> None:
    plan = plan_lpt(_estimates([5, 1]), 4)
    assert [len(s.units) for s in plan.shards] == [1, 1, 0, 0]
    assert plan.makespan == plan.lower_bound == 5


def test_lpt_refuses_no_agents_and_duplicate_units() -> None:
    with pytest.raises(UsageError):
        plan_lpt(_estimates([1]), 0)
    with pytest.raises(InternalError):
        plan_lpt(_estimates([1]) * 2, 2)


def test_estimating_and_planning_100k_tests_is_fast() -> None:
    rng = random.Random(1)
    units = [
        TestUnit(f"tests/test_{i}.py", tuple(f"tests/test_{i}.py::test_{k}" for k in range(5)))
        for i in range(20_000)
    ]
    store = DurationStore(
        {
            n: TestHistory(rng.lognormvariate(-2, 1.5), 1)
            for u in units
            for n in u.node_ids
            if rng.random() < 0.9
        }
    )

    started = time.perf_counter()
    estimates = estimate_units(units, store)
    estimated = time.perf_counter()
    plan = plan_lpt(estimates, 64)
    planned = time.perf_counter()

    print(
        f"\n100,000 tests / 20,000 units: estimate {estimated - started:.3f} s, "
        f"plan_lpt {planned - estimated:.3f} s"
    )
    assert plan.tests == 100_000
    assert planned - estimated < 1.0  # a generous guard: it takes a few tens of milliseconds
    assert planned - started < 2.0


# -- the simulated run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    makespan: float
    runs_by_node_id: Counter[str]


def simulate(
    scheduler: Scheduler,
    actual_seconds: Callable[[TestUnit], float],
    agents: Sequence[int],
    deaths: Mapping[int, float] | None = None,
) -> SimulatedRun:
    """Run `scheduler` to the end with `agents` (added at time 0); return when it finished.

    An agent runs the units it holds in order; a unit takes `actual_seconds(unit)` spread
    evenly over its tests. At `deaths[agent]` the agent dies (or, if it was never added,
    is given up on): the tests of its running unit finished so far count, the rest of what it
    held is requeued (this simulation owns outstanding work, as the session does).
    """
    held_units_by_agent: dict[int, deque[TestUnit]] = {a: deque() for a in agents}
    running_by_agent: dict[int, tuple[TestUnit, float, float]] = {}  # unit, start, seconds
    live_agents = set(agents)
    runs_by_node_id: Counter[str] = Counter()
    events: list[tuple[float, int, str, int, TestUnit | None]] = []
    sequence = itertools.count()
    now = 0.0
    for agent_id, at in (deaths or {}).items():
        heapq.heappush(events, (at, next(sequence), "die", agent_id, None))
    for agent_id in agents:
        scheduler.add_agent(agent_id)

    while True:
        for assignment in scheduler.schedule():
            assert assignment.agent_id in live_agents
            held_units_by_agent[assignment.agent_id].append(assignment.unit)
        for agent_id in sorted(live_agents):
            held = held_units_by_agent[agent_id]
            if agent_id not in running_by_agent and held:
                next_unit = held.popleft()
                seconds = actual_seconds(next_unit)
                running_by_agent[agent_id] = (next_unit, now, seconds)
                heapq.heappush(events, (now + seconds, next(sequence), "done", agent_id, next_unit))
        if not events:
            break
        at, _, kind, agent_id, done_unit = heapq.heappop(events)
        if kind == "done":
            if agent_id not in live_agents:
                continue  # the agent died while running it
            assert done_unit is not None
            now = at
            del running_by_agent[agent_id]
            runs_by_node_id.update(done_unit.node_ids)
            scheduler.unit_finished(agent_id, done_unit.unit_id)  # as the session does on UnitFinished
            if not held_units_by_agent[agent_id]:
                scheduler.request_work(agent_id)
        else:
            now = at
            live_agents.discard(agent_id)
            finished_tests: set[str] = set()
            running = None
            if agent_id in running_by_agent:
                running, started, seconds = running_by_agent.pop(agent_id)
                share = (now - started) / seconds if seconds else 1.0
                finished_tests.update(running.node_ids[: int(len(running.node_ids) * share)])
                runs_by_node_id.update(finished_tests)
            returned = list(held_units_by_agent.pop(agent_id, ()))
            if running is not None:
                returned.insert(0, running)
            scheduler.remove_agent(agent_id)
            scheduler.requeue(
                [u.subset(tuple(n for n in u.node_ids if n not in finished_tests)) for u in returned]
            )

    assert not scheduler.has_queued_work(), scheduler.statistics()
    return SimulatedRun(now, runs_by_node_id)


def _all_node_ids(plan: Plan) -> Counter[str]:
    return Counter(n for shard in plan.shards for n in shard.node_ids)


def _stale(rng: random.Random, estimates: Sequence[UnitEstimate]) -> dict[str, float]:
    """Actual seconds per unit when the history is stale: off by a factor from 1/4 to 4."""
    return {e.unit.unit_id: e.seconds * 4 ** rng.uniform(-1, 1) for e in estimates}


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_exact_durations_finish_at_the_planned_makespan(kind: str) -> None:
    estimates = _random_estimates(random.Random(3), 200)
    plan = plan_lpt(estimates, 8)
    seconds_by_unit_id = {e.unit.unit_id: e.seconds for e in estimates}

    run = simulate(make_scheduler(kind, plan), lambda u: seconds_by_unit_id[u.unit_id], range(8))

    assert run.runs_by_node_id == _all_node_ids(plan)
    assert run.makespan == pytest.approx(plan.makespan)


@pytest.mark.parametrize("seed", range(5))
def test_dynamic_beats_static_when_durations_are_stale(seed: int) -> None:
    rng = random.Random(seed)
    estimates = _random_estimates(rng, 400)
    plan = plan_lpt(estimates, 16)
    actual_by_unit_id = _stale(rng, estimates)
    actual_total = sum(actual_by_unit_id.values())
    lower_bound = max(actual_total / 16, max(actual_by_unit_id.values()))

    static = simulate(StaticScheduler(plan), lambda u: actual_by_unit_id[u.unit_id], range(16))
    dynamic_scheduler = DynamicScheduler(plan)
    dynamic = simulate(dynamic_scheduler, lambda u: actual_by_unit_id[u.unit_id], range(16))

    print(
        f"\nseed {seed}: lower bound {lower_bound:.1f} s, static {static.makespan:.1f} s "
        f"({static.makespan / lower_bound:.2f}x), dynamic {dynamic.makespan:.1f} s "
        f"({dynamic.makespan / lower_bound:.2f}x), {dynamic_scheduler.statistics().stolen_units} stolen"
    )
    assert dynamic.runs_by_node_id == static.runs_by_node_id == _all_node_ids(plan)
    assert dynamic.makespan < static.makespan
    # No agent idles while a unit is queued anywhere: Graham's bound for greedy list scheduling.
    assert dynamic.makespan <= actual_total / 16 + max(actual_by_unit_id.values()) + 1e-9
    assert dynamic_scheduler.statistics().stolen_units > 0


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
@pytest.mark.parametrize("seed", range(5))
def test_dying_agents_lose_no_test_and_duplicate_none(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    estimates = _random_estimates(rng, 120)
    plan = plan_lpt(estimates, 6)
    actual_by_unit_id = _stale(rng, estimates)
    deaths = {agent_id: rng.uniform(0, plan.makespan) for agent_id in rng.sample(range(6), 3)}

    run = simulate(
        make_scheduler(kind, plan),
        lambda u: actual_by_unit_id[u.unit_id] * len(u.node_ids) / 4,
        range(6),
        deaths,
    )

    assert run.runs_by_node_id == _all_node_ids(plan)


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_work_planned_for_an_agent_that_never_came_up_is_done(kind: str) -> None:
    estimates = _random_estimates(random.Random(11), 60)
    plan = plan_lpt(estimates, 4)
    seconds_by_unit_id = {e.unit.unit_id: e.seconds for e in estimates}

    # Agent 3 never comes up; the session gives up on it a while into the run.
    run = simulate(make_scheduler(kind, plan), lambda u: seconds_by_unit_id[u.unit_id], range(3), {3: 1.0})

    assert run.runs_by_node_id == _all_node_ids(plan)


def test_dynamic_steals_from_an_agent_that_never_came_up_without_removing_it() -> None:
    estimates = _random_estimates(random.Random(12), 60)
    plan = plan_lpt(estimates, 4)
    seconds_by_unit_id = {e.unit.unit_id: e.seconds for e in estimates}
    run = simulate(DynamicScheduler(plan), lambda u: seconds_by_unit_id[u.unit_id], range(3))
    assert run.runs_by_node_id == _all_node_ids(plan)


# -- the schedulers' rules, step by step -----------------------------------------------------


def _plan(seconds_by_agent: Sequence[Sequence[float]]) -> Plan:
    """A hand-made plan: unit "a{agent}u{i}" with one test per second of its estimate."""
    return Plan(
        tuple(
            Shard(
                agent_id,
                tuple(
                    UnitEstimate(
                        TestUnit(
                            f"a{agent_id}u{i}", tuple(f"a{agent_id}u{i}.py::t{k}" for k in range(int(s)))
                        ),
                        s,
                    )
                    for i, s in enumerate(seconds)
                ),
            )
            for agent_id, seconds in enumerate(seconds_by_agent)
        )
    )


def _ids(assignments: Iterable[Assignment]) -> list[tuple[int, str]]:
    return [(a.agent_id, a.unit.unit_id) for a in assignments]


def test_static_gives_an_agent_its_whole_shard_longest_first() -> None:
    scheduler = StaticScheduler(_plan([[5, 3], [4]]))
    scheduler.add_agent(1)
    scheduler.add_agent(0)

    assert _ids(scheduler.schedule()) == [(1, "a1u0"), (0, "a0u0"), (0, "a0u1")]
    assert scheduler.schedule() == []
    assert not scheduler.wants_work(0)
    scheduler.request_work(0)
    assert scheduler.wants_work(0)
    assert scheduler.statistics().handed_out_units == 3


def test_static_requeues_to_the_agent_with_least_predicted_work_left() -> None:
    scheduler = StaticScheduler(_plan([[6, 2], [4], [3]]))
    for agent_id in range(3):
        scheduler.add_agent(agent_id)
    given = scheduler.schedule()
    lost = [a.unit for a in given if a.agent_id == 0]
    assert [u.unit_id for u in lost] == ["a0u0", "a0u1"]
    scheduler.remove_agent(0)
    half = lost[0].subset(lost[0].node_ids[3:])  # three of its six tests finished
    scheduler.requeue([half, lost[1]])

    # Longest first, to the agent given the least so far: the 3 s half to agent 2 (3 s given,
    # the tie with nobody lower goes by seconds), then the 2 s unit to agent 1 (4 s) or 2 (6 s).
    assert _ids(scheduler.schedule()) == [(2, "a0u0"), (1, "a0u1")]
    assert scheduler.statistics().agents == 2


def test_static_requeues_the_shard_of_an_agent_never_added() -> None:
    scheduler = StaticScheduler(_plan([[2], [5, 1]]))
    scheduler.add_agent(0)
    scheduler.schedule()
    assert scheduler.has_queued_work()
    scheduler.remove_agent(1)
    assert _ids(scheduler.schedule()) == [(0, "a1u0"), (0, "a1u1")]
    assert not scheduler.has_queued_work()


def test_dynamic_serves_requeued_then_own_then_steals_the_largest_from_the_busiest() -> None:
    scheduler = DynamicScheduler(_plan([[1], [4, 2], [3, 3, 1]]))
    scheduler.add_agent(0)
    assert _ids(scheduler.schedule()) == [(0, "a0u0")]
    assert scheduler.schedule() == []  # one unit per request

    scheduler.request_work(0)
    # Asking ahead (it still runs a0u0), it leaves the queues of agents not up yet alone.
    assert scheduler.schedule() == []
    scheduler.unit_finished(0, "a0u0")
    # Idle now: agent 2 (never added) has 7 s queued against agent 1's 6 s: steal its largest unit.
    assert _ids(scheduler.schedule()) == [(0, "a2u0")]
    assert scheduler.statistics().stolen_units == 1

    scheduler.add_agent(1)
    scheduler.requeue([TestUnit("x", ("x.py::t0",))])
    scheduler.requeue([TestUnit("a2u1", ("a2u1.py::t0", "a2u1.py::t1"))])  # 2 of 3 tests left: 2 s
    scheduler.request_work(0)
    # Requeued units first, longest first (2 s "a2u1" before "x", which the plan does not
    # know and is guessed at the plan's mean per test, 1 s); in the order agents asked.
    assert _ids(scheduler.schedule()) == [(1, "a2u1"), (0, "x")]
    scheduler.request_work(1)
    assert _ids(scheduler.schedule()) == [(1, "a1u0")]


def test_dynamic_asking_ahead_takes_from_live_and_removed_agents_but_not_from_one_not_up_yet() -> None:
    """A unit planned for an agent still starting stays its own while the others have work in
    hand (-x: a failing test planned there runs as soon as that agent is up, not behind a thief's
    unit); an idle agent takes it."""
    scheduler = DynamicScheduler(_plan([[1], [2, 2], [3, 3]]))
    scheduler.add_agent(1)
    scheduler.add_agent(2)
    assert _ids(scheduler.schedule()) == [(1, "a1u0"), (2, "a2u0")]
    scheduler.request_work(2)
    assert _ids(scheduler.schedule()) == [(2, "a2u1")]  # its own
    scheduler.unit_finished(2, "a2u0")
    scheduler.request_work(2)
    assert _ids(scheduler.schedule()) == [(2, "a1u1")]  # from live agent 1, ahead
    scheduler.unit_finished(2, "a2u1")
    scheduler.request_work(2)
    assert scheduler.schedule() == []  # agent 0's a0u0 waits for agent 0
    scheduler.add_agent(0)
    assert _ids(scheduler.schedule()) == [(0, "a0u0")]

    gone = DynamicScheduler(_plan([[1], [2, 2]]))
    gone.add_agent(0)
    gone.add_agent(1)
    gone.remove_agent(1)
    gone.schedule()
    gone.request_work(0)
    assert _ids(gone.schedule()) == [(0, "a1u0")]  # a removed agent's queue is robbed ahead too


def test_dynamic_serves_an_agent_one_long_unit_ahead_at_most() -> None:
    """A worker holding a one-test unit ahead asks again as it starts its running unit's last test:
    with a second or more ahead it gets nothing until the running unit finishes, so an agent going
    idle meanwhile takes what is left instead of finding it queued behind two units on a busy one."""
    scheduler = DynamicScheduler(_plan([[3, 1, 1], [1]]))
    scheduler.add_agent(0)
    scheduler.add_agent(1)
    assert _ids(scheduler.schedule()) == [(0, "a0u0"), (1, "a1u0")]
    scheduler.request_work(0)
    assert _ids(scheduler.schedule()) == [(0, "a0u1")]  # one ahead
    scheduler.request_work(0)
    assert scheduler.schedule() == []  # two held: no third
    assert not scheduler.wants_work(0)  # nor a Flush: it has work in hand
    scheduler.unit_finished(1, "a1u0")
    scheduler.request_work(1)
    assert _ids(scheduler.schedule()) == [(1, "a0u2")]  # the idle agent takes it
    scheduler.unit_finished(0, "a0u0")
    assert scheduler.schedule() == []  # still wanting, nothing left
    assert scheduler.wants_work(0)

    # Tiny units are given further ahead: no round trip between them.
    tiny = DynamicScheduler(_plan([[0.01, 0.01, 0.01, 0.01]]))
    tiny.add_agent(0)
    given = _ids(tiny.schedule())
    for _ in range(3):
        tiny.request_work(0)
        given += _ids(tiny.schedule())
    assert given == [(0, "a0u0"), (0, "a0u1"), (0, "a0u2"), (0, "a0u3")]


def test_dynamic_gives_the_last_units_to_agents_as_they_go_idle() -> None:
    """Fewer units queued than agents live: an agent asking ahead gets none (and may run dry:
    Flush), so that whichever agent goes idle first takes the largest of what is left."""
    scheduler = DynamicScheduler(_plan([[4, 1], [3], [2]]))
    for agent_id in range(3):
        scheduler.add_agent(agent_id)
    assert _ids(scheduler.schedule()) == [(0, "a0u0"), (1, "a1u0"), (2, "a2u0")]
    scheduler.request_work(0)
    assert scheduler.schedule() == []  # one unit queued, three agents: not ahead
    assert scheduler.wants_work(0)  # its worker is told to finish what it holds
    scheduler.unit_finished(2, "a2u0")
    scheduler.request_work(2)
    assert _ids(scheduler.schedule()) == [(2, "a0u1")]  # the first idle agent takes it
    assert not scheduler.has_queued_work()

    # With as many units queued as agents, asking ahead is served as before.
    ahead = DynamicScheduler(_plan([[4, 1, 1], [3]]))
    ahead.add_agent(0)
    ahead.add_agent(1)
    ahead.schedule()
    ahead.request_work(0)
    assert _ids(ahead.schedule()) == [(0, "a0u1")]


def test_dynamic_gives_nothing_ahead_behind_a_unit_that_outlasts_the_queue() -> None:
    """An agent asking ahead while its running unit has 4 s to go, with 4 s queued for the two
    other agents (2 s each): a unit given now would wait behind it while they stand idle. It is
    flushed instead, and the others take what is queued; with a short run left it is served."""
    plan = _plan([[6, 1, 1, 1, 1], [1], [1]])
    scheduler = DynamicScheduler(plan)
    for agent_id in range(3):
        scheduler.add_agent(agent_id)
    assert _ids(scheduler.schedule()) == [(0, "a0u0"), (1, "a1u0"), (2, "a2u0")]
    scheduler.request_work(0, running_left=4.0)
    assert scheduler.schedule() == []
    assert scheduler.wants_work(0)  # Flush: served once its unit ends
    for agent_id in (1, 2):
        scheduler.unit_finished(agent_id, f"a{agent_id}u0")
        scheduler.request_work(agent_id)
    assert _ids(scheduler.schedule()) == [(1, "a0u1"), (2, "a0u2")]

    short = DynamicScheduler(plan)
    for agent_id in range(3):
        short.add_agent(agent_id)
    short.schedule()
    short.request_work(0, running_left=1.5)  # done before the others have drained the queue
    assert _ids(short.schedule()) == [(0, "a0u1")]

    # Alone, an agent is served ahead whatever it runs: nobody else could take the unit.
    alone = DynamicScheduler(_plan([[6, 1, 1]]))
    alone.add_agent(0)
    alone.schedule()
    alone.request_work(0, running_left=5.0)
    assert _ids(alone.schedule()) == [(0, "a0u1")]


def test_dynamic_wants_work_only_when_nothing_is_queued_anywhere() -> None:
    scheduler = DynamicScheduler(_plan([[1], [1]]))
    scheduler.add_agent(0)
    scheduler.schedule()
    scheduler.request_work(0)
    # Agent 1 is not up: while agent 0 runs a0u0 its unit is not for the taking, so agent 0 may
    # run dry (Flush); once it has finished, agent 1's unit can be stolen.
    assert scheduler.wants_work(0)
    scheduler.unit_finished(0, "a0u0")
    assert not scheduler.wants_work(0)
    scheduler.schedule()
    scheduler.request_work(0)
    assert scheduler.schedule() == []
    assert scheduler.wants_work(0)
    assert not scheduler.has_queued_work()


def test_dynamic_keeps_a_removed_agents_queue_for_the_others() -> None:
    scheduler = DynamicScheduler(_plan([[1], [3, 2]]))
    scheduler.add_agent(0)
    scheduler.add_agent(1)
    assert _ids(scheduler.schedule()) == [(0, "a0u0"), (1, "a1u0")]
    scheduler.remove_agent(1)  # what it held is the session's to requeue
    scheduler.request_work(0)
    assert _ids(scheduler.schedule()) == [(0, "a1u1")]


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_adding_an_agent_twice_is_an_internal_error(kind: str) -> None:
    scheduler = make_scheduler(kind, _plan([[1]]))
    scheduler.add_agent(0)
    with pytest.raises(InternalError):
        scheduler.add_agent(0)


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_empty_requeued_units_are_dropped(kind: str) -> None:
    scheduler = make_scheduler(kind, _plan([[]]))
    scheduler.add_agent(0)
    scheduler.requeue([TestUnit("gone", ())])
    assert scheduler.schedule() == []
    assert not scheduler.has_queued_work()


def test_planned_seconds_scales_subsets_and_guesses_unknown_units() -> None:
    plan = _plan([[4, 2]])
    seconds = PlannedSeconds(plan)
    unit = plan.shards[0].units[0].unit
    assert seconds.of(unit) == 4
    assert seconds.of(unit.subset(unit.node_ids[:1])) == 1
    assert seconds.of(TestUnit("new", ("a", "b", "c"))) == 3  # 6 s / 6 tests each


def test_make_scheduler() -> None:
    plan = _plan([[1]])
    assert isinstance(make_scheduler("static", plan), StaticScheduler)
    assert isinstance(make_scheduler("dynamic", plan), DynamicScheduler)
    with pytest.raises(UsageError, match="static, dynamic"):
        make_scheduler("random", plan)


# -- units that need resources (@pytest.mark.orchestrate(resources=...)) ---------------------

GPU = (("GPU", 1.0),)


def _needing(plan: Plan, unit_ids: set[str], resources: tuple[tuple[str, float], ...] = GPU) -> Plan:
    """The plan with the units named in `unit_ids` needing `resources`."""
    return Plan(
        tuple(
            Shard(
                s.agent_id,
                tuple(
                    UnitEstimate(TestUnit(e.unit.unit_id, e.unit.node_ids, resources=resources), e.seconds)
                    if e.unit.unit_id in unit_ids
                    else e
                    for e in s.units
                ),
            )
            for s in plan.shards
        )
    )


def test_a_unit_fits_a_node_with_at_least_what_it_needs() -> None:
    unit = TestUnit("u", ("u.py::t",), resources=(("GPU", 1.0), ("special", 2.0)))
    assert unit.fits({"GPU": 2.0, "special": 2.0, "CPU": 8.0})
    assert not unit.fits({"GPU": 1.0, "special": 1.0})
    assert not unit.fits({})
    assert TestUnit("plain", ("p.py::t",)).fits({})
    assert unit.needs_text() == "GPU=1, special=2"
    assert unit.subset(("u.py::t",)).resources == unit.resources


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_a_unit_needing_a_resource_goes_only_to_an_agent_whose_node_has_it(kind: str) -> None:
    # Planned on agent 0, whose node has no GPU: it must go to agent 1.
    scheduler = make_scheduler(kind, _needing(_plan([[3, 1], [2]]), {"a0u0"}))
    scheduler.add_agent(0, {"CPU": 4.0})
    scheduler.add_agent(1, {"CPU": 4.0, "GPU": 1.0})
    given: list[tuple[int, str]] = []
    for _ in range(4):
        assigned = _ids(scheduler.schedule())
        given += assigned
        for agent_id, unit_id in assigned:  # each agent runs what it is given, then asks again
            scheduler.unit_finished(agent_id, unit_id)
        scheduler.request_work(0)
        scheduler.request_work(1)
    assert sorted(given) == [(0, "a0u1"), (1, "a0u0"), (1, "a1u0")]
    assert not scheduler.has_queued_work()
    assert scheduler.take_unrunnable() == []


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_a_unit_no_live_agent_can_run_waits_and_is_given_up_on_request(kind: str) -> None:
    scheduler = make_scheduler(kind, _needing(_plan([[3, 1], [2]]), {"a0u0"}))
    scheduler.add_agent(0, {"CPU": 4.0})
    given = []
    for _ in range(3):
        given += _ids(scheduler.schedule())
        scheduler.request_work(0)
    # Agent 1 never comes up: the session removes it (static requeues its shard, dynamic lets
    # agent 0 steal it). Agent 0 runs everything but the GPU unit.
    scheduler.remove_agent(1)
    given += _ids(scheduler.schedule())
    scheduler.request_work(0)
    given += _ids(scheduler.schedule())
    assert sorted(given) == [(0, "a0u1"), (0, "a1u0")]
    # Nothing queued is for agent 0's node: once it holds one unit, it may run dry; the GPU
    # unit is the session's to end.
    scheduler.unit_finished(0, "a0u1")
    assert scheduler.wants_work(0)
    assert [u.unit_id for u in scheduler.take_unrunnable()] == ["a0u0"]
    assert not scheduler.has_queued_work()


@pytest.mark.parametrize("kind", SCHEDULER_KINDS)
def test_a_requeued_unit_keeps_waiting_for_a_capable_agent(kind: str) -> None:
    scheduler = make_scheduler(kind, _plan([[1]]))
    scheduler.add_agent(0, {"CPU": 1.0})
    scheduler.schedule()
    scheduler.requeue([TestUnit("gpu (crash retry 1)", ("g.py::t",), resources=GPU)])
    scheduler.request_work(0)
    assert scheduler.schedule() == []
    assert scheduler.has_queued_work()
    scheduler.add_agent(1, {"GPU": 4.0})
    assert _ids(scheduler.schedule()) == [(1, "gpu (crash retry 1)")]
