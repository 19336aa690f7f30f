"""Estimates that learn during a run: the remaining work re-estimated from the tests that ended.

A first run plans unseen tests with a guess (durations/estimate.py: 0.1 s with no history at
all), which can be off by any factor. `LiveEstimate` keeps, per module, what its ended tests
took so far, and estimates every test still to run that the plan guessed (a unit with unseen
tests) from its module's mean so far (else the mean of every ended test, else the plan's
guess); tests with a recorded history keep their planned share. Pure and O(1) per ended test;
the session feeds it and reports its re-estimated makespan, and the status's ETA (`eta`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.model import UnitEstimate

__all__ = ["LiveEstimate", "finish_in"]


def _module(node_id: str) -> str:
    return node_id.split("::", 1)[0]


class LiveEstimate:
    """The seconds of work left in a run, re-estimated as tests end."""

    def __init__(self, estimates: Sequence[UnitEstimate]) -> None:
        # Planned seconds per test: the unit's estimate shared over its tests.
        self._planned: dict[str, float] = {}
        self._guessed: set[str] = set()
        self._known_left = 0.0
        self._guessed_left_by_module: dict[str, int] = {}
        self._guessed_planned_left = 0.0
        for estimate in estimates:
            node_ids = estimate.unit.node_ids
            share = estimate.seconds / len(node_ids) if node_ids else 0.0
            for node_id in node_ids:
                self._planned[node_id] = share
                if estimate.unseen_tests:
                    self._guessed.add(node_id)
                    module = _module(node_id)
                    self._guessed_left_by_module[module] = self._guessed_left_by_module.get(module, 0) + 1
                    self._guessed_planned_left += share
                else:
                    self._known_left += share
        self._seconds_by_module: dict[str, tuple[float, int]] = {}
        self._seconds_ended = 0.0
        # What the ended tests were estimated at (planned share; a guessed one: what it took).
        self._estimated_ended = 0.0
        self.tests_ended = 0
        self.tests = len(self._planned)

    def ended(self, node_id: str, seconds: float) -> None:
        """`node_id` has its final outcome after `seconds` (once per test; others are ignored)."""
        planned = self._planned.pop(node_id, None)
        if planned is None:
            return
        module = _module(node_id)
        if node_id in self._guessed:
            self._guessed.discard(node_id)
            self._guessed_left_by_module[module] -= 1
            self._guessed_planned_left -= planned
            self._estimated_ended += seconds
        else:
            self._known_left -= planned
            self._estimated_ended += planned
        total, count = self._seconds_by_module.get(module, (0.0, 0))
        self._seconds_by_module[module] = (total + seconds, count + 1)
        self._seconds_ended += seconds
        self.tests_ended += 1

    def remaining_seconds(self) -> float:
        """The seconds of test time still to run, as estimated now."""
        if not self.tests_ended:
            return max(0.0, self._known_left) + max(0.0, self._guessed_planned_left)
        overall = self._seconds_ended / self.tests_ended
        guessed = 0.0
        for module, left in self._guessed_left_by_module.items():
            if left:
                total, count = self._seconds_by_module.get(module, (0.0, 0))
                guessed += left * (total / count if count else overall)
        return max(0.0, self._known_left) + guessed

    def remaining_of(self, node_ids: Iterable[str]) -> float:
        """The estimated seconds of these tests that have not ended (others count nothing)."""
        overall = self._seconds_ended / self.tests_ended if self.tests_ended else None
        seconds = 0.0
        for node_id in node_ids:
            planned = self._planned.get(node_id)
            if planned is None:
                continue
            if node_id in self._guessed:
                total, count = self._seconds_by_module.get(_module(node_id), (0.0, 0))
                seconds += total / count if count else (overall if overall is not None else planned)
            else:
                seconds += planned
        return seconds

    def pace(self, spent_seconds: float, running: Iterable[tuple[str, float]] = ()) -> float:
        """How much longer the run takes than the ended tests were estimated at: `spent_seconds`
        (the agents' time from ready to their last test's end) over those estimates, a test still
        `running` counted as far as it is known (see `eta`); 1 until a test ended."""
        spent, estimated = spent_seconds, self._estimated_ended
        for node_id, seconds in running:
            spent += seconds
            estimated += min(seconds, self.remaining_of((node_id,)))
        return spent / estimated if estimated > 0 and spent > 0 else 1.0

    def eta(
        self,
        ready_in: Sequence[float],
        spent_seconds: float,
        held: Iterable[Iterable[str]],
        running: Iterable[tuple[str, float]] = (),
        overhead: float = 0.0,
    ) -> float:
        """Seconds until the last agent is predicted to finish the remaining work.

        `ready_in` has one entry per agent that will run tests: in how many seconds it can
        (0: ready now). The remaining work is shared by the agents as they become ready
        (`finish_in`), unless one agent still holds more (`held`: the node ids of each agent's
        units; it must finish them itself). Both are scaled by the pace measured so far:
        `spent_seconds` (the agents' time from ready to their last test's end, resets and gaps
        between tests included) over what the ended tests were estimated at, which corrects the
        plan for this run's machine load, resets and per-test costs; 1 until a test ended. A test
        still `running` (node id, seconds so far) counts as far as it is known: the time it ran,
        against its estimate up to that time (one that outruns its estimate already shows the
        pace before it ends; one within it counts as on plan so far). `overhead` is work the
        tests' estimates do not hold (the stack resets still to come), shared like the rest.
        """
        pace = self.pace(spent_seconds, running)
        tail = max((self.remaining_of(node_ids) for node_ids in held), default=0.0)
        return max(finish_in(pace * self.remaining_seconds() + overhead, ready_in), pace * tail)


def finish_in(work: float, ready_in: Sequence[float]) -> float:
    """When `work` seconds of work are done by agents that join in `ready_in` seconds each.

    Each agent works from its moment on; the answer T solves sum(max(0, T - r)) = work. With no
    agent at all, infinity.
    """
    joins = sorted(max(0.0, r) for r in ready_in)
    for count in range(1, len(joins) + 1):
        finish = (work + sum(joins[:count])) / count
        if count == len(joins) or finish <= joins[count]:
            return finish
    return float("inf")
