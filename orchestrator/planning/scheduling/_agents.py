"""The bookkeeping every scheduler needs about agents: who is live and who wants work, in order."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.model import TestUnit
from orchestrator.protocol.errors import InternalError


class AgentBook:
    """Live agents, what their nodes have, and the order in which they asked for work.

    Owned by one scheduler (lpt.StaticScheduler, dynamic.DynamicScheduler); it decides nothing.
    What an agent holds is not here: the session is the one owner of outstanding work.
    """

    def __init__(self) -> None:
        self.live: set[int] = set()
        self._wanting: dict[int, None] = {}  # a dict keeps the order of the requests
        self._resources_by_agent: dict[int, Mapping[str, float]] = {}

    def add(self, agent_id: int, resources: Mapping[str, float] | None = None) -> None:
        """A ready agent, wanting work at once; `resources` are its node's (none: no custom ones)."""
        if agent_id in self.live:
            raise InternalError(f"agent {agent_id} was added twice")
        self.live.add(agent_id)
        self._wanting[agent_id] = None
        self._resources_by_agent[agent_id] = dict(resources or {})

    def can_run(self, agent_id: int, unit: TestUnit) -> bool:
        """True when the agent's node has every resource the unit needs."""
        return not unit.resources or unit.fits(self._resources_by_agent.get(agent_id, {}))

    def node_key(self, agent_id: int) -> tuple[tuple[str, float], ...]:
        """The agent's node resources as a value: agents with equal keys can run the same units."""
        return tuple(sorted(self._resources_by_agent.get(agent_id, {}).items()))

    def runnable_anywhere(self, unit: TestUnit) -> bool:
        """True when some live agent can run the unit (asked after every batch of events: most
        units need nothing, and are answered without looking at the agents)."""
        if not unit.resources:
            return bool(self.live)
        return any(self.can_run(agent_id, unit) for agent_id in self.live)

    def request(self, agent_id: int) -> None:
        if agent_id in self.live:
            self._wanting[agent_id] = None

    def wanting(self) -> list[int]:
        """Agents that want work, in the order they asked."""
        return list(self._wanting)

    def wants(self, agent_id: int) -> bool:
        return agent_id in self._wanting

    def served(self, agent_id: int) -> None:
        """The agent got an assignment: it no longer wants work."""
        self._wanting.pop(agent_id, None)

    def remove(self, agent_id: int) -> None:
        self.live.discard(agent_id)
        self._wanting.pop(agent_id, None)
