"""The HTML report renderer against results documents built by hand (tests/reportdocs.py) and
made by results.py from recorded RunReports."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

import pytest
from reportdocs import ODD_NODE_ID, make_document

from orchestrator.model import AgentStatistics, Attempt, Outcome, RunReport, TestResult, UnitSpan
from orchestrator.report.charts import Series, line_chart_svg, nice_ticks
from orchestrator.report.html import render_html, write_html
from orchestrator.report.results import read_document, read_results, report_to_document, write_results
from orchestrator.report.tables import agents_table_text


def _lanes(page: str) -> list[str]:
    return re.findall(r'<g class="lane" data-agent="([^"]*)"', page)


def test_every_test_is_a_row_and_every_agent_a_lane() -> None:
    document = make_document(agents=3)
    page = render_html(document)
    rows = re.findall(r'<tr data-outcome="([^"]*)" data-id="([^"]*)"', page)
    assert len(rows) == len(document["tests"])
    assert [outcome for outcome, _ in rows] == [t["outcome"] for t in document["tests"]]
    for test in document["tests"]:
        assert html.escape(test["node_id"]) in page
    assert _lanes(page) == ["0", "1", "2"]
    assert page.count('class="unit"') == 9
    assert "lower bound" in page and "predicted" in page


def test_odd_node_ids_are_escaped_everywhere() -> None:
    page = render_html(make_document())
    assert "<script>alert(1)</script>" not in page
    assert html.escape(ODD_NODE_ID) in page
    # Only our own two scripts are on the page.
    assert page.count("<script>") == 2


def test_failures_are_folded_with_their_traceback_and_captured_output() -> None:
    page = render_html(make_document())
    failed = re.search(r'<tr data-outcome="failed".*?</tr>', page, re.S)
    assert failed is not None
    assert "<details><summary>" in failed.group(0)
    assert "assert 1 == 2" in failed.group(0)
    assert "Captured stdout call" in failed.group(0)
    assert "printed &lt;b&gt;before&lt;/b&gt; failing" in failed.group(0)


def test_crashed_flaky_and_slowest_units_sections() -> None:
    page = render_html(make_document())
    assert "Crashed and timed-out tests (" in page
    assert "worker crashed while running this test" in page
    assert "last worker output: Segmentation fault" in page
    assert "Flaky and retried tests (" in page
    assert "failed (agent 0, " in page
    assert "Units: predicted against actual (all 9, slowest first)" in page


def test_merged_documents_group_lanes_by_runner() -> None:
    page = render_html(make_document(agents=2, runners=3))
    headings = [m.start() for m in re.finditer(r">runner (\d)</text>", page)]
    assert re.findall(r">runner (\d)</text>", page) == ["1", "2", "3"]
    lanes = [m.start() for m in re.finditer(r'<g class="lane"', page)]
    assert len(lanes) == 6
    # Two lanes under each runner heading, in order.
    for runner, start in enumerate(headings):
        end = headings[runner + 1] if runner + 1 < len(headings) else len(page)
        assert sum(start < lane < end for lane in lanes) == 2
    assert "merged from 3 CI runner artifact(s)" in page


def test_old_documents_without_the_new_keys_still_render() -> None:
    document = make_document(agents=2)
    del document["plan"]
    for agent in document["agents"]:
        for key in ("timeline", "units", "node"):
            del agent[key]
    for test in document["tests"]:
        test["attempts"] = [
            {k: v for k, v in a.items() if k not in ("started", "finished")} for a in test["attempts"]
        ]
    page = render_html(document)
    assert _lanes(page) == ["0", "1"]
    assert page.count("no timeline recorded") == 2
    assert "Units: predicted" not in page
    assert render_html({})  # nothing at all: still a page


def test_the_page_needs_nothing_from_outside(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "report.html"
    write_html(make_document(), str(path))
    page = path.read_text()
    assert "Content-Security-Policy" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_a_report_becomes_a_document_equal_to_its_results_file(tmp_path: Path) -> None:
    report = RunReport(
        results=(
            TestResult("t.py::test_a", Outcome.PASSED, (Attempt(0, Outcome.PASSED, 0.5),)),
            TestResult("t.py::test_b[x]", Outcome.FAILED, (Attempt(1, Outcome.FAILED, 0.2, message="boom"),)),
        ),
        agents=(AgentStatistics(0, tests=1), AgentStatistics(1, tests=1)),
        wall_seconds=3.0,
        exit_code=1,
    )
    write_results(report, str(tmp_path / "r.json"), extra={"k": (1, 2)})
    assert report_to_document(report, {"k": (1, 2)}) == read_document(str(tmp_path / "r.json"))


def _bars(page: str, css: str) -> list[tuple[float, float]]:
    """The (x, width) of every bar of class `css` on the timeline."""
    return [
        (float(x), float(w))
        for x, w in re.findall(rf'<rect class="{css}" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', page)
    ]


def _recorded_report() -> RunReport:
    """What the session records for two agents (seconds since the run's start): agent 0 busy to
    the end, agent 1 out of work early; both stop together when the run ends at 10 s."""
    passed = Outcome.PASSED
    agents = (
        AgentStatistics(
            0, tests=2, busy_seconds=6.0, stack_up_seconds=1.5, stack_down_seconds=0.5, resets=2, reset_seconds=0.25,
            worker_start_seconds=1.0, ready_at=2.5, finished_at=9.0, stopped_at=10.0,
            units=(UnitSpan("t.py::TestA", 2.5, 5.0, 2.0, 1, passed), UnitSpan("t.py::TestB", 5.5, 9.0, 3.0, 1, Outcome.FAILED)),
        ),
        AgentStatistics(
            1, tests=1, busy_seconds=1.0, stack_up_seconds=2.0, stack_down_seconds=0.8,
            worker_start_seconds=1.0, ready_at=3.0, finished_at=4.0, stopped_at=10.0,
            units=(UnitSpan("t.py::TestC", 3.0, 4.0, 1.0, 1, passed),),
        ),
    )  # fmt: skip
    results = tuple(
        TestResult(f"t.py::Test{u}::test", passed, (Attempt(0, passed, 1.0, started=1.0, finished=2.0),))
        for u in "ABC"
    )
    plan = {"agents": 2.0, "predicted_makespan": 6.0, "lower_bound": 5.0, "total_seconds": 6.0}
    return RunReport(results, agents, wall_seconds=10.0, exit_code=1, plan=plan)


def test_a_recorded_run_draws_every_phase_of_each_lane() -> None:
    document = report_to_document(_recorded_report())
    timeline = document["agents"][1]["timeline"]
    # The stack started when it was up less its start-up; the worker started when the stack was up.
    assert (timeline["started"], timeline["stack_ready"], timeline["worker_ready"]) == (0.0, 2.0, 3.0)
    page = render_html(document)
    assert len(_bars(page, "stack")) == 2 and len(_bars(page, "worker")) == 2
    assert len(_bars(page, "unit")) == 3 and len(_bars(page, "teardown")) == 2
    # Teardown is the last stack_down_seconds before "stopped", not everything after the last test:
    # agent 1's lane idles from 4 s until 9.2 s, then tears down for 0.8 s.
    (_, short), (_, long) = sorted(_bars(page, "teardown"), key=lambda bar: bar[1])
    assert long / short == pytest.approx(0.8 / 0.5, rel=0.05)
    idle = sorted(width for _, width in _bars(page, "idle"))
    assert len(idle) == 3  # agent 0: between its units and before teardown; agent 1: before teardown
    assert idle[-1] / long == pytest.approx(5.2 / 0.8, rel=0.05)
    assert "lower bound 5.0 s" in page and "predicted 6.0 s" in page
    assert "<th>reset s</th>" in page.replace(' class="n"', "") and '<td class="n">0.25</td>' in page
    assert "2 agents; predicted makespan 6.00 s" in page
    assert "reset s" not in render_html(make_document())  # no resets, no column


def test_a_merged_report_records_each_agents_runner(tmp_path: Path) -> None:
    report = _recorded_report()
    merged = RunReport(
        report.results,
        tuple(replace(a, runner=a.agent_id + 1) for a in report.agents),
        wall_seconds=10.0,
        exit_code=1,
    )
    path = tmp_path / "merged.json"
    write_results(merged, str(path))
    assert [a["runner"] for a in read_document(str(path))["agents"]] == [1, 2]
    assert [a.runner for a in read_results(str(path))[0].agents] == [1, 2]
    assert [a.runner for a in read_results(str(_written(report, tmp_path)))[0].agents] == [None, None]
    page = render_html(read_document(str(path)))
    assert re.findall(r">runner (\d)</text>", page) == ["1", "2"]
    table = agents_table_text(merged)
    assert table.splitlines()[0].split()[:3] == ["runner", "agent", "host"]
    assert "runner" not in agents_table_text(report)


def _written(report: RunReport, directory: Path) -> Path:
    path = directory / "single.json"
    write_results(report, str(path))
    return path


def test_bench_section_has_the_table_and_a_chart() -> None:
    bench = {
        "rows": [
            {"method": "serial", "agents": 1, "median": 10.0, "min": 9.5, "max": 10.5},
            {
                "method": "orchestrate",
                "agents": 2,
                "median": 6.0,
                "min": 5.8,
                "max": 6.3,
                "predicted": 5.5,
                "lower_bound": 5.0,
            },
            {"method": "xdist", "agents": 2, "median": 6.5, "min": 6.1, "max": 7.0},
        ],  # fmt: skip
        "notes": ["PYTHONDONTWRITEBYTECODE unset for every method"],
    }
    page = render_html({}, bench)
    assert "Benchmark: measured against predicted" in page
    assert "5.80–6.30" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in page
    assert "PYTHONDONTWRITEBYTECODE" in page


def test_charts_escape_and_scale() -> None:
    assert nice_ticks(9.3) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    svg = line_chart_svg([Series("<a>", ((1, 2.0), (2, 1.0)), "#000")], title="t&", x_label="x", y_label="y")
    assert "&lt;a&gt;" in svg and "t&amp;" in svg and "<a>" not in svg
