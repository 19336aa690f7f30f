"""Unit tests of the CI split: merging runners' artifacts, placing a runner, the CI templates.

`merge_shards` is pure: artifacts are built here from a real LPT plan and hand-made results,
no subprocess and no pytest run. `_shard_position` takes the environment as a mapping. The
CI templates are loaded as YAML and every `orchestrate` command in them is parsed by the
real argument parser.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.ci.sharding import EXTRA_KEY, ShardArtifact, ShardRecord, merge_shards
from orchestrator.front.cli import _shard_position, build_parser
from orchestrator.model import (
    AgentStatistics,
    Attempt,
    JunitSettings,
    Outcome,
    Plan,
    RunReport,
    TestResult,
    TestUnit,
    UnitEstimate,
)
from orchestrator.planning.scheduling import plan_lpt
from orchestrator.protocol.errors import EXIT_USAGE_ERROR, ArtifactError, UsageError
from orchestrator.report import read_results, write_results

CI_DIR = Path(__file__).resolve().parents[2] / "deploy" / "ci"
JUNIT = JunitSettings(suite_name="sharded", family="xunit2")


def _plan(total: int = 3) -> Plan:
    """Units of 1..4 tests taking 4, 3, 2, 1 s: three runners get [a], [b], [c, d]."""
    estimates = [
        UnitEstimate(
            TestUnit(f"test_{name}.py", tuple(f"test_{name}.py::t{i}" for i in range(size))), seconds
        )
        for name, size, seconds in (("a", 1, 4.0), ("b", 2, 3.0), ("c", 3, 2.0), ("d", 4, 1.0))
    ]
    return plan_lpt(estimates, total)


def _result(node_id: str, outcome: Outcome = Outcome.PASSED, agent_id: int = 0) -> TestResult:
    return TestResult(node_id, outcome, (Attempt(agent_id, outcome, 0.5),))


def _artifact(
    plan: Plan,
    index: int,
    *,
    outcomes: Mapping[str, Outcome] | None = None,
    agents: int = 1,
    fingerprint: str | None = None,
    wall_seconds: float = 1.0,
    interrupted: bool = False,
    messages: Sequence[str] = (),
    drop: Sequence[str] = (),
) -> ShardArtifact:
    """Runner `index`'s artifact: its planned tests passed, spread over `agents` agents."""
    node_ids = [n for n in plan.shards[index - 1].node_ids if n not in drop]
    results = tuple(
        _result(n, (outcomes or {}).get(n, Outcome.PASSED), agent_id=i % agents)
        for i, n in enumerate(node_ids)
    )
    report = RunReport(
        results=results,
        agents=tuple(AgentStatistics(a, host="ci") for a in range(agents)),
        wall_seconds=wall_seconds,
        exit_code=0,
        plan_fingerprint=plan.fingerprint() if fingerprint is None else fingerprint,
        interrupted=interrupted,
        messages=tuple(messages),
    )
    return ShardArtifact(f"runner-{index}.json", report, ShardRecord.of_plan(plan, index, JUNIT))


def _all(plan: Plan, **kwargs: Any) -> list[ShardArtifact]:
    return [_artifact(plan, i, **kwargs) for i in range(1, plan.agents + 1)]


# -- the record in each artifact -------------------------------------------------------------


def test_record_survives_the_results_file(tmp_path: Path) -> None:
    plan = _plan()
    artifact = _artifact(plan, 2)
    path = str(tmp_path / "runner-2.json")
    write_results(artifact.report, path, extra={EXTRA_KEY: artifact.shard.to_json()})
    again = ShardArtifact.from_results(path, *read_results(path))
    assert again.shard == artifact.shard
    assert again.shard.planned_node_ids == tuple(s.node_ids for s in plan.shards)
    assert again.shard.junit == JUNIT
    assert again.report.plan_fingerprint == plan.fingerprint()


def test_a_results_file_without_a_record_is_refused() -> None:
    report = RunReport((), (), 0.0, 0)
    with pytest.raises(ArtifactError, match=r"^run\.json: not written by `orchestrate shard`"):
        ShardArtifact.from_results("run.json", report, {})


