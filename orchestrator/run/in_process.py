"""`--agents auto` on a suite where agents cannot pay: the suite run in the coordinator's own
process, by pytest's own run loop, as plain pytest runs it.

Not with a stack (the tests need one of their own), a timeout (enforced from outside a
worker), reruns, a cluster, a shard, or orchestrate's own outputs asked for (`--results`,
`--html`: they describe agents). What it means: a test that kills its process ends the run, as
under plain pytest. Every test's seconds still go to the duration store, as an agent's would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pytest

from orchestrator.front.options import RunConfig
from orchestrator.model import TestUnit
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.sizing import AgentChoice
from orchestrator.report.outputs import warn
from orchestrator.report.replay import drop_scanned_only

__all__ = ["InProcessDurations", "in_process_reason"]


def in_process_reason(
    options: RunConfig, units: Sequence[TestUnit], choice: AgentChoice, store: DurationStore, split: bool
) -> str:
    """Why this run goes in this process ("": it goes on agents)."""
    from orchestrator.planning.durations.estimate import estimate_units
    from orchestrator.planning.sizing import in_process_pays

    if (
        options.agents is not None
        or options.stack_file
        or options.timeout
        or options.reruns
        or options.address
        or options.shard is not None
        or options.results
        or options.html
        or split
    ):
        return ""
    return in_process_pays(estimate_units(units, store), choice, os.cpu_count() or 1)


class InProcessDurations:
    """A plugin for a run in this process: every test's seconds (its phases, as on agents),
    folded into the duration store at the session's end; and, as the replay of a run on agents
    does, a passed test's passed setup and teardown reports dropped from the terminal
    reporter's `stats` once every hook saw them (orchestrator/report/replay.py's trimmed_stats)."""

    def __init__(self, store: DurationStore, path: str, stats: dict[str, list[Any]] | None = None) -> None:
        self.store = store
        self.path = path
        self.seconds_by_test: dict[str, float] = {}
        self._stats = stats
        self._reports: list[pytest.TestReport] = []  # the running test's

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when in ("setup", "call", "teardown"):
            seconds = self.seconds_by_test
            seconds[report.nodeid] = seconds.get(report.nodeid, 0.0) + report.duration
            if self._stats is not None:
                self._reports.append(report)

    def pytest_runtest_logfinish(self) -> None:
        reports, self._reports = self._reports, []
        if self._stats is not None and all(r.passed and not hasattr(r, "wasxfail") for r in reports):
            drop_scanned_only(self._stats, reports)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        if self.seconds_by_test:
            from orchestrator.planning.durations.recording import save_durations

            save_durations(self.store, self.seconds_by_test, self.path, warn)
