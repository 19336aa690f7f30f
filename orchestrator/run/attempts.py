"""The record of every test's attempts and final outcome: crash retries, reruns, the results.

Owned by orchestrator/run/session.py (one ledger per run, so the session stays the one owner of a
run's state): the session's event handlers hand it each attempt that ended, and it decides
whether that attempt is final or is tried again. A retry comes back as the unit to requeue (the
session hands it to the scheduler); a final result goes to the `ReportSink` and the spool as it
happens. The session keeps the evidence (the ending events it received) and the agent records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.model import Attempt, Outcome, TestResult, TestUnit
from orchestrator.report.sink import ReportSink
from orchestrator.report.spool import ResultSpool, lighten

__all__ = ["AttemptLedger"]


class AttemptLedger:
    """Every collected test's attempts, its pending retry and its final outcome."""

    def __init__(
        self,
        units: Sequence[TestUnit],
        sink: ReportSink,
        *,
        reruns: int,
        max_crashes: int,
        spool: ResultSpool | None,
        keep_passed_reports: bool,
    ) -> None:
        self._sink = sink
        # Where each final result goes once replayed, with all its reports (report/spool.py);
        # then the ledger keeps it light, unless asked to keep passed tests' reports.
        self._spool = spool
        self._keep_passed_reports = keep_passed_reports
        self._reruns = reruns
        self._max_crashes = max_crashes
        self.node_ids = tuple(n for unit in units for n in unit.node_ids)
        # node id -> the unit it was collected into: a retry keeps its needs and groups.
        self._unit_of_node = {n: unit for unit in units for n in unit.node_ids}
        self._attempts: dict[str, list[Attempt]] = {n: [] for n in self.node_ids}
        self._final: dict[str, Outcome] = {}
        self._retry_serial = 0
        # node id -> the unit that carries its pending retry (a crash retry or a rerun): only that
        # unit may bring it back, whatever else is requeued with it in its name.
        self._retry_unit_of_node: dict[str, str] = {}

    # -- what is known -------------------------------------------------------------------

    def is_collected(self, node_id: str) -> bool:
        """Whether the coordinator collected `node_id` (an agent may report others)."""
        return node_id in self._attempts

    def is_final(self, node_id: str) -> bool:
        return node_id in self._final

    def is_open(self, node_id: str) -> bool:
        """Whether `node_id` was collected and has no final outcome yet."""
        return node_id in self._attempts and node_id not in self._final

    def all_final(self) -> bool:
        return len(self._final) == len(self.node_ids)

    def outcome(self, node_id: str) -> Outcome:
        """The final outcome of `node_id`, NOT_RUN until it has one."""
        return self._final.get(node_id, Outcome.NOT_RUN)

    # -- attempts ------------------------------------------------------------------------

    def crashed(self, node_id: str, attempt: Attempt, *, retry_allowed: bool) -> TestUnit | None:
        """Add a crash attempt; it is retried (anywhere) until --max-crashes crashes in all.

        Returns the unit that carries the retry, for the scheduler, or None if the crash is final.
        """
        self._retry_unit_of_node.pop(node_id, None)
        crashes = sum(1 for a in self._attempts[node_id] if a.outcome is Outcome.CRASHED) + 1
        if crashes < self._max_crashes and retry_allowed:
            return self._retry(node_id, attempt, "crash retry")
        return self.record(node_id, attempt, rerunnable=False, retry_allowed=retry_allowed)

    def record(
        self, node_id: str, attempt: Attempt, *, rerunnable: bool, retry_allowed: bool
    ) -> TestUnit | None:
        """Add an attempt: final, unless it failed and --reruns allows another try.

        Returns the unit that carries the rerun, for the scheduler, or None if the attempt is final.
        """
        self._retry_unit_of_node.pop(node_id, None)
        if rerunnable and attempt.outcome in (Outcome.FAILED, Outcome.ERROR) and retry_allowed:
            failed_tries = sum(1 for a in self._attempts[node_id] if a.outcome.is_failure) + 1
            if failed_tries <= self._reruns:
                return self._retry(node_id, attempt, "rerun")
        self._attempts[node_id].append(attempt)
        self._final[node_id] = attempt.outcome
        self._finished(TestResult(node_id, attempt.outcome, tuple(self._attempts[node_id])), True)
        return None

    def _retry(self, node_id: str, attempt: Attempt, why: str) -> TestUnit:
        self._attempts[node_id].append(attempt)
        self._sink.attempt_retried(node_id, attempt)
        self._retry_serial += 1
        unit = self._unit_of_node.get(node_id) or TestUnit(node_id, (node_id,))
        unit_id = f"{unit.unit_id} ({why} {self._retry_serial})"
        self._retry_unit_of_node[node_id] = unit_id
        return unit.retry(unit_id, node_id)

    def _finished(self, result: TestResult, replay: bool) -> None:
        """Hand a final result to the sink and the spool; keep what is still needed of it."""
        self._sink.test_finished(result, replay)
        if self._spool is not None:
            self._spool.add(result)
        if not self._keep_passed_reports:
            self._attempts[result.node_id] = list(lighten(result).attempts)

    def unended(self, units: Iterable[TestUnit]) -> list[TestUnit]:
        """What is left of `units` to run again: their tests with no final outcome.

        A test whose pending retry another unit carries is left to that unit.
        """
        trimmed = []
        for unit in units:
            left = tuple(
                n
                for n in unit.node_ids
                if n not in self._final and self._retry_unit_of_node.get(n, unit.unit_id) == unit.unit_id
            )
            if left:
                trimmed.append(unit.subset(left))
        return trimmed

    # -- the end -------------------------------------------------------------------------

    def unfinished(self) -> list[str]:
        """The collected tests with no final outcome, in collection order."""
        return [n for n in self.node_ids if n not in self._final]

    def end_not_run(self, node_id: str, reason: str, *, replay: bool) -> None:
        """Give a test the run ended without a final NOT_RUN attempt, saying why."""
        self._attempts[node_id].append(Attempt(-1, Outcome.NOT_RUN, 0.0, (), reason))
        self._final[node_id] = Outcome.NOT_RUN
        self._finished(TestResult(node_id, Outcome.NOT_RUN, tuple(self._attempts[node_id])), replay)

    def results(self) -> list[TestResult]:
        """Every collected test's final result, in collection order (each must have one by now)."""
        return [TestResult(n, self._final[n], tuple(self._attempts[n])) for n in self.node_ids]
