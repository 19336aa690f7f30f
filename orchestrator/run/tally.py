"""The session's tally of attempts: an agent's word on a test turned into an attempt, counted.

On top of the ledger (attempts.py: final or retried), the tally keeps what follows from each
attempt: a retry goes back to the scheduler, a final attempt is counted in its agent's record,
learnt by the live estimate (its makespan re-estimated at a quarter and half of the tests) and
counted as a failure or error so far; and every event that ended an attempt is counted apart,
as the independent evidence the end-of-run check compares the results with (invariant.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from orchestrator.model import Attempt, Outcome, TestUnit
from orchestrator.planning.durations.learning import LiveEstimate
from orchestrator.planning.scheduling.protocol import Scheduler
from orchestrator.protocol import messages as p
from orchestrator.protocol.reports import unpack_test_reports
from orchestrator.report.outcomes import outcome_of, report_duration
from orchestrator.run.agent_record import AgentRecord
from orchestrator.run.attempts import AttemptLedger
from orchestrator.run.host_load import seconds_at_load_one

__all__ = ["Tally"]

_REESTIMATES = (("reestimated_makespan_at_quarter", 0.25), ("reestimated_makespan_at_half", 0.5))


class Tally:
    """The attempts of a run as they come, and what each one changes beyond the ledger."""

    def __init__(
        self,
        ledger: AttemptLedger,
        scheduler: Scheduler,
        agents: Mapping[int, AgentRecord],
        live: LiveEstimate,
    ) -> None:
        self.ledger = ledger
        self._scheduler = scheduler
        self._agents = agents
        self.live = live
        # Every event that ended an attempt, by node id.
        self.endings: Counter[str] = Counter()
        self.failed = 0
        self.errors = 0
        self.reestimates: dict[str, float] = {}

    def test_ended(
        self, event: p.TestEnded, record: AgentRecord, now: float, load: float, retry_allowed: bool
    ) -> None:
        """A test ran to its teardown on `record`'s agent, `load` agents sharing each core."""
        if not self.ledger.is_open(event.node_id):
            return
        reports = unpack_test_reports(event.node_id, event.reports)
        started = max(0.0, now - event.seconds)
        record.last_end_at = now
        unit_id = record.unit_holding(event.node_id)
        if unit_id is not None:
            record.unit_started.setdefault(unit_id, started)
        self.endings[event.node_id] += 1
        duration = report_duration(reports)
        occupied = max(duration, event.seconds)  # Attempt.occupied
        attempt = Attempt(
            event.agent_id,
            outcome_of(reports),
            duration,
            tuple(reports),
            started=started,
            finished=now,
            seconds_at_load_one=seconds_at_load_one(
                occupied, event.cpu_seconds, load, event.wait_seconds, event.service_cpu_seconds
            ),
            cpu_seconds=event.cpu_seconds,
        )
        self._record(event.node_id, attempt, now, rerunnable=True, retry_allowed=retry_allowed)

    def test_timed_out(self, event: p.TestTimedOut, now: float, retry_allowed: bool) -> None:
        """A test ran past --timeout: its worker was killed (final: a timeout is not rerun)."""
        self.endings[event.node_id] += 1
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
            started=max(0.0, now - event.seconds),
            finished=now,
        )
        self._record(event.node_id, attempt, now, rerunnable=False, retry_allowed=retry_allowed)

    def crashed(self, agent_id: int, node_id: str, message: str, now: float, retry_allowed: bool) -> None:
        """A test took its worker or agent down: retried (anywhere) until --max-crashes in all."""
        self.endings[node_id] += 1
        if not self.ledger.is_open(node_id):
            return
        attempt = Attempt(
            agent_id,
            Outcome.CRASHED,
            0.0,
            (),
            f"agent {agent_id}: {message}".strip(),
            started=self._agents[agent_id].last_end_at,
            finished=now,
        )
        retry = self.ledger.crashed(node_id, attempt, retry_allowed=retry_allowed)
        self._account(node_id, attempt, retry, now)

    def ended_without_running(self, node_id: str, attempt: Attempt, now: float) -> None:
        """A test ends with `attempt` and did not run (not collected, or nobody can run it)."""
        if not self.ledger.is_open(node_id):
            return
        self.endings[node_id] += 1
        self._record(node_id, attempt, now, rerunnable=False, retry_allowed=False)

    def _record(
        self, node_id: str, attempt: Attempt, now: float, rerunnable: bool, retry_allowed: bool
    ) -> None:
        """Add an attempt: final, unless it failed and --reruns allows another try."""
        retry = self.ledger.record(node_id, attempt, rerunnable=rerunnable, retry_allowed=retry_allowed)
        self._account(node_id, attempt, retry, now)

    def _account(self, node_id: str, attempt: Attempt, retry: TestUnit | None, now: float) -> None:
        """Count an attempt in its agent's record; requeue the unit carrying its retry, if any."""
        if retry is not None:
            self._agents[attempt.agent_id].busy += attempt.occupied
            self._scheduler.requeue([retry])
            return
        self._learn(node_id, attempt, now)
        if attempt.outcome is Outcome.ERROR:
            self.errors += 1
        elif attempt.outcome.is_failure:
            self.failed += 1
        if (record := self._agents.get(attempt.agent_id)) is not None:
            record.count_final(attempt.occupied, now)

    def _learn(self, node_id: str, attempt: Attempt, now: float) -> None:
        """Feed a final attempt to the live estimate; at a quarter and at half of the tests, note
        the makespan it predicts now: elapsed + remaining work over the live agents."""
        live = self.live
        live.ended(node_id, attempt.occupied)
        for key, share in _REESTIMATES:
            if key not in self.reestimates and live.tests_ended >= share * live.tests:
                agents = max(1, sum(1 for a in self._agents.values() if a.state.takes_work))
                first_ready = min(
                    (a.ready_at for a in self._agents.values() if a.ready_at is not None), default=0.0
                )
                # At the pace so far, as the ETA: a first run's tests are known by now, the
                # agents' own cost around each test (most of a fast suite's time) only so.
                spent = sum(a.spent_seconds for a in self._agents.values())
                self.reestimates[key] = (
                    now - first_ready + live.pace(spent) * live.remaining_seconds() / agents
                )
