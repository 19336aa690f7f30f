"""The slots of test groups a scheduler has handed out: who holds which, until the unit finishes.

A unit of a group holds `weight` slots of that group from the moment it is assigned until its
agent reports it finished (`Scheduler.unit_finished`) or the agent is removed; a group never
has more than `limit` slots held across all agents. An agent runs the units it holds one after
the other, so the units one agent holds count once: the largest weight among them, not the sum.
That is what lets an agent that holds a slot be given the group's next unit before it has
finished the current one, with no gap in between.

An `alone` unit holds the whole cluster: it is only given to an agent when no other agent holds
anything, and while it is held nothing is given to any other agent.

Owned by one scheduler (lpt.StaticScheduler, dynamic.DynamicScheduler). It records slots, not
tests: what is outstanding test by test stays the session's.
"""

from __future__ import annotations

from orchestrator.model import TestUnit


class GroupSlots:
    """Units handed out and not yet finished, per agent, as far as limits and `alone` go."""

    def __init__(self) -> None:
        self._held_by_agent: dict[int, dict[str, TestUnit]] = {}
        # Agents holding an alone unit; at most one, unless a unit was handed out to be requeued.
        self._alone_agents: set[int] = set()

    def hold(self, agent_id: int, unit: TestUnit) -> None:
        """`unit` was assigned to the agent: it holds its slots until it finishes."""
        self._held_by_agent.setdefault(agent_id, {})[unit.unit_id] = unit
        if unit.alone:
            self._alone_agents.add(agent_id)

    def finished(self, agent_id: int, unit_id: str) -> None:
        """The agent finished `unit_id`: its slots are free (a unit it does not hold: nothing)."""
        held = self._held_by_agent.get(agent_id)
        if held is None or held.pop(unit_id, None) is None:
            return
        if not held:
            del self._held_by_agent[agent_id]
        if agent_id in self._alone_agents and not any(u.alone for u in held.values()):
            self._alone_agents.discard(agent_id)

    def release(self, agent_id: int) -> None:
        """The agent is gone: everything it held is free (the session requeues its tests)."""
        self._held_by_agent.pop(agent_id, None)
        self._alone_agents.discard(agent_id)

    def allows(self, agent_id: int, unit: TestUnit) -> bool:
        """True when giving `unit` to the agent now keeps every limit and every alone unit alone."""
        if self._alone_agents - {agent_id}:
            return False
        if unit.alone:
            return not any(a != agent_id for a in self._held_by_agent)
        for name, limit in unit.groups:
            if self.used(name, but=agent_id) + max(unit.weight, self._weight(agent_id, name)) > limit:
                return False
        return True

    def used(self, group: str, but: int | None = None) -> int:
        """Slots of `group` held now, by every agent but `but`."""
        return sum(self._weight(a, group) for a in self._held_by_agent if a != but)

    def holds_group(self, agent_id: int, group: str) -> bool:
        return self._weight(agent_id, group) > 0

    def holding(self, agent_id: int) -> tuple[TestUnit, ...]:
        return tuple(self._held_by_agent.get(agent_id, {}).values())

    def _weight(self, agent_id: int, group: str) -> int:
        """What the agent's held units of `group` count: one after another, so the largest."""
        return max(
            (u.weight for u in self._held_by_agent.get(agent_id, {}).values() if group in u.group_names),
            default=0,
        )
