"""One plan split across CI runners, and their artifacts joined into one report. Pure: no I/O.

    every runner: collect -> estimate -> plan_lpt(total) -> run its own part -> artifact
    merge job:    artifacts -> merge_shards -> one report, one JUnit file, one duration store

Called by `orchestrate shard` (orchestrator/ci/shard_mode.py), which plans the whole suite for `total`
runners exactly as every other runner does, runs its own part and records a ShardRecord in
its results file (`extra["shard"]`), and by `orchestrate merge` (orchestrator/ci/merging.py), which reads
every results file and hands them to `merge_shards`.

The record carries the whole plan, so merge knows what a runner whose artifact is missing should
have run: those tests are reported as not run, and the merged exit code is 1. Artifacts of
different plans (another collection, another durations file) are refused by their plan
fingerprint, and two artifacts of one runner or two results for one test are refused too:
a merged report has exactly one outcome for every planned test, or is not written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from orchestrator.model import (
    AgentStatistics,
    Attempt,
    JunitSettings,
    Outcome,
    Plan,
    RunReport,
    TestResult,
)
from orchestrator.protocol.errors import (
    EXIT_INTERRUPTED,
    EXIT_NO_TESTS,
    EXIT_OK,
    EXIT_TESTS_FAILED,
    ArtifactError,
)

__all__ = ["MergedShards", "ShardArtifact", "ShardRecord", "merge_shards"]

EXTRA_KEY = "shard"


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """What a runner's artifact says about the split: who it was and what everyone had to run."""

    index: int  # 1-based, as `--index`
    total: int
    # The node ids of every runner's part, runner 1 first: the whole plan.
    planned_node_ids: tuple[tuple[str, ...], ...]
    # The collection's junit_* ini options, so the merged XML is the one pytest would write.
    junit: JunitSettings = JunitSettings()

    @classmethod
    def of_plan(cls, plan: Plan, index: int, junit: JunitSettings) -> ShardRecord:
        """The record of runner `index` (1-based) of a plan made for `plan.agents` runners."""
        return cls(index, plan.agents, tuple(shard.node_ids for shard in plan.shards), junit)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "total": self.total,
            "plan": [list(node_ids) for node_ids in self.planned_node_ids],
            "junit": asdict(self.junit),
        }

    @classmethod
    def from_json(cls, data: Any) -> ShardRecord:
        """Rebuild a record; raises ValueError on anything `to_json` could not have written."""
        if not isinstance(data, Mapping):
            raise ValueError("the shard record is not an object")
        try:
            index, total, plan = data["index"], data["total"], data["plan"]
            junit = JunitSettings(**data.get("junit", {}))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete shard record ({exc})") from None
        if not (isinstance(index, int) and isinstance(total, int) and 1 <= index <= total):
            raise ValueError(f"bad runner index {index!r} of {total!r}")
        if not (
            isinstance(plan, list)
            and len(plan) == total
            and all(isinstance(ids, list) and all(isinstance(n, str) for n in ids) for ids in plan)
        ):
            raise ValueError(f"the recorded plan is not {total} lists of node ids")
        return cls(index, total, tuple(tuple(ids) for ids in plan), junit)


@dataclass(frozen=True, slots=True)
class ShardArtifact:
    """One runner's results file, read back: where it came from, its report, its record."""

    path: str
    report: RunReport
    shard: ShardRecord

    @classmethod
    def from_results(cls, path: str, report: RunReport, extra: Mapping[str, Any]) -> ShardArtifact:
        """Wrap what `read_results(path)` returned; ArtifactError if no shard wrote it."""
        if EXTRA_KEY not in extra:
            raise ArtifactError(f"{path}: not written by `orchestrate shard` (it records no runner index)")
        try:
            record = ShardRecord.from_json(extra[EXTRA_KEY])
        except ValueError as exc:
            raise ArtifactError(f"{path}: corrupt results file: {exc}") from None
        return cls(path, report, record)


@dataclass(frozen=True, slots=True)
class MergedShards:
    """The merge's result: one report over the whole plan, and the JUnit settings to write it with."""

    report: RunReport
    junit: JunitSettings
    total: int
    missing_runners: tuple[int, ...]


