"""The run's outputs besides pytest's own: results file, HTML page, JUnit rerun elements.

One list of sinks for `run`, `shard` and `merge`, called at the coordinator's
`pytest_sessionfinish`, after pytest's plugins wrote their files. The results file is read
back after writing and compared with the report, so a file that does not say what the run
did is an internal error, not a silent artifact.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from orchestrator.model import Outcome, OutputPaths, RunReport
from orchestrator.protocol.errors import InternalError
from orchestrator.report.junit import add_rerun_elements
from orchestrator.report.results import iter_written_tests, write_results
from orchestrator.report.spool import ResultSpool

__all__ = ["finish_outputs", "warn"]


def finish_outputs(
    report: RunReport,
    outputs: OutputPaths,
    junitxml: str | None,
    extra: Mapping[str, Any],
    spool: ResultSpool | None = None,
) -> None:
    """Write every file `outputs` names (the duration store is the caller's: planning/durations/
    recording.py); the tests `spool` holds are written from it (report/spool.py), with every
    report they had."""
    results, html = outputs.results, outputs.html
    if results:
        write_results(report, results, extra=extra, spool=spool)
        _check_written(report, results)
    if html:
        from orchestrator.report.html import write_html
        from orchestrator.report.results import report_to_document

        write_html(report_to_document(report, extra, spool), html)
    if junitxml:
        add_rerun_elements(junitxml, report.results)


def warn(message: str) -> None:
    """A side effect that failed without changing the run's result: one line on stderr."""
    print(f"orchestrate: warning: {message}", file=sys.stderr)


def _check_written(report: RunReport, path: str) -> None:
    """Read the file back, a test at a time, and compare it with the report: every test once,
    its outcome and its attempts' outcomes as the session recorded them."""
    expected = {r.node_id: r for r in report.results}
    seen = 0
    try:
        for test in iter_written_tests(path):
            result = expected.get(test["node_id"])
            if (
                result is None
                or Outcome(test["outcome"]) is not result.outcome
                or [Outcome(a["outcome"]) for a in test["attempts"]] != [a.outcome for a in result.attempts]
            ):
                raise ValueError(f"{test['node_id']} differs")
            seen += 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InternalError(
            f"{path} does not hold the run's results as the session recorded them: {exc}"
        ) from exc
    if seen != len(expected) or len(expected) != len(report.results):
        raise InternalError(f"{path} does not hold the run's results as the session recorded them")