@pytest.mark.parametrize(
    "record",
    [
        [],
        {"index": 1, "total": 2},
        {"index": 3, "total": 2, "plan": [[], []]},
        {"index": 1, "total": 2, "plan": [["a"]]},
        {"index": 1, "total": 1, "plan": [[1]]},
        {"index": 1, "total": 1, "plan": [[]], "junit": {"colour": "red"}},
    ],
)
def test_a_corrupt_record_is_refused(record: Any) -> None:
    with pytest.raises(ArtifactError, match=r"^r\.json: corrupt results file: "):
        ShardArtifact.from_results("r.json", RunReport((), (), 0.0, 0), {EXTRA_KEY: record})


# -- merging -----------------------------------------------------------------------------------


def test_complete_artifacts_merge_into_one_report_in_plan_order() -> None:
    plan = _plan()
    failing = plan.shards[1].node_ids[0]
    artifacts = _all(plan, outcomes={failing: Outcome.FAILED}, agents=2)
    artifacts[0] = _artifact(plan, 1, wall_seconds=7.0, messages=["agent 0 restarted its worker"])
    merged = merge_shards(list(reversed(artifacts)))  # the order of the files does not matter

    assert [r.node_id for r in merged.report.results] == [n for s in plan.shards for n in s.node_ids]
    assert merged.report.counts() == {Outcome.PASSED: 9, Outcome.FAILED: 1}
    assert merged.report.exit_code == 1
    assert merged.report.wall_seconds == 7.0  # the runners ran side by side
    assert merged.report.plan_fingerprint == plan.fingerprint()
    assert merged.report.messages == ("runner 1: agent 0 restarted its worker",)
    assert merged.junit == JUNIT
    assert (merged.total, merged.missing_runners) == (3, ())
    # Agents are numbered across runners (runner 1 had one, the others two), attempts follow.
    # Each records its runner (the report groups lanes by it); the host stays the host.
    assert [(a.agent_id, a.runner, a.host) for a in merged.report.agents] == [
        (0, 1, "ci"),
        (1, 2, "ci"),
        (2, 2, "ci"),
        (3, 3, "ci"),
        (4, 3, "ci"),
    ]
    agent_by_node_id = {r.node_id: r.agent_id for r in merged.report.results}
    assert [agent_by_node_id[n] for n in plan.shards[2].node_ids] == [3, 4, 3, 4, 3, 4, 3]


def test_all_passed_is_exit_0() -> None:
    merged = merge_shards(_all(_plan()))
    assert merged.report.exit_code == 0
    assert set(merged.report.counts()) == {Outcome.PASSED}


def test_a_missing_runner_leaves_its_tests_not_run_and_exit_1() -> None:
    plan = _plan()
    runner_1, _, runner_3 = _all(plan)
    merged = merge_shards([runner_1, runner_3])
    assert merged.missing_runners == (2,)
    assert merged.report.exit_code == 1
    not_run = {r.node_id: r for r in merged.report.results if r.outcome is Outcome.NOT_RUN}
    assert set(not_run) == set(plan.shards[1].node_ids)
    assert all(r.attempts[0].message == "no artifact from runner 2" for r in not_run.values())
    assert merged.report.messages[-1].startswith("no artifact from runner(s) 2 of 3")


def test_a_missing_runner_with_nothing_to_do_still_fails_the_merge() -> None:
    plan = _plan(total=6)  # four units: runners 5 and 6 are empty
    assert not plan.shards[5].units
    merged = merge_shards(_all(plan)[:5])
    assert merged.missing_runners == (6,)
    assert Outcome.NOT_RUN not in merged.report.counts()
    assert merged.report.exit_code == 1


def test_a_test_its_runner_did_not_report_is_not_run() -> None:
    plan = _plan()
    dropped = plan.shards[2].node_ids[-1]
    artifacts = _all(plan)
    artifacts[2] = _artifact(plan, 3, drop=[dropped])
    merged = merge_shards(artifacts)
    (result,) = [r for r in merged.report.results if r.outcome is Outcome.NOT_RUN]
    assert result.node_id == dropped
    assert result.attempts[0].message == "runner 3 reported no result"
    assert merged.report.exit_code == 1


def test_an_interrupted_runner_makes_the_merge_interrupted() -> None:
    plan = _plan()
    artifacts = _all(plan)
    artifacts[1] = _artifact(plan, 2, interrupted=True)
    merged = merge_shards(artifacts)
    assert merged.report.interrupted
    assert merged.report.exit_code == 2


