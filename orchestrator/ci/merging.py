"""`orchestrate merge`: the CI runners' artifacts replayed through one pytest session.

A plugin registered by orchestrator/front/plugin.py when `--orchestrate-merge` names results files.
The session collects nothing; its run loop replays every merged result through pytest's hooks
(report/replay.py), so the terminal summary, `--junitxml` and the `--lf` cache are pytest's
own, exactly as after `orchestrate run`, and the same outputs follow (report/outputs.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orchestrator.ci.sharding import ShardArtifact, merge_shards
from orchestrator.model import RunReport
from orchestrator.planning.durations.store import DurationStore
from orchestrator.protocol.errors import USER_ERRORS
from orchestrator.report.replay import PytestReplay
from orchestrator.report.results import read_results

__all__ = ["MergeReplay"]


class MergeReplay:
    """Replaces collection and the run loop of a pytest session by the replay of merged artifacts."""

    def __init__(self, config: pytest.Config, options: Any) -> None:
        self.options = options
        try:
            loaded = [ShardArtifact.from_results(path, *read_results(path)) for path in options.merge]
            merged = merge_shards(loaded)
        except USER_ERRORS as exc:
            raise pytest.UsageError(str(exc)) from exc
        self.report: RunReport = merged.report
        self.runners = merged.total

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        session.items = []
        session.testscollected = len(self.report.results)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        replay = PytestReplay(session)
        for result in self.report.results:
            for attempt in result.attempts[:-1]:
                replay.attempt_retried(result.node_id, attempt)
            replay.test_finished(result, replay=True)
        return True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from orchestrator.report.sections import write_sections

        write_sections(terminalreporter, self.report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from orchestrator.planning.durations.recording import record_run
        from orchestrator.report.outputs import finish_outputs, warn

        store, warning = DurationStore.load(self.options.durations)
        if warning:
            warn(warning)
        self.report = replace(self.report, exit_code=int(exitstatus))
        extra = {"merged": list(self.options.merge), "runners": self.runners}
        finish_outputs(self.report, self.options.outputs, session.config.option.xmlpath, extra)
        if self.options.durations:
            record_run(store, self.report, self.options.durations, warn)
