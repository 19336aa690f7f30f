"""Every agent dies (scenario 4): what is left is `not-run`, listed, and the run exits non-zero."""

from __future__ import annotations

import pytest
from conftest import run_orchestrate, write_suite
from faultkit import assert_consistent

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SUITE = {
    "test_doomed.py": """
        import os
        import signal
        import time


        class TestKiller:
            def test_before(self):
                pass

            def test_kill_agent(self):
                # Whichever agent runs this dies: the session hands it to the next, which dies too.
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
}


def test_when_every_agent_dies_the_rest_is_not_run_and_listed(tmp_path):
    root = write_suite(tmp_path, SUITE)
    # --max-crashes 3: the killer test is owed a third try after both agents died for it.
    args = [
        "run",
        "--agents",
        "2",
        "--max-crashes",
        "3",
        "--durations",
        "d.msgpack",
        "--results",
        "results.json",
    ]
    proc = run_orchestrate([*args, "--junitxml", "junit.xml", "test_doomed.py"], root, timeout=180)
    collected = [
        *(f"test_doomed.py::TestKiller::{n}" for n in ("test_before", "test_kill_agent", "test_after")),
        *(f"test_doomed.py::TestSlow::test_{i}" for i in (1, 2, 3)),
    ]
    tests = assert_consistent(root / "results.json", root / "junit.xml", proc.stdout, collected)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "Traceback" not in proc.stderr
    not_run = [n for n, t in tests.items() if t["outcome"] == "not-run"]
    assert "test_doomed.py::TestKiller::test_kill_agent" in not_run
    for node_id in not_run:
        assert f"NOT-RUN {node_id} - no agent was left to run it" in proc.stdout
    # Killed twice (once per agent), each death a crashed attempt; no agent is left for the third.
    tries = [a["outcome"] for a in tests["test_doomed.py::TestKiller::test_kill_agent"]["attempts"]]
    assert tries == ["crashed", "crashed", "not-run"], tries
    assert proc.stdout.count("agent lost") >= 2
