"""Rerun elements in the JUnit file pytest's own junitxml plugin wrote for the run.

pytest writes the file (the coordinator replays every report through its hooks, so every
`classname`, `name`, message and output element is pytest's own). What pytest has no element
for is added afterwards, by the coordinator's `pytest_sessionfinish` (trylast: after LogXML
wrote): Surefire's elements that Jenkins and GitLab read for a test run more than once, one
`<flakyFailure>` per failed earlier attempt of a test that passed in the end, one
`<rerunFailure>` per earlier attempt of a test that failed every time, each with `message`,
`type` and a `<stackTrace>`.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from _pytest.junitxml import bin_xml_escape, mangle_test_address

from orchestrator.model import Attempt, TestResult
from orchestrator.report.outcomes import failure_text, rebuild_report

__all__ = ["add_rerun_elements"]

_EXCEPTION_NAME = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def add_rerun_elements(path: str, results: Sequence[TestResult]) -> int:
    """Add flakyFailure/rerunFailure elements for `results` run more than once; returns how many."""
    rerun = {_address(r.node_id): r for r in results if len(r.attempts) > 1}
    if not rerun or not os.path.exists(path):
        return 0
    tree = ET.parse(path)
    added = 0
    for testcase in tree.getroot().iter("testcase"):
        classname, name = testcase.get("classname", ""), testcase.get("name", "")
        result = rerun.get((classname, name)) or next(
            (r for (c, n), r in rerun.items() if n == name and classname.endswith("." + c)), None
        )
        if result is None:
            continue
        tag = "flakyFailure" if result.flaky else "rerunFailure" if result.outcome.is_failure else None
        if tag is None:
            continue
        for attempt in result.attempts[:-1]:
            if attempt.outcome.is_failure:
                message, kind, trace = _attempt_failure(attempt)
                element = ET.SubElement(
                    testcase, tag, message=bin_xml_escape(message), type=bin_xml_escape(kind)
                )
                ET.SubElement(element, "stackTrace").text = bin_xml_escape(trace)
                added += 1
        del rerun[(classname, name) if (classname, name) in rerun else _address(result.node_id)]
    directory = os.path.dirname(os.path.abspath(path))
    handle, scratch = tempfile.mkstemp(prefix=".junit-", suffix=".xml", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write('<?xml version="1.0" encoding="utf-8"?>')
        stream.write(ET.tostring(tree.getroot(), encoding="unicode"))
    os.replace(scratch, path)
    return added


def _address(node_id: str) -> tuple[str, str]:
    names = mangle_test_address(node_id)
    return ".".join(names[:-1]), names[-1]


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
