"""The agent's one record of work assigned and not yet ended there, in run order.

Owned by agents/agent.py's AgentMachine: it adds what an Assign brings, marks the units whose
tests started, ends tests as the worker reports them (or crashes, times out, does not collect
them), and hands everything still pending to a new worker, grouped by unit.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["PendingWork"]


class PendingWork:
    """The (unit id, node id) pairs assigned and not yet ended, and the units half run."""

    def __init__(self) -> None:
        # node id -> unit id, in run order: the one record.
        self._unit_of_node: dict[str, str] = {}
        # Derived from _unit_of_node (kept by add/end only): node ids still pending per unit.
        self._left_per_unit: Counter[str] = Counter()
        self._started_units: set[str] = set()

    def __len__(self) -> int:
        return len(self._unit_of_node)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._unit_of_node

    def items(self) -> list[tuple[str, str]]:
        """(unit id, node id) of the work pending, in run order."""
        return [(unit_id, node_id) for node_id, unit_id in self._unit_of_node.items()]

    def add(self, unit_id: str, node_id: str) -> None:
        """`node_id` of `unit_id` is assigned here (the caller refuses a node id twice)."""
        self._unit_of_node[node_id] = unit_id
        self._left_per_unit[unit_id] += 1

    def mark_started(self, node_id: str) -> None:
        """A test started: its unit, if pending here, is now half run."""
        unit_id = self._unit_of_node.get(node_id)
        if unit_id is not None:
            self._started_units.add(unit_id)

    def is_started(self, unit_id: str) -> bool:
        """Whether a test of `unit_id` started here and the unit has not ended."""
        return unit_id in self._started_units

    def end(self, node_id: str) -> tuple[str, bool] | None:
        """`node_id` has its end here: (its unit id, whether the unit has ended with it).

        None if `node_id` was not pending here.
        """
        unit_id = self._unit_of_node.pop(node_id, None)
        if unit_id is None:
            return None
        self._left_per_unit[unit_id] -= 1
        if self._left_per_unit[unit_id] != 0:
            return unit_id, False
        del self._left_per_unit[unit_id]
        self._started_units.discard(unit_id)
        return unit_id, True

    def by_unit(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """((unit_id, (node_ids...)), ...): consecutive pending node ids of the same unit together."""
        units: list[tuple[str, list[str]]] = []
        for unit_id, node_id in self.items():
            if units and units[-1][0] == unit_id:
                units[-1][1].append(node_id)
            else:
                units.append((unit_id, [node_id]))
        return tuple((unit_id, tuple(node_ids)) for unit_id, node_ids in units)
