"""The handle on a containerised cluster of deploy/cluster, shared by the `cluster` tier's tests."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "deploy" / "cluster" / "cluster.sh"


@dataclass(frozen=True, slots=True)
class Cluster:
    """A running containerised cluster: its name, worker node names and `exec` on its head."""

    name: str
    workers: tuple[str, ...]
    up_seconds: float

    @property
    def head(self) -> str:
        return f"{self.name}-head"

    def exec(
        self, *command: str, stdin: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` in the head container (where Ray drivers run), in /srv/suite."""
        return cluster_script(self.name, "exec", *command, stdin=stdin, timeout=timeout)

    def copy(self) -> subprocess.CompletedProcess[str]:
        """`cluster.sh copy`: this checkout to /srv/suite in the head."""
        return cluster_script(self.name, "copy", timeout=120)

    def address(self) -> str:
        """What `--address` names: the head's GCS on the cluster's network."""
        return f"{self.head}:6379"

    def put_suite(self, directory: str, files: dict[str, str]) -> None:
        """Write a generated suite (file name -> source, dedented) to `directory` in the head."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, source in files.items():
                data = textwrap.dedent(source).encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        docker("exec", self.head, "sh", "-c", f"rm -rf {directory} && mkdir -p {directory}")
        docker("exec", "-i", self.head, "tar", "-xf", "-", "-C", directory, stdin=buffer.getvalue())

    def run_in(self, directory: str, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `command` in the head container, in `directory`."""
        return subprocess.run(
            ["docker", "exec", "--workdir", directory, self.head, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def read(self, path: str) -> str:
        """The text of a file in the head container."""
        return docker("exec", self.head, "cat", path).decode()

    def on_node(self, node: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `command` in a node container (a worker's `docker ...` talks to its own dockerd)."""
        return subprocess.run(
            ["docker", "exec", node, *command], capture_output=True, text=True, timeout=timeout
        )

    def stacks_on(self, worker: str) -> list[str]:
        """Containers and networks of orchestrate runs on a worker node's own Docker engine."""
        found: list[str] = []
        for kind in (["ps", "-a"], ["network", "ls"]):
            result = self.on_node(
                worker,
                "docker",
                *kind,
                "--filter",
                "label=orchestrate.run",
                "--format",
                "{{.Names}}" if kind[0] == "ps" else "{{.Name}}",
            )
            assert result.returncode == 0, result.stderr
            found += [f"{kind[0]} {line}" for line in result.stdout.split()]
        return found

    def agent_processes_on(self, worker: str) -> list[str]:
        """Agent actors and pytest workers still running on a worker node."""
        result = self.on_node(worker, "ps", "-eo", "args")
        return [
            line for line in result.stdout.splitlines() if "_AgentActor" in line or "agents.plugin" in line
        ]

    def wait_alive_nodes(self, count: int, timeout: float = 180) -> None:
        """Wait until Ray counts `count` alive nodes (after a worker node was restarted)."""
        script = (
            "import json, ray; ray.init(address='auto', logging_level='ERROR', log_to_driver=False);"
            "print(json.dumps(sum(1 for n in ray.nodes() if n['Alive'])))"
        )
        deadline = time.monotonic() + timeout
        alive = 0
        while time.monotonic() < deadline:
            result = self.exec("python", "-c", script, timeout=120)
            if result.returncode == 0:
                alive = json.loads(result.stdout.strip().splitlines()[-1])
                if alive >= count:
                    return
            time.sleep(2)
        raise AssertionError(f"{alive} of {count} nodes alive after {timeout:.0f} s")

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes labelled with this cluster's name (none after `down`)."""
        label = f"label=orchestrate.cluster={self.name}"
        found: list[str] = []
        for kind in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
            out = subprocess.run(
                ["docker", *kind, "-q", "--filter", label], capture_output=True, text=True, check=True
            ).stdout
            found += [f"{kind[0]} {line}" for line in out.split()]
        return found


def docker(*args: str, stdin: bytes | None = None, timeout: float = 120) -> bytes:
    """Run the host's `docker` CLI; raises with its stderr when it fails."""
    result = subprocess.run(["docker", *args], input=stdin, capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.decode()[-2000:]}")
    return result.stdout


def cluster_script(
    name: str, *args: str, stdin: str | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRATE_CLUSTER": name}
    return subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


# -- a slow generated suite with a stack, for faults mid-run ------------------------------------

RUN_TIMEOUT = 300
# Touched by every test when it starts, on the node that runs it: how a test knows a node is busy.
RUNNING_MARK = "/tmp/orchestrate-cluster-test-running"
STACK = """
    services:
      cache:
        image: orchestrate/redis:7
        ports: ["6379"]
        tmpfs: ["/data"]
        healthcheck: {disable: true}
"""
# 8 units of 4 one-second tests: about 8 s per agent on 4 agents, long enough to act mid-run.
SLOW_SUITE = {
    "pytest.ini": "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n",
    "stack.yml": STACK,
    "test_slow.py": "import pathlib, time\n"
    + "".join(
        f"\nclass TestSlow{u}:\n"
        + "".join(
            f"    def test_{t}(self):\n"
            f"        pathlib.Path({RUNNING_MARK!r}).touch()\n"
            "        time.sleep(1)\n"
            for t in range(4)
        )
        for u in range(8)
    ),
}
TESTS = 32


def start_run(cluster: Cluster, suite: str, *extra: str) -> subprocess.Popen[str]:
    """`orchestrate run` in the head, in the background; its pid in the head is in /tmp/coordinator.pid."""
    command = (
        f"echo $$ > /tmp/coordinator.pid && exec orchestrate run --agents 4 --address {cluster.address()} "
        f"--stack stack.yml --results r.json {' '.join(extra)}"
    )
    return subprocess.Popen(
        ["docker", "exec", "--workdir", suite, cluster.head, "sh", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_running(cluster: Cluster, workers: tuple[str, ...], process: subprocess.Popen[str]) -> None:
    """Wait until a test has started on each of `workers` (their stacks are up by then)."""
    deadline = time.monotonic() + 180
    waiting = set(workers)
    while waiting:
        assert process.poll() is None, f"the run ended early:\n{process.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, f"no test started on {waiting}"
        waiting = {w for w in waiting if cluster.on_node(w, "test", "-e", RUNNING_MARK).returncode != 0}
        time.sleep(0.2)
