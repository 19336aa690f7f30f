"""Planning a suite with test groups: list scheduling in predicted time, limits kept at every moment.

`plan_lpt` hands its work here when some unit belongs to a group or must run alone. LPT's packing
alone would put two units of a limit-1 group side by side on two agents; the plan must say when
each unit can start, so this simulates the run the plan predicts:

1. alone units first, one after another on agent 0, while every other agent waits: nothing may
   run beside them, and at the start of a run the other agents are still coming up anyway;
2. then, each time an agent is free (earliest first, lowest id on ties), it takes the unit of
   highest priority that its groups' free slots allow at that moment; a unit's priority is its
   own seconds, or, for a unit of a group, the group's remaining slot-seconds over its limit
   when that is larger. A group that alone needs longer than everything else is so started at
   once and kept going, one unit after another, while the other agents fill in around it;
3. an agent that can take nothing waits for the next unit of a group to end (a wait in the
   plan: `Shard.waits`).

Each shard lists its units in the order they start, which is the order the schedulers hand them
out in. A greedy list schedule: with groups it is within (2 - 1/N) of the optimum for a single
limit-1 group (Graham's argument: while the group's unit runs, either an agent is busy with other
work or the group itself is), which the unit tests check against max(total/N, group, longest).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence

from orchestrator.model import Plan, Shard, TestUnit, UnitEstimate


def plan_grouped(ordered: Sequence[UnitEstimate], agents: int) -> Plan:
    """Plan `ordered` (longest first, ties by unit_id) on `agents` with limits and alone kept."""
    units_by_agent: list[list[UnitEstimate]] = [[] for _ in range(agents)]
    busy = [0.0] * agents
    alone = [e for e in ordered if e.unit.alone]
    start = sum(e.seconds for e in alone)
    units_by_agent[0].extend(alone)
    busy[0] = start
    free = [(start, agent_id) for agent_id in range(agents)]  # sorted, hence a heap
    plain = [e for e in ordered if not e.unit.alone and not e.unit.groups]
    grouped = _GroupedQueue([e for e in ordered if not e.unit.alone and e.unit.groups])
    running: list[tuple[float, int, TestUnit]] = []  # (end, serial, unit) of grouped units, a heap
    serial = 0
    next_plain = 0
    while next_plain < len(plain) or grouped:
        now, agent_id = heapq.heappop(free)
        while running and running[0][0] <= now + 1e-12:
            grouped.release(heapq.heappop(running)[2])
        pick = grouped.best(plain[next_plain].seconds if next_plain < len(plain) else -1.0)
        if pick is None and next_plain < len(plain):
            estimate = plain[next_plain]
            next_plain += 1
        elif pick is not None:
            estimate = pick
            grouped.take(estimate)
            serial += 1
            heapq.heappush(running, (now + estimate.seconds, serial, estimate.unit))
        else:
            # Only grouped units are left and none fits now: wait for the next one to end.
            heapq.heappush(free, (running[0][0], agent_id))
            continue
        units_by_agent[agent_id].append(estimate)
        busy[agent_id] += estimate.seconds
        heapq.heappush(free, (now + estimate.seconds, agent_id))
    finish = {agent_id: at for at, agent_id in free}
    return Plan(
        tuple(
            Shard(agent_id, tuple(units), waits=max(0.0, finish[agent_id] - busy[agent_id]) if units else 0.0)
            for agent_id, units in enumerate(units_by_agent)
        )
    )


class _GroupedQueue:
    """The units of groups not planned yet, with each group's free slots and remaining load.

    Units with the same groups and weight fit or not alike, so they wait in one queue (longest
    first) and only its head is ever a candidate: a step costs the number of such kinds.
    """

    def __init__(self, estimates: Sequence[UnitEstimate]) -> None:
        self._queues: dict[tuple[tuple[tuple[str, int], ...], int], deque[UnitEstimate]] = {}
        self._free: dict[str, int] = {}
        self._load: dict[str, float] = {}
        for estimate in estimates:
            unit = estimate.unit
            self._queues.setdefault((unit.groups, unit.weight), deque()).append(estimate)
            for name, limit in unit.groups:
                self._free[name] = limit
                self._load[name] = self._load.get(name, 0.0) + estimate.seconds * unit.weight / limit

    def __bool__(self) -> bool:
        return any(self._queues.values())

    def best(self, plain_priority: float) -> UnitEstimate | None:
        """The queued unit of highest priority that fits the free slots now, if it beats
        `plain_priority` (the seconds of the longest unit in no group; -1 when none is left)."""
        best: UnitEstimate | None = None
        best_priority = plain_priority
        for queue in self._queues.values():
            if not queue or not self._fits(queue[0].unit):
                continue
            head = queue[0]
            priority = max(head.seconds, *(self._load[name] for name in head.unit.group_names))
            # Ties go to the lower unit id, so the plan is the same whatever the input order.
            if priority > best_priority or (
                best is not None and priority == best_priority and head.unit.unit_id < best.unit.unit_id
            ):
                best, best_priority = head, priority
        return best

    def take(self, estimate: UnitEstimate) -> None:
        unit = estimate.unit
        self._queues[(unit.groups, unit.weight)].popleft()
        for name, limit in unit.groups:
            self._free[name] -= min(unit.weight, limit)
            self._load[name] -= estimate.seconds * unit.weight / limit

    def release(self, unit: TestUnit) -> None:
        for name, limit in unit.groups:
            self._free[name] += min(unit.weight, limit)

    def _fits(self, unit: TestUnit) -> bool:
        return all(self._free[name] >= min(unit.weight, limit) for name, limit in unit.groups)
