"""Test groups in planning and scheduling, driven by a simulated run that checks every moment.

The simulation stands in for the session and the agents as they behave for real: an agent runs
the units it holds one after the other; it asks for work when it starts the last unit it holds,
and, like a pytest worker, holds that unit's last test until it is given more work or flushed
(the session flushes an agent the scheduler says `wants_work`); a finished unit is reported
with `unit_finished`. Agents come up at random times and may die (the session's part: the tests
of the running unit done so far count, the rest of what it held is requeued), and tests may
crash once (their retry is a unit of its own, as the ledger makes it). At every start of a unit
the units then *executing* are checked: no group over its limit, an alone unit with nothing beside.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from orchestrator.model import ALONE_BOUND, Plan, Shard, TestUnit, UnitEstimate
from orchestrator.planning.scheduling import (
    DynamicScheduler,
    Scheduler,
    StaticScheduler,
    make_scheduler,
    plan_lpt,
)
from orchestrator.planning.scheduling._slots import GroupSlots
from orchestrator.planning.whatif import predict

KINDS = ["static", "dynamic"]


def _unit(
    name: str, tests: int = 4, groups: Mapping[str, int] | None = None, weight: int = 1, alone: bool = False
) -> TestUnit:
    return TestUnit(
        name,
        tuple(f"{name}::t{k}" for k in range(tests)),
        groups=tuple(sorted((groups or {}).items())),
        weight=weight if groups else 1,
        alone=alone,
    )


def _random_suite(rng: random.Random, units: int) -> list[UnitEstimate]:
    """Units of random length; some in one or two of three groups (random limits and weights), a
    few alone."""
    limits = {"payments": rng.randint(1, 2), "gpu": rng.randint(1, 3), "bucket": 1}
    estimates = []
    for i in range(units):
        roll = rng.random()
        groups: dict[str, int] = {}
        if roll < 0.45:
            for name in rng.sample(sorted(limits), rng.choice([1, 1, 2])):
                groups[name] = limits[name]
        weight = rng.randint(1, min(groups.values())) if groups else 1
        alone = 0.45 <= roll < 0.5
        unit = _unit(f"u{i:03}.py", rng.randint(1, 5), groups, weight, alone)
        estimates.append(UnitEstimate(unit, round(rng.lognormvariate(0, 0.8), 3)))
    return estimates


@dataclass
class _Agent:
    held: deque[TestUnit] = field(default_factory=deque)
    running: TestUnit | None = None
    started: float = 0.0
    waiting_last_test: bool = False  # its worker holds the last test, wanting a next one
    flushed: bool = False


@dataclass(frozen=True, slots=True)
class Simulated:
    makespan: float
    runs: Counter[str]
    peak_by_group: dict[str, int]
    alone_overlaps: int


def simulate(
    scheduler: Scheduler,
    seconds: Callable[[TestUnit], float],
    agents: Sequence[int],
    rng: random.Random | None = None,
    *,
    come_up: Mapping[int, float] | None = None,
    deaths: Mapping[int, float] | None = None,
    crash_share: float = 0.0,
) -> Simulated:
    """Run `scheduler` to the end; check group limits and alone units at every unit start."""
    rng = rng or random.Random(0)
    state = {a: _Agent() for a in agents}
    live: set[int] = set()
    dead: set[int] = set()
    executing: dict[int, TestUnit] = {}
    runs: Counter[str] = Counter()
    crashed_once: set[str] = set()
    peak: Counter[str] = Counter()
    overlaps = 0
    events: list[tuple[float, int, str, int]] = []
    serial = itertools.count()
    now = 0.0
    for agent_id in agents:
        heapq.heappush(events, ((come_up or {}).get(agent_id, 0.0), next(serial), "up", agent_id))
    for agent_id, at in (deaths or {}).items():
        heapq.heappush(events, (at, next(serial), "die", agent_id))

    def limits_now() -> None:
        nonlocal overlaps
        used: Counter[str] = Counter()
        for unit in executing.values():
            for name, limit in unit.groups:
                used[name] += unit.weight
                assert used[name] <= limit, f"group {name} over its limit {limit} at {now}: {executing}"
        for name, count in used.items():
            peak[name] = max(peak[name], count)
        if any(u.alone for u in executing.values()) and len(executing) > 1:
            overlaps += 1

    def start_next(agent_id: int) -> None:
        agent = state[agent_id]
        if agent.running is not None or not agent.held:
            return
        unit = agent.held.popleft()
        agent.running, agent.started, agent.flushed = unit, now, False
        executing[agent_id] = unit
        limits_now()
        if not agent.held:
            scheduler.request_work(agent_id)
        last = seconds(unit) / len(unit.node_ids)
        heapq.heappush(events, (now + seconds(unit) - last, next(serial), "body", agent_id))

    def dispatch() -> None:
        for assignment in scheduler.schedule():
            assert assignment.agent_id in live
            agent = state[assignment.agent_id]
            agent.held.append(assignment.unit)
            if agent.waiting_last_test:  # the worker learns its next item: the last test runs
                agent.waiting_last_test = False
                heapq.heappush(events, (now, next(serial), "last", assignment.agent_id))
        for agent_id in sorted(live):
            agent = state[agent_id]
            if agent.waiting_last_test and scheduler.wants_work(agent_id):
                agent.waiting_last_test, agent.flushed = False, True
                heapq.heappush(events, (now, next(serial), "last", agent_id))
            start_next(agent_id)

    while True:
        dispatch()
        if not events:
            break
        now, _, kind, agent_id = heapq.heappop(events)
        if agent_id in dead:
            continue
        agent = state[agent_id]
        if kind == "up":
            live.add(agent_id)
            scheduler.add_agent(agent_id)
        elif kind == "body":
            if agent.held or agent.flushed:
                heapq.heappush(events, (now, next(serial), "last", agent_id))
            else:
                agent.waiting_last_test = True
        elif kind == "last":
            unit = agent.running
            assert unit is not None
            last = seconds(unit) / len(unit.node_ids)
            heapq.heappush(events, (now + last, next(serial), "done", agent_id))
        elif kind == "done":
            unit = agent.running
            assert unit is not None
            agent.running = None
            del executing[agent_id]
            retries = []
            for node_id in unit.node_ids:
                if node_id not in crashed_once and rng.random() < crash_share:
                    crashed_once.add(node_id)
                    retries.append(unit.retry(f"{node_id} (crash retry)", node_id))
                else:
                    runs[node_id] += 1
            scheduler.unit_finished(agent_id, unit.unit_id)
            if retries:
                scheduler.requeue(retries)
        else:  # die
            dead.add(agent_id)
            returned = list(agent.held)
            if agent.running is not None:
                unit = agent.running
                share = (now - agent.started) / max(seconds(unit), 1e-9)
                done = unit.node_ids[: int(len(unit.node_ids) * min(share, 1.0))]
                runs.update(done)
                returned.insert(0, unit.subset(tuple(n for n in unit.node_ids if n not in done)))
                del executing[agent_id]
            state[agent_id] = _Agent()
            if agent_id in live:
                live.discard(agent_id)
                scheduler.remove_agent(agent_id)
            else:
                scheduler.remove_agent(agent_id)
            scheduler.requeue(returned)
            if not live and not any(e[2] == "up" for e in events):
                break
    return Simulated(now, runs, dict(peak), overlaps)


def _node_ids(estimates: Sequence[UnitEstimate]) -> Counter[str]:
    return Counter(n for e in estimates for n in e.unit.node_ids)


# -- limits are never exceeded ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(40))
def test_no_interleaving_exceeds_a_limit_or_runs_beside_an_alone_unit(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    estimates = _random_suite(rng, rng.randint(5, 60))
    agents = rng.randint(1, 8)
    plan = plan_lpt(estimates, agents)
    actual = {e.unit.unit_id: e.seconds * 4 ** rng.uniform(-1, 1) for e in estimates}
    come_up = {a: rng.uniform(0, 3) for a in range(agents)}
    deaths = {a: rng.uniform(0, plan.makespan) for a in rng.sample(range(agents), rng.randint(0, agents - 1))}

    run = simulate(
        make_scheduler(kind, plan),
        lambda u: actual.get(u.unit_id.split(" (")[0].split("::")[0], 0.5) * len(u.node_ids) / 5,
        range(agents),
        rng,
        come_up=come_up,
        deaths=deaths,
        crash_share=0.05,
    )

    assert run.alone_overlaps == 0
    assert set(run.runs) == set(_node_ids(estimates))  # every test ran (once, or again after a death)


@pytest.mark.parametrize("kind", KINDS)
def test_a_limit_of_one_runs_the_group_one_unit_at_a_time_and_uses_the_limit_of_two(kind: str) -> None:
    ones = [UnitEstimate(_unit(f"p{i}.py", groups={"payments": 1}), 1.0) for i in range(6)]
    twos = [UnitEstimate(_unit(f"l{i}.py", groups={"licence": 2}), 1.0) for i in range(6)]
    plain = [UnitEstimate(_unit(f"x{i}.py"), 0.5) for i in range(8)]
    estimates = ones + twos + plain
    run = simulate(make_scheduler(kind, plan_lpt(estimates, 4)), lambda u: 1.0, range(4))
    assert run.peak_by_group == {"payments": 1, "licence": 2}
    assert run.runs == _node_ids(estimates)


def test_weights_count_against_the_limit() -> None:
    heavy = [UnitEstimate(_unit(f"h{i}.py", groups={"cpu": 4}, weight=3), 1.0) for i in range(3)]
    light = [UnitEstimate(_unit(f"l{i}.py", groups={"cpu": 4}), 1.0) for i in range(6)]
    run = simulate(DynamicScheduler(plan_lpt(heavy + light, 4)), lambda u: 1.0, range(4))
    assert run.peak_by_group["cpu"] <= 4
    assert run.runs == _node_ids(heavy + light)


# -- the plan knows the groups ----------------------------------------------------------------


def _benchmark_case(agents: int = 4) -> list[UnitEstimate]:
    """The issue's case: 60 s, of which 15 s is one limit-1 group over 10 classes."""
    group = [
        UnitEstimate(_unit(f"tests/test_pay.py::TestPay{i}", 5, {"payments": 1}), 1.5) for i in range(10)
    ]
    rest = [UnitEstimate(_unit(f"tests/test_other.py::TestOther{i:02}", 5), 45 / 30) for i in range(30)]
    return group + rest


