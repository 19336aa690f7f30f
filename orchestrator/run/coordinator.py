"""The coordinator's run on agents, and the ending of its pytest session.

Registered by orchestrator/front/plugin.py when a session runs the suite (`--agents`, or
`orchestrate shard`), beside the plugin of its mode (run_mode.py's RunMode, or
orchestrator/ci/shard_mode.py's ShardMode), which decides what to run and hands it here. This
starts the agents (during collection with an explicit --agents N: agent_start.py), runs the
Session on them with the status display (console.py), and at the session's end writes
orchestrate's sections, its outputs and the duration store, then waits until the agents' stacks
are down. Kept out of the entry-point module so that the pytest processes that are not
coordinators (every agent's worker, plain pytest runs) import none of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.front.options import RunConfig
from orchestrator.model import RunReport, TestUnit
from orchestrator.planning.durations.startup import StartupPrediction
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.pipeline import Prepared, prepare
from orchestrator.planning.sizing import AgentChoice
from orchestrator.protocol.versions import runtime_versions
from orchestrator.report.outputs import warn as _warn
from orchestrator.report.spool import ResultSpool
from orchestrator.run.agent_start import (
    AgentStart,
    check_engine_and_sweep,
    current_owner,
    load_stack,
    remove_leftovers,
    stack_notes,
)
from orchestrator.run.console import Console
from orchestrator.run.costs import RunCosts, fixed_seconds, load_store

__all__ = ["Coordinator", "raise_stop"]


class Coordinator:
    """The coordinator's side of one pytest session: starts the agents, runs, reports."""

    def __init__(
        self, config: pytest.Config, options: RunConfig, early: bool = False, agents: AgentStart | None = None
    ) -> None:
        """`agents`: the agents of this run, already started (`start_before_coordinator`)."""
        self.config = config
        self.options = options
        self.console = Console(config, early)
        # What pytest_sessionfinish writes: the run's report, and what its results file adds.
        self.report: RunReport | None = None
        self.extra: dict[str, Any] = {}
        self.prepared: Prepared | None = None
        # The coordinator's collection got the stack file's per-agent pytest_args and env
        # (orchestrator/run/collection_stack.py).
        self.collection_served = False
        self._collection_hint = ""
        self._warnings: list[str] = []
        self._spool: ResultSpool | None = None
        self._leftovers_due = False
        self._warned = 0
        # SIGINT's handler while an interrupted run cleans up (`_hold_interrupts`), and presses.
        self._previous_sigint: Any = None
        self._presses = 0
        store = load_store(
            options.durations, lambda warning: self.console.say(f"orchestrate: warning: {warning}", True)
        )
        stack_text = ""
        if options.stack_file:
            stack_text = load_stack(options.stack_file)
            self._collection_hint, self._warnings = stack_notes(config, options, options.stack_file)
        # Stacks on this machine: the engine is checked and swept once (`check_engine`).
        self._engine_due = bool(stack_text) and not options.address
        if agents is None:
            agents = AgentStart(config, options, stack_text, self.console.print)
        agents.say = self.console.print
        self.agents = agents
        self.costs = RunCosts.of(config, options, store, stack_text)

    def check_engine(self) -> None:
        """Stacks on this machine: raise DockerUnavailable (one line) unless the Docker engine
        answers, and sweep what dead runs left; once. Agents started early (collection_stack.py)
        are started first, so that their processes' start overlaps the Docker SDK's import here
        (0.2 s of this process's start, on one core, before them)."""
        if self._engine_due:
            check_engine_and_sweep(self.console.say)
            self._engine_due = False

    @property
    def run_id(self) -> str:
        return self.agents.run_id

    @property
    def owner(self) -> str:
        return current_owner()

    def flush_early_output(self) -> None:
        """Say what was held while pytest captured (a coordinator made early)."""
        self.console.flush_early_output()

    # -- the run ----------------------------------------------------------------------------

    def start_agents_early(self) -> None:
        """With --agents N, start the agents now, while this session collects."""
        self.agents.start_early()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        self.start_agents_early()

    def choose_agents(self, units: Sequence[TestUnit], split: bool) -> AgentChoice:
        """How many agents: auto's choice (weighing the units `split` would cut for each N), or the
        number asked for less those that would start too late."""
        started = bool(self.agents.early_configs)
        return self.costs.choose_agents(units, self.options.agents, started, self.console.print, split)

    def run(
        self,
        session: pytest.Session,
        units: Sequence[TestUnit],
        choice: AgentChoice,
        split: bool,
        plan_fingerprint: str = "",
    ) -> None:
        """Plan `units` on `choice.agents` agents, run them, keep the report (`plan_fingerprint`:
        the whole plan of CI runners this run is a part of), and end the session as pytest would."""
        costs = self.costs
        load = costs.load(choice.agents, units)
        prepared = prepare(units, costs.store, choice.agents, split, costs.per_test(), load)
        self.prepared = prepared
        plan = prepared.plan
        fixed = self.costs.fixed(plan.agents)
        predicted = plan.makespan + fixed_seconds(fixed)
        with_fixed = f"; with start-up and teardown {predicted:.1f}s" if fixed else ""
        self.console.print(
            f"orchestrate: {plan.tests} tests in {len(prepared.units)} units on {plan.agents} agents "
            f"({self.options.backend}); predicted {plan.makespan:.1f}s (lower bound {plan.lower_bound:.1f}s)"
            + with_fixed
            + _load_note(load, costs.store, units)
        )
        # Only for a count asked for: auto plans for no more agents than keep the cores busy.
        if (
            self.options.agents is not None
            and load > 1.0
            and (fewer := costs.fewer_agents_text(units, plan.agents, split, predicted))
        ):
            self.console.print(fewer)
        from orchestrator.report.tables import guessed_text, holding_up_text, kept_whole_text

        if guessed := guessed_text(plan):
            self.console.print(guessed)
        if prepared.kept_whole:
            self.console.print(kept_whole_text(prepared.kept_whole))
        elif not split and (hint := holding_up_text(plan)):
            self.console.print(hint)
        self.report = self._run_session(session, prepared, fixed)
        if fixed:
            self.report = replace(
                self.report,
                plan={
                    **self.report.plan,
                    "predicted_startup_seconds": fixed.startup_seconds,
                    "predicted_teardown_seconds": fixed.teardown_seconds,
                    "predicted_wall_seconds": fixed.startup_seconds + plan.makespan + fixed.teardown_seconds,
                },
            )
        if plan_fingerprint:
            # Every runner's artifact names the whole plan, so merge can tell they belong together.
            self.report = replace(self.report, plan_fingerprint=plan_fingerprint)
        raise_stop(session, self.report)

    def _run_session(
        self, session: pytest.Session, prepared: Prepared, fixed: StartupPrediction | None
    ) -> RunReport:
        from orchestrator.planning.scheduling import make_scheduler
        from orchestrator.report.replay import PytestReplay
        from orchestrator.run.loop import run_session
        from orchestrator.run.run_status import Forecast
        from orchestrator.run.session import Session

        local = not self.options.address
        configs = self.agents.early_configs
        if not configs:
            configs = self.agents.configs(shard.agent_id for shard in prepared.plan.shards)
            self.agents.start(configs)
        if self.options.results or self.options.html:
            self._spool = ResultSpool()
        display = self.console.status_display(self.options.live, self.options.status_interval)
        session_loop = Session(
            prepared.units,
            make_scheduler(self.options.schedule, prepared.plan, self.costs.cpus if local else None),
            configs,
            PytestReplay(session),
            reruns=self.options.reruns,
            max_crashes=self.options.max_crashes,
            versions=runtime_versions(),
            spool=self._spool,
            keep_passed_reports=False,
            collection_hint=self._collection_hint,
            forecast=Forecast(fixed.startup_seconds, fixed.teardown_seconds) if fixed else None,
        )
        try:
            try:
                report = run_session(
                    session_loop, self.agents.backend, display=display, backend_started=self.agents.started_at
                )
            finally:
                if display is not None:
                    display.close()  # before pytest's summary
            if report.stop is not None and report.stop.kind == "interrupt":
                self._hold_interrupts()
            if session_loop.fatal is not None:
                raise pytest.UsageError(str(session_loop.fatal))
            return report
        finally:
            self.agents.early_configs = []
            # After the backend's shutdown (pytest_unconfigure), once every agent has stopped:
            # the report does not wait for the stacks' teardown.
            self._leftovers_due = bool(self.agents.stack_text and local)

    # -- the ending -------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from orchestrator.report.sections import write_sections

        if self.report is not None:
            write_sections(terminalreporter, self.report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """After pytest's own plugins wrote their files: ours, and the duration store."""
        from orchestrator.planning.durations.recording import record_run
        from orchestrator.report.outputs import finish_outputs

        for warning in self._warnings:
            _warn(warning)
        self._warned = len(self._warnings)
        if self.report is None:
            return
        self.report = replace(self.report, exit_code=int(exitstatus))
        finish_outputs(
            self.report, self.options.outputs, self.config.option.xmlpath, self.extra, spool=self._spool
        )
        if self.options.durations:
            record_run(
                self.costs.store,
                self.report,
                self.options.durations,
                _warn,
                startup=(self.costs.startup_key, self.costs.capacity.agents),
            )
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        # After the summary: agents take their stacks down meanwhile (since the session ended);
        # this waits until they have, then for the collection stack, whose own pytest_unconfigure
        # (trylast too, registered earlier: called just before this one, after every other
        # plugin's and conftest's) began its teardown (orchestrator/run/collection_stack.py).
        self.agents.stop(self._warnings)
        collection_stack = self.config.pluginmanager.get_plugin("orchestrate-collection-stack")
        if collection_stack is not None:
            collection_stack.stop()
        if self._leftovers_due:
            self._leftovers_due = False
            remove_leftovers(self.agents.run_id, self._warnings)
            for warning in self._warnings[self._warned :]:
                _warn(warning)
        self._release_interrupts()

    def _hold_interrupts(self) -> None:
        """After Ctrl-C, a second press no longer breaks off the clean-up: the report is written
        while the stacks come down, and the command waits for them (pytest_unconfigure)."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return

        def count(signum: int, frame: object) -> None:
            self._presses += 1

        self._previous_sigint = signal.signal(signal.SIGINT, count)

    def _release_interrupts(self) -> None:
        import signal

        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None
            if self._presses:
                _warn("interrupted again: the stacks were still taken down")


def _load_note(load: float, store: DurationStore, units: Sequence[TestUnit]) -> str:
    """What the prediction assumes of agents that want more CPU than the cores have (nothing
    where they do not)."""
    if load <= 1.0:
        return ""
    if any(store.cpu(node_id) for unit in units for node_id in unit.node_ids):
        return f"; the agents want {load:.2g}x the cores' CPU: each test slowed by its recorded CPU time"
    return f"; {load:.3g} agents per core, no CPU time recorded yet: tests not slowed"


def raise_stop(session: pytest.Session, report: RunReport) -> None:
    """End the session as pytest would have ended it for the same reason."""
    stop = report.stop
    if stop is None:
        return
    if stop.kind == "exit":
        pytest.exit(stop.message, returncode=stop.returncode)
    if stop.kind == "interrupt":
        raise KeyboardInterrupt(stop.message)
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
