"""The coordinator's event loop: assignments out, events in, one final outcome per test.

Called by the CLI (`run`, `shard`) after collection and planning. The session is the single
owner of the run's mutable state: the scheduler (which decides), the backend (which carries),
and the per-test attempts (which it turns into the RunReport). It stops every agent before it
returns; shutting the backend down is left to its creator. Each event an agent sends is
dispatched to its `on_<event>` handler; an event without a handler is an error.

Invariant, checked at the end of every run: the node ids of the report are exactly the
collected node ids, each with one final outcome. A violation is an InternalError (exit 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from agents.agent import AgentConfig
from orchestrator import events as ev
from orchestrator.backends.protocol import AgentBackend
from orchestrator.errors import (
    EXIT_INTERRUPTED,
    EXIT_NO_TESTS,
    EXIT_OK,
    EXIT_TESTS_FAILED,
    InternalError,
)
from orchestrator.model import (
    AgentStatistics,
    Attempt,
    Collection,
    Outcome,
    RunReport,
    TestResult,
    TestUnit,
)
from orchestrator.report.outcomes import outcome_of, report_duration
from orchestrator.scheduling.protocol import Scheduler

# How long agents get to finish cleanly (stacks down) once the run is over or interrupted.
STOP_GRACE_SECONDS = 120.0
WAIT_SLICE_SECONDS = 0.5
_LIFECYCLE_EVENTS = frozenset({ev.AgentFailed.name, ev.AgentStopped.name})


class Progress(Protocol):
    """What the session tells a progress display (orchestrator.report.terminal.LiveProgress)."""

    def on_test_started(self, agent_id: int, node_id: str) -> None: ...

    def on_test_finished(self, agent_id: int, outcome: Outcome) -> None: ...

    def on_agent_state(self, agent_id: int, text: str) -> None: ...


class NullProgress:
    def on_test_started(self, agent_id: int, node_id: str) -> None:
        pass

    def on_test_finished(self, agent_id: int, outcome: Outcome) -> None:
        pass

    def on_agent_state(self, agent_id: int, text: str) -> None:
        pass


class _AgentState:
    """The session's mutable record of one agent."""

    def __init__(self, agent_id: int, predicted: float) -> None:
        self.agent_id = agent_id
        self.predicted = predicted
        self.ready_at: float | None = None
        self.last_finish_at: float | None = None
        self.live = False
        self.stopped = False
        self.failed = ""
        self.flushed = False
        self.host = ""
        self.tests = 0
        self.busy = 0.0
        self.stack_up = 0.0
        self.stack_down = 0.0
        self.restarts = 0
        self.running: str | None = None
        self.outstanding: dict[str, TestUnit] = {}

    def statistics(self, run_end: float | None) -> AgentStatistics:
        """Counters of this agent; its wall time runs from ready to the end of the whole run's
        last test, so idle time shows how long it waited while others still worked."""
        wall = 0.0
        if self.ready_at is not None and run_end is not None:
            wall = max(0.0, run_end - self.ready_at)
        return AgentStatistics(
            agent_id=self.agent_id,
            tests=self.tests,
            busy_seconds=self.busy,
            predicted_seconds=self.predicted,
            wall_seconds=wall,
            stack_up_seconds=self.stack_up,
            stack_down_seconds=self.stack_down,
            worker_restarts=self.restarts,
            host=self.host,
            error=self.failed,
        )


