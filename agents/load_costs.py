"""What the machine's load cost each test that ended, as the agent tells the coordinator.

A test's TestEnded carries its worker's CPU-seconds and run-queue wait (agents/run_queue.py). The
agent adds what its containers spent meanwhile (agents/stack/cgroup_cpu.py), shared among the
tests that ended. The coordinator takes what the load cost each test out of its duration before
the store learns it (orchestrator/run/host_load.py), so a suite timed on a crowded machine is
learnt as it would run alone.
"""

from __future__ import annotations

import dataclasses

from orchestrator.protocol import messages as pm

__all__ = ["with_service_cpu"]


def with_service_cpu(batch: list[pm.Event], spent: float) -> list[pm.Event]:
    """The batch with `spent`, the CPU-seconds the agent's containers spent since the last batch
    of ended tests, added to its tests' CPU: shared by what each waited beyond its own CPU (the
    time it spent on its services)."""
    ended = [event for event in batch if isinstance(event, pm.TestEnded)]
    if spent <= 0.0 or not ended:
        return batch
    weights = {id(e): max(0.0, e.seconds - e.cpu_seconds) for e in ended}
    total = sum(weights.values())
    if total <= 0.0:
        weights, total = {id(e): 1.0 for e in ended}, float(len(ended))
    return [
        _with_services(e, spent * weights[id(e)] / total) if isinstance(e, pm.TestEnded) else e for e in batch
    ]


def _with_services(event: pm.TestEnded, services: float) -> pm.TestEnded:
    return dataclasses.replace(
        event,
        cpu_seconds=event.cpu_seconds + services,
        service_cpu_seconds=event.service_cpu_seconds + services,
    )
