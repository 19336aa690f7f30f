"""`orchestrate shard` and `orchestrate merge` as a CI pipeline runs them: real subprocesses, no Ray.

A generated suite of seven units (mixed outcomes; three one-test classes that sleep 0.4-0.5 s)
is split across three runners twice, each runner a separate `orchestrate shard` process with
its own copy of the durations file, as CI caches hand it out:

    round 1: no history -> shard 1/3, 2/3, 3/3 -> merge -> JUnit, results, durations file
    round 2: that durations file -> shard 1/3, 2/3, 3/3

Without history every test is guessed alike, so round 1 balances test counts and puts two of
the sleepers on one runner; round 2 must plan from what round 1 measured and separate them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import load_results, run_orchestrate, run_pytest, write_suite

SUITE = {
    "pytest.ini": """
        [pytest]
        junit_suite_name = sharded
        junit_family = xunit2
    """,
    "test_fast.py": """
        import pytest

        class TestFour:
            def test_pass(self):
                pass

            def test_fail(self):
                assert 1 == 2

            @pytest.mark.skip(reason="not today")
            def test_skip(self):
                pass

            @pytest.mark.xfail(reason="known bug")
            def test_xfail(self):
                assert False

        class TestTwoA:
            def test_pass(self):
                pass

            @pytest.mark.xfail(reason="fixed already")
            def test_xpass(self):
                pass

        class TestTwoB:
            @pytest.fixture
            def broken(self):
                raise RuntimeError("setup broke")

            def test_error(self, broken):
                pass

            def test_pass(self):
                pass
    """,
    "test_slow.py": """
        import time

        class TestSlow1:
            def test_sleep(self):
                time.sleep(0.5)

        class TestSlow2:
            def test_sleep(self):
                time.sleep(0.45)

        class TestSlow3:
            def test_sleep(self):
                time.sleep(0.4)

        class TestQuick:
            def test_a(self):
                time.sleep(0.05)

            def test_b(self):
                time.sleep(0.05)
    """,
}

EXPECTED = {
    "test_fast.py::TestFour::test_pass": "passed",
    "test_fast.py::TestFour::test_fail": "failed",
    "test_fast.py::TestFour::test_skip": "skipped",
    "test_fast.py::TestFour::test_xfail": "xfailed",
    "test_fast.py::TestTwoA::test_pass": "passed",
    "test_fast.py::TestTwoA::test_xpass": "xpassed",
    "test_fast.py::TestTwoB::test_error": "error",
    "test_fast.py::TestTwoB::test_pass": "passed",
    "test_slow.py::TestSlow1::test_sleep": "passed",
    "test_slow.py::TestSlow2::test_sleep": "passed",
    "test_slow.py::TestSlow3::test_sleep": "passed",
    "test_slow.py::TestQuick::test_a": "passed",
    "test_slow.py::TestQuick::test_b": "passed",
}
UNITS = 7
SLEEPERS = ("test_slow.py::TestSlow1::test_sleep", "test_slow.py::TestSlow2::test_sleep")

# Parallel-job variables of the CIs `shard` reads; the test process may itself run in one.
CI_VARIABLES = (
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "CIRCLE_NODE_INDEX",
    "CIRCLE_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB",
    "BUILDKITE_PARALLEL_JOB_COUNT",
)


def _env(**ci: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env.update(ci)
    return env


@dataclass(frozen=True)
class Round:
    """One round of three runners: their artifacts and what each process printed."""

    artifacts: tuple[Path, ...]
    runs: tuple[subprocess.CompletedProcess[str], ...]


def _run_round(suite: Path, name: str, durations: Path | None) -> Round:
    """Three `orchestrate shard` processes side by side, each with its own durations copy.

    Runner 1 passes flags and runs two agents; runner 2 finds its place in GitLab's variables,
    runner 3 in CircleCI's (0-based).
    """
    out = suite / name
    out.mkdir()
    commands = []
    for index, (flags, env) in enumerate(
        [
            (["--index", "1", "--total", "3", "--agents", "2"], _env()),
            ([], _env(CI_NODE_INDEX="2", CI_NODE_TOTAL="3")),
            ([], _env(CIRCLE_NODE_INDEX="2", CIRCLE_NODE_TOTAL="3")),
        ],
        start=1,
    ):
        store = out / f"durations-{index}.msgpack"
        if durations is not None:
            shutil.copy(durations, store)
        args = ["shard", *flags, "--results", str(out / f"runner-{index}.json"), "--durations", str(store)]
        commands.append((args, env))
    with ThreadPoolExecutor(len(commands)) as pool:
        runs = tuple(pool.map(lambda c: run_orchestrate(c[0], suite, env=c[1]), commands))
    return Round(tuple(out / f"runner-{i}.json" for i in (1, 2, 3)), runs)


@dataclass(frozen=True)
class Pipeline:
    suite: Path
    first: Round
    merge: subprocess.CompletedProcess[str]
    merged_results: Path
    merged_junit: Path
    durations: Path
    second: Round


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    suite = write_suite(tmp_path_factory.mktemp("sharded"), SUITE)
    first = _run_round(suite, "round1", None)
    merged_results, merged_junit = suite / "merged.json", suite / "merged.xml"
    durations = suite / "durations.msgpack"
    merge = run_orchestrate(
        [
            "merge",
            *map(str, first.artifacts),
            "--junitxml",
            str(merged_junit),
            "--results",
            str(merged_results),
            "--durations",
            str(durations),
        ],
        suite,
    )
    second = _run_round(suite, "round2", durations)
    yield Pipeline(suite, first, merge, merged_results, merged_junit, durations, second)


def _fingerprint(artifact: Path) -> str:
    return str(json.loads(artifact.read_text())["plan_fingerprint"])


def _merge(suite: Path, artifacts: Sequence[Path], *more: str) -> subprocess.CompletedProcess[str]:
    return run_orchestrate(["merge", *map(str, artifacts), *more], suite)


def _junit_cases(path: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(classname, name) -> the (tag, message) of each outcome element of the testcase."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        cases[key] = sorted(
            (child.tag, child.get("message", ""))
            for child in case
            if child.tag in ("failure", "error", "skipped")
        )
    return cases


def test_every_runner_plans_alike_and_runs_only_its_part(pipeline: Pipeline) -> None:
    for run in pipeline.first.runs:
        assert run.returncode in (0, 1), run.stderr
    fingerprints = {_fingerprint(a) for a in pipeline.first.artifacts}
    assert len(fingerprints) == 1
    (fingerprint,) = fingerprints
    for index, run in enumerate(pipeline.first.runs, start=1):
        assert f"runner {index} of 3, plan fingerprint {fingerprint}" in run.stdout
    parts = [set(load_results(a)) for a in pipeline.first.artifacts]
    assert all(parts), "three runners, seven units: every runner has work"
    assert sum(map(len, parts)) == len(EXPECTED)
    assert set().union(*parts) == set(EXPECTED)
    # Runner 1 ran its part on two agents.
    assert len(json.loads(pipeline.first.artifacts[0].read_text())["agents"]) == 2


def test_merged_report_matches_plain_pytest(pipeline: Pipeline) -> None:
    assert pipeline.merge.returncode == 1, pipeline.merge.stderr  # one test fails
    assert load_results(pipeline.merged_results) == EXPECTED
    assert "1 failed, 8 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error" in pipeline.merge.stdout

    plain = run_pytest(["-p", "no:cacheprovider", "--junitxml", "plain.xml"], pipeline.suite)
    assert plain.returncode == 1, plain.stdout
    assert _junit_cases(pipeline.merged_junit) == _junit_cases(pipeline.suite / "plain.xml")
    suite_element = ET.parse(pipeline.merged_junit).getroot().find("testsuite")
    assert suite_element is not None
    assert suite_element.get("name") == "sharded"  # the collection's junit_suite_name
    assert suite_element.get("tests") == str(len(EXPECTED))
    # Agents are numbered across runners: 2 + 1 + 1.
    agent_ids = [a["agent_id"] for a in json.loads(pipeline.merged_results.read_text())["agents"]]
    assert agent_ids == [0, 1, 2, 3]


def test_missing_artifact_reports_its_tests_as_not_run(pipeline: Pipeline) -> None:
    runner_1, runner_2, runner_3 = pipeline.first.artifacts
    result = _merge(pipeline.suite, [runner_1, runner_3], "--results", "partial.json", "--junitxml", "p.xml")
    assert result.returncode == 1, result.stderr
    assert "no artifact from runner(s) 2 of 3" in result.stdout
    outcomes = load_results(pipeline.suite / "partial.json")
    assert set(outcomes) == set(EXPECTED)
    missing = set(load_results(runner_2))
    assert {n for n, o in outcomes.items() if o == "not-run"} == missing
    assert all(outcomes[n] == EXPECTED[n] for n in set(EXPECTED) - missing)
    # Replayed to pytest as errors: the merged run failed for them, and CI must show it.
    errors = [e.get("message", "") for e in ET.parse(pipeline.suite / "p.xml").getroot().iter("error")]
    assert sum("not run: no artifact from runner 2" in e for e in errors) == len(missing)


def test_artifacts_of_different_plans_are_refused(pipeline: Pipeline) -> None:
    # Round 2 planned from round 1's durations: another plan, another fingerprint.
    mixed = [pipeline.first.artifacts[0], pipeline.second.artifacts[1], pipeline.first.artifacts[2]]
    assert _fingerprint(mixed[1]) != _fingerprint(mixed[0])
    result = _merge(pipeline.suite, mixed, "--junitxml", "mixed.xml")
    assert result.returncode == 4
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "different plans" in result.stderr
    assert not (pipeline.suite / "mixed.xml").exists()


def test_two_artifacts_of_one_runner_are_refused(pipeline: Pipeline) -> None:
    runner_1 = pipeline.first.artifacts[0]
    copy = pipeline.suite / "runner-1-again.json"
    shutil.copy(runner_1, copy)
    result = _merge(pipeline.suite, [*pipeline.first.artifacts, copy])
    assert result.returncode == 4
    assert result.stderr.strip().endswith("are both from runner 1 of 3")
    assert len(result.stderr.splitlines()) == 1


def test_merged_durations_balance_the_next_plan(pipeline: Pipeline) -> None:
    """Round 1 (no history) put two sleepers on one runner; round 2 plans from the merged store."""
    assert pipeline.durations.exists()
    for run in pipeline.second.runs:
        assert run.returncode in (0, 1), run.stderr
    assert len({_fingerprint(a) for a in pipeline.second.artifacts}) == 1
    merged = _merge(pipeline.suite, pipeline.second.artifacts)
    assert merged.returncode == 1, merged.stderr

    def busiest_runner_seconds(round_: Round) -> float:
        # Measured work per runner, the sum of its tests' durations.
        return max(sum(t["duration"] for t in json.loads(a.read_text())["tests"]) for a in round_.artifacts)

    def runner_of(round_: Round, node_id: str) -> int:
        return next(i for i, a in enumerate(round_.artifacts) if node_id in load_results(a))

    assert runner_of(pipeline.first, SLEEPERS[0]) == runner_of(pipeline.first, SLEEPERS[1])
    assert runner_of(pipeline.second, SLEEPERS[0]) != runner_of(pipeline.second, SLEEPERS[1])
    before, after = busiest_runner_seconds(pipeline.first), busiest_runner_seconds(pipeline.second)
    assert after < 0.75 < 0.85 < before


def test_a_runner_with_nothing_to_do_exits_0_and_writes_its_artifact(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, SUITE)
    result = run_orchestrate(
        # More runners than tests: even with oversized units cut into chunks, the last has none.
        ["shard", "--index", "20", "--total", "20", "--results", "empty.json", "--junitxml", "empty.xml"],
        suite,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to run here" in result.stdout
    document = json.loads((suite / "empty.json").read_text())
    assert document["tests"] == []
    assert document["exit_code"] == 0
    record = document["extra"]["shard"]
    assert (record["index"], record["total"]) == (20, 20)
    assert sorted(n for part in record["plan"] for n in part) == sorted(EXPECTED)
    assert UNITS <= sum(1 for part in record["plan"] if part) < 20
    assert (suite / "empty.xml").exists()


def test_bad_runner_position_is_a_usage_error(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, SUITE)
    result = run_orchestrate(["shard", "--index", "4", "--total", "3"], suite, env=_env())
    assert result.returncode == 4
    assert result.stderr.strip() == "orchestrate: error: runner 4 from --index is not between 1 and 3"
    result = run_orchestrate(["shard"], suite, env=_env())
    assert result.returncode == 4
    assert "shard needs --index and --total" in result.stderr
