"""Work stealing from an LPT plan: the plan is the starting point, actual speed decides the rest.

`DynamicScheduler` starts every agent on its planned shard but hands it out one unit per
request, so an agent that runs ahead of its predictions takes work that was planned for a
slower one. Stale durations, a slow machine, or an agent that never came up then cost little:
nobody idles while a unit is still queued anywhere.

The rules, in the order an agent that wants work is served:

1. requeued units (from an agent that died) wait in one shared queue, longest first: they
   are late already;
2. the agent's own planned queue, longest first (LPT order);
3. otherwise it steals one whole unit: from the agent with the most queued predicted seconds
   (ties: lowest agent id), that agent's largest queued unit. Largest, because the thief is
   idle now and the largest piece evens the loads out most, as LPT does; the victim keeps
   its smaller units. Queues of agents that never came up or were removed are robbed the
   same way, which is how their planned work gets done.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

from orchestrator.errors import InternalError
from orchestrator.model import Assignment, Plan, TestUnit
from orchestrator.scheduling.lpt import PlannedSeconds
from orchestrator.scheduling.protocol import SchedulerStatistics


class DynamicScheduler:
    """Per-agent queues from the plan, one unit per request, stealing when a queue runs dry.

    Implements the Scheduler protocol; owned by the session.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._seconds = PlannedSeconds(plan)
        self._queued_units_by_agent: dict[int, deque[TestUnit]] = {}
        self._queued_seconds_by_agent: dict[int, float] = {}
        for shard in plan.shards:
            ordered = sorted(shard.units, key=lambda e: (-e.seconds, e.unit.unit_id))
            self._queued_units_by_agent[shard.agent_id] = deque(e.unit for e in ordered)
            self._queued_seconds_by_agent[shard.agent_id] = sum(e.seconds for e in ordered)
        self._queued_units = sum(map(len, self._queued_units_by_agent.values()))
        # Requeued units: a heap of (-seconds, unit_id, arrival, unit), longest first.
        self._shared_queue: list[tuple[float, str, int, TestUnit]] = []
        self._arrivals = 0
        self._outstanding_units_by_agent: dict[int, dict[str, TestUnit]] = {}
        self._live_agents: set[int] = set()
        self._wanting_agents: dict[int, None] = {}  # a dict keeps the order of the requests
        self._completed_units = 0
        self._stolen_units = 0

    def add_agent(self, agent_id: int) -> None:
        """An agent is ready and wants its first unit. Called by the session on AgentReady."""
        if agent_id in self._live_agents:
            raise InternalError(f"agent {agent_id} was added twice")
        self._live_agents.add(agent_id)
        self._outstanding_units_by_agent.setdefault(agent_id, {})
        self._wanting_agents[agent_id] = None

    def request_work(self, agent_id: int) -> None:
        """The agent is running dry and wants its next unit."""
        if agent_id in self._live_agents:
            self._wanting_agents[agent_id] = None

    def schedule(self) -> list[Assignment]:
        """One unit for each agent that wants work, in the order they asked."""
        assignments: list[Assignment] = []
        for agent_id in list(self._wanting_agents):
            unit = self._next_unit(agent_id)
            if unit is None:
                break  # nothing is queued anywhere, so nobody else can be served either
            outstanding = self._outstanding_units_by_agent[agent_id]
            if unit.unit_id in outstanding:
                raise InternalError(f"unit {unit.unit_id!r} given twice to agent {agent_id}")
            outstanding[unit.unit_id] = unit
            del self._wanting_agents[agent_id]
            assignments.append(Assignment(agent_id, unit))
        return assignments

    def mark_unit_complete(self, agent_id: int, unit_id: str) -> None:
        outstanding = self._outstanding_units_by_agent.get(agent_id, {})
        if outstanding.pop(unit_id, None) is None:
            raise InternalError(f"agent {agent_id} completed unit {unit_id!r}, which it was not given")
        self._completed_units += 1

    def remove_agent(self, agent_id: int) -> tuple[TestUnit, ...]:
        """Forget the agent; return the units it held and had not completed.

        Its queue stays where it is, to be stolen by the others.
        """
        self._live_agents.discard(agent_id)
        self._wanting_agents.pop(agent_id, None)
        return tuple(self._outstanding_units_by_agent.pop(agent_id, {}).values())

    def requeue(self, units: Sequence[TestUnit]) -> None:
        """Put units in the shared queue, served before anything else (empty ones are dropped)."""
        for unit in units:
            if unit.node_ids:
                heapq.heappush(
                    self._shared_queue, (-self._seconds.of(unit), unit.unit_id, self._arrivals, unit)
                )
                self._arrivals += 1

    @property
    def finished(self) -> bool:
        return not (
            self._shared_queue or self._queued_units or any(self._outstanding_units_by_agent.values())
        )

    def wants_work(self, agent_id: int) -> bool:
        return agent_id in self._wanting_agents and not (self._shared_queue or self._queued_units)

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            queued_units=self._queued_units + len(self._shared_queue),
            outstanding_units=sum(map(len, self._outstanding_units_by_agent.values())),
            completed_units=self._completed_units,
            stolen_units=self._stolen_units,
            agents=len(self._live_agents),
        )

    def _next_unit(self, agent_id: int) -> TestUnit | None:
        if self._shared_queue:
            return heapq.heappop(self._shared_queue)[-1]
        if self._queued_units_by_agent.get(agent_id):
            return self._pop_queued(agent_id)
        victims = [a for a, queue in self._queued_units_by_agent.items() if queue]
        if not victims:
            return None
        victim = max(victims, key=lambda a: (self._queued_seconds_by_agent[a], -a))
        self._stolen_units += 1
        return self._pop_queued(victim)

    def _pop_queued(self, agent_id: int) -> TestUnit:
        unit = self._queued_units_by_agent[agent_id].popleft()
        self._queued_units -= 1
        self._queued_seconds_by_agent[agent_id] -= self._seconds.of(unit)
        return unit
