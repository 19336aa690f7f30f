"""The coordinator's event loop: assignments out, events in, one final outcome per test.

Called by the pytest plugin's `pytest_runtestloop` (orchestrator/front/plugin.py) after collection
and planning. The session is the one owner of a run's mutable state:

- attempts and retries: crashes (within --max-crashes, counted across agents), reruns,
  timeouts; an agent only reports what happened;
- outstanding work: which units each agent holds and which of their tests have not ended
  (the scheduler owns only the queue it plans; the agent only its pending list);
- the per-agent record behind the agents table and the timeline.

Every final attempt goes to the `ReportSink` as it happens (the plugin replays it through
pytest's hooks); each event from an agent is dispatched to its `on_<event>` handler, and an
event without one is an error. The record of attempts and finals (crash retries, reruns, the
results) is the session's `AttemptLedger` (orchestrator/run/attempts.py). At the end, the results are
checked against independent evidence (the ending events actually received, orchestrator/
invariant.py), so a bookkeeping bug is an InternalError (exit 3), never a silently wrong report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from orchestrator import protocol as p
from orchestrator.model import Attempt, Outcome, RunReport, StopRequest, TestUnit
from orchestrator.planning.durations.learning import LiveEstimate
from orchestrator.planning.scheduling.protocol import Scheduler
from orchestrator.protocol.errors import InternalError, VersionMismatch
from orchestrator.protocol.reports import unpack_test_reports
from orchestrator.protocol.versions import version_differences
from orchestrator.report.outcomes import outcome_of, report_duration
from orchestrator.report.sink import ReportSink
from orchestrator.report.spool import ResultSpool
from orchestrator.report.status import RunStatus, StatusDisplay
from orchestrator.run.agent_record import AgentRecord
from orchestrator.run.attempts import AttemptLedger
from orchestrator.run.backends.protocol import AgentBackend
from orchestrator.run.invariant import check_results
from orchestrator.run.run_status import Forecast, late_services, run_status

# How long agents get to finish cleanly (stacks down) once the run is over or interrupted.
STOP_GRACE_SECONDS = 120.0
WAIT_SLICE_SECONDS = 0.5
# How the message starts that tells why workers collected the whole suite (agents/collection.py).
_FULL_COLLECTION = "workers collected the whole suite at start-up"
DEFAULT_COLLECTION_HINT = "does a parametrization depend on the process: env vars, time, randomness?"
# How many node ids of each side of a collection difference are listed.
_SHOWN_DIFFERENCES = 5
_LIFECYCLE_EVENTS = frozenset(
    {p.AgentFailed.name, p.TearingDown.name, p.AgentStopped.name, p.StackReset.name}
)
# Why the tests a stop left unrun did not run, in the words of the results file and the summary.
_NOT_RUN_BECAUSE = {
    "interrupt": lambda stop: "interrupted",
    "maxfail": lambda stop: f"{stop.message} (-x/--maxfail)",
    "exit": lambda stop: f"pytest.exit: {stop.message}",
}


class Session:
    """Runs the planned units on a backend's agents, as the scheduler decides."""

    def __init__(
        self,
        units: Sequence[TestUnit],
        scheduler: Scheduler,
        backend: AgentBackend,
        configs: Sequence[p.AgentConfig],
        sink: ReportSink,
        *,
        reruns: int = 0,
        max_crashes: int = 2,
        clock: Callable[[], float] = time.monotonic,
        versions: Mapping[str, str] | None = None,
        spool: ResultSpool | None = None,
        keep_passed_reports: bool = True,
        backend_started: float | None = None,
        collection_hint: str = "",
        display: StatusDisplay | None = None,
        forecast: Forecast | None = None,
    ) -> None:
        self._scheduler = scheduler
        # The coordinator's python, pytest and orchestrate: every agent must run the same.
        self._versions = dict(versions or {})
        self.fatal: VersionMismatch | None = None
        self._backend = backend
        # When the caller started the agents itself (during the coordinator's collection), by
        # `clock`: start-up is measured from then.
        self._backend_started = backend_started
        # What a collection difference most likely comes from, in the run's own terms.
        self._collection_hint = collection_hint or DEFAULT_COLLECTION_HINT
        self._configs = tuple(configs)
        self._sink = sink
        self._clock = clock
        self._started = 0.0
        predicted = {s.agent_id: s.seconds for s in scheduler.plan.shards}
        # Agents started before the plan was made that it has no shard for: they finish at once.
        self._unplanned = {c.agent_id for c in configs} - set(predicted)
        self._agents = {c.agent_id: AgentRecord(c.agent_id, predicted.get(c.agent_id, 0.0)) for c in configs}
        self._predicted_by_unit = {e.unit.unit_id: e.seconds for s in scheduler.plan.shards for e in s.units}
        self._ledger = AttemptLedger(
            units,
            sink,
            reruns=reruns,
            max_crashes=max_crashes,
            spool=spool,
            keep_passed_reports=keep_passed_reports,
        )
        # The remaining work, re-estimated as tests end; its makespan is recorded once a quarter
        # and half of the tests have ended (a first run's plan guesses every test).
        self._live = LiveEstimate([e for shard in scheduler.plan.shards for e in shard.units])
        self._reestimates: dict[str, float] = {}
        # Agents that run tests, per host: the load their tests' durations are corrected for.
        self._running_by_host: Counter[str] = Counter()
        self._counted: set[int] = set()
        # Independent evidence for the end-of-run check: every event that ended an attempt.
        self._endings: Counter[str] = Counter()
        self._stop: StopRequest | None = None
        self._messages: list[str] = []
        # What shows the run's status while it runs (CI lines, the live area), if anything; the
        # agents whose late services it was told about (by when they entered that phase).
        self._display = display
        self._late_told: set[tuple[int, float]] = set()
        # The agents' predicted start-up and teardown, in the ETA; when they were told to stop.
        self._forecast = forecast or Forecast()
        self._stopping_at: float | None = None
        self._failed_so_far = 0
        self._errors_so_far = 0

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> RunReport:
        """Run until every test has its final outcome, or a stop; always stops every agent."""
        if self._backend_started is None:
            self._started = self._clock()
            self._backend.start(self._configs)
        else:
            self._started = self._backend_started
        try:
            while not self._done():
                self._give_up_unrunnable()
                self._dispatch()
                events = self._backend.wait_events(self._wait_slice())
                for event in events:
                    self._handle(event)
                self._show_status(bool(events))
                reason = self._sink.stop_requested()
                if reason and self._stop is None:
                    self._stop = StopRequest("maxfail", reason)
                    self._messages.append(f"{reason} (-x/--maxfail): stopping every agent")
        except KeyboardInterrupt:
            if self._stop is None:
                self._stop = StopRequest("interrupt", "KeyboardInterrupt")
            self._messages.append("interrupted (Ctrl-C): stopping agents, taking stacks down")
        finally:
            self._stop_agents(abort=self._stop is not None or self.fatal is not None)
        return self._report()

    def _wait_slice(self) -> float:
        """How long the loop may wait for events: until the display's next update at the latest."""
        if self._display is None:
            return WAIT_SLICE_SECONDS
        return max(0.0, min(WAIT_SLICE_SECONDS, self._display.wake_at() - self._clock()))

    def _show_status(self, changed: bool) -> None:
        """Let the display show the status if it is due; name late services at once, once."""
        if self._display is None:
            return
        for notice in late_services(self._agents.values(), self._now(), self._late_told):
            self._display.notice(notice)
        self._display.update(self._clock(), changed, self.status)

    def status(self) -> RunStatus:
        """The run as it stands: tests done, failures so far, each agent's phase, the ETA."""
        return run_status(
            self._agents.values(),
            self._ledger.is_open,
            self._live,
            self._predicted_by_unit,
            now=self._now(),
            failed=self._failed_so_far,
            errors=self._errors_so_far,
            forecast=self._forecast,
            stopping_at=self._stopping_at,
            unplanned=self._unplanned,
            queued_units=self._scheduler.statistics().queued_units,
        )

    def _done(self) -> bool:
        if self.fatal is not None or self._stop is not None or self._ledger.all_final():
            return True
        # Nobody left to run the rest: every agent failed or stopped.
        return all(a.stopped or a.failed or a.tearing_down for a in self._agents.values())

    def _dispatch(self) -> None:
        """Send the scheduler's new assignments; let agents with nothing to do run what they hold."""
        by_agent: dict[int, list[TestUnit]] = {}
        for assignment in self._scheduler.schedule():
            by_agent.setdefault(assignment.agent_id, []).append(assignment.unit)
        for agent_id, units in by_agent.items():
            record = self._agents[agent_id]
            for unit in units:
                record.hold(unit)
            record.flushed = False
            self._backend.send(agent_id, p.Assign(tuple(p.UnitWork(u.unit_id, u.node_ids) for u in units)))
        for record in self._agents.values():
            if record.live and not record.flushed and self._scheduler.wants_work(record.agent_id):
                record.flushed = True
                self._backend.send(record.agent_id, p.Flush())

    def _give_up_unrunnable(self) -> None:
        """End as not run the tests of units no live agent's node can run (they need resources).

        Only once no agent is still starting: one that is may turn out to be on such a node.
        An agent lost later can make a unit unrunnable again; it is given up the same way.
        """
        agents = self._agents.values()
        if self._stop is not None or not any(a.live for a in agents):
            return
        if not all(a.live or a.failed or a.stopped for a in agents):
            return
        for unit in self._scheduler.take_unrunnable():
            reason = f"needs {unit.needs_text()}, which no live agent's node has"
            left = [n for n in unit.node_ids if not self._ledger.is_final(n)]
            if not left:
                continue
            self._messages.append(f"{len(left)} test(s) of {unit.unit_id} not run: {reason}")
            for node_id in left:
                self._endings[node_id] += 1
                self._record(node_id, Attempt(-1, Outcome.NOT_RUN, 0.0, (), reason), rerunnable=False)

    def _stop_agents(self, abort: bool) -> None:
        """Finish (or abort) every agent and wait until each runs nothing more (TearingDown).

        Not until its stack is down: the report is written while the stacks come down (the
        backend's shutdown waits for that, after the report).
        """
        command = p.Abort() if abort else p.Finish()
        self._stopping_at = self._now()
        for record in self._agents.values():
            if not record.stopped:
                self._backend.send(record.agent_id, command)
        deadline = self._clock() + STOP_GRACE_SECONDS
        while (
            not all(a.stopped or a.tearing_down for a in self._agents.values()) and self._clock() < deadline
        ):
            try:
                events = self._backend.wait_events(self._wait_slice())
                for event in events:
                    self._handle(event)
                self._show_status(bool(events))
            except KeyboardInterrupt:
                # A second Ctrl-C: still clean up, but stop waiting for tests to finish.
                self._messages.append("interrupted again: aborting agents, still taking stacks down")
                if self._stop is None or self._stop.kind != "interrupt":
                    self._stop = StopRequest("interrupt", "KeyboardInterrupt")
                for record in self._agents.values():
                    if not record.stopped:
                        self._backend.send(record.agent_id, p.Abort())
        for record in self._agents.values():
            if not record.stopped and not record.tearing_down:
                self._messages.append(
                    f"agent {record.agent_id} did not stop within {STOP_GRACE_SECONDS:.0f} s"
                )

    def _now(self) -> float:
        return self._clock() - self._started

    # -- events --------------------------------------------------------------------------

    def _handle(self, event: p.Event) -> None:
        handler = getattr(self, f"on_{event.name}", None)
        if handler is None:
            raise InternalError(f"no handler for event {event.name!r}")
        if self._agents[event.agent_id].failed and event.name not in _LIFECYCLE_EVENTS:
            # Its work was requeued when it failed: what it still says about tests is stale.
            return
        handler(event)

    def on_agent_ready(self, event: p.AgentReady) -> None:
        self._agents[event.agent_id].mark_ready(event, self._now())
        differ = version_differences(self._versions, event.versions)
        if differ and self.fatal is None:
            where = (
                f"{event.node.hostname} ({event.node.address})" if event.node.address else event.node.hostname
            )
            self.fatal = VersionMismatch(f"agent {event.agent_id} on node {where} runs {', '.join(differ)}")
        fallback = event.collection_fallback
        if fallback and not any(m.startswith(_FULL_COLLECTION) for m in self._messages):
            # Said once: every agent's worker decides alike.
            self._messages.append(
                f"{_FULL_COLLECTION} because {fallback} "
                f"(ORCHESTRATE_COLLECT=lazy collects only each unit's files anyway)"
            )
        self._sink.agent_state(event.agent_id, "ready")
        if self._stop is not None:
            self._backend.send(event.agent_id, p.Abort())
            return
        if event.agent_id in self._unplanned:
            self._backend.send(event.agent_id, p.Finish())
            return
        self._count_running(self._agents[event.agent_id], True)
        self._scheduler.add_agent(event.agent_id, event.node.resources)

    def _load(self, record: AgentRecord) -> float:
        """How many agents share each core of this agent's node now (at least 1)."""
        cpus = record.node.resources.get("CPU") or 1.0
        return max(1.0, self._running_by_host[record.node.hostname] / cpus)

    def _count_running(self, record: AgentRecord, running: bool) -> None:
        """Keep the count of agents running tests on each host (for `_load`)."""
        if running and record.agent_id not in self._counted:
            self._counted.add(record.agent_id)
            self._running_by_host[record.node.hostname] += 1
        elif not running and record.agent_id in self._counted:
            self._counted.discard(record.agent_id)
            self._running_by_host[record.node.hostname] -= 1

    def on_stack_ready(self, event: p.StackReady) -> None:
        """An agent's stack is up; its worker starts next, with these arguments."""
        record = self._agents[event.agent_id]
        record.worker_args = event.worker_args
        record.enter("worker", self._now())

    def on_agent_phase(self, event: p.AgentPhase) -> None:
        """An agent's start-up (services, setup, snapshot) or its stack's reset moved on."""
        self._agents[event.agent_id].enter(
            "resetting" if event.phase == "reset" else event.phase, self._now(), event
        )

    def on_work_wanted(self, event: p.WorkWanted) -> None:
        if self._agents[event.agent_id].live:
            self._scheduler.request_work(event.agent_id)

    def on_test_ended(self, event: p.TestEnded) -> None:
        self._agents[event.agent_id].mark_ended(event.node_id)
        if not self._ledger.is_open(event.node_id):
            return
        reports = unpack_test_reports(event.node_id, event.reports)
        record = self._agents[event.agent_id]
        now = self._now()
        started = max(0.0, now - event.seconds)
        record.last_end_at = now
        unit_id = record.unit_holding(event.node_id)
        if unit_id is not None:
            record.unit_started.setdefault(unit_id, started)
        self._endings[event.node_id] += 1
        duration = report_duration(reports)
        attempt = Attempt(
            event.agent_id,
            outcome_of(reports),
            duration,
            tuple(reports),
            started=started,
            finished=now,
            seconds_at_load_one=seconds_at_load_one(duration, event.cpu_seconds, self._load(record)),
        )
        self._record(event.node_id, attempt, rerunnable=True)

    def on_warning_recorded(self, event: p.WarningRecorded) -> None:
        self._sink.warning(event.agent_id, event.warning)

    def on_test_crashed(self, event: p.TestCrashed) -> None:
        self._agents[event.agent_id].mark_ended(event.node_id)
        self._endings[event.node_id] += 1
        self._crashed(event.agent_id, event.node_id, f"{event.message}\n{event.output}".strip())

    def on_test_timed_out(self, event: p.TestTimedOut) -> None:
        self._agents[event.agent_id].mark_ended(event.node_id)
        self._endings[event.node_id] += 1
        # The first line ("timed out after N s") comes from report.outcomes.failure_text.
        message = f"agent {event.agent_id}: the worker was killed and replaced"
        if event.output:
            message += "\n" + event.output
        attempt = Attempt(
            event.agent_id,
            Outcome.TIMEOUT,
            event.seconds,
            (),
            message,
            started=max(0.0, self._now() - event.seconds),
            finished=self._now(),
        )
        self._record(event.node_id, attempt, rerunnable=False)

    def on_test_exited(self, event: p.TestExited) -> None:
        """A test called pytest.exit() or raised KeyboardInterrupt: the whole run stops, as in pytest."""
        self._agents[event.agent_id].mark_ended(event.node_id)
        if self._stop is None:
            if event.interrupted:
                self._stop = StopRequest("interrupt", event.message or "KeyboardInterrupt")
            else:
                self._stop = StopRequest("exit", event.message, event.returncode)
        where = f" in {event.node_id}" if event.node_id else ""
        what = "KeyboardInterrupt" if event.interrupted else f"pytest.exit({event.message!r})"
        self._messages.append(f"agent {event.agent_id}: {what}{where}: stopping every agent")

    def on_not_collected(self, event: p.NotCollected) -> None:
        # Both sides: what only the coordinator collected, what only this agent's worker did.
        agent_only = [n for n in event.similar if not self._ledger.is_collected(n)]
        self._messages.append(
            f"{len(event.node_ids)} test(s) were not collected by agent {event.agent_id}'s pytest worker "
            f"(collection differs from the coordinator's; {self._collection_hint}):\n"
            + _some("coordinator only", event.node_ids)
            + "\n"
            + _some(f"agent {event.agent_id} only", agent_only)
        )
        message = (
            f"not collected on agent {event.agent_id}: collection differs from the coordinator's "
            f"({self._collection_hint})"
        )
        for node_id in event.node_ids:
            self._agents[event.agent_id].mark_ended(node_id)
            if self._ledger.is_open(node_id):
                self._endings[node_id] += 1
                self._record(
                    node_id, Attempt(event.agent_id, Outcome.ERROR, 0.0, (), message), rerunnable=False
                )

    def on_stack_reset(self, event: p.StackReset) -> None:
        self._agents[event.agent_id].count_reset(event.seconds, self._now())
        if event.error:
            self._messages.append(
                f"agent {event.agent_id}: stack reset before {event.unit_id} failed: {event.error}"
            )

    def on_unit_finished(self, event: p.UnitFinished) -> None:
        self._scheduler.unit_finished(event.agent_id, event.unit_id)
        record = self._agents[event.agent_id]
        unit = record.drop(event.unit_id)
        if unit is None:
            return
        outcomes = [self._ledger.outcome(n) for n in unit.node_ids]
        record.add_span(unit, outcomes, self._now(), self._predicted_by_unit.get(event.unit_id, 0.0))

    def on_agent_failed(self, event: p.AgentFailed) -> None:
        record = self._agents[event.agent_id]
        text = f"agent {event.agent_id}: {event.message}"
        if event.logs and event.logs not in event.message:
            text += "\n" + event.logs
        self._messages.append(text)
        if record.failed:
            return
        record.failed = event.message
        record.live = False
        self._sink.agent_state(event.agent_id, "failed")
        running = record.running_test(self._ledger.is_open) if record.ready_at is not None else None
        if running is not None:
            # The agent died in the middle of this test (its worker runs what it holds in order,
            # so it is the first of them with no end yet): it may be the cause.
            self._endings[running] += 1
            self._crashed(event.agent_id, running, event.message)
        self._release(record)

    def on_tearing_down(self, event: p.TearingDown) -> None:
        """The agent runs nothing more; its stack comes down (or is kept warm) meanwhile."""
        record = self._agents[event.agent_id]
        record.tearing_down = True
        record.live = False
        record.stopped_at = self._now()
        self._release(record)

    def on_agent_stopped(self, event: p.AgentStopped) -> None:
        record = self._agents[event.agent_id]
        record.mark_stopped(event, self._now())
        self._release(record)

    # -- outcomes ------------------------------------------------------------------------

    def _release(self, record: AgentRecord) -> None:
        """The agent takes no more work: requeue the tests of its units that have not ended."""
        self._count_running(record, False)
        self._scheduler.remove_agent(record.agent_id)
        units = record.drop_all()
        if self._stop is None:
            unended = self._ledger.unended(units)
            if unended:
                self._scheduler.requeue(unended)

    def _crashed(self, agent_id: int, node_id: str, message: str) -> None:
        """Record a crash attempt; the ledger retries it (anywhere) until --max-crashes in all."""
        if not self._ledger.is_open(node_id):
            return
        record = self._agents[agent_id]
        attempt = Attempt(
            agent_id,
            Outcome.CRASHED,
            0.0,
            (),
            f"agent {agent_id}: {message}".strip(),
            started=record.last_end_at,
            finished=self._now(),
        )
        retry = self._ledger.crashed(node_id, attempt, retry_allowed=self._stop is None)
        self._account(node_id, attempt, retry)

    def _record(self, node_id: str, attempt: Attempt, rerunnable: bool) -> None:
        """Add an attempt: final, unless it failed and --reruns allows another try."""
        retry = self._ledger.record(node_id, attempt, rerunnable=rerunnable, retry_allowed=self._stop is None)
        self._account(node_id, attempt, retry)

    def _account(self, node_id: str, attempt: Attempt, retry: TestUnit | None) -> None:
        """Count an attempt in its agent's record; requeue the unit carrying its retry, if any."""
        if retry is not None:
            self._agents[attempt.agent_id].busy += attempt.duration
            self._scheduler.requeue([retry])
        else:
            self._learn(node_id, attempt)
            if attempt.outcome is Outcome.ERROR:
                self._errors_so_far += 1
            elif attempt.outcome.is_failure:
                self._failed_so_far += 1
            if (record := self._agents.get(attempt.agent_id)) is not None:
                record.count_final(attempt.duration, self._now())

    def _learn(self, node_id: str, attempt: Attempt) -> None:
        """Feed a final attempt to the live estimate; at a quarter and at half of the tests, note
        the makespan it predicts now: elapsed + remaining work over the live agents."""
        live = self._live
        live.ended(node_id, attempt.duration)
        for key, share in (("reestimated_makespan_at_quarter", 0.25), ("reestimated_makespan_at_half", 0.5)):
            if key not in self._reestimates and live.tests_ended >= share * live.tests:
                agents = max(1, sum(1 for a in self._agents.values() if a.live))
                first_ready = min(
                    (a.ready_at for a in self._agents.values() if a.ready_at is not None), default=0.0
                )
                self._reestimates[key] = self._now() - first_ready + live.remaining_seconds() / agents

    # -- the report ----------------------------------------------------------------------

    def _report(self) -> RunReport:
        reason = (
            _NOT_RUN_BECAUSE[self._stop.kind](self._stop) if self._stop else "no agent was left to run it"
        )
        # Tests pytest would not have listed (after -x, pytest.exit, Ctrl-C) are only in our
        # results; those lost because no agent was left are replayed, so the run fails.
        replay_not_run = self._stop is None
        for node_id in self._ledger.unfinished():
            self._endings[node_id] += 1
            self._ledger.end_not_run(node_id, reason, replay=replay_not_run)
        results = self._ledger.results()
        check_results(results, self._ledger.node_ids, self._endings)
        ends = [a.finished_at for a in self._agents.values() if a.finished_at is not None]
        run_end = max(ends) if ends else None
        plan = self._scheduler.plan
        return RunReport(
            results=tuple(results),
            agents=tuple(self._agents[c.agent_id].statistics(run_end) for c in self._configs),
            wall_seconds=self._now(),
            exit_code=0,
            plan_fingerprint=plan.fingerprint(),
            interrupted=self._stop is not None and self._stop.kind == "interrupt",
            messages=tuple(self._messages),
            stop=self._stop,
            plan={
                "agents": float(plan.agents),
                "predicted_makespan": plan.makespan,
                "lower_bound": plan.lower_bound,
                "total_seconds": plan.total_seconds,
                "longest_unit_seconds": plan.longest_unit_seconds,
                **self._reestimates,
            },
        )


