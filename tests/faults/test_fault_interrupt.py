"""Ctrl-C (scenario 7) and a SIGKILLed coordinator (scenario 8), with real stacks.

Ctrl-C reaches a shell's whole foreground process group, so the signal goes to orchestrate's
process group (Ray's processes included), as a terminal would send it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from conftest import run_orchestrate, write_suite
from faultkit import assert_consistent, leftovers, needs_docker, run_bg, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow, needs_docker]

STACK = """
services:
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    tmpfs: ["/data"]
    healthcheck: {disable: true}
"""

SUITE = {
    "stack.yml": STACK,
    "test_slow.py": """
        import os
        import pathlib
        import time

        MARKS = pathlib.Path(os.environ["FAULT_MARKS"])


        class TestA:
            def test_1(self):
                (MARKS / f"running-{os.environ['ORCHESTRATE_AGENT']}").write_text("x")
                time.sleep(60)

            def test_2(self):
                pass


        class TestB:
            def test_1(self):
                (MARKS / f"running-{os.environ['ORCHESTRATE_AGENT']}").write_text("x")
                time.sleep(60)

            def test_2(self):
                pass
        """,
}
COLLECTED = [f"test_slow.py::{c}::test_{i}" for c in ("TestA", "TestB") for i in (1, 2)]


def _start(root, extra):
    (root / "marks").mkdir(exist_ok=True)
    env = dict(os.environ, FAULT_MARKS=str(root / "marks"))
    args = [
        "run",
        "--agents",
        "2",
        "--stack",
        "stack.yml",
        "--durations",
        "d.msgpack",
        *extra,
        "test_slow.py",
    ]
    proc = run_bg(args, root, env)
    wait_for(lambda: any((root / "marks").glob("running-*")), 120, "a test to start", proc)
    return proc


@pytest.mark.ray
@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c twice"])
def test_ctrl_c_stops_agents_takes_stacks_down_and_writes_a_partial_report(tmp_path, presses):
    root = write_suite(tmp_path, SUITE)
    # A second press is still cleaned up; the local backend saves a Ray start there.
    backend = [] if presses == 1 else ["--backend", "local"]
    proc = _start(root, [*backend, "--results", "results.json", "--junitxml", "junit.xml"])
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    if presses == 2:
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert time.monotonic() - started < 60
    assert proc.returncode == 2, stdout + stderr
    assert "Traceback" not in stderr
    tests = assert_consistent(root / "results.json", root / "junit.xml", stdout, COLLECTED)
    assert {t["outcome"] for t in tests.values()} == {"not-run"}
    for node_id in COLLECTED:
        assert f"NOT-RUN {node_id} - interrupted" in stdout
    assert "KeyboardInterrupt" in stdout  # pytest's own "!!! KeyboardInterrupt !!!" line
    assert leftovers() == []


def test_a_killed_coordinator_leaves_containers_that_the_next_run_and_clean_remove(tmp_path):
    root = write_suite(tmp_path, SUITE)
    (root / "test_durations.json").write_text('{"test_slow.py::TestA::test_2": 0.5}')
    imported = run_orchestrate(
        ["durations", "import", "test_durations.json", "--durations", "d.msgpack"], root
    )
    assert imported.returncode == 0, imported.stderr

    # Killed with Ray agents (the driver's whole process group): nobody takes the stacks down.
    proc = _start(root, ["--backend", "ray"])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_for(lambda: len(leftovers()) >= 2, 30, "the dead run's containers to show")

    # The next run with a stack sweeps what the dead coordinator left.
    (root / "marks" / "running-0").unlink(missing_ok=True)
    (root / "marks" / "running-1").unlink(missing_ok=True)
    args = ["run", "--backend", "local", "--agents", "1", "--stack", "stack.yml", "--durations", "d.msgpack"]
    env = dict(os.environ, FAULT_MARKS=str(root / "marks"))
    after = run_orchestrate([*args, "test_slow.py::TestA::test_2"], root, env=env, timeout=120)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "left by dead runs" in after.stderr
    assert leftovers() == []

    # `orchestrate clean` does it too.
    for name in ("running-0", "running-1"):
        (root / "marks" / name).unlink(missing_ok=True)
    proc = _start(root, ["--backend", "ray"])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_for(lambda: len(leftovers()) >= 2, 30, "the dead run's containers to show")
    clean = run_orchestrate(["clean"], root, timeout=60)
    assert clean.returncode == 0, clean.stderr
    assert leftovers() == []

    # Local agents are processes of their own: when their coordinator is killed they see it go
    # (end of file on their command pipe) and take their stacks down themselves.
    for name in ("running-0", "running-1"):
        (root / "marks" / name).unlink(missing_ok=True)
    proc = _start(root, ["--backend", "local"])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_for(lambda: leftovers() == [], 60, "the orphaned local agents to take their stacks down")

    # The duration store survived both kills.
    shown = run_orchestrate(["durations", "show", "--durations", "d.msgpack"], root)
    assert shown.returncode == 0 and "warning" not in shown.stderr, shown.stderr
    assert "test_slow.py" in shown.stdout
