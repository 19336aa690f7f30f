"""The containerised Ray cluster of deploy/cluster, brought up once per session for the `cluster` tier.

`cluster` starts a head and two worker nodes (each with its own dockerd) under a name of its own,
and takes everything down at the end of the session; it then checks that no container, network or
volume labelled with that name is left. Bringing it up is bounded (UP_TIMEOUT, and a build
timeout); only a missing Docker engine skips the tier, anything else fails it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from clusterkit import Cluster, cluster_script

WORKERS = 2
# A cold build (node image, saved stack images) plus `up`; warm, `up` alone is under a minute.
UP_TIMEOUT_SECONDS = 600
DOWN_TIMEOUT_SECONDS = 120


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if not _engine_answers():
        pytest.skip("cluster tier: no Docker engine answers (run deploy/setup-docker.sh)")
    name = f"orchestrate-cluster-test-{os.getpid()}"
    started = time.monotonic()
    try:
        up = cluster_script(name, "up", "--workers", str(WORKERS), timeout=UP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        cluster_script(name, "down", timeout=DOWN_TIMEOUT_SECONDS)
        pytest.fail(f"the cluster did not come up within {UP_TIMEOUT_SECONDS} s", pytrace=False)
    if up.returncode != 0:
        cluster_script(name, "down", timeout=DOWN_TIMEOUT_SECONDS)
        pytest.fail(f"cluster.sh up failed ({up.returncode}):\n{up.stderr[-3000:]}", pytrace=False)
    handle = Cluster(
        name=name,
        workers=tuple(f"{name}-worker-{i}" for i in range(1, WORKERS + 1)),
        up_seconds=time.monotonic() - started,
    )
    print(f"\ncluster {name} up in {handle.up_seconds:.1f} s")
    try:
        yield handle
    finally:
        down = cluster_script(name, "down", timeout=DOWN_TIMEOUT_SECONDS)
        assert down.returncode == 0, down.stderr
        assert handle.leftovers() == [], f"cluster.sh down left {handle.leftovers()}"