def stop_unused_agents(backend: AgentBackend, configs: Sequence[p.AgentConfig]) -> None:
    """Abort agents that were started but never given a run, and wait until each has stopped."""
    waiting = {c.agent_id for c in configs}
    for agent_id in waiting:
        backend.send(agent_id, p.Abort())
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while waiting and time.monotonic() < deadline:
        for event in backend.wait_events(WAIT_SLICE_SECONDS):
            if isinstance(event, p.AgentStopped):
                waiting.discard(event.agent_id)


def seconds_at_load_one(duration: float, cpu: float, load: float) -> float:
    """What a test that took `duration` with `cpu` worker CPU-seconds under `load` agents per core
    would take alone: the CPU part was stretched by the load, the rest (waiting on a service,
    sleeping) was not. Never below `duration / load` (a test whose threads use several cores).
    """
    if load <= 1.0 or cpu <= 0.0:
        return duration
    return max(duration / load, duration - cpu * (load - 1.0))


def _some(side: str, node_ids: Sequence[str]) -> str:
    """`side (N):` and the first few node ids, one a line."""
    shown = [f"    {n}" for n in node_ids[:_SHOWN_DIFFERENCES]]
    more = len(node_ids) - len(shown)
    if more:
        shown.append(f"    ... and {more} more")
    return f"  {side} ({len(node_ids)}):" + ("\n" + "\n".join(shown) if shown else " none")
