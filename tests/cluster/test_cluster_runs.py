"""`orchestrate run --address` on the containerised cluster: outcomes as plain pytest's, agents
spread over both worker nodes, stacks on each agent's own node, units needing a resource only
on the node that has it."""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from clusterkit import Cluster
from conftest import SPECIAL_RESOURCE

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RUN_TIMEOUT = 300

# Seven units (classes), a bit of every outcome; TestSpecial needs the resource only worker 1 has.
GENERATED = {
    "pytest.ini": "[pytest]\naddopts = --strict-markers -p no:cacheprovider\nxfail_strict = true\n",
    "test_mix.py": f"""
        import time
        import pytest

        class TestA:
            def test_1(self): time.sleep(0.2)
            def test_2(self): time.sleep(0.2)
            def test_fails(self): assert 1 + 1 == 3

        class TestB:
            def test_1(self): time.sleep(0.2)
            @pytest.mark.skip(reason="not today")
            def test_skipped(self): pass
            @pytest.mark.xfail(reason="known")
            def test_xfail(self): assert False

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")

        class TestC:
            def test_1(self): time.sleep(0.2)
            def test_errors(self, broken): pass

        @pytest.mark.parametrize("n", range(4))
        class TestD:
            def test_p(self, n): time.sleep(0.1)

        class TestE:
            def test_1(self): time.sleep(0.3)

        class TestF:
            def test_1(self): time.sleep(0.3)

        @pytest.mark.orchestrate(resources={{"{SPECIAL_RESOURCE}": 1}})
        class TestSpecial:
            def test_1(self): time.sleep(0.1)
            def test_2(self): pass
    """,
}


def _junit(text: str) -> dict[tuple[str, str], str]:
    """(classname, name) -> passed/failure/error/skipped, from a JUnit XML file."""
    outcomes = {}
    for case in ET.fromstring(text).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[(case.get("classname", ""), case.get("name", ""))] = kinds[0] if kinds else "passed"
    return outcomes


def test_outcomes_on_two_worker_nodes_equal_plain_pytests(cluster: Cluster) -> None:
    suite = "/srv/generated-outcomes"
    cluster.put_suite(suite, GENERATED)
    plain = cluster.run_in(suite, "pytest", "--junitxml", "plain.xml", timeout=RUN_TIMEOUT)
    started = time.monotonic()
    run = cluster.run_in(
        suite,
        *("orchestrate", "run", "--agents", "4", "--address", cluster.address()),
        *("--results", "r.json", "--junitxml", "j.xml"),
        timeout=RUN_TIMEOUT,
    )
    print(f"orchestrate run on the cluster: {time.monotonic() - started:.1f} s")
    assert plain.returncode == 1, plain.stdout[-3000:]
    assert run.returncode == plain.returncode, run.stdout[-3000:] + run.stderr[-3000:]

    assert _junit(cluster.read(f"{suite}/j.xml")) == _junit(cluster.read(f"{suite}/plain.xml"))
    results = json.loads(cluster.read(f"{suite}/r.json"))
    assert len(results["tests"]) == len(_junit(cluster.read(f"{suite}/plain.xml"))) == 16

    # Every agent names its node; four agents spread over both worker nodes, none on the head.
    nodes = {a["agent_id"]: a["node"] for a in results["agents"]}
    assert len(nodes) == 4
    for node in nodes.values():
        assert node["node_id"] and node["address"] and node["hostname"]
    assert sorted({n["hostname"] for n in nodes.values()}) == ["worker-1", "worker-2"]
    assert len({n["node_id"] for n in nodes.values()}) == 2

    # The units needing the special resource ran on worker 1, the only node that has it.
    special = [t for t in results["tests"] if "TestSpecial" in t["node_id"]]
    assert [t["outcome"] for t in special] == ["passed", "passed"]
    assert {nodes[t["agent"]]["hostname"] for t in special} == {"worker-1"}


def test_example_suite_with_stacks_on_four_agents_over_two_nodes(cluster: Cluster) -> None:
    """What `make cluster-demo` does; each agent's stack started on its own node's engine."""
    copied = cluster.copy()
    assert copied.returncode == 0, copied.stderr
    # Each worker's dockerd streams its container starts from now on (its event history is too
    # short to ask afterwards: the stacks' health checks fill it).
    watchers = {
        worker: subprocess.Popen(
            [
                "docker",
                "exec",
                worker,
                "sh",
                "-c",
                "echo $$ > /tmp/events.pid; exec docker events "
                "--filter type=container --filter event=start --filter label=orchestrate.run "
                "--format '{{.Actor.Attributes.name}}'",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in cluster.workers
    }
    time.sleep(1)
    started = time.monotonic()
    run = cluster.run_in(
        "/srv/suite",
        *("orchestrate", "run", "examples/integration", "--stack", "examples/integration/stack.yml"),
        *("--agents", "4", "--address", cluster.address(), "--results", "/tmp/demo.json"),
        timeout=RUN_TIMEOUT,
    )
    print(f"example suite on the cluster: {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(cluster.read("/tmp/demo.json"))
    assert {t["outcome"] for t in results["tests"]} <= {"passed", "skipped", "xfailed"}
    host_of = {a["agent_id"]: a["node"]["hostname"] for a in results["agents"]}
    assert sorted(set(host_of.values())) == ["worker-1", "worker-2"]

    # Each worker's own dockerd started the stacks (orch-<run>-<agent>-<service>) of exactly the
    # agents placed on that node, and none is left there.
    for index, worker in enumerate(cluster.workers, start=1):
        cluster.on_node(worker, "sh", "-c", "kill $(cat /tmp/events.pid)")
        names = watchers[worker].communicate(timeout=30)[0].split()
        started_for = {int(name.split("-")[2]) for name in names}
        assert started_for == {a for a, host in host_of.items() if host == f"worker-{index}"}, names
        # Two services per agent, started from the set-up state; the agent that paid the node's
        # setup (a cache miss: one per engine) started its two from the base images first.
        misses = sum(
            1 for a in results["agents"] if a["agent_id"] in started_for and a["stack_cache"] == "miss"
        )
        assert misses <= 1 and len(names) == 2 * len(started_for) + 2 * misses, names
        assert cluster.stacks_on(worker) == []
        assert cluster.agent_processes_on(worker) == []
