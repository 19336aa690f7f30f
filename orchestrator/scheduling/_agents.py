"""The bookkeeping every scheduler needs about agents: who is live, who wants work, what each holds."""

from __future__ import annotations

from orchestrator.errors import InternalError
from orchestrator.model import Assignment, TestUnit


class AgentBook:
    """Live agents, the order in which they asked for work, and the units each holds.

    Owned by one scheduler (lpt.StaticScheduler, dynamic.DynamicScheduler); it decides nothing.
    """

    def __init__(self) -> None:
        self.live: set[int] = set()
        self._wanting: dict[int, None] = {}  # a dict keeps the order of the requests
        self._outstanding_by_agent: dict[int, dict[str, TestUnit]] = {}
        self.completed = 0

    def add(self, agent_id: int) -> None:
        """A ready agent, wanting work at once."""
        if agent_id in self.live:
            raise InternalError(f"agent {agent_id} was added twice")
        self.live.add(agent_id)
        self._outstanding_by_agent.setdefault(agent_id, {})
        self._wanting[agent_id] = None

    def request(self, agent_id: int) -> None:
        if agent_id in self.live:
            self._wanting[agent_id] = None

    def wanting(self) -> list[int]:
        """Agents that want work, in the order they asked."""
        return list(self._wanting)

    def wants(self, agent_id: int) -> bool:
        return agent_id in self._wanting

    def give(self, agent_id: int, unit: TestUnit) -> Assignment:
        """Record `unit` as held by the agent, which no longer wants work."""
        outstanding = self._outstanding_by_agent[agent_id]
        if unit.unit_id in outstanding:
            raise InternalError(f"unit {unit.unit_id!r} given twice to agent {agent_id}")
        outstanding[unit.unit_id] = unit
        self._wanting.pop(agent_id, None)
        return Assignment(agent_id, unit)

    def complete(self, agent_id: int, unit_id: str) -> None:
        if self._outstanding_by_agent.get(agent_id, {}).pop(unit_id, None) is None:
            raise InternalError(f"agent {agent_id} completed unit {unit_id!r}, which it was not given")
        self.completed += 1

    def remove(self, agent_id: int) -> list[TestUnit]:
        """Forget the agent; return the units it held and had not completed."""
        self.live.discard(agent_id)
        self._wanting.pop(agent_id, None)
        return list(self._outstanding_by_agent.pop(agent_id, {}).values())

    def held(self, agent_id: int) -> list[TestUnit]:
        return list(self._outstanding_by_agent.get(agent_id, {}).values())

    def outstanding(self) -> int:
        return sum(map(len, self._outstanding_by_agent.values()))