def test_a_group_longer_than_the_rest_per_agent_is_placed_first_and_bounds_the_plan() -> None:
    estimates = _benchmark_case()
    plan = plan_lpt(estimates, 4)
    first = [shard.units[0].unit for shard in plan.shards]
    assert sum(1 for unit in first if unit.groups) == 1
    assert plan.group_bounds() == {"payments": 15.0}
    assert plan.lower_bound == 15.0
    assert plan.binding_group() == "payments"
    assert plan.makespan <= 1.1 * plan.lower_bound

    # Bigger group: with 8 agents the group (15 s) is the bound, not total/N (7.5 s).
    plan8 = plan_lpt(estimates, 8)
    assert plan8.lower_bound == 15.0 and plan8.binding_group() == "payments"
    assert plan8.makespan == pytest.approx(15.0)
    assert predict(estimates, [2, 4, 8])[2].bound_by == "payments"


def test_plain_lpt_would_break_the_limit_the_grouped_plan_keeps_it() -> None:
    # Two long units of a limit-1 group: LPT puts them side by side; the plan runs them in turn.
    estimates = [UnitEstimate(_unit(f"g{i}.py", groups={"g": 1}), 5.0) for i in range(2)]
    estimates += [UnitEstimate(_unit(f"x{i}.py"), 1.0) for i in range(10)]
    plan = plan_lpt(estimates, 2)
    assert plan.makespan == pytest.approx(10.0)
    assert plan.lower_bound == pytest.approx(10.0)
    assert [e.unit.unit_id for e in plan.shards[0].units][:2] == ["g0.py", "g1.py"]


