"""A worker node lost mid-run (its container killed: raylet, agents, dockerd and stacks die).

Named to run last in the tier: the session's cluster keeps one worker node fewer afterwards (a
killed node restarted in its container did not rejoin Ray reliably here).
"""

from __future__ import annotations

import json
import time

import pytest
from clusterkit import RUN_TIMEOUT, TESTS, Cluster, docker, start_run, wait_running

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_a_lost_worker_node_costs_only_its_running_tests_one_attempt_each(
    cluster: Cluster, slow_suite: str
) -> None:
    lost, survivor = cluster.workers[1], cluster.workers[0]
    started = time.monotonic()
    process = start_run(cluster, slow_suite)
    try:
        wait_running(cluster, (lost,), process)
        docker("kill", lost)
        killed_at = time.monotonic() - started
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    print(f"node killed {killed_at:.1f} s into the run, which took {time.monotonic() - started:.1f} s")
    # Every test passes in the end, as under plain pytest: exit code 0.
    assert process.returncode == 0, output[-4000:]
    results = json.loads(cluster.read(f"{slow_suite}/r.json"))
    tests = results["tests"]
    assert len(tests) == TESTS and len({t["node_id"] for t in tests}) == TESTS
    assert {t["outcome"] for t in tests} == {"passed"}

    host_of = {a["agent_id"]: a["node"]["hostname"] for a in results["agents"]}
    lost_agents = {a for a, host in host_of.items() if host == "worker-2"}
    assert lost_agents and len(lost_agents) < len(host_of)
    # Only the tests the lost agents were running got a crashed attempt, one each, and were
    # retried (passed) on the surviving node.
    crashed = [t for t in tests if any(a["outcome"] == "crashed" for a in t["attempts"])]
    assert 1 <= len(crashed) <= len(lost_agents)
    for test in crashed:
        outcomes = [a["outcome"] for a in test["attempts"]]
        assert outcomes == ["crashed", "passed"], test["node_id"]
        assert host_of[test["attempts"][0]["agent"]] == "worker-2"
        assert host_of[test["attempts"][1]["agent"]] == "worker-1"
    assert all(len(t["attempts"]) == 1 for t in tests if t not in crashed)
    # Whatever ran after the loss ran on the surviving node.
    late = [a for t in tests for a in t["attempts"] if a["started"] and a["started"] > killed_at + 1]
    assert late and {host_of[a["agent"]] for a in late} == {"worker-1"}

    # Nothing of the run is left on the surviving node: no stack, no agent process.
    assert cluster.stacks_on(survivor) == []
    assert cluster.agent_processes_on(survivor) == []
