"""`orchestrate run` (`pytest --agents`): the session's mode that runs the collected suite.

A plugin of its own beside the coordinator (coordinator.py), as pytest's feature modules are:
its `pytest_runtestloop` replaces pytest's, plans the collected units and runs them on the
agents; with `--agents auto` on a suite that agents cannot pay for, it leaves the run to
pytest's own loop in this process (in_process.py). The other modes: plan_mode.py (`orchestrate
plan`), orchestrator/ci/shard_mode.py and merging.py (`orchestrate shard` and `merge`).
"""

from __future__ import annotations

import pytest

from orchestrator.front.options import RunConfig
from orchestrator.model import TestUnit
from orchestrator.planning.pipeline import units_of
from orchestrator.protocol.errors import UsageError
from orchestrator.run.coordinator import Coordinator

__all__ = ["RunMode", "collected_units"]


def collected_units(session: pytest.Session, options: RunConfig) -> tuple[TestUnit, ...] | None:
    """The collected items as units; None when there is nothing to run (pytest says why)."""
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(
            f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} during collection"
        )
    if not session.items:
        return None  # pytest says "no tests ran" and exits 5, as it always does
    try:
        return units_of(session.items, options.group_by, options.groups, frozenset(options.split_fixtures))
    except UsageError as exc:  # a malformed marker: one line, exit 4
        raise pytest.UsageError(str(exc)) from None


class RunMode:
    """Runs the collected suite: on the coordinator's agents, or in this process."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        coordinator = self.coordinator
        options = coordinator.options
        units = collected_units(session, options)
        if units is None:
            return True
        choice = coordinator.choose_agents(units, options.split)
        from orchestrator.run.in_process import InProcessDurations, in_process_reason

        why = in_process_reason(options, units, choice, coordinator.costs.store, options.split)
        if why:
            coordinator.console.print(f"orchestrate: --agents auto: {why}")
            from orchestrator.report.replay import trimmed_stats

            durations = InProcessDurations(
                coordinator.costs.store, options.durations, trimmed_stats(session.config)
            )
            session.config.pluginmanager.register(durations, "orchestrate-in-process")
            return None  # pytest's own run loop, in this process
        coordinator.run(session, units, choice, options.split)
        return True