def merge_shards(artifacts: Sequence[ShardArtifact]) -> MergedShards:
    """Join every runner's artifact into one report with exactly one result per planned test.

    Raises ArtifactError (exit 4) when the artifacts cannot be joined: no artifacts, different
    plan fingerprints, two artifacts of one runner, or a result the plan does not give to the
    runner that reported it. A planned test with no result (its runner's artifact is missing,
    or the runner never reported it) ends as not-run, which makes the exit code 1.

    Results come in plan order (runner 1's tests first). Agents are renumbered so that they
    are unique across runners (runner 1's agents first), and so are the attempts' agent ids;
    each agent records its runner (`AgentStatistics.runner`), which the report pages group by.
    """
    if not artifacts:
        raise ArtifactError("no artifacts to merge")
    _check_same_plan(artifacts)
    first = artifacts[0].shard
    artifact_by_runner: dict[int, ShardArtifact] = {}
    for artifact in artifacts:
        other = artifact_by_runner.setdefault(artifact.shard.index, artifact)
        if other is not artifact:
            raise ArtifactError(
                f"{other.path} and {artifact.path} are both from runner {artifact.shard.index} of {first.total}"
            )

    result_by_node_id: dict[str, TestResult] = {}
    agents: list[AgentStatistics] = []
    messages: list[str] = []
    agent_offset = 0
    for index in sorted(artifact_by_runner):
        artifact = artifact_by_runner[index]
        planned = set(first.planned_node_ids[index - 1])
        renumbered = {
            a.agent_id: agent_offset + position for position, a in enumerate(artifact.report.agents)
        }
        agent_offset += len(artifact.report.agents)
        agents.extend(
            replace(a, agent_id=renumbered[a.agent_id], runner=index) for a in artifact.report.agents
        )
        messages.extend(f"runner {index}: {message}" for message in artifact.report.messages)
        for result in artifact.report.results:
            if result.node_id not in planned:
                raise ArtifactError(
                    f"{artifact.path}: a result for {result.node_id}, which the plan does not give to runner {index}"
                )
            if result.node_id in result_by_node_id:
                raise ArtifactError(f"{artifact.path}: a second result for {result.node_id}")
            result_by_node_id[result.node_id] = _renumbered(result, renumbered)

    missing_runners = tuple(i for i in range(1, first.total + 1) if i not in artifact_by_runner)
    results = []
    for index, node_ids in enumerate(first.planned_node_ids, start=1):
        why = (
            f"no artifact from runner {index}"
            if index in missing_runners
            else f"runner {index} reported no result"
        )
        for node_id in node_ids:
            found = result_by_node_id.get(node_id)
            results.append(found if found is not None else _not_run(node_id, why))
    if missing_runners:
        messages.append(
            f"no artifact from runner(s) {', '.join(map(str, missing_runners))} of {first.total}: "
            "their tests are reported as not run"
        )

    interrupted = any(a.report.interrupted for a in artifacts)
    report = RunReport(
        results=tuple(results),
        agents=tuple(agents),
        # The runners ran side by side: the slowest one is the wall time of the whole.
        wall_seconds=max(a.report.wall_seconds for a in artifacts),
        exit_code=_exit_code(results, interrupted, missing_runners),
        plan_fingerprint=artifacts[0].report.plan_fingerprint,
        interrupted=interrupted,
        messages=tuple(messages),
    )
    return MergedShards(report, first.junit, first.total, missing_runners)


def _check_same_plan(artifacts: Sequence[ShardArtifact]) -> None:
    paths_by_fingerprint: dict[str, list[str]] = {}
    for artifact in artifacts:
        paths_by_fingerprint.setdefault(artifact.report.plan_fingerprint, []).append(artifact.path)
    if len(paths_by_fingerprint) > 1:
        groups = "; ".join(
            f"{fp or '(none)'}: {', '.join(paths)}" for fp, paths in paths_by_fingerprint.items()
        )
        raise ArtifactError(
            f"the artifacts come from different plans (fingerprints {groups}); every runner must plan "
            "from the same collection, durations file and --total"
        )
    first = artifacts[0]
    for artifact in artifacts[1:]:
        # Equal fingerprints and unequal records: a file edited by hand, or a bug.
        if artifact.shard.planned_node_ids != first.shard.planned_node_ids:
            raise ArtifactError(
                f"{artifact.path} and {first.path} record different plans under one fingerprint"
            )


def _renumbered(result: TestResult, agent_ids: Mapping[int, int]) -> TestResult:
    attempts = tuple(replace(a, agent_id=agent_ids.get(a.agent_id, a.agent_id)) for a in result.attempts)
    return replace(result, attempts=attempts)


def _not_run(node_id: str, why: str) -> TestResult:
    return TestResult(node_id, Outcome.NOT_RUN, (Attempt(-1, Outcome.NOT_RUN, 0.0, (), why),))


def exit_code_for(results: Sequence[TestResult], interrupted: bool) -> int:
    """pytest's exit code for these outcomes: 2 interrupted, 1 any failure or not-run, 5 none, else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if not results:
        return EXIT_NO_TESTS
    if any(r.outcome.is_failure or r.outcome is Outcome.NOT_RUN for r in results):
        return EXIT_TESTS_FAILED
    return EXIT_OK


def _exit_code(results: Sequence[TestResult], interrupted: bool, missing_runners: Sequence[int]) -> int:
    code = exit_code_for(results, interrupted)
    # A runner that left no artifact failed somehow (a collection error, a cancelled job), even
    # when its part of the plan was empty.
    if missing_runners and code in (EXIT_OK, EXIT_NO_TESTS):
        return EXIT_TESTS_FAILED
    return code
