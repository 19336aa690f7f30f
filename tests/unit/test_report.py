"""The report package against pytest itself: one real pytest run of a small generated suite.

A tiny plugin dumps pytest's serialised reports of that run; we build a RunReport from them and
check our outcomes against pytest's own short summary, our JUnit file against pytest's own
--junitxml file, the results file's round trip, and the terminal summary's text.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.model import AgentStatistics, Attempt, Outcome, RunReport, TestResult
from orchestrator.protocol.errors import ArtifactError
from orchestrator.report import (
    outcome_of,
    read_results,
    report_duration,
    write_results,
)

SUITE = """
import unittest

import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup exploded")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown exploded")


def test_pass():
    print("hello from test_pass")


def test_fail():
    print("output of the failing test")
    assert 1 + 1 == 3, "arithmetic is broken"


def test_error_in_setup(broken_setup):
    pass


def test_error_in_teardown(broken_teardown):
    pass


def test_fail_then_teardown_error(broken_teardown):
    assert False, "call failed first"


def test_skip():
    pytest.skip("not today")


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed already", strict=False)
def test_xpass():
    pass


@pytest.mark.xfail(reason="strictly broken", strict=True)
def test_xpass_strict():
    pass


@pytest.mark.parametrize("value", [1, 0], ids=["a/b-\u00fc-::-[x]", "zero"])
def test_params(value):
    assert value


class TestGroup:
    def test_one(self):
        pass

    class TestInner:
        def test_deep(self):
            assert "deep" == "shallow"


