"""`orchestrate run --agents auto` on a small suite, local agents: the chosen N and why.

The first run has no start-up history: one agent per core (at most one per unit). It records
its agents' start-up in the duration store; the second run chooses from that history and says
so, and `plan` shows the predicted wall-clock with start-up beside the test time.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

from conftest import run_orchestrate, run_pytest

from orchestrator.planning.durations.store import DurationStore

SUITE = {
    f"test_m{i}.py": textwrap.dedent(
        f"""
        import time

        class TestC{i}:
            def test_a(self):
                time.sleep(0.05)

            def test_b(self):
                pass
        """
    )
    for i in range(3)
}


def test_auto_chooses_n_says_why_and_learns_start_up(tmp_path: Path) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    cores = os.cpu_count() or 1

    first = run_orchestrate(
        ["run", "--agents", "auto", "--backend", "local", "--results", "r.json"], tmp_path
    )

    assert first.returncode == 0, first.stdout + first.stderr
    expected = min(cores, 3)
    assert f"orchestrate: --agents auto: {expected} agent" in first.stdout
    assert "no start-up history for this backend and stack yet: one agent per core" in first.stdout
    store, warning = DurationStore.load(tmp_path / ".orchestrate" / "durations.msgpack")
    assert warning is None
    costs = store.startup.get("local/no stack")
    assert costs is not None and costs.ready > 0 and costs.runs == 1

    second = run_orchestrate(
        ["run", "--backend", "local", "--results", "r.json"], tmp_path
    )  # auto: the default

    assert second.returncode == 0, second.stdout + second.stderr
    chosen = re.search(r"orchestrate: --agents auto: (\d+) agents?; predicted ([\d.]+)s with", second.stdout)
    assert chosen is not None, second.stdout
    # 3 units of 0.05 s against a start-up of a pytest worker: more agents than cores never pay.
    assert 1 <= int(chosen.group(1)) <= expected, second.stdout
    assert "s start-up + " in second.stdout
    plan = json.loads((tmp_path / "r.json").read_text())["plan"]
    assert plan["agents"] == int(chosen.group(1))
    assert plan["predicted_wall_seconds"] > plan["predicted_makespan"]

    planned = run_orchestrate(["plan", "--agents", "1,2"], tmp_path)

    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "wall-clock s" in planned.stdout and "start-up s" in planned.stdout


def test_auto_runs_a_suite_of_fast_tests_in_this_process_once_it_knows_them(tmp_path: Path) -> None:
    """Agents cannot pay for 400 tests that do nothing: the second run is plain pytest's loop here."""
    for m in range(4):
        body = "".join(f"def test_{n}():\n    assert {n} >= 0\n" for n in range(100))
        (tmp_path / f"test_fast_{m}.py").write_text(body + "def test_fails():\n    assert False\n")
    plain = run_pytest(["-p", "no:cacheprovider", "-q"], tmp_path)

    first = run_orchestrate(["run", "--backend", "local"], tmp_path)
    second = run_orchestrate(["run", "--backend", "local"], tmp_path)

    assert "in this process" not in first.stdout, first.stdout  # nothing known yet: agents
    assert "orchestrate: --agents auto: in this process: predicted" in second.stdout, second.stdout
    assert "orchestrate: agents" not in second.stdout  # no agent ran
    assert second.returncode == first.returncode == plain.returncode == 1
    assert _counts(second.stdout) == _counts(first.stdout) == _counts(plain.stdout) == "4 failed, 400 passed"
    store, _ = DurationStore.load(tmp_path / ".orchestrate" / "durations.msgpack")
    assert store.get("test_fast_0.py::test_7") is not None  # in-process durations are stored too

    with_results = run_orchestrate(["run", "--backend", "local", "--results", "r.json"], tmp_path)
    assert "in this process" not in with_results.stdout  # --results describes agents: agents run


def _counts(stdout: str) -> str:
    last = stdout.strip().splitlines()[-1]
    return re.sub(r"^=+ | in [\d.]+s.*$", "", last)


def test_auto_runs_more_agents_than_cores_when_the_tests_mostly_wait(tmp_path: Path) -> None:
    # Four classes a core that each sleep for half a second: one agent per core leaves the cores
    # idle; with the tests' CPU recorded (next to nothing) and the start-up known, auto looks
    # further and takes more.
    cores = os.cpu_count() or 1
    for i in range(4 * cores):
        (tmp_path / f"test_wait_{i}.py").write_text(
            f"import time\n\nclass TestWaits{i}:\n    def test_it(self):\n        time.sleep(0.5)\n"
        )

    first = run_orchestrate(["run", "--backend", "local"], tmp_path)
    second = run_orchestrate(["run", "--backend", "local"], tmp_path)

    assert first.returncode == second.returncode == 0, first.stdout + second.stdout
    assert f"orchestrate: --agents auto: {cores} agent" in first.stdout  # no history: one per core
    chosen = re.search(
        r"orchestrate: --agents auto: (\d+) agents; predicted .* \(at most (\d+): (.*)\)", second.stdout
    )
    assert chosen is not None, second.stdout
    assert int(chosen[1]) > cores, second.stdout
    assert int(chosen[2]) == min(4 * cores, 30), second.stdout
    assert re.fullmatch(rf"{cores} CPUs here, and the tests compute \d+% of their time", chosen[3]), (
        second.stdout
    )
