"""One agent's planned units not handed out yet, in plan order, indexed by what decides who may take them.

Whether an agent may take a unit now depends only on the unit's kind: its test groups, weight,
alone, and the resources it needs. So the queue keeps one deque per kind, each in plan order,
and the first unit an agent may take is the earliest head among the kinds it may take: a
question costs the number of kinds (a few), not the length of the queue, however many units of
a full group wait in it. Owned by dynamic.DynamicScheduler, one per planned shard.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator

from orchestrator.model import TestUnit

Kind = tuple[tuple[tuple[str, int], ...], int, bool, tuple[tuple[str, float], ...]]


def kind_of(unit: TestUnit) -> Kind:
    return (unit.groups, unit.weight, unit.alone, unit.resources)


class PlannedQueue:
    """The units planned for one agent and not handed out, by kind, each kind in plan order."""

    def __init__(self, units: list[TestUnit], seconds: float) -> None:
        self._by_kind: dict[Kind, deque[tuple[int, TestUnit]]] = {}
        for position, unit in enumerate(units):
            self._by_kind.setdefault(kind_of(unit), deque()).append((position, unit))
        self.seconds = seconds  # predicted seconds queued
        self.count = len(units)

    def first(self, may_take: Callable[[TestUnit], bool]) -> TestUnit | None:
        """The earliest unit (in plan order) whose kind `may_take` accepts; it stays queued."""
        best: tuple[int, TestUnit] | None = None
        for entries in self._by_kind.values():
            if entries and (best is None or entries[0][0] < best[0]) and may_take(entries[0][1]):
                best = entries[0]
        return best[1] if best is not None else None

    def leading(self, may_take: Callable[[TestUnit], bool], count: int) -> list[TestUnit]:
        """The first `count` units (in plan order) whose kind `may_take` accepts; they stay queued."""
        entries = [
            entry
            for kind in self._by_kind.values()
            if kind and may_take(kind[0][1])
            for entry in itertools.islice(kind, count)
        ]
        return [unit for _, unit in heapq.nsmallest(count, entries, key=lambda e: e[0])]

    def remove(self, unit: TestUnit) -> None:
        """Take `unit` off the queue (the head of its kind, unless it is given up as unrunnable)."""
        entries = self._by_kind[kind_of(unit)]
        if entries[0][1] is unit:
            entries.popleft()
        else:
            entries.remove(next(e for e in entries if e[1] is unit))
        self.count -= 1

    def __iter__(self) -> Iterator[TestUnit]:
        """Every queued unit, kind by kind."""
        return (unit for entries in self._by_kind.values() for _, unit in entries)
