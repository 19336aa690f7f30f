"""The session: a sans-I/O state machine that runs the planned units on the agents.

Events from the agents go in (`handle`), `(agent_id, command)` values come out (`take_commands`);
it never touches a backend or a thread and reads an injected clock, so tests drive it with plain
values. The loop around it (loop.py) waits for events, feeds them in, sends the commands out.

The session is the one owner of a run's mutable state:

- attempts and retries: crashes (within --max-crashes, counted across agents), reruns,
  timeouts; an agent only reports what happened (the ledger, orchestrator/run/attempts.py);
- outstanding work: which units each agent holds and which of their tests have not ended
  (the scheduler owns only the queue it plans; the agent only its pending list);
- each agent's state, as the explicit table of orchestrator/run/agent_states.py allows it to
  change, and its record behind the agents table and the timeline (agent_record.py).

Every final attempt goes to the `ReportSink` as it happens (the plugin replays it through
pytest's hooks); each event goes to its `on_<event>` handler, and an event without one, or one
its agent's state does not accept, is an InternalError. At the end the results are checked
against independent evidence (the ending events actually received, orchestrator/run/
invariant.py), so a bookkeeping bug is an InternalError (exit 3), never a silently wrong report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from orchestrator.model import Attempt, Outcome, RunReport, StopRequest, TestUnit
from orchestrator.planning.durations.learning import LiveEstimate
from orchestrator.planning.scheduling.protocol import Scheduler
from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import InternalError, VersionMismatch
from orchestrator.protocol.versions import version_differences
from orchestrator.report.sink import ReportSink
from orchestrator.report.spool import ResultSpool
from orchestrator.report.status import RunStatus
from orchestrator.run import collection_notes as notes
from orchestrator.run.agent_record import AgentRecord
from orchestrator.run.agent_states import AgentState, allowed_states
from orchestrator.run.attempts import AttemptLedger
from orchestrator.run.final_report import final_report
from orchestrator.run.host_load import HostLoad
from orchestrator.run.run_status import Forecast, late_services, run_status
from orchestrator.run.tally import Tally

__all__ = ["Session"]


class Session:
    """Runs the planned units on the agents, as the scheduler decides: events in, commands out."""

    def __init__(
        self,
        units: Sequence[TestUnit],
        scheduler: Scheduler,
        configs: Sequence[p.AgentConfig],
        sink: ReportSink,
        *,
        reruns: int = 0,
        max_crashes: int = 2,
        clock: Callable[[], float] = time.monotonic,
        versions: Mapping[str, str] | None = None,
        spool: ResultSpool | None = None,
        keep_passed_reports: bool = True,
        collection_hint: str = "",
        forecast: Forecast | None = None,
    ) -> None:
        self._scheduler = scheduler
        # The coordinator's python, pytest and orchestrate: every agent must run the same.
        self._versions = dict(versions or {})
        self.fatal: VersionMismatch | None = None
        # What a collection difference most likely comes from, in the run's own terms.
        self._collection_hint = collection_hint or notes.DEFAULT_COLLECTION_HINT
        self.configs = tuple(configs)
        self._sink = sink
        # The run's clock: read, never waited on (the loop waits).
        self.clock = clock
        self._started = 0.0
        predicted = {s.agent_id: s.seconds for s in scheduler.plan.shards}
        # Agents started before the plan was made that it has no shard for: they finish at once.
        self._unplanned = {c.agent_id for c in configs} - set(predicted)
        self._agents = {c.agent_id: AgentRecord(c.agent_id, predicted.get(c.agent_id, 0.0)) for c in configs}
        self._predicted_by_unit = {e.unit.unit_id: e.seconds for s in scheduler.plan.shards for e in s.units}
        ledger = AttemptLedger(
            units,
            sink,
            reruns=reruns,
            max_crashes=max_crashes,
            spool=spool,
            keep_passed_reports=keep_passed_reports,
        )
        # The remaining work, re-estimated as tests end (a first run's plan guesses every test).
        live = LiveEstimate([e for shard in scheduler.plan.shards for e in shard.units])
        self._tally = Tally(ledger, scheduler, self._agents, live)
        # Agents that run tests, per host: the load their tests' durations are corrected for.
        self._host_load = HostLoad()
        self._stop: StopRequest | None = None
        self._messages: list[str] = []
        # The commands decided and not yet taken by the loop, in order.
        self._commands: list[tuple[int, p.Command]] = []
        # The agents whose late services were named (by when they entered that phase).
        self._late_told: set[tuple[int, float]] = set()
        # The agents' predicted start-up and teardown, in the ETA; when they were told to stop.
        self._forecast = forecast or Forecast()
        self._stopping_at: float | None = None

    # -- the loop's side -----------------------------------------------------------------

    def start(self, at: float) -> None:
        """The run (the agents' start) began at `at`, by the clock: what run seconds count from."""
        self._started = at

    def take_commands(self) -> list[tuple[int, p.Command]]:
        """The commands decided since the last call, `(agent_id, command)` in order, for the loop
        to send."""
        commands, self._commands = self._commands, []
        return commands

    def done(self) -> bool:
        """Every test has its final outcome, or the run stops, or nobody is left to run the rest."""
        if self.fatal is not None or self._stop is not None or self._tally.ledger.all_final():
            return True
        return not any(a.state in (AgentState.STARTING, AgentState.READY) for a in self._agents.values())

    def dispatch(self) -> None:
        """Give up what no agent can run; assign the scheduler's decisions; let agents with
        nothing more to come run what they hold (Flush)."""
        self._give_up_unrunnable()
        by_agent: dict[int, list[TestUnit]] = {}
        for assignment in self._scheduler.schedule():
            by_agent.setdefault(assignment.agent_id, []).append(assignment.unit)
        for agent_id, units in by_agent.items():
            record = self._agents[agent_id]
            for unit in units:
                record.hold(unit)
            record.flushed = False
            self._send(agent_id, p.Assign(tuple(p.UnitWork(u.unit_id, u.node_ids) for u in units)))
        for record in self._agents.values():
            if record.state.takes_work and not record.flushed and self._scheduler.wants_work(record.agent_id):
                record.flushed = True
                self._send(record.agent_id, p.Flush())

    def check_stop_requested(self) -> None:
        """Stop the run if the sink says so (pytest's -x/--maxfail counted the failures)."""
        reason = self._sink.stop_requested()
        if reason and self._stop is None:
            self._stop = StopRequest("maxfail", reason)
            self._messages.append(f"{reason} (-x/--maxfail): stopping every agent")

    def interrupt(self) -> None:
        """Ctrl-C: the run stops (the agents are stopped next, `stop_agents`)."""
        if self._stop is None:
            self._stop = StopRequest("interrupt", "KeyboardInterrupt")
        self._messages.append("interrupted (Ctrl-C): stopping agents, taking stacks down")

    def stop_agents(self) -> None:
        """Finish every agent not stopped yet, or abort it if the run stopped early or is fatal."""
        command = p.Abort() if self._stop is not None or self.fatal is not None else p.Finish()
        self._stopping_at = self._now()
        for record in self._agents.values():
            if record.state is not AgentState.STOPPED:
                self._send(record.agent_id, command)

    def interrupt_again(self) -> None:
        """A second Ctrl-C while agents stop: abort them (their stacks still come down)."""
        self._messages.append("interrupted again: aborting agents, still taking stacks down")
        if self._stop is None or self._stop.kind != "interrupt":
            self._stop = StopRequest("interrupt", "KeyboardInterrupt")
        for record in self._agents.values():
            if record.state is not AgentState.STOPPED:
                self._send(record.agent_id, p.Abort())

    def agent_state(self, agent_id: int) -> AgentState:
        """Where the agent is in its life, as its events said."""
        return self._agents[agent_id].state

    def agents_run_nothing_more(self) -> bool:
        """Every agent is tearing down or stopped: the report need not wait for their stacks."""
        return all(a.state.runs_nothing_more for a in self._agents.values())

    def gave_up_waiting(self, seconds: float) -> None:
        """The loop waited `seconds` for the agents to stop: name those that did not."""
        for record in self._agents.values():
            if not record.state.runs_nothing_more:
                self._messages.append(f"agent {record.agent_id} did not stop within {seconds:.0f} s")

    def status(self) -> RunStatus:
        """The run as it stands: tests done, failures so far, each agent's phase, the ETA."""
        return run_status(
            self._agents.values(),
            self._tally.ledger.is_open,
            self._tally.live,
            self._predicted_by_unit,
            now=self._now(),
            failed=self._tally.failed,
            errors=self._tally.errors,
            forecast=self._forecast,
            stopping_at=self._stopping_at,
            unplanned=self._unplanned,
            queued_units=self._scheduler.statistics().queued_units,
        )

    def late_service_notices(self) -> list[str]:
        """Notices of services not ready after half their timeout, each said once."""
        return late_services(self._agents.values(), self._now(), self._late_told)

    def report(self) -> RunReport:
        """The run's report: what is unfinished ends as not run; the results are checked."""
        return final_report(
            self._tally.ledger,
            self._tally.endings,
            [self._agents[c.agent_id] for c in self.configs],
            self._scheduler.plan,
            stop=self._stop,
            messages=self._messages,
            reestimates=self._tally.reestimates,
            wall_seconds=self._now(),
        )

    def _send(self, agent_id: int, command: p.Command) -> None:
        self._commands.append((agent_id, command))

    def _give_up_unrunnable(self) -> None:
        """End as not run the tests of units no live agent's node can run (they need resources).

        Only once no agent is still starting: one that is may turn out to be on such a node.
        An agent lost later can make a unit unrunnable again; it is given up the same way.
        """
        agents = self._agents.values()
        if self._stop is not None or not any(a.state.takes_work for a in agents):
            return
        if any(a.state is AgentState.STARTING for a in agents):
            return
        for unit in self._scheduler.take_unrunnable():
            reason = f"needs {unit.needs_text()}, which no live agent's node has"
            left = [n for n in unit.node_ids if self._tally.ledger.is_open(n)]
            if not left:
                continue
            self._messages.append(f"{len(left)} test(s) of {unit.unit_id} not run: {reason}")
            for node_id in left:
                attempt = Attempt(-1, Outcome.NOT_RUN, 0.0, (), reason)
                self._tally.ended_without_running(node_id, attempt, self._now())

    def _now(self) -> float:
        return self.clock() - self._started

    # -- events --------------------------------------------------------------------------

    def handle(self, event: p.Event) -> None:
        """Take one event from an agent: its handler runs if the agent's state accepts it."""
        handler = getattr(self, f"on_{event.name}", None)
        if handler is None:
            raise InternalError(f"no handler for event {event.name!r}")
        record = self._agents[event.agent_id]
        was = record.state
        allowed = allowed_states(event.agent_id, was, event.name)
        if allowed is None:
            return  # dropped in this state (a failed agent's stale word on its tests)
        handler(event)
        if record.state not in allowed:
            raise InternalError(
                f"agent {event.agent_id}: {event.name!r} led from {was.value} to {record.state.value}"
            )

    def on_agent_ready(self, event: p.AgentReady) -> None:
        self._agents[event.agent_id].mark_ready(event, self._now())
        differ = version_differences(self._versions, event.versions)
        if differ and self.fatal is None:
            where = (
                f"{event.node.hostname} ({event.node.address})" if event.node.address else event.node.hostname
            )
            self.fatal = VersionMismatch(f"agent {event.agent_id} on node {where} runs {', '.join(differ)}")
        fallback = event.collection_fallback
        if fallback and not any(m.startswith(notes.FULL_COLLECTION) for m in self._messages):
            self._messages.append(notes.full_collection_note(fallback))
        self._sink.agent_state(event.agent_id, "ready")
        if self._stop is not None:
            self._send(event.agent_id, p.Abort())
            return
        if event.agent_id in self._unplanned:
            self._send(event.agent_id, p.Finish())
            return
        self._host_load.set_running(self._agents[event.agent_id], True)
        self._scheduler.add_agent(event.agent_id, event.node.resources)

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
        left = self._agents[event.agent_id].running_left(self._predicted_by_unit, self._now())
        self._scheduler.request_work(event.agent_id, left)

    def on_test_ended(self, event: p.TestEnded) -> None:
        record = self._agents[event.agent_id]
        record.mark_ended(event.node_id)
        load = self._host_load.load(record)
        self._tally.test_ended(event, record, self._now(), load, retry_allowed=self._stop is None)

    def on_warning_recorded(self, event: p.WarningRecorded) -> None:
        self._sink.warning(event.agent_id, event.warning)

    def on_test_crashed(self, event: p.TestCrashed) -> None:
        self._agents[event.agent_id].mark_ended(event.node_id)
        message = f"{event.message}\n{event.output}".strip()
        self._tally.crashed(event.agent_id, event.node_id, message, self._now(), self._stop is None)

    def on_test_timed_out(self, event: p.TestTimedOut) -> None:
        self._agents[event.agent_id].mark_ended(event.node_id)
        self._tally.test_timed_out(event, self._now(), retry_allowed=self._stop is None)

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
        agent_only = [n for n in event.similar if not self._tally.ledger.is_collected(n)]
        hint = self._collection_hint
        self._messages.append(notes.not_collected_summary(event.agent_id, event.node_ids, agent_only, hint))
        message = notes.not_collected_reason(event.agent_id, hint)
        for node_id in event.node_ids:
            self._agents[event.agent_id].mark_ended(node_id)
            attempt = Attempt(event.agent_id, Outcome.ERROR, 0.0, (), message)
            self._tally.ended_without_running(node_id, attempt, self._now())

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
        outcomes = [self._tally.ledger.outcome(n) for n in unit.node_ids]
        record.add_span(unit, outcomes, self._now(), self._predicted_by_unit.get(event.unit_id, 0.0))

    def on_agent_failed(self, event: p.AgentFailed) -> None:
        record = self._agents[event.agent_id]
        text = f"agent {event.agent_id}: {event.message}"
        if event.logs and event.logs not in event.message:
            text += "\n" + event.logs
        self._messages.append(text)
        if not record.mark_failed(event.message):
            return
        self._sink.agent_state(event.agent_id, "failed")
        running = record.running_test(self._tally.ledger.is_open) if record.ready_at is not None else None
        if running is not None:
            # The agent died in the middle of this test (its worker runs what it holds in order,
            # so it is the first of them with no end yet): it may be the cause.
            self._tally.crashed(event.agent_id, running, event.message, self._now(), self._stop is None)
        self._release(record)

    def on_tearing_down(self, event: p.TearingDown) -> None:
        """The agent runs nothing more; its stack comes down (or is kept warm) meanwhile."""
        record = self._agents[event.agent_id]
        record.mark_tearing_down(self._now())
        self._release(record)

    def on_agent_stopped(self, event: p.AgentStopped) -> None:
        record = self._agents[event.agent_id]
        record.mark_stopped(event, self._now())
        self._release(record)

    # -- outcomes ------------------------------------------------------------------------

    def _release(self, record: AgentRecord) -> None:
        """The agent takes no more work: requeue the tests of its units that have not ended."""
        self._host_load.set_running(record, False)
        self._scheduler.remove_agent(record.agent_id)
        units = record.drop_all()
        if self._stop is None:
            unended = self._tally.ledger.unended(units)
            if unended:
                self._scheduler.requeue(unended)
