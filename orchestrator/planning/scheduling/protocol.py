"""The Scheduler protocol: decides which unit runs where; never sends anything itself.

Called by the session (orchestrator/run/session.py), the only owner of a scheduler and the only
owner of outstanding work (what each agent holds and has not finished). A scheduler owns only
the queue it plans:

- `add_agent(id, resources)` when an agent reports ready, with its node's resources; a new
  agent wants work at once. A unit that needs resources (TestUnit.resources) is only ever
  given to an agent whose node has them.
- `request_work(id, running_left)` when an agent's worker is about to run dry, with the predicted
  seconds its running unit has still to run (a scheduler may keep work from an agent whose
  running unit would hold it back).
- `unit_finished(id, unit_id)` when an agent reports a unit finished: the slots of its test
  groups (and the cluster, for an alone unit) are free again (scheduling/_slots.py). A unit of
  a group is handed out only when its group's limit allows, counted across all agents.
- `schedule()` after every batch of events: returns new assignments, which the session sends.
  An agent that wanted work stops wanting it once it gets an assignment.
- `remove_agent(id)` when an agent died, failed or stopped: it gets nothing more. What it held
  is the session's to requeue; what the scheduler had planned for it stays queued.
- `requeue(units)` puts units back (an agent's unfinished work, a crash retry, a rerun), to
  be handed out like any other queued work.
- `take_unrunnable()` removes and returns the queued units no live agent can run; the session
  calls it once no agent is still starting, and ends their tests as not run.

Implementations are pure (no I/O, no clock, no Ray, no pytest), one per module, picked by
`scheduling.make_scheduler`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.model import Assignment, Plan, TestUnit


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """A snapshot of the scheduler's counters."""

    queued_units: int
    handed_out_units: int
    stolen_units: int
    agents: int


class Scheduler(Protocol):
    plan: Plan

    def add_agent(self, agent_id: int, resources: Mapping[str, float] | None = None) -> None: ...

    def request_work(self, agent_id: int, running_left: float = 0.0) -> None: ...

    def schedule(self) -> list[Assignment]: ...

    def unit_finished(self, agent_id: int, unit_id: str) -> None:
        """The agent finished the unit: what it held of test groups' limits is free."""
        ...

    def remove_agent(self, agent_id: int) -> None: ...

    def requeue(self, units: Sequence[TestUnit]) -> None: ...

    def take_unrunnable(self) -> list[TestUnit]:
        """Remove and return the queued units that no live agent's node can run."""
        ...

    def has_queued_work(self) -> bool:
        """True while some unit is still waiting to be handed out."""
        ...

    def wants_work(self, agent_id: int) -> bool:
        """True when the agent asked for work and nothing queued can be given to it now (it may
        be flushed: run what it holds; a group's slot that frees later still brings it work)."""
        ...

    def statistics(self) -> SchedulerStatistics: ...
