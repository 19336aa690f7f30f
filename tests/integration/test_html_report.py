"""The HTML report, `plan --agents LIST` and `bench` through the real `orchestrate` command.

A small generated suite (passing, failing, printing and oddly parametrised tests in four units)
runs with `--backend local`, so no Ray starts. The browser tests open the pages in headless
Chromium (tests/browser.py), offline, and look for console errors and script errors.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from browser import chromium_available, open_page
from conftest import run_orchestrate, write_suite
from reportdocs import make_document

from orchestrator.report.html import write_html

SUITE = {
    "test_alpha.py": """
        import time

        import pytest

        class TestSlow:
            def test_one(self):
                time.sleep(0.2)

            def test_two(self):
                time.sleep(0.1)

        class TestMixed:
            def test_fails(self):
                print("captured <output> of a failure")
                assert 1 + 1 == 3

            @pytest.mark.skip(reason="not today")
            def test_skipped(self):
                pass
    """,
    "test_beta.py": """
        import pytest

        @pytest.mark.parametrize("value", ["<script>alert(1)</script>", "a&b", "quote\\"d"])
        def test_odd(value):
            pass

        class TestOther:
            def test_ok(self):
                pass
    """,
}
AGENTS = 3


def _tests_on_page(page: str) -> list[str]:
    return [html.unescape(i) for i in re.findall(r'<tr data-outcome="[^"]*" data-id="([^"]*)"', page)]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_suite(tmp_path_factory.mktemp("html-suite"), SUITE)


@pytest.fixture(scope="module")
def run_page(suite: Path) -> Path:
    """The page and results file of one real `orchestrate run --html` on the suite."""
    result = run_orchestrate(
        [
            "run",
            "--backend",
            "local",
            "--agents",
            str(AGENTS),
            "--html",
            "report.html",
            "--results",
            "results.json",
        ],
        cwd=suite,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return suite / "report.html"


def test_run_html_holds_every_test_and_a_lane_per_agent(suite: Path, run_page: Path) -> None:
    document = json.loads((suite / "results.json").read_text())
    page = run_page.read_text()
    assert sorted(_tests_on_page(page)) == sorted(t["node_id"].lower() for t in document["tests"])
    assert len(document["tests"]) == 8
    lanes = re.findall(r'<g class="lane" data-agent="(\d+)"', page)
    assert sorted(lanes) == sorted(str(a["agent_id"]) for a in document["agents"])
    assert len(lanes) == AGENTS
    assert "<script>alert(1)</script>" not in page
    assert "captured &lt;output&gt; of a failure" in page


def test_report_makes_the_same_page_from_the_results_file(suite: Path, run_page: Path) -> None:
    result = run_orchestrate(["report", "results.json", "--html", "later.html"], cwd=suite)
    assert result.returncode == 0, result.stderr
    assert (suite / "later.html").read_text() == run_page.read_text()


def test_report_of_a_missing_file_is_one_line_exit_4(tmp_path: Path) -> None:
    result = run_orchestrate(["report", "nothing.json", "--html", "x.html"], cwd=tmp_path)
    assert result.returncode == 4
    assert result.stderr.strip().count("\n") == 0 and "no such results file" in result.stderr


def test_plan_prints_the_predicted_makespan_for_each_agent_count(suite: Path) -> None:
    result = run_orchestrate(["plan", "--agents", "1,2,4,8", "--plot", "plan.svg"], cwd=suite)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^\S\s+(\d+) \S\s+([\d.]+) \S\s+([\d.]+) \S", result.stdout, re.M)
    assert [int(agents) for agents, _, _ in rows] == [1, 2, 4, 8]
    assert all(float(makespan) >= float(bound) for _, makespan, bound in rows)
    assert (suite / "plan.svg").read_text().startswith("<svg")
    single = run_orchestrate(["plan", "--agents", "2"], cwd=suite)
    assert "plan fingerprint" in single.stdout and "efficiency" not in single.stdout


@pytest.mark.slow
def test_shard_and_merge_write_pages(suite: Path) -> None:
    for index in (1, 2):
        result = run_orchestrate(
            ["shard", "--index", str(index), "--total", "2", "--results", f"runner-{index}.json",
             "--html", f"runner-{index}.html", "--durations", f"d{index}.msgpack"],
            cwd=suite,
        )  # fmt: skip
        assert result.returncode in (0, 1), result.stderr
        assert (suite / f"runner-{index}.html").exists()
    merged = run_orchestrate(
        ["merge", "runner-1.json", "runner-2.json", "--html", "merged.html", "--durations", "m.msgpack"],
        cwd=suite,
    )
    assert merged.returncode == 1, merged.stderr
    page = (suite / "merged.html").read_text()
    assert len(_tests_on_page(page)) == 8
    assert "merged from 2 CI runner artifact(s)" in page


@pytest.mark.slow
def test_bench_prints_measured_against_predicted(suite: Path) -> None:
    result = run_orchestrate(
        ["bench", "--agents", "2,3", "--repetitions", "1", "--backend", "local", "--against", "xdist",
         "--html", "bench.html", "--results", "bench.json", "--", "-k", "not fails"],
        cwd=suite,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PYTHONDONTWRITEBYTECODE is unset" in result.stdout
    bench = json.loads((suite / "bench.json").read_text())
    assert {(r["method"], r["agents"]) for r in bench["rows"]} == {
        ("orchestrate", 2), ("orchestrate", 3), ("xdist", 2), ("xdist", 3)
    }  # fmt: skip
    assert all(r["median"] > 0 and r["predicted"] is not None for r in bench["rows"])
    assert "Benchmark: measured against predicted" in (suite / "bench.html").read_text()


needs_chromium = pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make setup)")


@pytest.mark.browser
@needs_chromium
def test_the_run_page_opens_offline_without_errors(run_page: Path, tmp_path: Path) -> None:
    view = open_page(run_page, screenshot=tmp_path / "run.png")
    assert view.console == ()
    assert view.ready and view.script_error is None
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.browser
@needs_chromium
def test_a_full_page_opens_offline_without_errors(tmp_path: Path) -> None:
    """Every section present: timeline with units, flaky, crashed, merged runners, a bench."""
    page = tmp_path / "full.html"
    bench = {"rows": [{"method": "orchestrate", "agents": 2, "median": 3.0, "min": 2.9, "max": 3.2}]}
    write_html(make_document(agents=2, runners=2), str(page), bench=bench)
    view = open_page(page, screenshot=tmp_path / "full.png")
    assert view.console == ()
    assert view.ready and view.script_error is None
    assert (tmp_path / "full.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.browser
@needs_chromium
def test_the_browser_check_sees_a_broken_page(tmp_path: Path) -> None:
    """The check itself: a script error and a blocked outside resource are both caught."""
    page = tmp_path / "broken.html"
    good = tmp_path / "good.html"
    write_html(make_document(agents=1, units_per_agent=1), str(good))
    page.write_text(
        good.read_text().replace(
            "</body>", '<img src="https://example.com/x.png"><script>nope();</script></body>'
        )
    )
    view = open_page(page)
    assert view.script_error == "Uncaught ReferenceError: nope is not defined"
    assert len(view.console) >= 2  # the blocked image (CSP) and the error
