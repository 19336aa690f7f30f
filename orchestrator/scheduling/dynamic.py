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

from orchestrator.model import Assignment, Plan, TestUnit
from orchestrator.scheduling._agents import AgentBook
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
        self._agents = AgentBook()
        self._stolen_units = 0
        self._handed_out = 0

    def add_agent(self, agent_id: int) -> None:
        """An agent is ready and wants its first unit. Called by the session on AgentReady."""
        self._agents.add(agent_id)

    def request_work(self, agent_id: int) -> None:
        """The agent is running dry and wants its next unit."""
        self._agents.request(agent_id)

    def schedule(self) -> list[Assignment]:
        """One unit for each agent that wants work, in the order they asked."""
        assignments: list[Assignment] = []
        for agent_id in self._agents.wanting():
            unit = self._next_unit(agent_id)
            if unit is None:
                break  # nothing is queued anywhere, so nobody else can be served either
            self._agents.served(agent_id)
            self._handed_out += 1
            assignments.append(Assignment(agent_id, unit))
        return assignments

    def remove_agent(self, agent_id: int) -> None:
        """Forget the agent; its queue stays where it is, to be stolen by the others."""
        self._agents.remove(agent_id)

    def requeue(self, units: Sequence[TestUnit]) -> None:
        """Put units in the shared queue, served before anything else (empty ones are dropped)."""
        for unit in units:
            if unit.node_ids:
                heapq.heappush(
                    self._shared_queue, (-self._seconds.of(unit), unit.unit_id, self._arrivals, unit)
                )
                self._arrivals += 1

    def has_queued_work(self) -> bool:
        return bool(self._shared_queue or self._queued_units)

    def wants_work(self, agent_id: int) -> bool:
        return self._agents.wants(agent_id) and not (self._shared_queue or self._queued_units)

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            queued_units=self._queued_units + len(self._shared_queue),
            handed_out_units=self._handed_out,
            stolen_units=self._stolen_units,
            agents=len(self._agents.live),
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
