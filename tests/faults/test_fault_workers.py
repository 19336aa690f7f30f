"""Worker faults in one real run of local agents: crashes, a hang, reruns.

The scenarios do not interfere (each lives in its own class, i.e. its own unit), so one run of
`orchestrate run --agents 2 --timeout 4 --reruns 2` on a generated suite covers them all and
the tests below each check one promise on its outputs. A killed agent (its process, or Ray
actor) is tests/faults/test_fault_agents_die.py's.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_orchestrate, write_suite
from faultkit import assert_consistent

pytestmark = [pytest.mark.slow]

SUITE = {
    "test_faults.py": """
        import os
        import pathlib
        import signal
        import time

        MARKS = pathlib.Path(os.environ["FAULT_MARKS"])


        def first_time(name):
            marker = MARKS / name
            if marker.exists():
                return False
            marker.write_text(str(os.getpid()))
            return True


        class TestExit:
            def test_before(self):
                pass

            def test_exit(self):
                print("about to exit", flush=True)
                os._exit(1)

            def test_after(self):
                pass


        class TestSegv:
            def test_before(self):
                pass

            def test_segv(self):
                os.kill(os.getpid(), signal.SIGSEGV)

            def test_after(self):
                pass


        class TestHang:
            def test_hang(self):
                time.sleep(10**6)

            def test_after(self):
                pass


        class TestReruns:
            def test_flaky(self):
                assert not first_time("flaky"), "fails the first time only"

            def test_always(self):
                assert False, "fails every time"


        class TestOther:
            def test_1(self):
                time.sleep(0.3)

            def test_2(self):
                time.sleep(0.3)
        """
}


@dataclass(frozen=True)
class Run:
    proc: subprocess.CompletedProcess[str]
    tests: dict[str, Any]
    junit: str
    seconds: float
    marks: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = write_suite(tmp_path_factory.mktemp("workers"), SUITE)
    marks = root / "marks"
    marks.mkdir()
    env = dict(os.environ, FAULT_MARKS=str(marks))
    args = ["run", "--agents", "2", "--timeout", "4", "--reruns", "2", "--durations", "d.msgpack"]
    args += ["--results", "results.json", "--junitxml", "junit.xml", "test_faults.py"]
    started = time.monotonic()
    proc = run_orchestrate(args, root, timeout=180, env=env)
    seconds = time.monotonic() - started
    assert "Traceback" not in proc.stderr, proc.stderr
    collected = [
        f"test_faults.py::{cls}::{name}"
        for cls, names in {
            "TestExit": ("test_before", "test_exit", "test_after"),
            "TestSegv": ("test_before", "test_segv", "test_after"),
            "TestHang": ("test_hang", "test_after"),
            "TestReruns": ("test_flaky", "test_always"),
            "TestOther": ("test_1", "test_2"),
        }.items()
        for name in names
    ]
    tests = assert_consistent(root / "results.json", root / "junit.xml", proc.stdout, collected)
    return Run(proc, tests, (root / "junit.xml").read_text(), seconds, marks)


def outcome(run: Run, name: str) -> str:
    return str(run.tests[f"test_faults.py::{name}"]["outcome"])


def attempts(run: Run, name: str) -> list[dict[str, Any]]:
    return list(run.tests[f"test_faults.py::{name}"]["attempts"])


def test_exit_code_is_one_and_the_run_ends_promptly(run: Run) -> None:
    assert run.proc.returncode == 1, run.proc.stdout[-3000:]
    # Ray start-up, two 4 s timeout... the hang must not hold the run.
    assert run.seconds < 90


@pytest.mark.parametrize("name", ["TestExit::test_exit", "TestSegv::test_segv"])
def test_a_test_killing_its_worker_is_crashed_after_max_crashes_attempts(run: Run, name: str) -> None:
    """Scenarios 1 and 3: crashed, reported once, tried --max-crashes (2) times, never forever."""
    assert outcome(run, name) == "crashed"
    tries = attempts(run, name)
    assert [a["outcome"] for a in tries] == ["crashed", "crashed"]
    final = tries[-1]
    assert final["agent"] in (0, 1)
    assert f"agent {final['agent']}:" in final["message"]
    expected = "worker exited with code 1" if "exit" in name else "worker killed by signal 11"
    assert expected in final["message"]
    # The worker's last output comes with it: pytest's header, or faulthandler's traceback.
    assert "test session starts" in final["message"] or "test_segv" in final["message"]
    summary = [
        line for line in run.proc.stdout.splitlines() if line.startswith(f"CRASHED test_faults.py::{name}")
    ]
    assert len(summary) == 1, summary


@pytest.mark.parametrize("cls", ["TestExit", "TestSegv"])
def test_the_rest_of_a_crashed_unit_runs_on_a_fresh_worker(run: Run, cls: str) -> None:
    assert outcome(run, f"{cls}::test_before") == "passed"
    assert outcome(run, f"{cls}::test_after") == "passed"


def test_a_hung_test_times_out_and_its_unit_goes_on(run: Run) -> None:
    """Scenario 5: --timeout kills the worker; that test is `timeout`, the next one runs."""
    assert outcome(run, "TestHang::test_hang") == "timeout"
    assert len(attempts(run, "TestHang::test_hang")) == 1
    assert outcome(run, "TestHang::test_after") == "passed"
    assert "TIMEOUT test_faults.py::TestHang::test_hang - timed out after 4 s" in run.proc.stdout


def test_reruns_report_a_flaky_test_once_as_passed(run: Run) -> None:
    """Scenario 9: a test failing once then passing is passed (flaky), attempts kept."""
    test = run.tests["test_faults.py::TestReruns::test_flaky"]
    assert test["outcome"] == "passed" and test["flaky"] is True
    assert [a["outcome"] for a in test["attempts"]] == ["failed", "passed"]
    assert "FLAKY test_faults.py::TestReruns::test_flaky" in run.proc.stdout
    assert run.junit.count("<flakyFailure") == 1


def test_reruns_end_an_always_failing_test_failed_with_rerun_failures(run: Run) -> None:
    tries = attempts(run, "TestReruns::test_always")
    assert [a["outcome"] for a in tries] == ["failed", "failed", "failed"]
    assert outcome(run, "TestReruns::test_always") == "failed"
    # Two earlier attempts of test_always, plus one earlier crash of each always-crashing test.
    assert run.junit.count("<rerunFailure") == 2 + 1 + 1
    assert 'message="AssertionError: fails every time' in run.junit
