"""Shared fixtures: run the real `orchestrate` command on generated suites; check nothing leaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clusterkit import RUNNING_MARK, SLOW_SUITE, Cluster, cluster_script

pytest_plugins = ["pytester"]

ORCHESTRATE = [sys.executable, "-m", "orchestrator"]


def run_orchestrate(
    args: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `orchestrate` command as a user would, in `cwd`."""
    full_env = dict(os.environ if env is None else env)
    return subprocess.run(
        [*ORCHESTRATE, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_pytest(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run plain pytest the way a user would, for side-by-side comparisons."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write_suite(root: Path, files: dict[str, str]) -> Path:
    """Write a generated suite (file name -> source, dedented) under `root`."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def load_results(path: Path) -> dict[str, str]:
    """node id -> outcome from an `orchestrate --results` file."""
    data = json.loads(path.read_text())
    return {t["node_id"]: t["outcome"] for t in data["tests"]}


@pytest.fixture
def orchestrate() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_orchestrate


@pytest.fixture(scope="session", autouse=True)
def nothing_of_ours_left_behind() -> Iterator[None]:
    """After the whole suite no container or network carrying our labels may remain."""
    yield
    try:
        import docker
    except ImportError:
        return
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except Exception:
        return
    from agents.stack.docker import LABEL_OWNER
    from agents.stack.probes import owner_is_dead

    # Only what dead coordinators left: live ones belong to runs still going (another checkout's
    # tests on the same engine), which are not ours to judge or remove.
    containers = [
        c
        # Other checkouts' runs remove their containers meanwhile: one gone between the listing
        # and its inspection is not ours to report.
        for c in client.containers.list(all=True, filters={"label": "orchestrate.run"}, ignore_removed=True)
        if owner_is_dead(c.labels.get(LABEL_OWNER, ""))
    ]
    networks = [
        n
        for n in client.networks.list(filters={"label": "orchestrate.run"})
        if owner_is_dead((n.attrs.get("Labels") or {}).get(LABEL_OWNER, ""))
    ]
    names = [c.name for c in containers] + [n.name for n in networks]
    for container in containers:
        container.remove(force=True, v=True)
    for network in networks:
        network.remove()
    assert not names, f"left behind by the tests: {names}"


# -- the cluster tier (tests/cluster) -----------------------------------------------------------
# The containerised Ray cluster of deploy/cluster, brought up once per session: a head and two
# worker nodes (each with its own dockerd) under a name of its own, taken down at the end of the
# session, which then checks that no container, network or volume labelled with that name is
# left. Bringing it up is bounded; only a missing Docker engine skips the tier. (Here, not in
# tests/cluster/conftest.py: a second conftest module would shadow this one for the tests that
# `from conftest import ...`.)

WORKERS = 2
# A custom Ray resource only worker 1 has: what @pytest.mark.orchestrate(resources=...) selects.
SPECIAL_RESOURCE = "orchestrate_test_special"
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
        up = cluster_script(
            name,
            "up",
            "--workers",
            str(WORKERS),
            "--worker1-resources",
            json.dumps({SPECIAL_RESOURCE: 1}),
            timeout=UP_TIMEOUT_SECONDS,
        )
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


@pytest.fixture
def slow_suite(cluster: Cluster) -> Iterator[str]:
    """A suite of slow tests in the head (tests/clusterkit.py SLOW_SUITE), no test marked running."""
    suite = "/srv/generated-slow"
    cluster.put_suite(suite, SLOW_SUITE)
    for worker in cluster.workers:
        cluster.on_node(worker, "rm", "-f", RUNNING_MARK)
    yield suite
