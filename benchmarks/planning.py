"""The coordinator's fixed costs at scale: planning 100,000 tests, merging 100,000 results.

Called by `python benchmarks/run.py --planning`. Two measurements, no pytest run and no Ray:

- planning time: `estimate_units` then `plan_lpt` for 100,000 tests in 20,000 units, from a
  duration store that knows 90% of them (the rest exercise the per-module guess), plus the
  store's own save and load;
- merge memory: in a fresh subprocess (so the interpreter's baseline is known and nothing
  else inflates the peak), build a RunReport of 100,000 TestResults whose attempts carry
  pytest's serialised setup/call/teardown reports, then write the results JSON. Peak RSS comes
  from `resource.getrusage`; in a second subprocess, the Python-level peak of each step from
  `tracemalloc` (which inflates RSS, hence not the same process).

The JUnit XML is no longer orchestrate's to write: pytest's own LogXML writes it from the
reports the coordinator replays, so its memory is part of the coordinator's whole-run memory
at 100,000 tests, measured by the memory benchmark (issue 11, goal 6), not here.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from orchestrator.durations.estimate import estimate_units
from orchestrator.durations.store import DurationStore
from orchestrator.model import (
    AgentStatistics,
    Attempt,
    Outcome,
    RunReport,
    TestResult,
    TestUnit,
)
from orchestrator.report.results import write_results
from orchestrator.scheduling import plan_lpt

__all__ = ["measure_planning"]

TESTS = 100_000
UNITS = 20_000
MODULES = 2_000
AGENTS = 8


def _units(tests: int = TESTS, units: int = UNITS, modules: int = MODULES) -> tuple[TestUnit, ...]:
    per_unit = tests // units
    per_module = units // modules
    return tuple(
        TestUnit(
            f"tests/test_mod_{u // per_module:04d}.py::TestUnit{u:05d}",
            tuple(
                f"tests/test_mod_{u // per_module:04d}.py::TestUnit{u:05d}::test_{t}" for t in range(per_unit)
            ),
        )
        for u in range(units)
    )


def _timed(function: Any, repeat: int = 3) -> tuple[Any, float]:
    """The function's result and its median wall time over `repeat` calls."""
    seconds = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds)


def _planning_times() -> dict[str, float]:
    rng = random.Random(7)
    units = _units()
    store = DurationStore()
    store.update({n: rng.lognormvariate(-2, 1.0) for u in units for n in u.node_ids if rng.random() < 0.9})
    estimates, estimate_seconds = _timed(lambda: estimate_units(units, store))
    plan, plan_seconds = _timed(lambda: plan_lpt(estimates, AGENTS))
    assert plan.tests == TESTS
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "durations.msgpack"
        _, save_seconds = _timed(lambda: store.save(path))
        _, load_seconds = _timed(lambda: DurationStore.load(path))
        store_bytes = path.stat().st_size
    return {
        "estimate_units_seconds": estimate_seconds,
        "plan_lpt_seconds": plan_seconds,
        "plan_total_seconds": estimate_seconds + plan_seconds,
        "store_save_seconds": save_seconds,
        "store_load_seconds": load_seconds,
        "store_bytes": store_bytes,
    }


def _report_dict(
    node_id: str, when: str, outcome: str, duration: float, rng: random.Random
) -> dict[str, Any]:
    """One report as pytest's `pytest_report_to_serializable` makes it, after the wire (lists)."""
    path, _, rest = node_id.partition("::")
    sections: list[list[str]] = []
    longrepr: Any = None
    if when == "call" and rng.random() < 0.05:
        sections.append(["Captured stdout call", "some output of the test\n" * 4])
    if outcome == "failed":
        longrepr = (
            "self = <TestUnit object>\n\n    def test():\n>       assert compute() == 42\nE       assert 41 == 42\n"
            * 6
        )
    return {
        "nodeid": node_id,
        "location": [path, rng.randint(1, 500), rest.replace("::", ".")],
        "keywords": {rest.split("::")[-1]: 1, rest.split("::")[0]: 1, path: 1, "pytestmark": 1},
        "outcome": outcome,
        "longrepr": longrepr,
        "when": when,
        "user_properties": [],
        "sections": sections,
        "duration": duration,
        "start": 1.7e9,
        "stop": 1.7e9 + duration,
        "$report_type": "TestReport",
    }


