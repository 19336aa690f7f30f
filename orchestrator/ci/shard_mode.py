"""`orchestrate shard`: the session's mode that runs one CI runner's part of the plan.

A plugin registered by orchestrator/front/plugin.py when `--orchestrate-shard I/N` is given,
beside the coordinator (orchestrator/run/coordinator.py). Its `pytest_runtestloop` replaces
pytest's: it plans the whole collected suite for N runners exactly as every other runner does
(sharding.py: the same collection and durations give the same plan), runs runner I's part on
this runner's agents as `orchestrate run` would, and records the whole plan in the results file
(`extra["shard"]`) and its fingerprint in the report, for `orchestrate merge` (merging.py).
"""

from __future__ import annotations

import pytest

from orchestrator.ci.sharding import EXTRA_KEY, ShardRecord
from orchestrator.model import JunitSettings, RunReport
from orchestrator.planning.pipeline import shard_of
from orchestrator.run.coordinator import Coordinator
from orchestrator.run.run_mode import collected_units

__all__ = ["ShardMode"]


class ShardMode:
    """Runs runner `index` of `total`'s part of the collected suite on the coordinator's agents."""

    def __init__(self, coordinator: Coordinator, shard: tuple[int, int]) -> None:
        self.coordinator = coordinator
        self.index, self.total = shard

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        coordinator = self.coordinator
        units = collected_units(session, coordinator.options)
        if units is None:
            return True
        index, total = self.index, self.total
        whole, units = shard_of(units, coordinator.costs.store, total, index, coordinator.options.split)
        coordinator.extra = {EXTRA_KEY: ShardRecord.of_plan(whole, index, JunitSettings()).to_json()}
        say = coordinator.console.print
        say(
            f"orchestrate: runner {index} of {total}, plan fingerprint {whole.fingerprint()}: "
            f"{sum(len(u.node_ids) for u in units)} of {whole.tests} tests in {len(units)} units, "
            f"predicted {whole.shards[index - 1].seconds:.1f}s (slowest runner {whole.makespan:.1f}s)"
        )
        if not units:
            say("orchestrate: nothing to run here (more runners than units)")
            coordinator.report = RunReport((), (), 0.0, 0, plan_fingerprint=whole.fingerprint())
            return True
        # The runners' parts are already the plan's: none is cut again.
        choice = coordinator.choose_agents(units, split=False)
        coordinator.run(session, units, choice, split=False, plan_fingerprint=whole.fingerprint())
        return True
