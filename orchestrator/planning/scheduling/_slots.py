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

from collections import Counter
from collections.abc import Mapping

from orchestrator.model import TestUnit


class GroupSlots:
    """Units handed out and not yet finished, per agent, as far as limits and `alone` go.

    Every question costs O(groups of the unit): the slots in use are kept as counts, updated as
    units are held and finish, since a static scheduler's agents hold whole shards at once.
    """

    def __init__(self) -> None:
        self._held_by_agent: dict[int, dict[str, TestUnit]] = {}
        # agent -> group -> how many held units of each weight: the agent counts the largest.
        self._weights_by_agent: dict[int, dict[str, Counter[int]]] = {}
        self._used_by_group: Counter[str] = Counter()
        # Agents holding an alone unit, and how many each holds.
        self._alone_by_agent: Counter[int] = Counter()

    def hold(self, agent_id: int, unit: TestUnit) -> None:
        """`unit` was assigned to the agent: it holds its slots until it finishes."""
        self._held_by_agent.setdefault(agent_id, {})[unit.unit_id] = unit
        weights = self._weights_by_agent.setdefault(agent_id, {})
        for name in unit.group_names:
            counts = weights.setdefault(name, Counter())
            before = max(counts, default=0)
            counts[unit.weight] += 1
            self._used_by_group[name] += max(counts) - before
        if unit.alone:
            self._alone_by_agent[agent_id] += 1

    def finished(self, agent_id: int, unit_id: str) -> None:
        """The agent finished `unit_id`: its slots are free (a unit it does not hold: nothing)."""
        held = self._held_by_agent.get(agent_id)
        unit = held.pop(unit_id, None) if held is not None else None
        if unit is None:
            return
        if not held:
            del self._held_by_agent[agent_id]
        weights = self._weights_by_agent[agent_id]
        for name in unit.group_names:
            counts = weights[name]
            before = max(counts)
            counts[unit.weight] -= 1
            if not counts[unit.weight]:
                del counts[unit.weight]
            self._used_by_group[name] -= before - max(counts, default=0)
            if not counts:
                del weights[name]
        if unit.alone:
            self._alone_by_agent[agent_id] -= 1
            if not self._alone_by_agent[agent_id]:
                del self._alone_by_agent[agent_id]

    def held(self, agent_id: int) -> list[TestUnit]:
        """The units the agent holds (assigned, not finished), in the order it was given them."""
        return list(self._held_by_agent.get(agent_id, {}).values())

    def release(self, agent_id: int) -> None:
        """The agent is gone: everything it held is free (the session requeues its tests)."""
        self._held_by_agent.pop(agent_id, None)
        for name, counts in self._weights_by_agent.pop(agent_id, {}).items():
            self._used_by_group[name] -= max(counts)
        self._alone_by_agent.pop(agent_id, None)

    def allows(self, agent_id: int, unit: TestUnit) -> bool:
        """True when giving `unit` to the agent now keeps every limit and every alone unit alone."""
        if self._alone_by_agent and _others(self._alone_by_agent, agent_id):
            return False
        if unit.alone:
            return not _others(self._held_by_agent, agent_id)
        for name, limit in unit.groups:
            mine = self._weight(agent_id, name)
            if self._used_by_group[name] - mine + max(unit.weight, mine) > limit:
                return False
        return True

    def used(self, group: str) -> int:
        """Slots of `group` held now, by every agent."""
        return self._used_by_group[group]

    def holds_anything(self, agent_id: int) -> bool:
        return agent_id in self._held_by_agent

    def held_groups(self, agent_id: int) -> frozenset[str]:
        """The groups the agent holds a slot of."""
        return frozenset(self._weights_by_agent.get(agent_id, ()))

    def _weight(self, agent_id: int, group: str) -> int:
        """What the agent's held units of `group` count: one after another, so the largest."""
        counts = self._weights_by_agent.get(agent_id, {}).get(group)
        return max(counts) if counts else 0


def _others(by_agent: Mapping[int, object], agent_id: int) -> bool:
    """Whether some agent other than `agent_id` has an entry."""
    return len(by_agent) > 1 or (len(by_agent) == 1 and agent_id not in by_agent)
