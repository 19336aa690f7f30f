"""Replay the agents' results through pytest's own hooks, as pytest-xdist's controller does.

`PytestReplay` is the session's ReportSink inside the coordinator's pytest session (created by
orchestrator/front/plugin.py). Each final result becomes `pytest_runtest_logstart`, one
`pytest_runtest_logreport` per pytest report (rebuilt with `pytest_report_from_serializable`)
and `pytest_runtest_logfinish`, so pytest's terminal reporter, junitxml, cacheprovider
(`--lf`), `--durations`, `-r` and every third-party reporter see what they would have seen
under plain pytest. Warnings recorded in workers are replayed through the historic
`pytest_warning_recorded`.

What pytest never saw is told with reports we build ourselves: a crashed or timed-out test
is a failed call ("worker crashed while running this test", "timed out after N s", then the
worker's last output); a test no agent was left to run is a setup error. An earlier attempt
that failed and is run again under `--reruns` is replayed with outcome "rerun"
(pytest-rerunfailures' convention, counted as "N rerun" by the terminal); a crash that is
retried is not replayed (orchestrate's own section tells it, with the worker's last lines).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from _pytest.reports import TestReport

from orchestrator.model import Attempt, Outcome, TestResult
from orchestrator.report.outcomes import failure_text, location_from_node_id, rebuild_report

__all__ = ["PytestReplay", "RERUN", "drop_scanned_only", "trimmed_stats"]

RERUN = "rerun"
# Outcomes whose pytest reports, if any, do not tell the test's end: we say it ourselves.
_SYNTHESISED = frozenset({Outcome.CRASHED, Outcome.TIMEOUT, Outcome.NOT_RUN})


class PytestReplay:
    """The ReportSink that hands every result to pytest's hooks in the coordinator's session."""

    def __init__(self, session: pytest.Session) -> None:
        self._session = session
        self._hook = session.config.hook
        self._stats = trimmed_stats(session.config)

    def test_started(self, agent_id: int, node_id: str) -> None:
        """Nothing yet: logstart goes out with the reports, so verbose lines are not interleaved."""

    def test_finished(self, result: TestResult, replay: bool) -> None:
        if not replay:
            return
        reports = list(reports_of(result))
        self._replay(result.node_id, reports)
        if self._stats is not None and result.outcome is Outcome.PASSED:
            drop_scanned_only(self._stats, reports)

    def attempt_retried(self, node_id: str, attempt: Attempt) -> None:
        if attempt.outcome is not Outcome.FAILED and attempt.outcome is not Outcome.ERROR:
            # A crash (or a lost agent) retried is orchestrate's business, not the test's: it is
            # told in orchestrate's own section with the worker's last lines, and pytest's
            # counts stay those of plain pytest. Only --reruns replays the try as a rerun.
            return
        failing = next((r for r in _attempt_reports(node_id, attempt) if r.failed), None)
        if failing is None:
            return
        failing.outcome = RERUN  # type: ignore[assignment]  # pytest-rerunfailures' outcome
        self._replay(node_id, [failing])

    def warning(self, agent_id: int, warning: dict) -> None:
        if warning.get("when", "runtest") != "runtest":
            # Collection and configuration warnings: the coordinator's own collection had them.
            return
        message = rebuild_warning(warning)
        location = warning.get("location")
        self._hook.pytest_warning_recorded.call_historic(
            kwargs={
                "warning_message": message,
                "when": "runtest",
                "nodeid": warning.get("nodeid", ""),
                "location": tuple(location) if location else None,
            }
        )

    def agent_state(self, agent_id: int, text: str) -> None:
        pass

    def stop_requested(self) -> str:
        reason = self._session.shouldfail or self._session.shouldstop
        return str(reason) if reason else ""

    def _replay(self, node_id: str, reports: list[TestReport]) -> None:
        location = reports[0].location if reports else location_from_node_id(node_id)
        self._hook.pytest_runtest_logstart(nodeid=node_id, location=location)
        for report in reports:
            self._hook.pytest_runtest_logreport(report=report)
        self._hook.pytest_runtest_logfinish(nodeid=node_id, location=location)


def trimmed_stats(config: pytest.Config) -> dict[str, list[Any]] | None:
    """The terminal reporter's `stats` when nothing reads the passed setup and teardown
    reports of a passed test; else None.

    pytest's TerminalReporter keeps every report it is given in `stats`, by category; passed
    setup and teardown reports go to "" and are only read back by `_get_teardown_reports`, once
    per failure, error and xfail (and per passed test with `-rP`) to show a teardown's output,
    and by `--durations`. Kept for every test, they are two thirds of what the coordinator holds
    and, at 100,000 tests with 1% failing, a scan of 200,000 reports per failure at the end of
    the session. So without `--durations` and `-rP`/`-rA`, those of a passed test are dropped
    once replayed: every hook saw them, the counts and the summary are pytest's.
    """
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if not isinstance(stats, dict) or getattr(config.option, "durations", None) is not None:
        return None
    if "P" in str(getattr(reporter, "reportchars", "P")):
        return None
    return stats


def drop_scanned_only(stats: dict[str, list[Any]], reports: list[TestReport]) -> None:
    """Drop a passed test's passed setup and teardown reports, the last ones in `stats[""]`
    (just appended by the terminal reporter): nothing will read them (see trimmed_stats)."""
    blank = stats.get("")
    while blank and any(blank[-1] is report for report in reports):
        blank.pop()


def reports_of(result: TestResult) -> Iterator[TestReport]:
    """pytest's reports of a result's final attempt, or ones built to tell what pytest never saw."""
    final = result.final
    if final is None:
        return
    if final.reports and result.outcome not in _SYNTHESISED:
        for data in final.reports:
            yield rebuild_report(data)
        return
    yield from _synthesised(result.node_id, result.outcome, final)


def _attempt_reports(node_id: str, attempt: Attempt) -> list[TestReport]:
    if attempt.reports and attempt.outcome not in _SYNTHESISED:
        return [rebuild_report(data) for data in attempt.reports]
    return list(_synthesised(node_id, attempt.outcome, attempt))


def _synthesised(node_id: str, outcome: Outcome, attempt: Attempt) -> Iterator[TestReport]:
    """setup/call/teardown reports telling `outcome` for a test pytest did not finish."""
    real = [rebuild_report(data) for data in attempt.reports]
    last = real[-1] if real else None
    common: dict[str, Any] = {
        "nodeid": node_id,
        "location": real[0].location if real else location_from_node_id(node_id),
        "keywords": dict(last.keywords) if last else {},
        # Output captured before the worker stopped.
        "sections": list(last.sections) if last else [],
        "user_properties": list(last.user_properties) if last else [],
    }
    text = failure_text(outcome, attempt.message, attempt.duration)
    if outcome is Outcome.NOT_RUN or outcome is Outcome.ERROR:
        yield TestReport(when="setup", outcome="failed", longrepr=text, **common)
    else:
        yield TestReport(when="setup", outcome="passed", longrepr=None, **common)
        yield TestReport(when="call", outcome="failed", longrepr=text, duration=attempt.duration, **common)
    yield TestReport(when="teardown", outcome="passed", longrepr=None, **common)


def rebuild_warning(data: Mapping[str, Any]) -> warnings.WarningMessage:
    """A WarningMessage from a worker's serialised warning (its category found by name if possible)."""
    category: type[Warning] = UserWarning
    module = data.get("category_module")
    name = data.get("category_class_name") or data.get("category_name")
    if module and name:
        try:
            found = importlib.import_module(module)
            for part in str(name).split("."):
                found = getattr(found, part)
            if isinstance(found, type) and issubclass(found, Warning):
                category = found
        except (ImportError, AttributeError):
            pass
    return warnings.WarningMessage(
        message=category(str(data.get("message_str", data.get("message", "")))),
        category=category,
        filename=str(data.get("filename", "")),
        lineno=int(data.get("lineno") or 0),
        line=data.get("line"),
    )
