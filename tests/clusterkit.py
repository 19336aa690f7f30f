"""The handle on a containerised cluster of deploy/cluster, shared by the `cluster` tier's tests."""

from __future__ import annotations

import os
import subprocess
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
