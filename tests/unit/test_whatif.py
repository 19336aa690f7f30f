"""The agent-count list parser and the what-if predictions of `orchestrate plan --agents LIST`."""

from __future__ import annotations

import re

import pytest

from orchestrator.front.cli import main
from orchestrator.model import TestUnit, UnitEstimate
from orchestrator.planning.whatif import parse_agent_counts, predict
from orchestrator.protocol.errors import EXIT_USAGE_ERROR
from orchestrator.report.charts import predictions_svg


@pytest.mark.parametrize(
    ("text", "counts"),
    [("4", (4,)), ("1,2,4", (1, 2, 4)), ("1-8", tuple(range(1, 9))), ("8,1-3, 2", (1, 2, 3, 8))],
)
def test_agent_counts_are_lists_and_ranges(text: str, counts: tuple[int, ...]) -> None:
    assert parse_agent_counts(text) == counts


@pytest.mark.parametrize("text", ["", "x", "0", "1,,2", "4-2", "1-", "-3", "1-99999", "2.5"])
def test_bad_agent_counts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_agent_counts(text)


@pytest.mark.parametrize("text", ["1-x", "0", "3-1"])
def test_bad_agent_counts_are_one_line_usage_errors(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--agents", text]) == EXIT_USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--agents" in err


def _estimates(*seconds: float) -> list[UnitEstimate]:
    return [UnitEstimate(TestUnit(f"t.py::T{i}", (f"t.py::T{i}::test",)), s) for i, s in enumerate(seconds)]


def test_predictions_follow_the_lpt_plan() -> None:
    predictions = predict(_estimates(5, 4, 3, 3, 2, 1), (1, 2, 3, 8))
    assert [p.agents for p in predictions] == [1, 2, 3, 8]
    one, two, three, eight = predictions
    assert (one.makespan, one.lower_bound, one.efficiency) == (18, 18, 1.0)
    assert two.makespan == 9 and two.lower_bound == 9
    assert three.makespan == 6 and three.lower_bound == 6
    # More agents than units: the longest unit bounds it, the idle agents cost efficiency.
    assert eight.makespan == 5 and eight.lower_bound == 5
    assert eight.efficiency == pytest.approx(18 / 40)
    assert eight.speedup == pytest.approx(18 / 5)


def test_the_plot_is_an_svg_with_both_lines() -> None:
    svg = predictions_svg(predict(_estimates(5, 4, 3), (1, 2, 4)))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert svg.count("<polyline") == 2
    assert "predicted makespan" in svg and "lower bound" in svg


def test_the_table_has_one_row_per_agent_count() -> None:
    from rich.console import Console

    from orchestrator.report.tables import render_predictions

    console = Console(record=True, width=120)
    render_predictions(predict(_estimates(5, 4, 3, 3, 2, 1), (1, 2, 8)), 6, 6, 2, console)
    text = console.export_text()
    assert re.search(r"│\s+1 │\s+18\.00 │\s+18\.00 │\s+1\.00x │\s+100% │", text)
    assert re.search(r"│\s+2 │\s+9\.00 │\s+9\.00 │\s+2\.00x │\s+100% │", text)
    assert re.search(r"│\s+8 │\s+5\.00 │\s+5\.00 │\s+3\.60x │\s+45% │", text)
    assert "2 of 6 tests have no recorded duration" in text
