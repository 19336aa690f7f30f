"""`orchestrate plan`: the session's mode that prints the plan of the collected suite and runs
nothing.

A plugin of its own (no coordinator, no agents): its `pytest_runtestloop` replaces pytest's and
prints one plan in detail, or the predicted makespan for each agent count asked for (and, with
`--plot`, draws them), from the same duration store and start-up history a run would plan
from (costs.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.front.options import RunConfig
from orchestrator.model import TestUnit
from orchestrator.planning.pipeline import prepare, shard_of
from orchestrator.run.console import Console
from orchestrator.run.costs import RunCosts, load_store
from orchestrator.run.run_mode import collected_units

__all__ = ["PlanMode"]


class PlanMode:
    """Prints the plan of the collected suite instead of running it."""

    def __init__(self, config: pytest.Config, options: RunConfig) -> None:
        self.options = options
        self.console = Console(config)
        store = load_store(options.durations)
        stack_text = ""
        if options.stack_file:
            # Nothing starts, but the stack's start-up history is kept under its text.
            with contextlib.suppress(OSError, UnicodeDecodeError):
                stack_text = Path(options.stack_file).read_text(encoding="utf-8")
        self.costs = RunCosts.of(config, options, store, stack_text)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        units = collected_units(session, self.options)
        if units is None:
            return True
        split = self.options.split
        if self.options.shard is not None:
            # A shard given too (pytest's own flags only): the plan of that runner's part.
            index, total = self.options.shard
            _, units = shard_of(units, self.costs.store, total, index, split)
            split = False
            if not units:
                self.console.print("orchestrate: nothing to run here (more runners than units)")
                return True
        self._print_plans(units, split)
        return True

    def _print_plans(self, units: Sequence[TestUnit], split: bool) -> None:
        """One plan in detail, or the predicted makespan for each agent count."""
        from orchestrator.report.tables import plan_text, predictions_text

        costs, say = self.costs, self.console.print
        per_test = costs.per_test()
        counts = self.options.plan_counts
        if not counts:
            counts = (costs.choose_agents(units, self.options.agents, False, say, split).agents,)
        if len(counts) == 1 and not self.options.plot:
            prepared = prepare(units, costs.store, counts[0], split, per_test, costs.load(counts[0], units))
            say(plan_text(prepared.plan, len(costs.store), costs.fixed(prepared.plan.agents)))
            if prepared.kept_whole:
                from orchestrator.report.tables import kept_whole_text

                say(kept_whole_text(prepared.kept_whole))
            return
        from orchestrator.planning.durations.estimate import estimate_units
        from orchestrator.planning.whatif import predict

        if split:
            units = prepare(units, costs.store, max(counts), split, per_test).units
        # Up to one agent per core the estimates are the store's; beyond, stretched by the load.
        loads = {n: costs.load(n, units) for n in counts}
        by_load = {load: estimate_units(units, costs.store, per_test, load) for load in set(loads.values())}
        predictions = tuple(
            prediction for n in counts for prediction in predict(by_load[loads[n]], (n,), costs.fixed)
        )
        unseen = sum(e.unseen_tests for e in by_load[loads[counts[0]]])
        say(predictions_text(predictions, sum(len(u.node_ids) for u in units), len(units), unseen))
        if self.options.plot:
            from orchestrator.report.charts import predictions_svg

            try:
                Path(self.options.plot).write_text(predictions_svg(predictions), encoding="utf-8")
            except OSError as exc:
                raise pytest.UsageError(
                    f"could not write {self.options.plot}: {exc.strerror or exc}"
                ) from exc
            say(f"orchestrate: wrote {self.options.plot}")
