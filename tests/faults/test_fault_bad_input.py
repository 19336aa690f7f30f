"""Bad input (scenario 10): one line on stderr, no traceback, exit 4; or a warning and the run goes on.

Usage errors and unusable environments exit 4 (pytest's usage-error code) before anything
starts; a problem with the duration store never changes the run's result, it only warns.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from conftest import run_orchestrate, write_suite

SUITE = {"test_ok.py": "def test_ok():\n    pass\n"}
STACK = """
services:
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
"""
# Per-agent env: the coordinator collects on a stack of its own, started before it checks the engine.
COLLECTION_STACK = (
    STACK
    + """
x-orchestrate:
  env:
    CACHE_URL: "redis://{cache.host}:{cache.port}/0"
"""
)
TYPO_STACK = """
services:
  cache:
    imagee: orchestrate/redis:7
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("orchestrate: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (["run", "--no-such-option", "."], {}, ["unrecognized arguments: --no-such-option"]),
        (["run", "no/such/dir"], {}, ["file or directory not found: no/such/dir"]),
        (["run", "--backend", "local", "--stack", "typo.yml", "."], {}, ["typo.yml", "imagee", "'image'"]),
        (
            ["run", "--backend", "local", "--stack", "stack.yml", "."],
            {"DOCKER_HOST": "unix:///nonexistent.sock"},
            ["no Docker engine answers at unix:///nonexistent.sock"],
        ),
        (
            # The agents start before the engine is checked (their start overlaps the check).
            ["run", "--backend", "local", "--agents", "2", "--stack", "stack.yml", "."],
            {"DOCKER_HOST": "unix:///nonexistent.sock"},
            ["no Docker engine answers at unix:///nonexistent.sock"],
        ),
        (
            ["run", "--backend", "local", "--agents", "2", "--stack", "collection.yml", "."],
            {"DOCKER_HOST": "unix:///nonexistent.sock"},
            ["no Docker engine answers at unix:///nonexistent.sock"],
        ),
    ],
    ids=[
        "unknown option",
        "missing path",
        "stack file typo",
        "no docker engine",
        "no docker engine, agents started",
        "no docker engine, collection stack started",
    ],
)
def test_bad_input_is_one_line_and_exit_4(tmp_path, args, env, fragments):
    suite = {**SUITE, "typo.yml": TYPO_STACK, "stack.yml": STACK, "collection.yml": COLLECTION_STACK}
    root = write_suite(tmp_path, suite)
    before = _agent_processes()
    proc = run_orchestrate(args, root, env={**os.environ, **env}, timeout=60)
    _one_line_error(proc, *fragments)
    assert _agent_processes() <= before, "an agent process outlived the command"


def _agent_processes() -> set[int]:
    """The pids of every live agent process (`python -m agents.host`) on this machine."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                if b"agents.host" in stream.read():
                    found.add(int(pid))
        except OSError:
            continue
    return found


def test_an_unreachable_cluster_fails_fast(tmp_path):
    root = write_suite(tmp_path, SUITE)
    address = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    proc = run_orchestrate(["run", "--address", address, "."], root, timeout=60)
    assert time.monotonic() - started < 20
    _one_line_error(proc, f"no Ray cluster answers at {address}")


def test_a_corrupt_duration_store_warns_and_the_run_proceeds(tmp_path):
    root = write_suite(tmp_path, SUITE)
    (root / "d.msgpack").write_bytes(b"\x00garbage, not msgpack")
    proc = run_orchestrate(["run", "--backend", "local", "--durations", "d.msgpack", "."], root, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "orchestrate: warning: ignoring the duration store d.msgpack" in proc.stderr
    assert "1 passed" in proc.stdout


def test_an_unwritable_duration_store_warns_and_the_result_stands(tmp_path):
    root = write_suite(tmp_path, SUITE)
    # /proc refuses new files even to root, unlike a chmod-ed directory.
    args = ["run", "--backend", "local", "--durations", "/proc/orchestrate/d.msgpack", "."]
    proc = run_orchestrate(args, root, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        "orchestrate: warning: could not write the duration store /proc/orchestrate/d.msgpack" in proc.stderr
    )
    assert "1 passed" in proc.stdout
