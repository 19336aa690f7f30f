"""More agents than cores: the duration store learns each test's CPU time, and the next plan for
that many agents stretches each test by it (a sleeping test is not slowed, a computing one is).

A real run of `orchestrate run` at twice as many local agents as this machine has cores, on a
suite of tests that compute for 0.2 CPU-seconds and tests that sleep for 0.2 s.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from conftest import run_orchestrate

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
                        time.sleep({BURN})
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
    assert "2 agents per core: each test slowed by its recorded CPU time" in second.stdout
