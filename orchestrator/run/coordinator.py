"""The coordinator's side of one pytest session: agents started, the suite planned and run.

Registered by orchestrator/front/plugin.py when a session is a coordinator (`--agents`, or `orchestrate
plan`/`shard`); kept out of the entry-point module so that the pytest processes that are not
coordinators (every agent's worker, plain pytest runs) import none of this.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator import protocol as p
from orchestrator.front.options import RunConfig
from orchestrator.front.worker_options import args_for_workers
from orchestrator.model import JunitSettings, RunReport, TestUnit
from orchestrator.planning.durations.startup import StartupPrediction
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.pipeline import Prepared, prepare, shard_of, units_of
from orchestrator.planning.sizing import AgentChoice, Capacity, choose_agents, trim_agents
from orchestrator.protocol.errors import USER_ERRORS, UsageError
from orchestrator.protocol.versions import runtime_versions
from orchestrator.report.outputs import warn as _warn
from orchestrator.report.spool import ResultSpool
from orchestrator.report.status import StatusDisplay


class Coordinator:
    """The coordinator's side of one pytest session: plans, runs the Session, reports."""

    def __init__(self, config: pytest.Config, options: RunConfig, early: bool = False) -> None:
        self.config = config
        self.options = options
        # Lines held while pytest captures output (see `_say`); None: said at once.
        self._early_output: list[tuple[str, bool]] | None = [] if early else None
        self.report: RunReport | None = None
        self.prepared: Prepared | None = None
        self.extra: dict[str, Any] = {}
        self._backend: Any = None
        # Agents started before the coordinator's collection (an explicit --agents N): their configs.
        self._early_configs: list[p.AgentConfig] = []
        # Run in this process (`--agents auto`, when agents cannot pay): node id -> seconds so far.
        self._in_process_durations: dict[str, float] | None = None
        self._backend_started_at = 0.0
        self._run_id = uuid.uuid4().hex[:10]
        # The coordinator's collection got the stack file's per-agent pytest_args and env
        # (orchestrator/run/collection_stack.py).
        self.collection_served = False
        self._stack_text = ""
        self._collection_hint = ""
        self._warnings: list[str] = []
        self._spool: ResultSpool | None = None
        # The warm stacks this run borrows: not looked up yet (False), none (None), or them.
        self._warm: Any = False
        self._leftovers_due = False
        self._warned = 0
        # SIGINT's handler while an interrupted run cleans up (`_hold_interrupts`), and presses.
        self._previous_sigint: Any = None
        self._presses = 0
        store, warning = DurationStore.load(options.durations)
        self.store = store
        if warning:
            _warn(warning)
        if options.stack_file and not options.planning:
            self._stack_text = _load_stack(options.stack_file, not options.address, self._say)
            self._say_replaced_options(options.stack_file)
        elif options.stack_file:
            # `plan` starts nothing, but the stack's start-up history is kept under its text.
            with contextlib.suppress(OSError, UnicodeDecodeError):
                self._stack_text = Path(options.stack_file).read_text(encoding="utf-8")
        from orchestrator.planning.durations.startup import startup_key
        from orchestrator.run.backends import agent_capacity

        capacity, why = agent_capacity(options.backend, options.address, bool(options.stack_file))
        self.capacity = Capacity(capacity, why)
        label = _backend_label(options)
        if self._stack_text and not options.address and options.stack_file:
            from orchestrator.run import warm_stacks

            stacks = warm_stacks.current(Path(config.invocation_params.dir) / warm_stacks.STATE_PATH)
            if stacks is not None and stacks.stack == os.path.realpath(options.stack_file):
                label += "+warm-stacks"  # borrowed stacks start in a fraction of a cold one's time
        self.startup_key = startup_key(label, self._stack_text)

    def _say_replaced_options(self, stack_file: str) -> None:
        """One line when the user gave an option the stack's pytest_args give per agent."""
        from agents.stack import load_stack_file
        from agents.worker import without_stack_options

        spec = load_stack_file(stack_file)
        templates = spec.pytest_arg_templates
        per_agent = [
            *(f"pytest_args {a}" for a in templates if a.startswith("-")),
            *(f"env {k}" for k in spec.env),
        ]
        if per_agent and spec.collection_stack and not self.options.address:
            self._collection_hint = (
                f"the coordinator collected with the stack file's {', '.join(per_agent)} rendered for "
                "a stack of its own: does collection depend on something else that differs per agent?"
            )
        elif per_agent:
            self._collection_hint = (
                f"the stack file gives each agent its own {', '.join(per_agent)}; the coordinator collects "
                "without them: does collection depend on the service (names, versions, capabilities)?"
            )
        _, replaced = without_stack_options(args_for_workers(self.config.invocation_params.args), templates)
        if replaced:
            names = ", ".join(replaced)
            self._warnings.append(
                f"{names} {'is' if len(replaced) == 1 else 'are'} given after -- and in the stack file's "
                f"pytest_args: each agent's worker gets only the stack file's, rendered for its own stack "
                f"(the coordinator's collection keeps yours)"
            )

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def owner(self) -> str:
        return _current_owner()

    # -- the run loop -----------------------------------------------------------------------

    def start_agents_early(self) -> None:
        """With --agents N, start the agents now: their stacks come up and their workers start
        while this session collects, instead of after it (xdist's workers also start at once)."""
        if self.options.agents is None or self.options.planning or self._early_configs:
            return
        self._early_configs = self._agent_configs(range(self.options.agents))
        self._start_backend(self._early_configs)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        self.start_agents_early()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(
                f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} during collection"
            )
        if not session.items:
            return True  # pytest says "no tests ran" and exits 5, as it always does
        try:
            units = units_of(session.items, self.options.group_by, self.options.groups)
        except UsageError as exc:  # a malformed marker: one line, exit 4
            raise pytest.UsageError(str(exc)) from None
        if self.options.shard is not None:
            index, total = self.options.shard
            whole, units = shard_of(units, self.store, total, index, self.options.split)
            from orchestrator.ci.sharding import EXTRA_KEY, ShardRecord

            self.extra = {EXTRA_KEY: ShardRecord.of_plan(whole, index, JunitSettings()).to_json()}
            self._fingerprint = whole.fingerprint()
            self._print(
                f"orchestrate: runner {index} of {total}, plan fingerprint {whole.fingerprint()}: "
                f"{sum(len(u.node_ids) for u in units)} of {whole.tests} tests in {len(units)} units, "
                f"predicted {whole.shards[index - 1].seconds:.1f}s (slowest runner {whole.makespan:.1f}s)"
            )
            if not units:
                self._print("orchestrate: nothing to run here (more runners than units)")
                self.report = RunReport((), (), 0.0, 0, plan_fingerprint=whole.fingerprint())
                return True
            split = False
        else:
            split = self.options.split
        if self.options.planning:
            self._print_plans(units, split)
            return True
        choice = self._choose_agents(units)
        if self._in_process(units, choice, split):
            return None  # pytest's own run loop, in this process
        prepared = prepare(units, self.store, choice.agents, split)
        self.prepared = prepared
        plan = prepared.plan
        fixed = self._fixed_costs(plan.agents)
        with_fixed = (
            f"; with start-up and teardown {fixed.startup_seconds + plan.makespan + fixed.teardown_seconds:.1f}s"
            if fixed
            else ""
        )
        self._print(
            f"orchestrate: {plan.tests} tests in {len(prepared.units)} units on {plan.agents} agents "
            f"({self.options.backend}); predicted {plan.makespan:.1f}s (lower bound {plan.lower_bound:.1f}s)"
            + with_fixed
        )
        self.report = self._run(session, prepared, fixed)
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
        if self.options.shard is not None:
            # Every runner's artifact names the whole plan, so merge can tell they belong together.
            self.report = replace(self.report, plan_fingerprint=self._fingerprint)
        self._raise_stop(session, self.report)
        return True

    def _warm_stacks(self) -> Any:
        """The warm stacks of `orchestrate up --stack` this run borrows (None: none), said once."""
        if self._warm is not False:
            return self._warm
        self._warm = None
        if not self._stack_text or self.options.address or self.options.stack_file is None:
            return None
        from orchestrator.run import warm_stacks

        stacks = warm_stacks.current(Path(self.config.invocation_params.dir) / warm_stacks.STATE_PATH)
        if stacks is None:
            return None
        if stacks.stack != os.path.realpath(self.options.stack_file):
            self._print(
                f"orchestrate: the warm stacks here are of {stacks.stack}, not of this run's stack file: "
                "every agent brings up a stack of its own"
            )
            return None
        self._print(
            f"orchestrate: borrowing the {stacks.agents} warm stacks of `orchestrate up` (each reset to "
            "its snapshot first; `orchestrate down` removes them)"
        )
        self._warm = stacks
        return stacks

    def _agent_configs(self, agent_ids: Iterable[int]) -> list[p.AgentConfig]:
        local = not self.options.address
        warm = self._warm_stacks()
        # Before pytest parsed its options (agents started from pytest_load_initial_conftests),
        # the early parse has them.
        basetemp = getattr(self.config.option, "basetemp", None) or getattr(
            self.config.known_args_namespace, "basetemp", None
        )
        return [
            p.AgentConfig(
                agent_id=agent_id,
                run_id=self._run_id,
                owner=_current_owner(),
                cwd=str(self.config.invocation_params.dir),
                pytest_args=tuple(args_for_workers(self.config.invocation_params.args)),
                stack_text=self._stack_text,
                stack_path=self.options.stack_file or "",
                timeout=self.options.timeout,
                python=sys.executable,
                env=dict(os.environ) if local else None,
                basetemp=str(basetemp) if basetemp else None,
                warm_id=warm_field(warm, agent_id, "warm_id"),
                warm_owner=warm_field(warm, agent_id, "warm_owner"),
                warm_dir=warm_field(warm, agent_id, "warm_dir"),
            )
            for agent_id in agent_ids
        ]

    def _start_backend(self, configs: Sequence[p.AgentConfig]) -> None:
        from orchestrator.run.backends import make_backend

        if self.options.backend == "ray" and not self.options.address:
            from orchestrator.run import warm

            instance = warm.current()
            if instance is not None:
                self._print(
                    f"orchestrate: joining the warm Ray instance at {instance.address} (orchestrate down stops it)"
                )
        self._backend = make_backend(
            self.options.backend,
            self.options.address,
            working_dir=str(self.config.invocation_params.dir),
            excludes=self.options.excludes,
        )
        self._backend_started_at = time.monotonic()
        self._backend.start(configs)

    def _run(self, session: pytest.Session, prepared: Prepared, fixed: StartupPrediction | None) -> RunReport:
        from orchestrator.planning.scheduling import make_scheduler
        from orchestrator.report.replay import PytestReplay
        from orchestrator.run.loop import run_session
        from orchestrator.run.run_status import Forecast
        from orchestrator.run.session import Session

        local = not self.options.address
        configs = self._early_configs
        if not configs:
            configs = self._agent_configs(shard.agent_id for shard in prepared.plan.shards)
            self._start_backend(configs)
        if self.options.results or self.options.html:
            from orchestrator.report.spool import ResultSpool

            self._spool = ResultSpool()
        display = self._status_display()
        session_loop = Session(
            prepared.units,
            make_scheduler(self.options.schedule, prepared.plan),
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
                    session_loop, self._backend, display=display, backend_started=self._backend_started_at
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
            self._early_configs = []
            # After the backend's shutdown (pytest_unconfigure), once every agent has stopped:
            # the report does not wait for the stacks' teardown.
            self._leftovers_due = bool(self._stack_text and local)

    def _print_plans(self, units: Sequence[TestUnit], split: bool) -> None:
        """`orchestrate plan`: one plan in detail, or the predicted makespan for each agent count."""
        from orchestrator.report.tables import plan_text, predictions_text

        counts = self.options.plan_counts
        if not counts:
            counts = (self._choose_agents(units).agents,)
        if len(counts) == 1 and not self.options.plot:
            plan = prepare(units, self.store, counts[0], split).plan
            self._print(plan_text(plan, len(self.store), self._fixed_costs(plan.agents)))
            return
        from orchestrator.planning.durations.estimate import estimate_units
        from orchestrator.planning.whatif import predict

        if split:
            units = prepare(units, self.store, max(counts), split).units
        estimates = estimate_units(units, self.store)
        predictions = predict(estimates, counts, self._fixed_costs)
        unseen = sum(e.unseen_tests for e in estimates)
        self._print(predictions_text(predictions, sum(len(u.node_ids) for u in units), len(units), unseen))
        if self.options.plot:
            from orchestrator.report.charts import predictions_svg

            try:
                Path(self.options.plot).write_text(predictions_svg(predictions), encoding="utf-8")
            except OSError as exc:
                raise pytest.UsageError(
                    f"could not write {self.options.plot}: {exc.strerror or exc}"
                ) from exc
            self._print(f"orchestrate: wrote {self.options.plot}")

    def _choose_agents(self, units: Sequence[TestUnit]) -> AgentChoice:
        """How many agents: auto's choice, or the number asked for less those that would start too late."""
        from orchestrator.planning.durations.estimate import estimate_units

        estimates = estimate_units(units, self.store)
        if self.options.agents is None:
            choice = choose_agents(estimates, self.capacity, self._fixed_costs)
            self._print(f"orchestrate: --agents auto: {choice.agents} agents; {choice.reason}")
            return choice
        # Agents started before collection that the plan leaves out finish as soon as they are up.
        choice = trim_agents(
            estimates, self.options.agents, self._fixed_costs, started=bool(self._early_configs)
        )
        if choice.reason:
            self._print(f"orchestrate: {choice.reason}")
        return choice

    def _in_process(self, units: Sequence[TestUnit], choice: AgentChoice, split: bool) -> bool:
        """`--agents auto` on a suite where agents cannot pay: run it here, as plain pytest does.

        Not with a stack (the tests need one of their own), a timeout (enforced from outside a
        worker), reruns, a cluster, a shard, or orchestrate's own outputs asked for (`--results`,
        `--html`: they describe agents). What it means: a test that kills its process ends the
        run, as under plain pytest.
        """
        from orchestrator.planning.durations.estimate import estimate_units
        from orchestrator.planning.sizing import in_process_pays

        options = self.options
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
            return False
        why = in_process_pays(estimate_units(units, self.store), choice, os.cpu_count() or 1)
        if not why:
            return False
        self._print(f"orchestrate: --agents auto: {why}")
        self._in_process_durations = {}
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """In this process: every test's duration, for the store (its phases, as on agents)."""
        if self._in_process_durations is not None and report.when in ("setup", "call", "teardown"):
            durations = self._in_process_durations
            durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration

    def _fixed_costs(self, agents: int) -> StartupPrediction | None:
        """Predicted start-up and teardown of `agents` agents, from this backend and stack's history."""
        return self.store.startup.predict(self.startup_key, agents, self.capacity.agents)

    @staticmethod
    def _raise_stop(session: pytest.Session, report: RunReport) -> None:
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

    # -- the ending -------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from orchestrator.report.sections import write_sections

        if self.report is not None:
            write_sections(terminalreporter, self.report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """After pytest's own plugins wrote their files: ours, and the duration store."""
        from orchestrator.report.outputs import finish_outputs

        for warning in self._warnings:
            _warn(warning)
        self._warned = len(self._warnings)
        if self._in_process_durations:
            from orchestrator.report.outputs import save_durations

            save_durations(self.store, self._in_process_durations, self.options.durations, _warn)
        if self.report is None:
            return
        self.report = replace(self.report, exit_code=int(exitstatus))
        finish_outputs(
            self.report,
            self.options.outputs,
            self.config.option.xmlpath,
            self.store,
            self.extra,
            startup=(self.startup_key, self.capacity.agents),
            spool=self._spool,
        )
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def pytest_unconfigure(self) -> None:
        if self._early_configs and self._backend is not None:
            # Started early, never run (a collection error, no tests, an interrupt): stop them,
            # stacks down, before the backend goes.
            from orchestrator.run.loop import stop_unused_agents

            stop_unused_agents(self._backend, self._early_configs)
            if self._stack_text and not self.options.address:
                _remove_leftovers(self._run_id, self._warnings)
            self._early_configs = []
        if self._backend is not None:
            # After the summary: agents take their stacks down meanwhile; this waits until they
            # have, so that nothing of the run is left when the command returns.
            self._backend.shutdown()
            self._backend = None
        if self._leftovers_due:
            self._leftovers_due = False
            _remove_leftovers(self._run_id, self._warnings)
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

    def _status_display(self) -> StatusDisplay | None:
        """The live area in a terminal (--live), else the CI lines (--status-interval, 0: only
        the notices of late services), or none.

        -q (and quieter) turns both off unless the live area is asked for by name, as it quiets
        pytest's own progress; with the live area on, the periodic lines are off.
        """
        from orchestrator.report.status import StatusLines

        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        writer = getattr(terminal, "_tw", None)
        quiet = self.config.option.verbose < 0
        live = self.options.live
        if writer is not None and (live == "on" or (live == "auto" and not quiet and _is_terminal(writer))):
            from orchestrator.report.live import LiveArea

            return LiveArea(writer, time.monotonic())
        if not quiet:
            return StatusLines(self._print_status, self.options.status_interval, time.monotonic())
        return None

    def _print_status(self, text: str) -> None:
        """A status line on a line of its own, after the progress dots written so far."""
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        writer = getattr(terminal, "_tw", None)
        if writer is not None and writer.width_of_current_line:
            writer.line()  # the dots so far stay on their line; pytest's go on below
        self._print(text)

    def _print(self, text: str) -> None:
        self._say(text, False)

    def _say(self, text: str, to_stderr: bool) -> None:
        """A line for the user; held while pytest captures this process's output (a coordinator
        made from pytest_load_initial_conftests), until `flush_early_output`."""
        if self._early_output is not None:
            self._early_output.append((text, to_stderr))
            return
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        if to_stderr:
            print(text, file=sys.stderr)
        elif terminal is not None:
            terminal.write_line(text)
        else:
            print(text)

    def flush_early_output(self) -> None:
        """Say what was held: pytest no longer captures (pytest_configure)."""
        held, self._early_output = self._early_output or [], None
        for text, to_stderr in held:
            self._say(text, to_stderr)


def warm_field(stacks: Any, agent_id: int, name: str) -> str:
    """One AgentConfig field giving agent `agent_id` its warm slot ("" without warm stacks)."""
    if stacks is None:
        return ""
    from orchestrator.run.warm_stacks import borrow_fields

    return borrow_fields(stacks, agent_id).get(name, "")


def _is_terminal(writer: Any) -> bool:
    """Whether pytest's terminal writer writes to a terminal that takes cursor movements."""
    isatty = getattr(getattr(writer, "_file", None), "isatty", None)
    return bool(isatty is not None and isatty()) and os.environ.get("TERM") != "dumb"


def _backend_label(options: RunConfig) -> str:
    """The backend as its start-up costs differ: local threads, a fresh Ray, a warm one, a cluster."""
    if options.backend != "ray":
        return options.backend
    if options.address:
        return "ray-cluster"
    from orchestrator.run import warm

    return "ray-warm" if warm.current() is not None else "ray"


def _load_stack(path: str, local: bool, say: Any) -> str:
    """Validate the stack file and (`local`: stacks on this machine) the Docker engine before
    anything starts; the file's text. On a cluster each agent checks and sweeps its own node."""
    from agents.stack import check_engine, load_stack_file, sweep

    load_stack_file(path)
    if not local:
        return Path(path).read_text(encoding="utf-8")
    check_engine()
    removed = sweep(all_owners=False)
    if any(removed):
        say(
            f"orchestrate: warning: removed {removed[0]} container(s) and {removed[1]} network(s) left by dead runs",
            True,
        )
    return Path(path).read_text(encoding="utf-8")


def _remove_leftovers(run_id: str, warnings: list[str]) -> None:
    """Remove what agents that died without taking their stack down left (a killed actor)."""
    from agents.stack import remove_run

    try:
        removed = remove_run(run_id)
    except USER_ERRORS as exc:
        warnings.append(f"could not remove the containers of this run's dead agents: {exc}")
        return
    if removed:
        warnings.append(f"removed {removed} container(s) that agents which died left behind")


def _current_owner() -> str:
    from agents.stack import current_owner

    return current_owner()