class Session:
    """Runs one collection on a backend's agents, as the scheduler decides."""

    def __init__(
        self,
        collection: Collection,
        scheduler: Scheduler,
        backend: AgentBackend,
        agent_configs: Sequence[AgentConfig],
        *,
        maxfail: int = 0,
        reruns: int = 0,
        max_crashes: int = 2,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scheduler = scheduler
        self._backend = backend
        self._configs = tuple(agent_configs)
        self._maxfail = maxfail
        self._reruns = reruns
        self._max_crashes = max_crashes
        self._progress = progress or NullProgress()
        self._clock = clock
        predicted = {s.agent_id: s.seconds for s in scheduler.plan.shards}
        self._agents = {
            c.agent_id: _AgentState(c.agent_id, predicted.get(c.agent_id, 0.0)) for c in self._configs
        }
        self._node_ids = collection.node_ids
        self._attempts: dict[str, list[Attempt]] = {n: [] for n in self._node_ids}
        self._reports: dict[str, list[dict]] = {}
        self._final: dict[str, Outcome] = {}
        self._failures = 0
        self._stop_reason = ""
        self._messages: list[str] = []
        self._rerun_serial = 0

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> RunReport:
        started = self._clock()
        interrupted = False
        self._backend.start(self._configs)
        try:
            while not self._done():
                self._dispatch()
                for event in self._backend.wait_events(WAIT_SLICE_SECONDS):
                    self._handle(event)
        except KeyboardInterrupt:
            interrupted = True
            self._stop_reason = self._stop_reason or "interrupted"
            self._messages.append("interrupted by the user (Ctrl-C): stopping agents, taking stacks down")
        finally:
            interrupted = self._stop_agents(abort=interrupted or bool(self._stop_reason)) or interrupted
        return self._report(self._clock() - started, interrupted)

    def _done(self) -> bool:
        if self._stop_reason:
            return True
        if len(self._final) == len(self._node_ids):
            return True
        # Nobody left to run the rest: every agent failed or stopped.
        return all(a.stopped or a.failed for a in self._agents.values())

    def _dispatch(self) -> None:
        """Send the scheduler's new assignments; let agents with nothing to do run what they hold."""
        by_agent: dict[int, list[TestUnit]] = {}
        for assignment in self._scheduler.schedule():
            by_agent.setdefault(assignment.agent_id, []).append(assignment.unit)
        for agent_id, units in by_agent.items():
            state = self._agents[agent_id]
            for unit in units:
                state.outstanding[unit.unit_id] = unit
            state.flushed = False
            self._backend.assign(agent_id, units)
        for state in self._agents.values():
            if state.live and not state.flushed and self._scheduler.wants_work(state.agent_id):
                state.flushed = True
                self._backend.flush(state.agent_id)

    def _stop_agents(self, abort: bool) -> bool:
        """Finish (or abort) every agent and wait for their stacks to come down; True if Ctrl-C came."""
        interrupted = False
        for state in self._agents.values():
            if not state.stopped:
                (self._backend.abort if abort else self._backend.finish)(state.agent_id)
        deadline = self._clock() + STOP_GRACE_SECONDS
        while not all(a.stopped for a in self._agents.values()) and self._clock() < deadline:
            try:
                for event in self._backend.wait_events(WAIT_SLICE_SECONDS):
                    self._handle(event)
            except KeyboardInterrupt:
                # A second Ctrl-C: still clean up, but stop waiting for tests to finish.
                interrupted = True
                self._messages.append("interrupted again: aborting agents, still taking stacks down")
                for state in self._agents.values():
                    if not state.stopped:
                        self._backend.abort(state.agent_id)
        for state in self._agents.values():
            if not state.stopped:
                self._messages.append(
                    f"agent {state.agent_id} did not stop within {STOP_GRACE_SECONDS:.0f} s"
                )
        return interrupted

    # -- events --------------------------------------------------------------------------

    def _handle(self, event: ev.Event) -> None:
        handler = getattr(self, f"on_{event.name}", None)
        if handler is None:
            raise InternalError(f"no handler for event {event.name!r}")
        if self._agents[event.agent_id].failed and event.name not in _LIFECYCLE_EVENTS:
            # Its units were requeued when it failed: what it still says about tests is stale,
            # and mixing it with the new attempt's reports would corrupt that attempt.
            return
        handler(event)

    def on_agent_ready(self, event: ev.AgentReady) -> None:
        state = self._agents[event.agent_id]
        state.live = True
        state.ready_at = self._clock()
        state.host = event.host
        state.stack_up = event.stack_up_seconds
        self._progress.on_agent_state(event.agent_id, f"ready ({event.startup_seconds:.1f}s)")
        if self._stop_reason:
            self._backend.abort(event.agent_id)
            return
        self._scheduler.add_agent(event.agent_id)

    def on_work_wanted(self, event: ev.WorkWanted) -> None:
        if self._agents[event.agent_id].live:
            self._scheduler.request_work(event.agent_id)

    def on_test_started(self, event: ev.TestStarted) -> None:
        self._agents[event.agent_id].running = event.node_id
        self._progress.on_test_started(event.agent_id, event.node_id)

    def on_test_reported(self, event: ev.TestReported) -> None:
        if event.node_id in self._final or event.node_id not in self._attempts:
            return
        reports = self._reports.setdefault(event.node_id, [])
        reports.append(event.report)
        if event.report.get("when") != "teardown":
            return
        del self._reports[event.node_id]
        self._agents[event.agent_id].running = None
        self._record(
            event.node_id,
            Attempt(event.agent_id, outcome_of(reports), report_duration(reports), tuple(reports)),
        )

    def on_test_crashed(self, event: ev.TestCrashed) -> None:
        self._agents[event.agent_id].running = None
        self._crashed(event.agent_id, event.node_id, event.message, event.output, final=not event.retry)

    def on_test_timed_out(self, event: ev.TestTimedOut) -> None:
        self._agents[event.agent_id].running = None
        self._reports.pop(event.node_id, None)
        # The report's first line already says "timed out after N s" (report.outcomes.failure_text).
        message = f"agent {event.agent_id}: --timeout {event.seconds:g} s; the worker was killed and replaced"
        if event.output:
            message += "\n" + event.output
        self._record(
            event.node_id, Attempt(event.agent_id, Outcome.TIMEOUT, event.seconds, (), message), final=True
        )

    def on_not_collected(self, event: ev.NotCollected) -> None:
        # A diff: "-" what only the coordinator collected, "+" what only this agent's worker did.
        agent_only = [n for n in event.similar if n not in self._attempts]
        lines = [f"- {n}" for n in event.node_ids] + [f"+ {n}" for n in agent_only]
        self._messages.append(
            f"{event.message}:\n  (- coordinator only, + agent {event.agent_id} only)\n  "
            + "\n  ".join(lines)
        )
        for node_id in event.node_ids:
            if node_id in self._attempts and node_id not in self._final:
                message = (
                    f"not collected on agent {event.agent_id}: collection differs from the coordinator's "
                    "(does a parametrization depend on the process: env vars, time, randomness?)"
                )
                self._record(node_id, Attempt(event.agent_id, Outcome.ERROR, 0.0, (), message), final=True)

    def on_unit_finished(self, event: ev.UnitFinished) -> None:
        state = self._agents[event.agent_id]
        state.outstanding.pop(event.unit_id, None)
        self._scheduler.mark_unit_complete(event.agent_id, event.unit_id)

    def on_agent_failed(self, event: ev.AgentFailed) -> None:
        state = self._agents[event.agent_id]
        text = f"agent {event.agent_id}: {event.message}"
        if event.logs and event.logs not in event.message:
            text += "\n" + event.logs
        self._messages.append(text)
        if state.failed:
            return
        state.failed = event.message
        state.live = False
        self._progress.on_agent_state(event.agent_id, "failed")
        if state.running is not None and state.running not in self._final:
            # The agent died in the middle of this test: it may be the cause.
            self._crashed(event.agent_id, state.running, event.message, "", final=None)
            state.running = None
        units = {u.unit_id: u for u in self._scheduler.remove_agent(event.agent_id)}
        units.update(state.outstanding)
        state.outstanding.clear()
        self._requeue_unfinished(units.values())

    def on_agent_stopped(self, event: ev.AgentStopped) -> None:
        state = self._agents[event.agent_id]
        state.stopped = True
        state.live = False
        state.stack_down = event.stack_down_seconds
        state.restarts = event.worker_restarts
        if state.outstanding and not self._stop_reason:
            # Stopped with work left (pytest's own -x inside the worker): nobody runs it there.
            units = {u.unit_id: u for u in self._scheduler.remove_agent(event.agent_id)}
            units.update(state.outstanding)
            state.outstanding.clear()
            self._requeue_unfinished(units.values())

    # -- outcomes ------------------------------------------------------------------------

    def _crashed(self, agent_id: int, node_id: str, message: str, output: str, final: bool | None) -> None:
        """Record a crash attempt; `final=None` decides by the crash count (--max-crashes)."""
        if node_id not in self._attempts or node_id in self._final:
            return
        self._reports.pop(node_id, None)
        if final is None:
            crashes = sum(1 for a in self._attempts[node_id] if a.outcome is Outcome.CRASHED) + 1
            # Not final: the caller requeues what is left of the agent's units, this test included.
            final = crashes >= self._max_crashes
        text = f"agent {agent_id}: {message}\n{output}".strip()
        self._record(node_id, Attempt(agent_id, Outcome.CRASHED, 0.0, (), text), final=final)

    def _record(self, node_id: str, attempt: Attempt, final: bool | None = None) -> None:
        """Add an attempt; it is final unless it failed and --reruns allows another try."""
        attempts = self._attempts[node_id]
        attempts.append(attempt)
        state = self._agents[attempt.agent_id]
        state.busy += attempt.duration
        state.last_finish_at = self._clock()
        if final is None:
            failed_tries = sum(1 for a in attempts if a.outcome.is_failure)
            final = not (attempt.outcome in (Outcome.FAILED, Outcome.ERROR) and failed_tries <= self._reruns)
            if not final:
                self._rerun_serial += 1
                self._scheduler.requeue([TestUnit(f"{node_id} (rerun {self._rerun_serial})", (node_id,))])
        if not final:
            return
        self._final[node_id] = attempt.outcome
        state.tests += 1
        self._progress.on_test_finished(attempt.agent_id, attempt.outcome)
        if attempt.outcome.is_failure:
            self._failures += 1
            if self._maxfail and self._failures >= self._maxfail and not self._stop_reason:
                self._stop_reason = f"stopping after {self._failures} failures (-x/--maxfail)"
                self._messages.append(self._stop_reason)

    def _requeue_unfinished(self, units: Iterable[TestUnit]) -> None:
        trimmed = []
        for unit in units:
            left = tuple(n for n in unit.node_ids if n not in self._final)
            for node_id in left:
                self._reports.pop(node_id, None)
            if left:
                trimmed.append(unit.subset(left))
        if trimmed:
            self._scheduler.requeue(trimmed)

    # -- the report ----------------------------------------------------------------------

    def _report(self, wall_seconds: float, interrupted: bool) -> RunReport:
        reason = self._stop_reason or "no agent was left to run it"
        results = []
        for node_id in self._node_ids:
            attempts = self._attempts[node_id]
            outcome = self._final.get(node_id)
            if outcome is None:
                attempts.append(Attempt(-1, Outcome.NOT_RUN, 0.0, (), reason))
                outcome = Outcome.NOT_RUN
            results.append(TestResult(node_id, outcome, tuple(attempts)))
        self._check_invariant(results)
        ends = [a.last_finish_at for a in self._agents.values() if a.last_finish_at is not None]
        run_end = max(ends) if ends else None
        report = RunReport(
            results=tuple(results),
            agents=tuple(self._agents[c.agent_id].statistics(run_end) for c in self._configs),
            wall_seconds=wall_seconds,
            exit_code=0,
            plan_fingerprint=self._scheduler.plan.fingerprint(),
            interrupted=interrupted,
            messages=tuple(self._messages),
        )
        return _with_exit_code(report)

    def _check_invariant(self, results: list[TestResult]) -> None:
        seen = [r.node_id for r in results]
        if len(seen) != len(set(seen)) or set(seen) != set(self._node_ids):
            raise InternalError("report does not hold exactly one result per collected test")
        extra = set(self._final) - set(self._node_ids)
        if extra:
            raise InternalError(f"results for tests that were not collected: {sorted(extra)[:5]}")


def exit_code_for(results: Sequence[TestResult], interrupted: bool) -> int:
    """pytest's exit code for these outcomes: 2 interrupted, 1 any failure or not-run, 5 none, else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if not results:
        return EXIT_NO_TESTS
    if any(r.outcome.is_failure or r.outcome is Outcome.NOT_RUN for r in results):
        return EXIT_TESTS_FAILED
    return EXIT_OK


def _with_exit_code(report: RunReport) -> RunReport:
    return replace(report, exit_code=exit_code_for(report.results, report.interrupted))