def test_alone_units_go_first_while_every_agent_waits() -> None:
    estimates = [UnitEstimate(_unit("alone.py", alone=True), 3.0)]
    estimates += [UnitEstimate(_unit(f"x{i}.py"), 1.0) for i in range(8)]
    plan = plan_lpt(estimates, 4)
    assert plan.shards[0].units[0].unit.unit_id == "alone.py"
    assert plan.makespan == pytest.approx(5.0)  # 3 s alone, then 8 s over 4 agents
    assert plan.group_bounds() == {ALONE_BOUND: 5.0}
    assert [s.waits for s in plan.shards] == [0.0, 3.0, 3.0, 3.0]


def test_the_grouped_plan_is_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(5)
    estimates = _random_suite(rng, 80)
    reference = plan_lpt(estimates, 5)
    for _ in range(3):
        rng.shuffle(estimates)
        assert plan_lpt(estimates, 5) == reference


@pytest.mark.parametrize("seed", range(30))
def test_the_grouped_plan_is_a_greedy_schedule_within_its_bound(seed: int) -> None:
    rng = random.Random(seed)
    estimates = _random_suite(rng, rng.randint(1, 80))
    agents = rng.randint(1, 10)
    plan = plan_lpt(estimates, agents)
    assert sorted(e.unit.unit_id for s in plan.shards for e in s.units) == sorted(
        e.unit.unit_id for e in estimates
    )
    # While the plan has an agent waiting, a group (or an alone unit) holds the work back; so the
    # makespan is at most total/N plus every group's and the alone units' own time plus the
    # longest unit (Graham's argument, one term per reason to wait).
    waits_bound = sum(plan.group_bounds().values())
    assert plan.makespan <= plan.total_seconds / agents + waits_bound + plan.longest_unit_seconds + 1e-6
    # and the simulated run with exact durations keeps every limit
    seconds = {e.unit.unit_id: e.seconds for e in estimates}
    run = simulate(StaticScheduler(plan), lambda u: seconds[u.unit_id], range(agents))
    assert run.alone_overlaps == 0 and run.runs == _node_ids(estimates)