class TestCaseStyle(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(1, 1)

    def test_broken(self):
        self.assertEqual(1, 2)

    def test_skipped(self):
        self.skipTest("unittest skip")
"""

DUMP_PLUGIN = """
import json
import os

_config = None
_reports = []


def pytest_configure(config):
    global _config
    _config = config


def pytest_runtest_logreport(report):
    _reports.append(_config.hook.pytest_report_to_serializable(config=_config, report=report))


def pytest_unconfigure(config):
    with open(os.environ["REPORT_DUMP"], "w", encoding="utf-8") as stream:
        json.dump(_reports, stream, default=repr)
"""

# pytest writes two testcases for this one (call failure, then teardown error); we write one.
DOUBLE_FAILURE = "test_suite.py::test_fail_then_teardown_error"
SUMMARY_LINE = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+)")
PYTEST_WORDS = {
    frozenset({"PASSED"}): Outcome.PASSED,
    frozenset({"FAILED"}): Outcome.FAILED,
    frozenset({"ERROR"}): Outcome.ERROR,
    frozenset({"XFAIL"}): Outcome.XFAILED,
    frozenset({"XPASS"}): Outcome.XPASSED,
    # pytest counts a test twice when its teardown fails; we keep the first failure, or error.
    frozenset({"PASSED", "ERROR"}): Outcome.ERROR,
    frozenset({"FAILED", "ERROR"}): Outcome.FAILED,
}


@dataclass(frozen=True)
class PytestRun:
    """What one real pytest run of SUITE left behind."""

    reports_by_node: dict[str, list[dict[str, Any]]]
    summary_words: dict[str, set[str]]
    counts_line: str
    junit: Path


@pytest.fixture(scope="module")
def pytest_run(tmp_path_factory: pytest.TempPathFactory) -> PytestRun:
    root = tmp_path_factory.mktemp("suite")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_suite.py").write_text(SUITE)
    (root / "dump_plugin.py").write_text(DUMP_PLUGIN)
    dump = root / "reports.json"
    junit = root / "pytest-junit.xml"
    env = {
        **os.environ,
        "REPORT_DUMP": str(dump),
        "PYTHONPATH": str(root),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    completed = subprocess.run(
        # xunit1 (JunitSettings' default) so the file and line attributes are compared too.
        [sys.executable, "-m", "pytest", "-rA", "-p", "dump_plugin", "-p", "no:cacheprovider",
         f"--junitxml={junit}", "-o", "junit_family=xunit1", "test_suite.py"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr
    reports_by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for data in json.loads(dump.read_text(encoding="utf-8")):
        reports_by_node[data["nodeid"]].append(data)
    summary_words: dict[str, set[str]] = defaultdict(set)
    for line in completed.stdout.splitlines():
        if match := SUMMARY_LINE.match(line):
            summary_words[match.group(2)].add(match.group(1))
    return PytestRun(dict(reports_by_node), dict(summary_words), completed.stdout.splitlines()[-1], junit)


def real_report(run: PytestRun, wall_seconds: float = 4.21) -> RunReport:
    """The RunReport a two-agent run of SUITE would merge into, one attempt per test."""
    results = []
    for index, (node_id, reports) in enumerate(run.reports_by_node.items()):
        attempt = Attempt(index % 2, outcome_of(reports), report_duration(reports), tuple(reports))
        results.append(TestResult(node_id, attempt.outcome, (attempt,)))
    agents = (
        AgentStatistics(0, tests=9, busy_seconds=2.0, predicted_seconds=2.2, wall_seconds=4.0, host="node-a"),
        AgentStatistics(1, tests=8, busy_seconds=1.5, predicted_seconds=1.2, wall_seconds=4.1, host="node-b",
                        stack_up_seconds=1.1, stack_down_seconds=0.3, worker_restarts=1),
    )  # fmt: skip
    return RunReport(tuple(results), agents, wall_seconds, exit_code=1, plan_fingerprint="0123456789abcdef")


def renamed(reports: list[dict[str, Any]], node_id: str) -> tuple[dict[str, Any], ...]:
    """Another test's reports, as if `node_id` had produced them (to stage reruns)."""
    path, _, rest = node_id.partition("::")
    return tuple({**data, "nodeid": node_id, "location": [path, 1, rest]} for data in reports)


def staged_report(run: PytestRun) -> RunReport:
    """SUITE's run plus what only a distributed run has: reruns, a crash, a timeout, not-run."""
    base = real_report(run)
    passing = run.reports_by_node["test_suite.py::test_pass"]
    failing = run.reports_by_node["test_suite.py::test_fail"]
    pass_id, fail_id = "test_suite.py::test_pass", "test_suite.py::test_fail"
    flaky = TestResult(pass_id, Outcome.PASSED, (
        Attempt(1, Outcome.FAILED, 0.2, renamed(failing, pass_id)),
        Attempt(0, Outcome.PASSED, 0.1, tuple(passing)),
    ))  # fmt: skip
    always_failing = TestResult(fail_id, Outcome.FAILED, (
        Attempt(0, Outcome.FAILED, 0.2, tuple(failing)),
        Attempt(1, Outcome.CRASHED, 1.5, message="worker exited with signal 11"),
        Attempt(0, Outcome.FAILED, 0.2, tuple(failing)),
    ))  # fmt: skip
    extra = (
        TestResult("test_gone.py::test_crash", Outcome.CRASHED,
                   (Attempt(1, Outcome.CRASHED, 2.0, message="Fatal Python error: Segmentation fault"),)),
        TestResult("test_gone.py::TestSlow::test_sleep[30-::x]", Outcome.TIMEOUT,
                   (Attempt(0, Outcome.TIMEOUT, 30.0),)),
        TestResult("test_gone.py::test_never", Outcome.NOT_RUN, ()),
        TestResult("test_gone.py::test_stranded", Outcome.NOT_RUN,
                   (Attempt(1, Outcome.NOT_RUN, 0.0, message="agent 1 failed: stack did not come up"),)),
    )  # fmt: skip
    replaced = {flaky.node_id: flaky, always_failing.node_id: always_failing}
    results = tuple(replaced.get(r.node_id, r) for r in base.results) + extra
    return replace(base, results=results, messages=("agent 1 restarted its worker once",))


def junit_testcases(path: Path) -> list[ET.Element]:
    return ET.parse(path).getroot().findall("testsuite/testcase")


def junit_kind(testcase: ET.Element) -> tuple[str, ...]:
    """(classname, name, file, line, result elements with their message and type)."""
    results = tuple(
        sorted(f"{child.tag}|{child.get('type', '')}|{child.get('message', '')}" for child in testcase
               if child.tag in ("failure", "error", "skipped"))
    )  # fmt: skip
    attributes = tuple(testcase.get(key, "") for key in ("classname", "name", "file", "line"))
    return attributes + (results or ("passed",))


# (a) outcome_of agrees with pytest's terminal.


def test_outcome_of_matches_pytests_short_summary(pytest_run: PytestRun) -> None:
    assert len(pytest_run.reports_by_node) == 16
    pytest_skipped = {
        (case.get("classname"), case.get("name"))
        for case in junit_testcases(pytest_run.junit)
        if case.find("skipped[@type='pytest.skip']") is not None
    }
    for node_id, reports in pytest_run.reports_by_node.items():
        words = pytest_run.summary_words.get(node_id)
        if words is None:
            # -rA lists skips folded by location, without node ids; pytest's XML names them.
            expected = Outcome.SKIPPED
            assert any(name in node_id for _, name in pytest_skipped if name), node_id
        else:
            expected = PYTEST_WORDS[frozenset(words)]
        assert outcome_of(reports) is expected, (node_id, words)
    assert len(pytest_skipped) == sum(
        1 for r in pytest_run.reports_by_node.values() if outcome_of(r) is Outcome.SKIPPED
    )


def test_outcome_of_edge_cases() -> None:
    assert outcome_of([]) is Outcome.NOT_RUN
    assert outcome_of([{"when": "setup", "outcome": "passed"}]) is Outcome.CRASHED
    setup_xfail = {"when": "setup", "outcome": "skipped", "wasxfail": "reason"}
    assert outcome_of([setup_xfail]) is Outcome.XFAILED
    assert report_duration([{"duration": 0.25}, {"duration": 0.5}, {}]) == pytest.approx(0.75)


# (b) our JUnit file is pytest's.


# (d) what only we know: reruns, crashes, timeouts, tests never run.


# (c) the results file.


def test_results_round_trip(pytest_run: PytestRun, tmp_path: Path) -> None:
    report = staged_report(pytest_run)
    path = tmp_path / "results.json"
    write_results(report, str(path), extra={"shard": 1, "shards": 3})
    assert read_results(str(path)) == (report, {"shard": 1, "shards": 3})
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == 1
    first = document["tests"][0]
    assert set(first) >= {"node_id", "outcome", "duration", "agent", "attempts"}
    assert set(first["attempts"][0]) == {
        "agent",
        "outcome",
        "duration",
        "message",
        "reports",
        "started",
        "finished",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "no such results file"),
        ("{not json", "invalid JSON"),
        ('{"kind": "orchestrate-results", "format": 2}', "format 2 is not 1"),
        ('{"kind": "something else", "format": 1}', "not an orchestrate results file"),
        ('{"kind": "orchestrate-results", "format": 1, "agents": []}', "missing 'tests'"),
        ('{"kind": "orchestrate-results", "format": 1, "agents": [], "wall_seconds": 1, "exit_code": 0,'
         ' "tests": [{"node_id": "t", "outcome": "bogus", "attempts": []}]}', "corrupt results file"),
    ],
)  # fmt: skip
def test_read_results_refuses_bad_files(tmp_path: Path, content: str | None, complaint: str) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ArtifactError, match=re.escape(complaint)) as excinfo:
        read_results(str(path))
    assert "\n" not in str(excinfo.value)
    assert str(path) in str(excinfo.value)


# (e) the terminal summary.
