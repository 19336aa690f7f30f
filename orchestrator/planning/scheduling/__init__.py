"""Planning and scheduling: which unit runs on which agent. Pure logic, no I/O.

The CLI calls `plan_lpt` on the estimates, then `make_scheduler(kind, plan)`; the session
owns the scheduler it gets and acts on the assignments it returns. The invariant every
scheduler keeps: no test group ever has more than its limit of slots held across all agents,
and an alone unit is never held beside anything else (scheduling/_slots.py).
"""

from __future__ import annotations

from orchestrator.model import Plan
from orchestrator.planning.scheduling.dynamic import DynamicScheduler
from orchestrator.planning.scheduling.lpt import PlannedSeconds, StaticScheduler, plan_lpt
from orchestrator.planning.scheduling.protocol import Scheduler, SchedulerStatistics
from orchestrator.protocol.errors import UsageError

SCHEDULER_KINDS = ("static", "dynamic")

__all__ = [
    "SCHEDULER_KINDS",
    "DynamicScheduler",
    "PlannedSeconds",
    "Scheduler",
    "SchedulerStatistics",
    "StaticScheduler",
    "make_scheduler",
    "plan_lpt",
]


def make_scheduler(kind: str, plan: Plan, cores: int | None = None) -> Scheduler:
    """The scheduler named `kind` ("static" or "dynamic"), starting from `plan`; `cores`: those
    of the one machine all agents share (None: several, or unknown)."""
    if kind == "static":
        return StaticScheduler(plan)
    if kind == "dynamic":
        return DynamicScheduler(plan, cores)
    raise UsageError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULER_KINDS)}")
