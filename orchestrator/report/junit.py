"""The run's JUnit XML file, written by pytest's own LogXML from the agents' reports.

Called by the CLI once the merged RunReport exists (after a run, and by `orchestrate merge`).
Like xdist's controller, we rebuild each worker report with `pytest_report_from_serializable`
and replay it through `LogXML.pytest_runtest_logreport`, so every `classname`, `name`, message
and captured-output element is exactly what `pytest --junitxml` writes for the same test.

What pytest never sees is added here, in two ways:

- A test with no pytest reports to replay gets a synthesised TestReport. A crashed or timed
  out test becomes a `<failure>` (as xdist reports a crashed worker and pytest-timeout a timeout)
  whose message is "worker crashed while running this test" or "timed out after N s"; a test
  the run never reached becomes `<skipped>` with a message starting "not run:", so CI counts
  it and does not call it passed or failed.
- Reruns, after LogXML wrote the file, in Surefire's elements that Jenkins and GitLab read:
  a test that passed after failing gets one `<flakyFailure>` per failed earlier attempt, a test
  that failed on every attempt one `<rerunFailure>` per earlier attempt, each with `message`,
  `type` and a `<stackTrace>` child. Errors, crashes and timeouts use the same two elements.

Every test ends as exactly one `<testcase>`: pytest itself writes two when both the call and the
teardown fail; we fold the second into the first, and the suite's counts follow the testcases.
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from _pytest.junitxml import LogXML, bin_xml_escape
from _pytest.reports import TestReport

from orchestrator.model import Attempt, JunitSettings, Outcome, RunReport, TestResult
from orchestrator.report.outcomes import failure_text, location_from_node_id, rebuild_report

__all__ = ["write_junit"]

# Outcomes whose pytest reports, if any, do not tell the test's end: we say it ourselves.
_SYNTHESISED = frozenset({Outcome.CRASHED, Outcome.TIMEOUT, Outcome.NOT_RUN})

NOT_RUN_PREFIX = "not run:"

_EXCEPTION_NAME = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def write_junit(report: RunReport, path: str, settings: JunitSettings) -> None:
    """Write `report` to `path` as pytest's --junitxml would, plus rerun elements.

    Results go in node-id order. The file is written next to `path` and moved into place, so
    a reader never sees half a file.
    """
    target = os.path.abspath(os.path.expanduser(os.path.expandvars(path)))
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".junit-", suffix=".xml", dir=directory)
    os.close(handle)
    try:
        xml = LogXML(
            scratch,
            None,
            suite_name=settings.suite_name,
            logging=settings.logging,  # type: ignore[arg-type]  # validated by pytest's ini parsing
            report_duration=settings.duration_report,  # type: ignore[arg-type]
            family=settings.family,  # type: ignore[arg-type]
            log_passing_tests=settings.log_passing_tests,
        )
        xml.pytest_sessionstart()
        # Which testcase elements each result produced: LogXML appends one reporter per testcase,
        # in the order the file lists them.
        spans: list[tuple[TestResult, int, int]] = []
        for result in sorted(report.results, key=lambda r: r.node_id):
            first = len(xml.node_reporters_ordered)
            for rebuilt in _replayed_reports(result):
                xml.pytest_runtest_logreport(rebuilt)
            spans.append((result, first, len(xml.node_reporters_ordered)))
        xml.pytest_sessionfinish()
        _finish_tree(scratch, spans, report.wall_seconds)
        os.replace(scratch, target)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise


def _replayed_reports(result: TestResult) -> Iterator[TestReport]:
    final = result.final
    if final is not None and final.reports and result.outcome not in _SYNTHESISED:
        for data in final.reports:
            yield rebuild_report(data)
        return
    yield from _synthesised_reports(result, final)


def _synthesised_reports(result: TestResult, final: Attempt | None) -> Iterator[TestReport]:
    """setup/call/teardown reports telling `result.outcome` for a test pytest did not finish."""
    real = [rebuild_report(data) for data in final.reports] if final else []
    last = real[-1] if real else None
    common: dict[str, Any] = {
        "nodeid": result.node_id,
        "location": real[0].location if real else location_from_node_id(result.node_id),
        "keywords": dict(last.keywords) if last else {},
        # Output captured before the worker stopped, for junit_logging.
        "sections": list(last.sections) if last else [],
        "user_properties": list(last.user_properties) if last else [],
    }
    duration = final.duration if final else 0.0
    message = final.message if final else ""
    outcome = result.outcome
    if outcome in (Outcome.SKIPPED, Outcome.NOT_RUN, Outcome.XFAILED, Outcome.ERROR):
        yield TestReport(when="setup", **common, **_setup_fields(outcome, message, common["location"]))
    else:
        yield TestReport(when="call", duration=duration, **common, **_call_fields(outcome, message, duration))
    yield TestReport(when="teardown", outcome="passed", longrepr=None, **common)


def _setup_fields(outcome: Outcome, message: str, location: tuple[str, int | None, str]) -> dict[str, Any]:
    if outcome is Outcome.ERROR:
        return {"outcome": "failed", "longrepr": message or "error (no report from pytest)"}
    if outcome is Outcome.XFAILED:
        return {"outcome": "skipped", "longrepr": None, "wasxfail": message}
    path, line, _ = location
    # pytest's skip longrepr is (path, 1-based line, reason); LogXML prints "path:line: reason".
    lineno = line + 1 if line is not None else 0
    if outcome is Outcome.NOT_RUN:
        reason = f"{NOT_RUN_PREFIX} {message or 'the run ended before this test started'}"
    else:
        reason = message or "skipped"
    return {"outcome": "skipped", "longrepr": (path, lineno, reason)}


def _call_fields(outcome: Outcome, message: str, duration: float) -> dict[str, Any]:
    if outcome is Outcome.PASSED:
        return {"outcome": "passed", "longrepr": None}
    if outcome is Outcome.XPASSED:
        return {"outcome": "passed", "longrepr": None, "wasxfail": message}
    return {"outcome": "failed", "longrepr": failure_text(outcome, message, duration)}


def _finish_tree(path: str, spans: list[tuple[TestResult, int, int]], wall_seconds: float) -> None:
    """Fold split testcases, add rerun elements and the run's real time to LogXML's file."""
    tree = ET.parse(path)
    root = tree.getroot()
    suite = root.find("testsuite")
    if suite is None:  # pragma: no cover - LogXML always writes one
        raise ValueError(f"{path}: LogXML wrote no <testsuite>")
    testcases = suite.findall("testcase")
    for result, first, end in spans:
        if first == end:
            continue
        testcase = testcases[first]
        for extra in testcases[first + 1 : end]:
            # pytest opens a second testcase when call and teardown both fail; we keep one.
            testcase.extend(list(extra))
            testcase.set("time", f"{float(testcase.get('time', 0)) + float(extra.get('time', 0)):.3f}")
            suite.remove(extra)
        _add_rerun_elements(testcase, result)
    kept = suite.findall("testcase")
    suite.set("tests", str(len(kept)))
    for tag, attribute in (("error", "errors"), ("failure", "failures"), ("skipped", "skipped")):
        suite.set(attribute, str(sum(len(case.findall(tag)) for case in kept)))
    suite.set("time", f"{wall_seconds:.3f}")
    # LogXML stamped the time of writing; the run started wall_seconds before that.
    started = datetime.datetime.now().astimezone() - datetime.timedelta(seconds=wall_seconds)
    suite.set("timestamp", started.isoformat())
    with open(path, "w", encoding="utf-8") as stream:
        stream.write('<?xml version="1.0" encoding="utf-8"?>')
        stream.write(ET.tostring(root, encoding="unicode"))


def _add_rerun_elements(testcase: ET.Element, result: TestResult) -> None:
    if len(result.attempts) < 2:
        return
    if result.flaky:
        tag = "flakyFailure"
    elif result.outcome.is_failure:
        tag = "rerunFailure"
    else:
        return
    for attempt in result.attempts[:-1]:
        if not attempt.outcome.is_failure:
            continue
        message, kind, trace = _attempt_failure(attempt)
        element = ET.SubElement(testcase, tag, message=bin_xml_escape(message), type=bin_xml_escape(kind))
        ET.SubElement(element, "stackTrace").text = bin_xml_escape(trace)


def _attempt_failure(attempt: Attempt) -> tuple[str, str, str]:
    """(message, type, stack trace) of a failed attempt, from its failing pytest report if any."""
    for data in attempt.reports:
        if data.get("outcome") != "failed":
            continue
        report = rebuild_report(data)
        reprcrash = getattr(report.longrepr, "reprcrash", None)
        text = report.longreprtext
        message = reprcrash.message if reprcrash is not None else (text.splitlines() or [""])[0]
        match = _EXCEPTION_NAME.match(message)
        return message, match.group(1) if match else attempt.outcome.value, text
    text = failure_text(attempt.outcome, attempt.message, attempt.duration)
    return text.splitlines()[0], attempt.outcome.value, text
