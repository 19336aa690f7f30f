"""Agents that die under a run (scenarios 2 and 4), on Ray: a test kills its worker's parent.

An agent that dies is an agent process (local, with a stack) or a Ray actor; a local agent
without a stack is a thread of the coordinator, whose worker's parent is the coordinator itself
(as pytest-xdist's workers' is their controller). So these runs use `--backend ray`, where the
worker's parent is the actor's process. The local agent process's loss is
tests/integration/test_backends.py's.
"""

from __future__ import annotations

import os

import pytest
from conftest import run_orchestrate, write_suite
from faultkit import assert_consistent

pytestmark = [pytest.mark.ray, pytest.mark.slow]

KILLER = """
    import os
    import pathlib
    import signal
    import time


    def first_time(name):
        mark = pathlib.Path(os.environ["FAULT_MARKS"]) / name
        if mark.exists():
            return False
        mark.write_text("")
        return True


    class TestKiller:
        def test_before(self):
            pass

        def test_kill_agent(self):
            # Let the coordinator see this test start, then kill the agent (the worker's parent).
            if {once} and not first_time("agent-killed"):
                return
            time.sleep(0.5)
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(30)

        def test_after(self):
            pass


    class TestSlow:
        def test_1(self):
            time.sleep(1)

        def test_2(self):
            time.sleep(1)

        def test_3(self):
            time.sleep(1)
    """

COLLECTED = [
    *(f"test_doomed.py::TestKiller::{n}" for n in ("test_before", "test_kill_agent", "test_after")),
    *(f"test_doomed.py::TestSlow::test_{i}" for i in (1, 2, 3)),
]


def _run(tmp_path, once: bool, max_crashes: int):
    root = write_suite(tmp_path, {"test_doomed.py": KILLER.format(once=once)})
    (root / "marks").mkdir()
    args = ["run", "--backend", "ray", "--agents", "2", "--max-crashes", str(max_crashes)]
    args += ["--durations", "d.msgpack", "--results", "results.json", "--junitxml", "junit.xml"]
    env = dict(os.environ, FAULT_MARKS=str(root / "marks"))
    proc = run_orchestrate([*args, "test_doomed.py"], root, timeout=240, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    tests = assert_consistent(root / "results.json", root / "junit.xml", proc.stdout, COLLECTED)
    return proc, tests, (root / "junit.xml").read_text()


def test_a_killed_agent_has_its_units_rescheduled_once(tmp_path):
    """Scenario 2: the agent dies; its unfinished units run on the other agent.

    The killing test was running when its agent died: it gets a `crashed` attempt blaming the
    lost agent and, being under --max-crashes, is retried elsewhere, where it passes.
    """
    proc, tests, junit = _run(tmp_path, once=True, max_crashes=2)
    assert proc.returncode == 0, proc.stdout[-3000:]
    tries = tests["test_doomed.py::TestKiller::test_kill_agent"]["attempts"]
    assert [a["outcome"] for a in tries] == ["crashed", "passed"], tries
    assert "agent lost" in tries[0]["message"]
    assert tries[0]["agent"] != tries[1]["agent"]
    lost = tries[0]["agent"]
    assert tests["test_doomed.py::TestKiller::test_after"]["outcome"] == "passed"
    assert tests["test_doomed.py::TestKiller::test_after"]["agent"] != lost
    assert f"agent {lost}: agent lost" in proc.stdout
    # Exactly one testcase per test (also checked for all tests by assert_consistent).
    assert junit.count('name="test_kill_agent"') == 1
    assert junit.count("<flakyFailure") == 1


def test_when_every_agent_dies_the_rest_is_not_run_and_listed(tmp_path):
    """Scenario 4: whichever agent runs the killer dies, the next one too; what is left is
    `not-run`, listed, and the run exits non-zero."""
    # --max-crashes 3: the killer test is owed a third try after both agents died for it.
    proc, tests, _ = _run(tmp_path, once=False, max_crashes=3)
    assert proc.returncode == 1, proc.stdout[-3000:]
    not_run = [n for n, t in tests.items() if t["outcome"] == "not-run"]
    assert "test_doomed.py::TestKiller::test_kill_agent" in not_run
    for node_id in not_run:
        assert f"NOT-RUN {node_id} - no agent was left to run it" in proc.stdout
    # Killed twice (once per agent), each death a crashed attempt; no agent is left for the third.
    tries = [a["outcome"] for a in tests["test_doomed.py::TestKiller::test_kill_agent"]["attempts"]]
    assert tries == ["crashed", "crashed", "not-run"], tries
    assert proc.stdout.count("agent lost") >= 2