def test_artifacts_of_different_plans_are_refused_in_one_line() -> None:
    artifacts = _all(_plan())
    artifacts[2] = _artifact(_plan(), 3, fingerprint="0123456789abcdef")
    with pytest.raises(ArtifactError) as caught:
        merge_shards(artifacts)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the artifacts come from different plans")
    assert "0123456789abcdef: runner-3.json" in message
    assert caught.value.exit_code == EXIT_USAGE_ERROR


def test_plans_for_another_runner_count_are_refused() -> None:
    three, four = _all(_plan(3)), _all(_plan(4))
    with pytest.raises(ArtifactError, match="different plans"):
        merge_shards([three[0], four[1]])


def test_two_artifacts_of_one_runner_are_refused() -> None:
    plan = _plan()
    artifacts = _all(plan)
    again = ShardArtifact("copy.json", artifacts[0].report, artifacts[0].shard)
    with pytest.raises(ArtifactError, match=r"^runner-1\.json and copy\.json are both from runner 1 of 3$"):
        merge_shards([*artifacts, again])


def test_a_result_the_plan_gives_to_another_runner_is_refused() -> None:
    plan = _plan()
    artifacts = _all(plan)
    stray = plan.shards[0].node_ids[0]
    runner_2 = artifacts[1]
    report = RunReport((*runner_2.report.results, _result(stray)), (), 1.0, 0, plan.fingerprint())
    artifacts[1] = ShardArtifact(runner_2.path, report, runner_2.shard)
    with pytest.raises(ArtifactError, match=rf"^runner-2\.json: a result for {stray}, which the plan"):
        merge_shards(artifacts)


def test_two_results_for_one_test_are_refused() -> None:
    plan = _plan()
    artifacts = _all(plan)
    runner_3 = artifacts[2]
    twice = runner_3.report.results[0]
    report = RunReport((*runner_3.report.results, twice), (), 1.0, 0, plan.fingerprint())
    artifacts[2] = ShardArtifact(runner_3.path, report, runner_3.shard)
    with pytest.raises(ArtifactError, match=rf"^runner-3\.json: a second result for {twice.node_id}$"):
        merge_shards(artifacts)


def test_nothing_to_merge_is_refused() -> None:
    with pytest.raises(ArtifactError, match="no artifacts"):
        merge_shards([])


# -- where a runner is: flags or the CI's variables ------------------------------------------


