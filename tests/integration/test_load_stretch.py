"""More agents than cores: the duration store learns each test's CPU time, and the next plan for
that many agents stretches each test by it (a sleeping test is not slowed, a computing one is).
A test slowed by a load orchestrate did not make is learnt as it runs alone, too.

Real runs of `orchestrate run`: at twice as many local agents as this machine has cores, on a
suite of tests that compute for 0.2 CPU-seconds and tests that sleep for 0.02 s; and at one
agent, on a test that computes beside processes it starts to keep every core busy.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest
from conftest import run_orchestrate

from agents.run_queue import RunQueueClock
from orchestrator.planning.durations.store import DurationStore

BURN = 0.2


def _suite(root: Path) -> None:
    for i in range(2):
        (root / f"test_work_{i}.py").write_text(
            textwrap.dedent(
                f"""
                import time

                class TestBurns:
                    def test_computes(self):
                        start = time.process_time()
                        while time.process_time() - start < {BURN}:
                            pass

                class TestSleeps:
                    def test_waits(self):
                        time.sleep({BURN / 10})
                """
            )
        )


def test_the_store_keeps_each_tests_cpu_and_the_next_plan_stretches_by_it(tmp_path: Path) -> None:
    _suite(tmp_path)
    agents = str(2 * (os.cpu_count() or 1))
    store_path = tmp_path / ".orchestrate" / "durations.msgpack"

    first = run_orchestrate(["run", "--agents", agents, "--backend", "local"], tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 agents per core, no CPU time recorded yet: tests not slowed" in first.stdout
    store, warning = DurationStore.load(store_path)
    assert warning is None
    for i in range(2):
        computes = store.cpu(f"test_work_{i}.py::TestBurns::test_computes")
        waits = store.cpu(f"test_work_{i}.py::TestSleeps::test_waits")
        assert computes is not None and computes >= BURN * 0.9, (computes, first.stdout)
        assert waits is not None and waits < BURN / 2, (waits, first.stdout)
        # Stored as it would take alone, whatever the load was: about its own 0.2 s.
        seconds = store.get(f"test_work_{i}.py::TestBurns::test_computes")
        assert seconds is not None and seconds < 2 * BURN, (seconds, first.stdout)

    second = run_orchestrate(["run", "--agents", agents, "--backend", "local"], tmp_path)

    assert second.returncode == 0, second.stdout + second.stderr
    # The suite computes 0.4 CPU-s per 0.44 s and a little more (each test's protocol around
    # it): twice the cores' agents want about 1.8x their CPU.
    wanted = re.search(
        r"the agents want ([\d.]+)x the cores' CPU: each test slowed by its recorded CPU time", second.stdout
    )
    assert wanted is not None and 1.4 <= float(wanted[1]) <= 2.0, second.stdout


def test_a_test_slowed_by_a_load_of_others_is_learnt_as_it_runs_alone(tmp_path: Path) -> None:
    if RunQueueClock().waited() < 0.0:
        pytest.skip("this kernel keeps no run-queue delay per thread (sched_info off)")
    (tmp_path / "test_crowded.py").write_text(
        textwrap.dedent(
            f"""
            import os, subprocess, sys, time

            SPIN = "import time\\nend = time.monotonic() + 30\\nwhile time.monotonic() < end: pass"

            def test_computes_in_a_crowd():
                hogs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2 * os.cpu_count())]
                try:
                    time.sleep(0.2)
                    start = time.process_time()
                    while time.process_time() - start < {BURN}:
                        pass
                finally:
                    for hog in hogs:
                        hog.kill()
                        hog.wait()
            """
        )
    )
    results = tmp_path / "results.json"

    run = run_orchestrate(["run", "--agents", "1", "--results", str(results)], tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    (test,) = json.loads(results.read_text())["tests"]
    # Three runnable processes a core: its 0.2 CPU-s took about 0.6 s, after 0.2 s of sleep.
    assert test["duration"] > 0.2 + 2 * BURN, test
    store, _ = DurationStore.load(tmp_path / ".orchestrate" / "durations.msgpack")
    seconds = store.get("test_crowded.py::test_computes_in_a_crowd")
    # One agent on its machine: only the measured wait for a CPU tells what the crowd cost.
    assert seconds is not None and seconds < 0.2 + 1.5 * BURN, (seconds, test["duration"])


def test_what_a_tests_child_processes_compute_is_the_tests_cpu(tmp_path: Path) -> None:
    # A test that runs a command (a CLI under test, a Python subprocess): its worker sleeps while
    # the child computes, and the child's CPU is what the test costs the machine.
    (tmp_path / "test_command.py").write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys

            BURN = "import time\\nstart = time.process_time()\\nwhile time.process_time() - start < {BURN}: pass"

            def test_runs_a_command():
                subprocess.run([sys.executable, "-c", BURN], check=True)
            """
        )
    )

    run = run_orchestrate(["run", "--agents", "1"], tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    store, _ = DurationStore.load(tmp_path / ".orchestrate" / "durations.msgpack")
    cpu = store.cpu("test_command.py::test_runs_a_command")
    assert cpu is not None and cpu >= BURN, (cpu, run.stdout)


def test_a_run_at_more_agents_than_cores_says_when_fewer_would_finish_sooner(tmp_path: Path) -> None:
    # One class of ten 0.1 CPU-s tests and three of one: at twice the cores' agents the long unit
    # is slowed by the others and sets the end; at as many agents as cores it is not.
    tests = "\n".join(f"    def test_{i}(self): burn()" for i in range(10))
    short = "\n".join(f"class TestShort{i}:\n    def test_it(self): burn()\n" for i in range(3))
    (tmp_path / "test_cpu.py").write_text(
        "import time\n\n"
        "def burn():\n"
        "    start = time.process_time()\n"
        f"    while time.process_time() - start < {BURN / 2}:\n"
        "        pass\n\n"
        f"class TestLong:\n{tests}\n\n{short}"
    )
    cores = os.cpu_count() or 1
    agents = ["run", "--agents", str(2 * cores), "--backend", "local"]

    first = run_orchestrate(agents, tmp_path)
    second = run_orchestrate(agents, tmp_path)

    assert first.returncode == second.returncode == 0, first.stdout + second.stdout
    assert "would likely finish sooner" not in first.stdout  # no CPU recorded yet
    sooner = re.search(
        rf"orchestrate: {cores} agents would likely finish sooner on these {cores} cores: "
        r"predicted ([\d.]+)s against ([\d.]+)s",
        second.stdout,
    )
    assert sooner is not None, second.stdout
    assert float(sooner[1]) <= 0.9 * float(sooner[2])


def test_a_child_reaped_by_a_test_is_not_given_the_cpu_it_spent_before_that_test(tmp_path: Path) -> None:
    # A session fixture's process (a server the suite starts) computes during the first test and is
    # waited for in the last test's teardown: that test took milliseconds and cannot have cost a
    # CPU-second.
    (tmp_path / "test_server.py").write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys, time
            import pytest

            BURN = "import time\\nstart = time.process_time()\\nwhile time.process_time() - start < {5 * BURN}: pass"

            @pytest.fixture(scope="session")
            def server():
                child = subprocess.Popen([sys.executable, "-c", BURN])
                yield
                child.wait()

            def test_first(server):
                time.sleep({10 * BURN})

            def test_last(server):
                pass
            """
        )
    )

    run = run_orchestrate(["run", "--agents", "1"], tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    store, _ = DurationStore.load(tmp_path / ".orchestrate" / "durations.msgpack")
    last = store.cpu("test_server.py::test_last")
    assert last is not None and last < BURN, (last, run.stdout)