def _build_report(units: tuple[TestUnit, ...]) -> RunReport:
    rng = random.Random(11)
    results = []
    for unit in units:
        for node_id in unit.node_ids:
            outcome = Outcome.FAILED if rng.random() < 0.01 else Outcome.PASSED
            duration = rng.lognormvariate(-3, 1)
            reports = tuple(
                _report_dict(
                    node_id, when, "failed" if when == "call" and outcome.is_failure else "passed", d, rng
                )
                for when, d in (("setup", duration / 10), ("call", duration), ("teardown", duration / 20))
            )
            attempt = Attempt(rng.randrange(AGENTS), outcome, duration * 1.15, reports)
            results.append(TestResult(node_id, outcome, (attempt,)))
    agents = tuple(AgentStatistics(a, tests=TESTS // AGENTS) for a in range(AGENTS))
    return RunReport(tuple(results), agents, wall_seconds=100.0, exit_code=1)


def _max_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux (bytes on macOS; the benchmark targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_child(mode: str) -> dict[str, float]:
    """Runs in a subprocess: build the report, write it, report peak memory and times.

    "rss" mode measures the process's peak RSS after each step; "trace" mode measures each
    step's Python-level peak with tracemalloc (which itself costs memory, hence two runs).
    """
    units = _units()
    if mode == "trace":
        tracemalloc.start()
        report = _build_report(units)
        report_bytes, build_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with tempfile.TemporaryDirectory() as scratch:
            write_results(report, str(Path(scratch) / "results.json"))
            _, results_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "report_bytes": report_bytes,
            "build_peak_bytes": build_peak,
            "write_results_peak_bytes": results_peak,
        }
    baseline = _max_rss_bytes()
    start = time.perf_counter()
    report = _build_report(units)
    build_seconds = time.perf_counter() - start
    after_build = _max_rss_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        write_results(report, str(Path(scratch) / "results.json"))
        results_seconds = time.perf_counter() - start
        after_results = _max_rss_bytes()
        results_bytes = (Path(scratch) / "results.json").stat().st_size
    return {
        "tests": len(report.results),
        "baseline_rss_bytes": baseline,
        "peak_rss_after_build_bytes": after_build,
        "peak_rss_after_results_bytes": after_results,
        "peak_rss_bytes": _max_rss_bytes(),
        "build_report_seconds": build_seconds,
        "write_results_seconds": results_seconds,
        "results_bytes": results_bytes,
    }


def _child(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(done.stdout)


def measure_planning() -> dict[str, Any]:
    """Both measurements, as one JSON-ready dict. Called by run.py --planning."""
    planning = _planning_times()
    merge = {**_child("rss"), "python_peaks": _child("trace")}
    return {"tests": TESTS, "units": UNITS, "agents": AGENTS, **planning, "merge": merge}


def format_planning(figures: dict[str, Any]) -> str:
    """The human summary run.py prints."""
    mib = 1024 * 1024
    merge = figures["merge"]
    peaks = merge["python_peaks"]
    return "\n".join(
        [
            f"planning {figures['tests']:,} tests in {figures['units']:,} units for {figures['agents']} agents:",
            f"  estimate_units {figures['estimate_units_seconds'] * 1000:.0f} ms, "
            f"plan_lpt {figures['plan_lpt_seconds'] * 1000:.0f} ms "
            f"(total {figures['plan_total_seconds'] * 1000:.0f} ms)",
            f"  duration store: {figures['store_bytes'] / mib:.1f} MiB, save {figures['store_save_seconds'] * 1000:.0f} ms, "
            f"load {figures['store_load_seconds'] * 1000:.0f} ms",
            f"merging {merge['tests']:,} results (3 pytest reports each):",
            f"  peak RSS {merge['peak_rss_bytes'] / mib:.0f} MiB (interpreter + imports {merge['baseline_rss_bytes'] / mib:.0f} MiB; "
            f"after building the report {merge['peak_rss_after_build_bytes'] / mib:.0f} MiB, "
            f"after results JSON {merge['peak_rss_after_results_bytes'] / mib:.0f} MiB)",
            f"  Python heap (tracemalloc): report {peaks['report_bytes'] / mib:.0f} MiB; extra peak while writing "
            f"results JSON {peaks['write_results_peak_bytes'] / mib:.0f} MiB",
            f"  time: build {merge['build_report_seconds']:.1f} s, results JSON {merge['write_results_seconds']:.1f} s "
            f"({merge['results_bytes'] / mib:.0f} MiB)",
            "  JUnit XML: written by pytest's LogXML from the replayed reports; measured by the memory benchmark",
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-child"]:
        print(json.dumps(_memory_child(sys.argv[2])))
    else:
        print(format_planning(measure_planning()))
