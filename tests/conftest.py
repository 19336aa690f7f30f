"""Shared fixtures: run the real `orchestrate` command on generated suites; check nothing leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
    from agents.stack.docker import LABEL_OWNER, _owner_is_dead

    # Only what dead coordinators left: live ones belong to runs still going (another checkout's
    # tests on the same engine), which are not ours to judge or remove.
    containers = [
        c
        for c in client.containers.list(all=True, filters={"label": "orchestrate.run"})
        if _owner_is_dead(c.labels.get(LABEL_OWNER, ""))
    ]
    networks = [
        n
        for n in client.networks.list(filters={"label": "orchestrate.run"})
        if _owner_is_dead((n.attrs.get("Labels") or {}).get(LABEL_OWNER, ""))
    ]
    names = [c.name for c in containers] + [n.name for n in networks]
    for container in containers:
        container.remove(force=True, v=True)
    for network in networks:
        network.remove()
    assert not names, f"left behind by the tests: {names}"
