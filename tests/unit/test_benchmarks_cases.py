"""The goals table of `benchmarks/run.py --all`: which median is compared with which, met or missed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_cases():
    # benchmarks/ is not an installed package; load the module from its file.
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "cases.py"
    spec = importlib.util.spec_from_file_location("benchmarks_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


cases = _load_cases()


def _cell(median: float, first: float | None = None) -> dict[str, object]:
    cell: dict[str, object] = {"median": median, "min": median - 0.1, "max": median + 0.1, "note": ""}
    if first is not None:
        cell["first_test"] = {"median": first, "min": first, "max": first}
    return cell


def test_every_goal_has_a_check_and_every_check_a_case() -> None:
    assert {c.goal[0] for c in cases.CHECKS} == {"1", "2", "3", "4", "5"}
    names = {case.name for case in cases.all_cases(real=True)}
    for check in cases.CHECKS:
        case = next(c for c in cases.all_cases(real=True) if c.name == check.case)
        assert check.case in names and check.agents in case.agents
        assert check.method in case.methods
        assert check.against == "lower bound" or check.against in case.methods
    assert "real" not in {case.name for case in cases.all_cases(real=False)}


def test_met_missed_and_not_run() -> None:
    summaries = {
        "trivial": {
            "xdist-worksteal": {"4": _cell(5.0)},
            "orchestrate": {"4": _cell(5.0)},
            "orchestrate-ray": {"4": _cell(6.6)},
        },
        "balance-300s": {
            "xdist-worksteal": {"8": _cell(45.0)},
            "xdist-loadscope": {"8": _cell(40.0)},
            "orchestrate": {"8": _cell(40.0)},
        },
        "startup": {
            "xdist-worksteal": {"2": _cell(3.0, first=1.0), "4": _cell(3.0, first=1.0)},
            "orchestrate": {"2": _cell(3.0, first=0.5), "4": {"median": None, "note": "exit code 1"}},
        },
    }
    rows = cases.evaluate(summaries, {"balance-300s": {"8": 37.5}})
    by = {(r["case"], r["N"], r["method"].split()[0], r["against"].split()[0]): r["result"] for r in rows}
    assert by[("trivial", "4", "orchestrate", "xdist-worksteal")].startswith("met")  # not slower: ties count
    assert by[("trivial", "4", "orchestrate-ray", "orchestrate")].startswith("MISSED")  # 1.32x > 1.3x
    assert by[("balance-300s", "8", "orchestrate", "xdist-worksteal")].startswith("met")
    assert by[("balance-300s", "8", "orchestrate", "xdist-loadscope")].startswith(
        "MISSED"
    )  # a tie is not faster
    assert by[("balance-300s", "8", "orchestrate", "37.50s")].startswith("MISSED")  # 40 / 37.5 > 1.05
    assert by[("startup", "2", "orchestrate", "xdist-worksteal")] == "met (0.50x)"  # first test, not wall
    assert by[("startup", "4", "orchestrate", "xdist-worksteal")] == "no figure"
    assert by[("balance-60s", "2", "orchestrate", "xdist-worksteal")] == "not run"
    table = cases.format_goals(rows)
    assert table.splitlines()[0].startswith("| goal") and len(table.splitlines()) == len(rows) + 2


def test_every_target_of_issue_18_has_its_case_and_method() -> None:
    by_name = {case.name: case for case in cases.ISSUE18_CASES}
    assert len(by_name) == len(cases.ISSUE18_CASES)  # one summary per case name
    for check in cases.ISSUE18_CHECKS:
        case = by_name[check.case]
        assert check.agents in case.agents, check
        assert check.method in case.methods, check
        assert check.against == "lower bound" or check.against in case.methods, check


def _measured(
    method: str, predicted: float | None, test_phase: float | None, reestimated: float | None = None
) -> dict[str, object]:
    return {
        "method": method,
        "predicted_seconds": predicted,
        "test_phase_seconds": test_phase,
        "reestimated_seconds": reestimated,
    }


def test_issue_18_rows_that_are_not_one_median_against_another() -> None:
    cpu = {"median": 0.0, "min": 0.0, "max": 0.0}
    trivial = {
        "case": "trivial",
        "summary": {
            "serial": {"4": {"cpu": {**cpu, "median": 4.0}}},
            "orchestrate": {"4": {"cpu": {**cpu, "median": 8.0}}},  # 4 CPU-s over 5,000: 0.8 ms
            "xdist-worksteal": {"4": {"cpu": {**cpu, "median": 12.0}}},  # 1.6 ms
        },
        "measurements": [],
    }
    real = {
        "case": "real",
        "summary": {},
        "measurements": [
            _measured("orchestrate-first", 50.0, 40.0, 60.0),  # +25%, re-estimated +50%
            _measured("orchestrate-first", 30.0, 40.0, 60.0),  # -25%
            _measured("orchestrate-first", 56.0, 40.0, 20.0),  # +40%, re-estimated -50%
            _measured("orchestrate-second", 1.0, 40.0),  # not a first run
            _measured("orchestrate-first", None, 40.0),  # no plan line
        ],
    }
    integration = {
        "case": "integration",
        "summary": {},
        "measurements": [],
        "idle_stacks": {"agents": 4, "seconds": 20.0, "cpu_seconds": 1.2},  # 1.5% of a core each
        "parity": {"orchestrate": "equal (10 passed) (3 runs)", "orchestrate-warm": "DIFFERS: 1 missing"},
    }
    rows = {(r["goal"], r["method"].split()[0]): r for r in cases.issue18_rows([trivial, real, integration])}
    own = rows[("own CPU per test", "0.80")]
    assert own["result"] == "met" and own["against"].startswith("xdist 1.60 ms")
    first = rows[("first run: the plan's guess", "+25%")]  # the median of +25%, -25%, +40%
    assert first["result"] == "met"
    assert rows[("first run: re-estimated at half", "+50%")]["result"] == "MISSED"
    assert rows[("Docker with stacks up", "1.20")]["result"] == "MISSED"
    assert rows[("parity with plain pytest", "orchestrate")]["result"].startswith("equal")
    assert rows[("parity with plain pytest", "orchestrate-warm")]["result"].startswith("DIFFERS")


def test_issue_18_rows_without_figures_are_left_out() -> None:
    trivial = {"case": "trivial", "summary": {"orchestrate": {"4": {}}}, "measurements": []}
    assert cases.issue18_rows([trivial]) == []
