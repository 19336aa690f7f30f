"""What a run of the suite would cost, as the run and plan modes size it: the tests' past
durations, how many agents the backend holds side by side, and the start-up and teardown of
that many agents, from this backend and stack's history.

The start-up history is kept per backend as its start-up costs differ (local processes, a
fresh Ray, a warm one, a cluster; borrowed warm stacks) and per stack file text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.front.options import RunConfig
from orchestrator.model import TestUnit, UnitEstimate
from orchestrator.planning.durations.estimate import cpu_share
from orchestrator.planning.durations.startup import StartupPrediction
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.sizing import (
    AGENT_SECONDS_PER_TEST,
    AgentChoice,
    Capacity,
    choose_agents,
    too_short_to_wait,
    trim_agents,
)
from orchestrator.report.outputs import warn

__all__ = ["RunCosts", "fixed_seconds", "load_store"]

# `--agents auto` plans for more agents than cores where the tests mostly wait (and last at least
# sizing.WAITING_TEST_SECONDS on average), at most this many per core (and one engine's networks:
# STACKS_PER_ENGINE): each is a pytest process and, with a stack, a set of containers.
AUTO_AGENTS_PER_CORE = 4

# The fewer agents' predicted wall must be at most this share of the asked-for count's before a
# run says so: the stretch for more agents than cores is a model (durations/estimate.py), not a
# measurement.
SOONER = 0.9


def load_store(path: str, say: Callable[[str], None] = warn) -> DurationStore:
    """The duration store at `path` (a warning, and an empty store, when it cannot be read;
    `say` says it: a coordinator made before pytest stops capturing holds it until then)."""
    store, warning = DurationStore.load(path)
    if warning:
        say(warning)
    return store


@dataclass(frozen=True, slots=True)
class RunCosts:
    """The duration store, the agents the backend can run side by side, and the key of this
    backend and stack's start-up history."""

    store: DurationStore
    capacity: Capacity
    startup_key: str
    cpus: int = 1  # the cores the agents share: this machine's, or a cluster's
    # The most agents `--agents auto` looks at for tests that mostly wait (0: the capacity).
    ceiling: int = 0

    def load(self, agents: int, units: Sequence[TestUnit] = ()) -> float:
        """The CPU `agents` agents running `units` want per core of `cpus` (at least 1): what a
        plan stretches each test's CPU part by (durations/estimate.py). Each agent wants the
        units' recorded CPU share of a core (a whole one where nothing is recorded)."""
        return self._load_at(agents, cpu_share(units, self.store) if units else None)

    def _load_at(self, agents: int, share: float | None) -> float:
        """`load` for units whose recorded CPU share is `share` (None: nothing recorded)."""
        return max(1.0, agents * (1.0 if share is None else share) / max(1, self.cpus))

    def auto_capacity(self, estimates: Sequence[UnitEstimate]) -> Capacity:
        """How far `--agents auto` looks: the capacity, or, for tests whose recorded CPU is a share
        of their seconds and whose start-up is known, as many agents as keep the cores busy
        (cores / share), up to `ceiling`.
        Agents beyond the cores are then not slowed (the load stays at most 1) and each one's
        start-up is predicted at the load it brings (durations/startup.py). What orchestrate
        itself spends per test is CPU too (sizing.AGENT_SECONDS_PER_TEST): a suite of tests that do
        next to nothing keeps the cores busy with it, not waiting, and tests shorter on average than
        WAITING_TEST_SECONDS are not taken to wait at all (what their seconds hold beyond their CPU
        is the protocol's latency, not a service's)."""
        if self.ceiling <= self.capacity.agents or self.fixed(1) is None:
            return self.capacity  # without start-up history auto takes one agent per core
        if too_short_to_wait(estimates):
            return self.capacity
        share = cpu_share([e.unit for e in estimates], self.store, AGENT_SECONDS_PER_TEST)
        if share is None:
            return self.capacity
        upper = min(self.ceiling, int(self.cpus / share) if share > 0.0 else self.ceiling)
        if upper <= self.capacity.agents:
            return self.capacity
        return Capacity(upper, f"{self.cpus} CPUs here, and the tests compute {share:.0%} of their time")

    def fewer_agents_text(self, units: Sequence[TestUnit], agents: int, split: bool, predicted: float) -> str:
        """For a plan whose `agents` want more CPU than the cores have (its load above 1): a line
        saying that as many agents as cores would finish sooner, when the units' CPU is recorded
        and the plan for that many predicts at least a tenth less than `predicted` (the wall the
        plan for `agents` predicts); else ""."""
        fewer = min(self.cpus, agents - 1)
        share = cpu_share(units, self.store) if fewer >= 1 else None
        if share is None:
            return ""
        from orchestrator.planning.pipeline import prepare

        plan = prepare(units, self.store, fewer, split, self.per_test(), self._load_at(fewer, share)).plan
        wall = plan.makespan + fixed_seconds(self.fixed(fewer))
        if wall > SOONER * predicted:
            return ""
        return (
            f"orchestrate: {fewer} agents would likely finish sooner on these {self.cpus} cores: predicted "
            f"{wall:.1f}s against {predicted:.1f}s (`--agents auto` plans for no more agents than keep the cores busy)"
        )

    @classmethod
    def of(cls, config: pytest.Config, options: RunConfig, store: DurationStore, stack_text: str) -> RunCosts:
        from orchestrator.planning.durations.startup import startup_key
        from orchestrator.run.backends import STACKS_PER_ENGINE, agent_capacity

        capacity, why = agent_capacity(options.backend, options.address, bool(options.stack_file))
        label = _backend_label(options)
        if stack_text and not options.address and options.stack_file:
            from orchestrator.run import warm_stacks

            stacks = warm_stacks.current(Path(config.invocation_params.dir) / warm_stacks.STATE_PATH)
            if stacks is not None and stacks.stack == os.path.realpath(options.stack_file):
                label += "+warm-stacks"  # borrowed stacks start in a fraction of a cold one's time
        # A cluster's capacity is its CPUs; here it may be an engine's networks, not its cores.
        cpus = capacity if options.address else (os.cpu_count() or 1)
        # Here, tests that wait may have more agents than cores (an engine's networks bound them
        # too); on a cluster each node's agents share that node's cores: the capacity it is.
        ceiling = 0 if options.address else max(capacity, min(AUTO_AGENTS_PER_CORE * cpus, STACKS_PER_ENGINE))
        return cls(store, Capacity(capacity, why), startup_key(label, stack_text), cpus, ceiling)

    def fixed(self, agents: int) -> StartupPrediction | None:
        """Predicted start-up and teardown of `agents` agents, from this backend and stack's history."""
        return self.store.startup.predict(self.startup_key, agents, self.capacity.agents)

    def per_test(self) -> float:
        """The agents' own cost per test learned from this backend and stack's runs (0 without)."""
        costs = self.store.startup.get(self.startup_key)
        return costs.per_test if costs else 0.0

    def choose_agents(
        self,
        units: Sequence[TestUnit],
        agents: int | None,
        started: bool,
        say: Callable[[str], None],
        split: bool = False,
    ) -> AgentChoice:
        """How many agents: auto's choice (`agents` None), or the number asked for less those
        that would start too late (`started`: already started, before collection). With `split`,
        auto weighs each N with the units `--split` cuts for it."""
        from orchestrator.planning.durations.estimate import estimate_units

        estimates = estimate_units(units, self.store)
        if agents is None:
            cut = None
            if split:
                from orchestrator.planning.scheduling.split import split_oversized

                cuts: dict[int, Sequence[UnitEstimate]] = {}  # auto asks for some N twice

                def cut(n: int) -> Sequence[UnitEstimate]:
                    if n not in cuts:
                        cuts[n] = estimate_units(split_oversized(estimates, n, self.store.get), self.store)
                    return cuts[n]

            choice = choose_agents(estimates, self.auto_capacity(estimates), self.fixed, cut=cut)
            say(f"orchestrate: --agents auto: {choice.agents} agents; {choice.reason}")
            return choice
        # Agents started before collection that the plan leaves out finish as soon as they are up.
        choice = trim_agents(estimates, agents, self.fixed, started=started)
        if choice.reason:
            say(f"orchestrate: {choice.reason}")
        return choice


def _backend_label(options: RunConfig) -> str:
    """The backend as its start-up costs differ: local threads, a fresh Ray, a warm one, a cluster."""
    if options.backend != "ray":
        return options.backend
    if options.address:
        return "ray-cluster"
    from orchestrator.run import warm

    return "ray-warm" if warm.current() is not None else "ray"


def fixed_seconds(fixed: StartupPrediction | None) -> float:
    """The start-up and teardown a prediction adds to the tests' makespan (none without history)."""
    return fixed.startup_seconds + fixed.teardown_seconds if fixed else 0.0
