"""The coordinator's fixed costs at scale: planning 100,000 tests, running 100,000 results.

Called by `python benchmarks/run.py --planning` (or `python benchmarks/planning.py`). Two
measurements, no Ray and no test actually run:

- planning time: `estimate_units` then `plan_lpt` for 100,000 tests in 20,000 units, from a
  duration store that knows 90% of them (the rest exercise the per-module guess), plus the
  store's own save and load;
- the coordinator's peak memory: in a fresh subprocess (so nothing else inflates the peak),
  the real coordinator, a pytest session with orchestrate's plugin, on a generated suite of
  100,000 trivial tests (100 files of 200 classes of 5), with `--agents 2`. Only the agents
  are fake: a backend that answers every assigned unit with the events a real agent sends
  (one TestEnded per test, its setup/call/teardown reports packed as a worker packs them:
  passing phases compact, 1% failures with a traceback and 5% with captured output), through
  the real wire encoding. Everything else is the current path:
  pytest's collection, planning, the Session, the replay through pytest's hooks (terminal,
  and LogXML in the run with `--junitxml`), the results file, the duration store. Peak RSS
  comes from `resource.getrusage`; once without and once with `--junitxml`.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.model import TestUnit
from orchestrator.planning.durations.estimate import estimate_units
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.scheduling import plan_lpt

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


class _FakeBackend:
    """An AgentBackend whose agents run nothing: each test of an assigned unit is answered with the
    events a real agent sends (one TestEnded with its setup/call/teardown reports, UnitFinished,
    WorkWanted), through the real wire encoding, a batch of tests per `wait_events`."""

    def __init__(self, tests_per_wait: int = 500) -> None:
        self._rng = random.Random(11)
        self._events: list[bytes] = []
        self._queues: dict[int, list[Any]] = {}
        self._tests_per_wait = tests_per_wait
        self.seconds = 0.0  # its own time (making and encoding events): not the coordinator's

    def start(self, configs: Any) -> None:
        from orchestrator.protocol import messages as p

        for config in configs:
            self._queues[config.agent_id] = []
            self._events.append(p.encode([p.AgentReady(config.agent_id, worker_start_seconds=0.5)]))

    def send(self, agent_id: int, command: Any) -> None:
        from orchestrator.protocol import messages as p

        if isinstance(command, p.Assign):
            self._queues[agent_id].extend(command.units)
        elif isinstance(command, p.Finish | p.Abort):
            self._queues[agent_id] = []
            self._events.append(p.encode([p.AgentStopped(agent_id)]))

    def wait_events(self, timeout: float) -> list[Any]:
        from orchestrator.protocol import messages as p

        started = time.perf_counter()
        budget = self._tests_per_wait
        for agent_id, queue in self._queues.items():
            while queue and budget > 0:
                unit = queue.pop(0)
                batch: list[Any] = []
                for node_id in unit.node_ids:
                    batch += self._test_events(agent_id, node_id)
                batch.append(p.UnitFinished(agent_id, unit_id=unit.unit_id))
                if not queue:
                    batch.append(p.WorkWanted(agent_id))
                self._events.append(p.encode(batch))
                budget -= len(unit.node_ids)
        # Decoding is the coordinator's work (a real backend hands it bytes): not counted here.
        self.seconds += time.perf_counter() - started
        events = [event for data in self._events for event in p.decode(data)]
        self._events = []
        return events

    def _test_events(self, agent_id: int, node_id: str) -> list[Any]:
        from orchestrator.protocol import messages as p
        from orchestrator.protocol.reports import compact_phase, pack_test_reports

        failed = self._rng.random() < 0.01
        duration = self._rng.lognormvariate(-3, 1)
        phases: list[Any] = []
        location: Any = None
        keywords: dict[str, Any] = {}
        total = 0.0
        for when, seconds in (("setup", duration / 10), ("call", duration), ("teardown", duration / 20)):
            outcome = "failed" if when == "call" and failed else "passed"
            report = _report_dict(node_id, when, outcome, seconds, self._rng)
            total += seconds
            # As agents/plugin.py packs them: a plain report compact, anything else in pytest's form.
            compact = compact_phase({k: v for k, v in report.items() if k != "$report_type"})
            if compact is not None and not keywords:
                location, keywords = report["location"], report["keywords"]
            phases.append(report if compact is None else compact)
        return [
            p.TestEnded(
                agent_id,
                node_id=node_id,
                reports=pack_test_reports(location, keywords, phases),
                seconds=total,
            )
        ]

    def shutdown(self) -> None:
        pass


def _write_suite(root: Path, tests: int = TESTS, modules: int = 100, per_class: int = 5) -> None:
    """`tests` trivial tests: `modules` files of classes of `per_class` methods (a unit each)."""
    classes = tests // modules // per_class
    root.mkdir(parents=True, exist_ok=True)
    body = "\n".join(
        f"class TestC{c:04d}:\n"
        + "\n".join(f"    def test_{t}(self):\n        pass" for t in range(per_class))
        for c in range(classes)
    )
    for m in range(modules):
        (root / f"test_m{m:03d}.py").write_text(body + "\n", encoding="utf-8")


def _max_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux (bytes on macOS; the benchmark targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_child(mode: str) -> dict[str, Any]:
    """Runs in a subprocess: the real coordinator (a pytest session with orchestrate's plugin:
    collection, planning, Session, PytestReplay, terminal, results file, duration store; with
    `--junitxml` in mode "junit") on 100,000 trivial tests, its agents answered by _FakeBackend.
    Reports its peak RSS and phases' times."""
    import contextlib
    import io

    import pytest

    import orchestrator.run.backends

    figures: dict[str, Any] = {"baseline_rss_bytes": _max_rss_bytes()}
    marks: dict[str, float] = {}

    class _Probe:
        @pytest.hookimpl(trylast=True)
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            marks["collected"] = time.perf_counter()
            figures["peak_rss_after_collection_bytes"] = _max_rss_bytes()
            figures["tests"] = len(session.items)

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(self) -> None:
            marks["ran"] = time.perf_counter()
            figures["peak_rss_after_run_bytes"] = _max_rss_bytes()

    backend = _FakeBackend()
    orchestrator.run.backends.make_backend = lambda *args, **kwargs: backend  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as scratch:
        suite = Path(scratch) / "suite"
        _write_suite(suite)
        args = [
            str(suite),
            "--agents=2",
            "--orchestrate-backend=local",
            f"--orchestrate-durations={scratch}/durations.msgpack",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={scratch}",
        ]
        if mode != "bare":  # bare: what a run without outputs costs, for the coordinator's throughput
            args.append(f"--orchestrate-results={scratch}/results.json")
        if mode == "junit":
            args.append(f"--junitxml={scratch}/junit.xml")
        os.chdir(scratch)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = pytest.main(args, plugins=[_Probe()])
        end = time.perf_counter()
        results = Path(scratch) / "results.json"
        figures["results_bytes"] = results.stat().st_size if results.exists() else 0
    figures.update(
        exit_code=int(code),
        peak_rss_bytes=_max_rss_bytes(),
        collect_seconds=marks["collected"] - start,
        run_seconds=marks["ran"] - marks["collected"],
        fake_agents_seconds=backend.seconds,
        results_per_second=figures["tests"] / (marks["ran"] - marks["collected"] - backend.seconds),
        finish_seconds=end - marks["ran"],
        total_seconds=end - start,
    )
    return figures