# -- the makespan at run time -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_benchmark_case_finishes_within_a_tenth_of_the_lower_bound(kind: str) -> None:
    estimates = _benchmark_case()
    plan = plan_lpt(estimates, 4)
    seconds = {e.unit.unit_id: e.seconds for e in estimates}
    run = simulate(make_scheduler(kind, plan), lambda u: seconds[u.unit_id], range(4))
    assert run.peak_by_group == {"payments": 1}
    assert run.makespan <= 1.1 * plan.lower_bound


@pytest.mark.parametrize("seed", range(10))
def test_dynamic_with_stale_durations_stays_within_its_stated_bound(seed: int) -> None:
    """Stated bound: total/N + the group's time + the longest unit, plus one unit per hand-over
    of the slot (an agent that is given a group's unit while it finishes its current one)."""
    rng = random.Random(seed)
    estimates = _benchmark_case()
    actual = {e.unit.unit_id: e.seconds * 2 ** rng.uniform(-1, 1) for e in estimates}
    plan = plan_lpt(estimates, 4)
    run = simulate(DynamicScheduler(plan), lambda u: actual[u.unit_id], range(4))
    total = sum(actual.values())
    group = sum(s for u, s in actual.items() if "Pay" in u)
    longest = max(actual.values())
    lower = max(total / 4, group, longest)
    print(
        f"\nseed {seed}: lower bound {lower:.2f}s, dynamic {run.makespan:.2f}s ({run.makespan / lower:.2f}x)"
    )
    assert run.peak_by_group == {"payments": 1}
    assert run.makespan <= total / 4 + group + longest
    assert run.makespan <= 1.25 * lower


# -- the slots, step by step ------------------------------------------------------------------


