"""The containerised cluster itself: every worker node runs Ray tasks and has its own Docker engine."""

from __future__ import annotations

import json

import pytest
from clusterkit import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# Runs as a Ray driver on the head. One task per worker node (pinned by node id); each starts
# orchestrate/redis:7 on its node's dockerd, published on that node's 127.0.0.1, and PINGs it.
PROBE = r"""
import json, socket, time
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

@ray.remote(num_cpus=0)
def probe() -> dict:
    import docker
    client = docker.from_env()
    container = client.containers.run(
        "orchestrate/redis:7", detach=True, ports={"6379/tcp": ("127.0.0.1", None)},
        labels={"orchestrate.cluster": "probe"},
    )
    try:
        container.reload()
        port = int(container.ports["6379/tcp"][0]["HostPort"])
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    conn.sendall(b"PING\r\n")
                    reply = conn.recv(16).decode().strip()
                if reply:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                reply = "no answer"
                break
            time.sleep(0.2)
    finally:
        container.remove(force=True)
    return {"hostname": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
            "port": port, "reply": reply}

ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
workers = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("orchestrate_agent")]
refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
        for n in workers]
print(json.dumps(ray.get(refs, timeout=120)))
"""


def test_each_worker_node_runs_tasks_and_its_own_stack(cluster: Cluster) -> None:
    result = cluster.exec("python", "-", stdin=PROBE, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    probes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(p["hostname"] for p in probes) == [
        f"worker-{i}" for i in range(1, len(cluster.workers) + 1)
    ]
    assert len({p["node_id"] for p in probes}) == len(cluster.workers)
    assert [p["reply"] for p in probes] == ["+PONG"] * len(cluster.workers)


def test_head_runs_no_docker_engine_and_no_agents(cluster: Cluster) -> None:
    """Agents must land on worker nodes only: the head has no CPUs and no orchestrate_agent slots."""
    script = (
        "import json, ray; ray.init(address='auto', logging_level='ERROR');"
        "print(json.dumps([n['Resources'] for n in ray.nodes() if n['Alive']]))"
    )
    result = cluster.exec("python", "-c", script, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    resources = json.loads(result.stdout.strip().splitlines()[-1])
    slots = sorted(r.get("orchestrate_agent", 0) for r in resources)
    assert slots == [0] + [8] * len(cluster.workers)
    assert sorted(r.get("CPU", 0) for r in resources)[0] == 0
