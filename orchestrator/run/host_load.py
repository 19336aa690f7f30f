"""How loaded each host is while tests run, and what a test's duration would be alone.

A test's measured duration is corrected for the load it ran under (`seconds_at_load_one`) before
it is learnt, so a suite timed on a crowded machine does not make the next plan pessimistic: by
its worker's measured wait for a CPU where the kernel counts it, else by the count of agents
running tests on its host (ready, not yet released), which the session keeps here.
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


def seconds_at_load_one(
    duration: float, cpu: float, load: float, wait: float = -1.0, services: float = 0.0
) -> float:
    """What a test that took `duration` with `cpu` CPU-seconds would take alone.

    Where its worker measured its `wait` for a CPU (agents/run_queue.py), that is what the load
    cost it, and its services' CPU-seconds (`services`, part of `cpu`) were slowed as the worker's
    own were, by (own + wait) / own: both come out, never more than if the whole test had been
    slowed so. The run-queue wait sees every runnable thread on the machine, the services' and the
    coordinator's included, which the count of agents per core does not.

    Otherwise the load is inferred from the `load` agents per core: the CPU part was stretched
    `load` times, the rest (sleeping, waiting on a remote service) was not. `cpu` is the worker's,
    its child processes' that ended during the test (a command it ran), and, where the agent can
    read it, its share of what the agent's own containers spent (agents/stack/cgroup_cpu.py); the
    last two are `services`. Never below `duration / load` (a test whose threads use several
    cores).
    """
    if wait >= 0.0:
        own = max(0.0, cpu - services)
        if wait == 0.0 or duration <= 0.0:
            return duration
        lost = wait * (1.0 + services / own) if own > 0.0 else wait
        return duration - min(lost, duration * wait / (own + wait))
    if load <= 1.0 or cpu <= 0.0:
        return duration
    return max(duration / load, duration - cpu * (load - 1.0))