def test_slots_count_one_agent_once_and_free_on_finish_or_removal() -> None:
    slots = GroupSlots()
    g1, g2 = _unit("g1.py", groups={"g": 1}), _unit("g2.py", groups={"g": 1})
    slots.hold(0, g1)
    assert slots.allows(0, g2)  # the same agent runs them one after the other
    assert not slots.allows(1, g2)
    slots.hold(0, g2)
    slots.finished(0, "g1.py")
    assert not slots.allows(1, g1)
    slots.release(0)
    assert slots.allows(1, g1)


def test_an_alone_unit_waits_for_every_other_agent_and_holds_them_off() -> None:
    slots = GroupSlots()
    alone, plain = _unit("alone.py", alone=True), _unit("x.py")
    slots.hold(1, plain)
    assert not slots.allows(0, alone)
    assert slots.allows(1, alone)  # after what it holds, on the same agent
    slots.finished(1, "x.py")
    slots.hold(0, alone)
    assert not slots.allows(1, plain)
    assert slots.allows(0, plain)
    slots.finished(0, "alone.py")
    assert slots.allows(1, plain)


def test_dynamic_gives_the_slot_holder_the_groups_next_unit() -> None:
    estimates = [UnitEstimate(_unit(f"g{i}.py", groups={"g": 1}), 2.0) for i in range(3)]
    estimates += [UnitEstimate(_unit(f"x{i}.py"), 1.0) for i in range(6)]
    scheduler = DynamicScheduler(plan_lpt(estimates, 2))
    scheduler.add_agent(0)
    scheduler.add_agent(1)
    first = {a.agent_id: a.unit.unit_id for a in scheduler.schedule()}
    holder = next(a for a, u in first.items() if u.startswith("g"))
    other = 1 - holder
    scheduler.request_work(other)
    assert not scheduler.schedule()[0].unit.groups  # the slot is held elsewhere
    scheduler.request_work(holder)
    assert scheduler.schedule()[0].unit.unit_id == "g1.py"  # before g0 ends: same agent, in turn


@pytest.mark.parametrize("kind", KINDS)
def test_an_agent_blocked_by_a_slot_is_flushed_and_served_when_the_slot_frees(kind: str) -> None:
    # A plan (made by hand) that puts them side by side: the scheduler still keeps the limit.
    plan = Plan(tuple(Shard(i, (UnitEstimate(_unit(f"g{i}.py", groups={"g": 1}), 1.0),)) for i in range(2)))
    scheduler = make_scheduler(kind, plan)
    scheduler.add_agent(0)
    scheduler.add_agent(1)
    given = scheduler.schedule()
    assert len(given) == 1
    waiting = 1 - given[0].agent_id
    assert scheduler.wants_work(waiting)  # nothing it may take now: run what it holds
    scheduler.unit_finished(given[0].agent_id, given[0].unit.unit_id)
    assert [a.agent_id for a in scheduler.schedule()] == [waiting]


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_group_of_thousands_of_units_costs_no_scan_per_request(kind: str) -> None:
    """20,000 units, 2,000 of them in one limit-1 group that bounds the run: while the group is
    full, every other agent waits; no request may scan the queues (it did: minutes)."""
    rng = random.Random(1)
    estimates = [
        UnitEstimate(_unit(f"u{i:05}.py", 1, {"pay": 1} if i < 2000 else None), rng.lognormvariate(-2, 1.0))
        for i in range(20_000)
    ]
    started = time.perf_counter()
    plan = plan_lpt(estimates, 64)
    seconds = {e.unit.unit_id: e.seconds for e in estimates}
    run = simulate(make_scheduler(kind, plan), lambda u: seconds[u.unit_id], range(64))
    took = time.perf_counter() - started
    print(f"\n{kind}: planned and simulated 20,000 units on 64 agents in {took:.2f} s")
    assert run.peak_by_group == {"pay": 1}
    assert run.makespan == pytest.approx(plan.lower_bound, rel=0.01)
    assert took < 20.0  # a few seconds here, most of it the simulation's own
