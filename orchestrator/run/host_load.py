"""How loaded each host is while tests run, and what a test's duration would be alone.

The session counts the agents running tests on each host (ready, not yet released); a test's
measured duration is corrected for that load (`seconds_at_load_one`) before it is learnt, so a
suite timed on a crowded machine does not make the next plan pessimistic.
"""

from __future__ import annotations

from collections import Counter

from orchestrator.run.agent_record import AgentRecord

__all__ = ["HostLoad", "seconds_at_load_one"]


class HostLoad:
    """The count of agents running tests on each host."""

    def __init__(self) -> None:
        self._running_by_host: Counter[str] = Counter()
        self._counted: set[int] = set()

    def set_running(self, record: AgentRecord, running: bool) -> None:
        """The agent runs tests from now on (ready), or no more (released)."""
        if running and record.agent_id not in self._counted:
            self._counted.add(record.agent_id)
            self._running_by_host[record.node.hostname] += 1
        elif not running and record.agent_id in self._counted:
            self._counted.discard(record.agent_id)
            self._running_by_host[record.node.hostname] -= 1

    def load(self, record: AgentRecord) -> float:
        """How many agents share each core of this agent's node now (at least 1)."""
        cpus = record.node.resources.get("CPU") or 1.0
        return max(1.0, self._running_by_host[record.node.hostname] / cpus)


def seconds_at_load_one(duration: float, cpu: float, load: float) -> float:
    """What a test that took `duration` with `cpu` CPU-seconds under `load` agents per core would
    take alone: the CPU part was stretched by the load, the rest (sleeping, waiting on a remote
    service) was not. `cpu` is the worker's and, where the agent can read it, its share of what the
    agent's own containers spent (agents/stack/cgroup_cpu.py): a local database's work is stretched
    as the worker's is. Never below `duration / load` (a test whose threads use several cores).
    """
    if load <= 1.0 or cpu <= 0.0:
        return duration
    return max(duration / load, duration - cpu * (load - 1.0))
