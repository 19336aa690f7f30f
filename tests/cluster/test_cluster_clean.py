"""`orchestrate clean --address` after a coordinator killed mid-run: no stack left on any node."""

from __future__ import annotations

import time

import pytest
from clusterkit import Cluster, start_run, wait_running

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_after_a_killed_coordinator_clean_address_removes_every_nodes_stacks(
    cluster: Cluster, slow_suite: str
) -> None:
    process = start_run(cluster, slow_suite)
    try:
        wait_running(cluster, cluster.workers, process)
        killed = cluster.exec("sh", "-c", "kill -KILL $(cat /tmp/coordinator.pid)")
        assert killed.returncode == 0, killed.stderr
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # The stacks outlive their coordinator on both nodes...
    for worker in cluster.workers:
        assert cluster.stacks_on(worker), f"no stack on {worker}: the test proves nothing"
    # ... until their leases, no longer renewed once Ray killed the agents, are stale.
    stale_after = 8
    time.sleep(stale_after + 4)
    clean = cluster.exec(
        "orchestrate", "clean", "--address", cluster.address(), "--stale-after", str(stale_after), timeout=180
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    print(clean.stdout)
    assert "no Docker engine, nothing to remove" in clean.stdout  # the head
    for worker in cluster.workers:
        assert cluster.stacks_on(worker) == []
        assert cluster.agent_processes_on(worker) == []
