"""Longest-processing-time-first planning, and the static scheduler that follows the plan.

`plan_lpt` is called by the CLI after the estimates (and by `orchestrate plan`): it packs
units into agents so that predicted finishing times are as even as one greedy pass makes them
(at most 4/3 of the optimum). `StaticScheduler` then hands each agent its whole shard when
it comes up, the behaviour of pytest-split style sharding: no coordination after the start,
so the plan is only as good as the durations it was made from.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from orchestrator.model import Assignment, Plan, Shard, TestUnit, UnitEstimate
from orchestrator.planning.scheduling._agents import AgentBook
from orchestrator.planning.scheduling._slots import GroupSlots
from orchestrator.planning.scheduling.grouped import plan_grouped
from orchestrator.planning.scheduling.protocol import SchedulerStatistics
from orchestrator.protocol.errors import InternalError, UsageError


def plan_lpt(estimates: Sequence[UnitEstimate], agents: int) -> Plan:
    """Pack units into `agents` shards, longest unit first onto the least loaded agent.

    With test groups or alone units, scheduling/grouped.py plans instead, in start order.
    Deterministic whatever the input order: units are taken by (longest first, unit_id) and
    a tie between equally loaded agents goes to the lowest agent id, so every CI runner
    computing the plan from the same durations gets the same fingerprint. Each shard lists
    its units longest first. O(units log units) overall.
    """
    if agents < 1:
        raise UsageError(f"cannot plan for {agents} agents; at least one is needed")
    if len({e.unit.unit_id for e in estimates}) != len(estimates):
        raise InternalError("two units share a unit_id; a scheduler could not tell them apart")
    ordered = sorted(estimates, key=lambda e: (-e.seconds, e.unit.unit_id))
    if any(e.unit.constrained for e in ordered):
        return plan_grouped(ordered, agents)
    loads = [(0.0, agent_id) for agent_id in range(agents)]  # sorted, hence already a heap
    units_by_agent: list[list[UnitEstimate]] = [[] for _ in range(agents)]
    for estimate in ordered:
        load, agent_id = loads[0]
        units_by_agent[agent_id].append(estimate)
        heapq.heapreplace(loads, (load + estimate.seconds, agent_id))
    return Plan(tuple(Shard(agent_id, tuple(units)) for agent_id, units in enumerate(units_by_agent)))


class PlannedSeconds:
    """Predicted seconds of a unit of the plan, or of what is left of one after a requeue.

    Used by both schedulers to weigh units. A subset (same unit_id, fewer tests) is
    predicted at the unit's estimate times the share of its tests left; a unit the plan does
    not know gets the plan's mean seconds per test.
    """

    def __init__(self, plan: Plan) -> None:
        self._seconds_and_tests_by_unit_id = {
            e.unit.unit_id: (e.seconds, len(e.unit.node_ids)) for s in plan.shards for e in s.units
        }
        tests = plan.tests
        self._seconds_per_test = plan.total_seconds / tests if tests else 0.0

    def of(self, unit: TestUnit) -> float:
        planned = self._seconds_and_tests_by_unit_id.get(unit.unit_id)
        if planned is None or planned[1] == 0:
            return self._seconds_per_test * len(unit.node_ids)
        seconds, tests = planned
        return seconds * len(unit.node_ids) / tests


class StaticScheduler:
    """Gives every agent its whole planned shard at once; implements the Scheduler protocol.

    Owned by the session. Requeued units (from an agent that died, crash retries, reruns) go
    to the live agent that was given the least predicted work so far, longest unit first. The
    shard of an agent that never comes up, or is removed before it got it, is requeued the same
    way, so no unit is lost. A unit that needs resources goes only to an agent whose node has
    them: a planned one its agent's node lacks is requeued; a requeued one no live agent can
    run waits (for a later agent, or for the session's `take_unrunnable`).

    With test groups a shard goes out in plan order up to its first unit of a group: that one
    goes out once the agent has finished what it holds and the group's limit allows
    (scheduling/_slots.py), and the rest follows it; while an alone unit is queued nothing
    else goes out.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._seconds = PlannedSeconds(plan)
        # Planned units not handed out yet, in plan order (longest first, or start order).
        self._planned_units_by_agent = {s.agent_id: [e.unit for e in s.units] for s in plan.shards if s.units}
        self._needs_resources = any(e.unit.resources for s in plan.shards for e in s.units)
        self._requeued_units: list[TestUnit] = []
        self._given_seconds_by_agent: dict[int, float] = {}
        self._handed_out = 0
        self._agents = AgentBook()
        self._slots = GroupSlots()
        # Agents whose shard goes out, in the order they first wanted work.
        self._released: dict[int, None] = {}
        self._alone_queued = sum(1 for s in plan.shards for e in s.units if e.unit.alone)

    def add_agent(self, agent_id: int, resources: Mapping[str, float] | None = None) -> None:
        """An agent is ready; it wants its shard. Called by the session on AgentReady."""
        self._agents.add(agent_id, resources)
        self._given_seconds_by_agent.setdefault(agent_id, 0.0)

    def request_work(self, agent_id: int, running_left: float = 0.0) -> None:
        """The agent is running dry; only requeued units can still come its way."""
        self._agents.request(agent_id)

    def schedule(self) -> list[Assignment]:
        """Shards for agents that came up, then requeued units to the least loaded agents."""
        assignments: list[Assignment] = []
        self._released.update(dict.fromkeys(self._agents.wanting()))
        for agent_id in self._released:
            planned = self._planned_units_by_agent.get(agent_id)
            while planned:
                unit = planned[0]
                if not self._agents.can_run(agent_id, unit):
                    self._requeued_units.append(planned.pop(0))
                elif self._releasable(agent_id, unit):
                    assignments.append(self._give(agent_id, planned.pop(0)))
                else:
                    break  # the rest waits for a slot, in plan order
            if planned == []:
                del self._planned_units_by_agent[agent_id]
        if self._requeued_units and self._agents.live:
            self._requeued_units.sort(key=lambda u: (-self._seconds.of(u), u.unit_id))
            waiting = []
            for unit in self._requeued_units:
                able = [
                    a for a in self._agents.live if self._agents.can_run(a, unit) and self._may_take(a, unit)
                ]
                if not able:
                    waiting.append(unit)
                    continue
                agent_id = min(able, key=lambda a: (self._given_seconds_by_agent[a], a))
                assignments.append(self._give(agent_id, unit))
            self._requeued_units = waiting
        return assignments

    def unit_finished(self, agent_id: int, unit_id: str) -> None:
        """The agent finished the unit: its test groups' slots are free."""
        self._slots.finished(agent_id, unit_id)

    def remove_agent(self, agent_id: int) -> None:
        """Forget the agent; a shard it never got is queued for the others."""
        self._agents.remove(agent_id)
        self._slots.release(agent_id)
        self._released.pop(agent_id, None)
        self._requeued_units.extend(self._planned_units_by_agent.pop(agent_id, []))

    def requeue(self, units: Sequence[TestUnit]) -> None:
        """Queue units again (empty ones are dropped); the next `schedule` places them."""
        kept = [u for u in units if u.node_ids]
        self._requeued_units.extend(kept)
        self._alone_queued += sum(u.alone for u in kept)

    def take_unrunnable(self) -> list[TestUnit]:
        """Remove and return the queued units no live agent can run (the session ends them)."""
        if self._agents.live and not self._needs_resources:
            return []  # only a unit that needs resources can be unrunnable while an agent lives
        taken = [u for u in self._requeued_units if not self._agents.runnable_anywhere(u)]
        self._requeued_units = [u for u in self._requeued_units if self._agents.runnable_anywhere(u)]
        for agent_id, units in list(self._planned_units_by_agent.items()):
            taken += [u for u in units if not self._agents.runnable_anywhere(u)]
            kept = [u for u in units if self._agents.runnable_anywhere(u)]
            if kept:
                self._planned_units_by_agent[agent_id] = kept
            else:
                del self._planned_units_by_agent[agent_id]
        self._alone_queued -= sum(u.alone for u in taken)
        return taken

    def has_queued_work(self) -> bool:
        return bool(self._requeued_units or self._planned_units_by_agent)

    def wants_work(self, agent_id: int) -> bool:
        """It asked, and nothing queued can be given to it now: it may run dry (Flush)."""
        if not self._agents.wants(agent_id):
            return False
        planned = self._planned_units_by_agent.get(agent_id)
        if planned and self._releasable(agent_id, planned[0]):
            return False
        return not any(
            self._agents.can_run(agent_id, u) and self._may_take(agent_id, u) for u in self._requeued_units
        )

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            queued_units=sum(map(len, self._planned_units_by_agent.values())) + len(self._requeued_units),
            handed_out_units=self._handed_out,
            stolen_units=0,
            agents=len(self._agents.live),
        )

    def _may_take(self, agent_id: int, unit: TestUnit) -> bool:
        """The groups' limits (and any alone unit, queued or running) allow the unit there now."""
        if self._alone_queued and not unit.alone:
            return False
        return self._slots.allows(agent_id, unit)

    def _releasable(self, agent_id: int, unit: TestUnit) -> bool:
        """Whether the agent's next planned unit goes out now. A unit of a group waits until the
        agent has finished what it holds (a slot taken earlier would idle while the agent runs
        the rest of its shard), unless the agent already holds a slot of each of its groups."""
        if not self._may_take(agent_id, unit):
            return False
        if not unit.constrained or not self._slots.holds_anything(agent_id):
            return True
        return not unit.alone and self._slots.held_groups(agent_id).issuperset(unit.group_names)

    def _give(self, agent_id: int, unit: TestUnit) -> Assignment:
        self._agents.served(agent_id)
        self._slots.hold(agent_id, unit)
        self._alone_queued -= unit.alone
        self._given_seconds_by_agent[agent_id] += self._seconds.of(unit)
        self._handed_out += 1
        return Assignment(agent_id, unit)
