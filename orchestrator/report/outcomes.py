"""What pytest's serialised reports of one test say: its one Outcome, its duration, its text.

`outcome_of` is called by the session when a test's teardown report arrives; it reads the dicts
a worker's `pytest_report_to_serializable` returned, so it needs no pytest config. The report
writers (junit, terminal) use `rebuild_report` to get pytest's TestReport objects back, and
`failure_text` to word the tests pytest never finished (crashed, timed out).

pytest's terminal counts per report, so one test can count twice ("1 passed, 1 error" when
a passing test's teardown fails). A test here has exactly one outcome, the first thing that
went wrong, in the order pytest runs the phases:

    setup failed                        -> error
    setup skipped                       -> skipped (xfailed when it carries "wasxfail")
    call failed                         -> failed  (a strict XPASS arrives as a failed call)
    call skipped                        -> skipped (xfailed when it carries "wasxfail")
    call passed                         -> passed  (xpassed when it carries "wasxfail")
    teardown failed, call did not fail  -> error   (where pytest would say "passed" AND "error")

A failed call followed by a failed teardown stays "failed": the test's own failure is what a
reader needs first, and the teardown's traceback is still in the reports.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from _pytest.reports import TestReport, pytest_report_from_serializable

from orchestrator.model import Outcome

__all__ = ["failure_text", "location_from_node_id", "outcome_of", "rebuild_report", "report_duration"]

CRASH_MESSAGE = "worker crashed while running this test"


def _phase(reports: Sequence[Mapping[str, Any]], when: str) -> Mapping[str, Any] | None:
    # The last one wins: a worker that replays a phase (it should not) must not hide its end.
    found = None
    for report in reports:
        if report.get("when") == when:
            found = report
    return found


def _skip_kind(report: Mapping[str, Any]) -> Outcome:
    return Outcome.XFAILED if "wasxfail" in report else Outcome.SKIPPED


def _is_subtest(report: Mapping[str, Any]) -> bool:
    """A report of one subtest (pytest 9's `subtests` fixture, unittest's `subTest`)."""
    return report.get("_report_type") == "SubTestReport"


def outcome_of(reports: Sequence[Mapping[str, Any]]) -> Outcome:
    """Reduce a test's serialised reports to its one Outcome (see the module docstring).

    No reports at all is NOT_RUN. A passed setup with no call report means the worker stopped
    inside the test, which is CRASHED; a caller that knows better (a timeout) says so itself.
    A test with a failed subtest is FAILED, as its JUnit testcase and pytest's exit code say
    (pytest's short summary may still list a unittest test itself as PASSED beside SUBFAILED).
    """
    own = [r for r in reports if not _is_subtest(r)]
    outcome = _own_outcome(own)
    if outcome in (Outcome.PASSED, Outcome.XPASSED) and any(
        _is_subtest(r) and r.get("outcome") == "failed" for r in reports
    ):
        return Outcome.FAILED
    return outcome


def _own_outcome(reports: Sequence[Mapping[str, Any]]) -> Outcome:
    if not reports:
        return Outcome.NOT_RUN
    setup = _phase(reports, "setup")
    call = _phase(reports, "call")
    teardown = _phase(reports, "teardown")
    if setup is not None and setup.get("outcome") == "failed":
        return Outcome.ERROR
    if setup is not None and setup.get("outcome") == "skipped":
        return _skip_kind(setup)
    if call is None:
        return Outcome.CRASHED
    outcome = call.get("outcome")
    if outcome == "failed":
        return Outcome.FAILED
    if outcome == "skipped":
        return _skip_kind(call)
    if teardown is not None and teardown.get("outcome") == "failed":
        return Outcome.ERROR
    return Outcome.XPASSED if "wasxfail" in call else Outcome.PASSED


def report_duration(reports: Sequence[Mapping[str, Any]]) -> float:
    """Seconds a test took: its phases' durations added up, as junit_duration_report=total does."""
    # A subtest's time is part of its test's call phase already.
    return float(sum(report.get("duration", 0.0) or 0.0 for report in reports if not _is_subtest(report)))


def rebuild_report(data: Mapping[str, Any]) -> TestReport:
    """A TestReport from a worker's serialised report, whatever the wire did to its tuples.

    pytest's deserialiser writes into the dict it is given, top-level keys and the traceback
    inside `longrepr`, and JSON or msgpack turn tuples into lists (LogXML insists on a tuple for
    a skip's longrepr), so it gets a normalised copy: shallow but for `longrepr` (a deep copy of
    every report cost 0.4 ms each, the coordinator's largest cost per passing test).
    """
    payload = dict(data)
    if isinstance(payload.get("longrepr"), dict):
        payload["longrepr"] = copy.deepcopy(payload["longrepr"])
    if isinstance(payload.get("longrepr"), list):
        payload["longrepr"] = tuple(payload["longrepr"])
    if isinstance(payload.get("location"), list):
        payload["location"] = tuple(payload["location"])
    payload["sections"] = [tuple(section) for section in payload.get("sections", ())]
    payload["user_properties"] = [tuple(prop) for prop in payload.get("user_properties", ())]
    rebuilt = (
        _subtest_from_serializable(payload)
        if _is_subtest(payload)
        else pytest_report_from_serializable(payload)
    )
    if not isinstance(rebuilt, TestReport):
        raise ValueError(f"not a serialised TestReport: {str(data)[:200]}")
    return rebuilt


def _subtest_from_serializable(payload: dict[str, Any]) -> TestReport | None:
    try:
        from _pytest.subtests import pytest_report_from_serializable as subtest_from_json
    except ImportError:  # pytest before 9 has no built-in subtests
        return None
    return subtest_from_json(payload)


def location_from_node_id(node_id: str) -> tuple[str, int | None, str]:
    """pytest's (path, line, domain) location for a test we only know by its node id."""
    path, _, rest = node_id.partition("::")
    # Parameters may hold "::" themselves; only the names before the first "[" are nested.
    names, bracket, params = rest.partition("[")
    return path, None, ".".join(names.split("::")) + bracket + params


def failure_text(outcome: Outcome, message: str, duration: float) -> str:
    """What we say about a test pytest did not finish: a fixed first line, then `message`.

    Crashed: "worker crashed while running this test"; timeout: "timed out after N s", N being
    the attempt's duration. Used for JUnit's failure text and the terminal's summary alike.
    """
    if outcome is Outcome.CRASHED:
        head = CRASH_MESSAGE
    elif outcome is Outcome.TIMEOUT:
        head = f"timed out after {round(duration, 1):g} s"
    elif outcome is Outcome.NOT_RUN:
        head = f"not run: {message.splitlines()[0] if message else 'the run ended before this test started'}"
    else:
        head = message.splitlines()[0] if message else outcome.value
    if not message or message == head:
        return head
    return f"{head}\n{message}"