@pytest.mark.parametrize(
    ("index", "total", "env", "expected"),
    [
        (2, 4, {}, (2, 4)),
        (None, None, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}, (1, 3)),  # GitLab: 1-based
        (None, None, {"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}, (3, 3)),
        (None, None, {"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "2"}, (1, 2)),  # CircleCI: 0-based
        (None, None, {"CIRCLE_NODE_INDEX": "1", "CIRCLE_NODE_TOTAL": "2"}, (2, 2)),
        (None, None, {"BUILDKITE_PARALLEL_JOB": "4", "BUILDKITE_PARALLEL_JOB_COUNT": "5"}, (5, 5)),  # 0-based
        (1, None, {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, (1, 3)),  # a flag wins
        (None, 5, {"CIRCLE_NODE_INDEX": "3", "CIRCLE_NODE_TOTAL": "4"}, (4, 5)),
        # One CI at a time: GitLab's index never goes with CircleCI's total.
        (None, 2, {"CI_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": "9"}, (2, 2)),
    ],
)
def test_shard_position(
    index: int | None, total: int | None, env: dict[str, str], expected: tuple[int, int]
) -> None:
    assert _shard_position(index, total, env) == expected


@pytest.mark.parametrize(
    ("index", "total", "env", "message"),
    [
        (None, None, {}, "shard needs --index and --total"),
        (1, None, {}, "shard needs --index and --total"),
        (None, None, {"CI_NODE_INDEX": "1", "CIRCLE_NODE_TOTAL": "2"}, "shard needs --index and --total"),
        (4, 3, {}, "runner 4 from --index is not between 1 and 3"),
        (None, None, {"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"}, "CI_NODE_INDEX=0 (1-based)"),
        (
            None,
            None,
            {"CIRCLE_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": "2"},
            "runner 3 from CIRCLE_NODE_INDEX=2",
        ),
        (
            None,
            None,
            {"BUILDKITE_PARALLEL_JOB": "x", "BUILDKITE_PARALLEL_JOB_COUNT": "2"},
            "not a whole number",
        ),
        (None, None, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "0"}, "must be at least 1"),
    ],
)
def test_shard_position_mistakes(
    index: int | None, total: int | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _shard_position(index, total, env)


# -- the CI templates --------------------------------------------------------------------------


def _template(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((CI_DIR / name).read_text())
    assert isinstance(document, dict)
    return document


def _orchestrate_commands(scripts: Iterator[str]) -> list[list[str]]:
    """Every `orchestrate ...` line of the scripts, CI expressions replaced by sample values."""
    samples = {
        "${{ matrix.index }}": "2",
        "${{ strategy.job-total }}": "4",
        "$CI_NODE_INDEX": "2",
    }
    commands = []
    for script in scripts:
        for line in script.splitlines():
            for expression, value in samples.items():
                line = line.replace(expression, value)
            if line.startswith("orchestrate "):
                assert "${" not in line and "$" not in line, line
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def _parsed(commands: list[list[str]]) -> dict[str, Any]:
    """The parsed arguments of the template's shard and merge commands (one of each)."""
    parsed = {}
    for argv in commands:
        args = build_parser().parse_args(argv)
        assert args.command not in parsed, f"two {args.command} commands"
        parsed[args.command] = args
    assert set(parsed) == {"shard", "merge"}
    return parsed


def test_github_actions_template() -> None:
    workflow = _template("github-actions.yml")
    jobs = workflow["jobs"]
    assert set(jobs) == {"durations", "shard", "merge"}
    steps = [step for job in jobs.values() for step in job["steps"]]
    parsed = _parsed(_orchestrate_commands(step["run"] for step in steps if "run" in step))
    assert (parsed["shard"].index, parsed["shard"].total) == (2, 4)
    assert parsed["shard"].results == "results/runner-2.json"
    assert parsed["merge"].artifacts == ["results/*.json"]
    assert parsed["merge"].junitxml and parsed["merge"].results
    # The matrix is 1..N, every runner's artifact is uploaded even when its tests failed, and the
    # merge runs after failed runners.
    shard_job = jobs["shard"]
    assert shard_job["strategy"]["matrix"]["index"] == [1, 2, 3, 4]
    assert shard_job["strategy"]["fail-fast"] is False
    upload = next(s for s in shard_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "${{ !cancelled() }}"
    assert jobs["merge"]["if"] == "${{ !cancelled() }}"
    # The durations file travels: restored once, saved by the merge job after merging into it.
    uses = [s.get("uses", "") for s in jobs["merge"]["steps"]]
    assert uses[-1].startswith("actions/cache/save")
    assert jobs["merge"]["steps"][-1]["with"]["path"] == parsed["merge"].durations
    assert jobs["durations"]["steps"][0]["uses"].startswith("actions/cache/restore")


def test_gitlab_ci_template() -> None:
    pipeline = _template("gitlab-ci.yml")
    test, merge = pipeline["test"], pipeline["merge"]
    parsed = _parsed(_orchestrate_commands(line for job in (test, merge) for line in job["script"]))
    # No flags: the job finds its place in GitLab's variables.
    assert (parsed["shard"].index, parsed["shard"].total) == (None, None)
    assert _shard_position(None, None, {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": str(test["parallel"])}) == (
        2,
        4,
    )
    assert parsed["shard"].results == "results/runner-2.json"
    assert parsed["merge"].artifacts == ["results/*.json"]
    assert test["artifacts"]["when"] == "always"
    assert merge["when"] == "always"
    assert merge["artifacts"]["reports"]["junit"] == parsed["merge"].junitxml
    assert merge["cache"]["paths"] == [parsed["merge"].durations]
    assert pipeline["durations"]["cache"]["key"] == merge["cache"]["key"]


def test_ci_readme_names_both_templates() -> None:
    text = (CI_DIR / "README.md").read_text()
    assert "github-actions.yml" in text
    assert "gitlab-ci.yml" in text
