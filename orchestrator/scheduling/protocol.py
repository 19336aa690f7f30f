"""The Scheduler protocol: decides which unit runs where; never sends anything itself.

Called by the session (orchestrator/session.py), the only owner of a scheduler:

- `add_agent(id)` when an agent reports ready; a new agent wants work at once.
- `request_work(id)` when an agent's worker is about to run dry (it has started the
  second-to-last test it holds, or holds its last test waiting for the next one).
- `schedule()` after every batch of events: returns new assignments, which the session sends.
  An agent that wanted work stops wanting it once it gets an assignment.
- `mark_unit_complete(id, unit_id)` when an agent finished a unit.
- `remove_agent(id)` when an agent died or failed: returns the units it was given and had not
  completed (not requeued: the session trims the tests that already finished, then calls
  `requeue` with what is left).
- `requeue(units)` puts units back, to be handed out like any other queued work.

Implementations are pure (no I/O, no clock, no Ray, no pytest), one per module, picked by
`scheduling.make_scheduler`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.model import Assignment, Plan, TestUnit


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """A snapshot of the scheduler's counters."""

    queued_units: int
    outstanding_units: int
    completed_units: int
    stolen_units: int
    agents: int


class Scheduler(Protocol):
    plan: Plan

    def add_agent(self, agent_id: int) -> None: ...

    def request_work(self, agent_id: int) -> None: ...

    def schedule(self) -> list[Assignment]: ...

    def mark_unit_complete(self, agent_id: int, unit_id: str) -> None: ...

    def remove_agent(self, agent_id: int) -> tuple[TestUnit, ...]: ...

    def requeue(self, units: Sequence[TestUnit]) -> None: ...

    @property
    def finished(self) -> bool:
        """True when every unit was handed out and completed (nothing queued or outstanding)."""
        ...

    def wants_work(self, agent_id: int) -> bool:
        """True when the agent asked for work and nothing is queued for it (it may be flushed)."""
        ...

    def statistics(self) -> SchedulerStatistics: ...
