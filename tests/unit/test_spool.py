"""Unit tests of the results spool: the results file is the same whether reports stay in memory or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.model import AgentStatistics, Attempt, Outcome, OutputPaths, RunReport, TestResult
from orchestrator.protocol.errors import InternalError
from orchestrator.report.outputs import finish_outputs
from orchestrator.report.results import iter_written_tests, report_to_document, write_results
from orchestrator.report.spool import ResultSpool, lighten


def _report(node_id: str, when: str, outcome: str) -> dict[str, object]:
    return {"nodeid": node_id, "when": when, "outcome": outcome, "sections": [], "$report_type": "TestReport"}


def _result(node_id: str, outcome: Outcome, *earlier: Outcome) -> TestResult:
    attempts = tuple(
        Attempt(0, o, 0.1, tuple(_report(node_id, w, o.value) for w in ("setup", "call", "teardown")))
        for o in (*earlier, outcome)
    )
    return TestResult(node_id, outcome, attempts)


RESULTS = (
    _result("t.py::test_pass", Outcome.PASSED),
    _result("t.py::test_fail", Outcome.FAILED),
    _result("t.py::test_flaky", Outcome.PASSED, Outcome.FAILED),
    _result("t.py::test_skip", Outcome.SKIPPED),
)


def _run_report(results: tuple[TestResult, ...]) -> RunReport:
    return RunReport(results, (AgentStatistics(0, tests=len(results)),), wall_seconds=1.0, exit_code=1)


def test_lighten_drops_only_the_reports_of_passed_attempts() -> None:
    light = [lighten(r) for r in RESULTS]
    assert light[0].attempts[0].reports == ()
    assert light[1] is RESULTS[1]
    assert light[2].attempts[0].reports == RESULTS[2].attempts[0].reports  # the failed try keeps its reports
    assert light[2].attempts[1].reports == ()
    assert light[3] is RESULTS[3]
    assert [r.outcome for r in light] == [r.outcome for r in RESULTS]


def test_the_results_file_from_the_spool_equals_the_one_from_memory(tmp_path: Path) -> None:
    spool = ResultSpool()
    for result in reversed(RESULTS):  # completion order differs from collection order
        spool.add(result)
    light = _run_report(tuple(lighten(r) for r in RESULTS))

    write_results(_run_report(RESULTS), str(tmp_path / "memory.json"))
    write_results(light, str(tmp_path / "spooled.json"), spool=spool)

    assert (tmp_path / "spooled.json").read_text() == (tmp_path / "memory.json").read_text()
    assert report_to_document(light, spool=spool) == report_to_document(_run_report(RESULTS))
    assert [t["node_id"] for t in iter_written_tests(str(tmp_path / "spooled.json"))] == [
        r.node_id for r in RESULTS
    ]
    spool.close()


def test_a_results_file_that_differs_from_the_run_is_an_internal_error(tmp_path: Path) -> None:
    spool = ResultSpool()
    for result in RESULTS:
        spool.add(result)
    spool.add(_result("t.py::test_pass", Outcome.FAILED))  # a wrong line for a test: the later one wins

    with pytest.raises(InternalError, match="does not hold the run's results"):
        finish_outputs(
            _run_report(RESULTS),
            OutputPaths(results=str(tmp_path / "r.json")),
            junitxml=None,
            extra={},
            spool=spool,
        )
    assert json.loads((tmp_path / "r.json").read_text())["tests"][0]["outcome"] == "failed"
