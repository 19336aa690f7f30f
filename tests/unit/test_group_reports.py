"""Which units ran under which test group: the results file, the agents table, the HTML timeline."""

from __future__ import annotations

from pathlib import Path

from orchestrator.model import AgentStatistics, Attempt, Outcome, RunReport, TestResult, UnitSpan
from orchestrator.report import read_results, write_results
from orchestrator.report.html import render_html
from orchestrator.report.results import report_to_document
from orchestrator.report.tables import agents_table_text


def _report() -> RunReport:
    spans_0 = (
        UnitSpan("t.py::TestPay0", 1.0, 2.0, 1.0, 1, Outcome.PASSED, groups=("payments",)),
        UnitSpan("t.py::TestPay1", 2.0, 3.0, 1.0, 1, Outcome.PASSED, groups=("payments",)),
    )
    spans_1 = (
        UnitSpan("t.py::TestAlone", 0.5, 1.0, 0.5, 1, Outcome.PASSED, alone=True),
        UnitSpan("t.py::TestPlain", 1.0, 2.5, 1.5, 1, Outcome.PASSED),
    )
    results = tuple(
        TestResult(f"t.py::{name}::test_x", Outcome.PASSED, (Attempt(a, Outcome.PASSED, 1.0),))
        for a, name in ((0, "TestPay0"), (0, "TestPay1"), (1, "TestAlone"), (1, "TestPlain"))
    )
    agents = (
        AgentStatistics(0, tests=2, busy_seconds=2.0, ready_at=0.5, finished_at=3.0, units=spans_0),
        AgentStatistics(1, tests=2, busy_seconds=2.0, ready_at=0.5, finished_at=2.5, units=spans_1),
    )
    return RunReport(results, agents, 3.5, 0)


def test_the_results_file_carries_each_units_groups_and_reads_them_back(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(_report(), str(path))
    report, _ = read_results(str(path))
    assert [span.groups for span in report.agents[0].units] == [("payments",), ("payments",)]
    assert [span.alone for span in report.agents[1].units] == [True, False]


def test_the_agents_table_says_how_many_units_ran_under_each_group() -> None:
    text = agents_table_text(_report())
    assert "groups" in text.splitlines()[0]
    assert "payments x2" in text and "alone x1" in text


def test_the_agents_table_has_no_groups_column_without_groups() -> None:
    report = _report()
    plain = RunReport(
        report.results, (AgentStatistics(0, units=(UnitSpan("u", 0, 1, 1, 1, Outcome.PASSED),)),), 1, 0
    )
    assert "groups" not in agents_table_text(plain)


def test_the_timeline_marks_grouped_units_and_names_the_groups() -> None:
    page = render_html(report_to_document(_report()))
    assert page.count('class="group" data-group="payments"') == 2
    assert page.count('data-group="alone"') == 1
    assert "ran under payments" in page
    assert ">payments</text>" in page and ">alone</text>" in page  # the legend