def _child(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child", mode],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(done.stdout)


def measure_planning() -> dict[str, Any]:
    """Both measurements, as one JSON-ready dict. Called by run.py --planning."""
    planning = _planning_times()
    coordinator = {"bare": _child("bare"), "plain": _child("plain"), "junit": _child("junit")}
    return {"tests": TESTS, "units": UNITS, "agents": AGENTS, **planning, "coordinator": coordinator}


_MODES = {
    "bare": "no outputs",
    "plain": "--orchestrate-results",
    "junit": "--orchestrate-results and --junitxml",
}


def format_planning(figures: dict[str, Any]) -> str:
    """The human summary run.py prints."""
    mib = 1024 * 1024
    lines = [
        f"planning {figures['tests']:,} tests in {figures['units']:,} units for {figures['agents']} agents:",
        f"  estimate_units {figures['estimate_units_seconds'] * 1000:.0f} ms, "
        f"plan_lpt {figures['plan_lpt_seconds'] * 1000:.0f} ms "
        f"(total {figures['plan_total_seconds'] * 1000:.0f} ms)",
        f"  duration store: {figures['store_bytes'] / mib:.1f} MiB, save {figures['store_save_seconds'] * 1000:.0f} ms, "
        f"load {figures['store_load_seconds'] * 1000:.0f} ms",
    ]
    for mode, run in figures["coordinator"].items():
        lines += [
            f"the coordinator on {run['tests']:,} tests, 2 fake agents ({_MODES[mode]}):",
            f"  peak RSS {run['peak_rss_bytes'] / mib:.0f} MiB (interpreter + imports {run['baseline_rss_bytes'] / mib:.0f} MiB; "
            f"after collection {run['peak_rss_after_collection_bytes'] / mib:.0f} MiB, "
            f"after the run {run['peak_rss_after_run_bytes'] / mib:.0f} MiB)",
            f"  time: collection {run['collect_seconds']:.1f} s, run {run['run_seconds']:.1f} s, "
            f"outputs {run['finish_seconds']:.1f} s (results file {run['results_bytes'] / mib:.0f} MiB); "
            f"total {run['total_seconds']:.1f} s",
            f"  throughput: {run['results_per_second']:,.0f} results/s turned into pytest reports "
            f"(the run less the fake agents' own {run['fake_agents_seconds']:.1f} s)",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-child"]:
        print(json.dumps(_memory_child(sys.argv[2])))
    else:
        print(format_planning(measure_planning()))
