"""The run's outputs besides pytest's own: results file, HTML page, JUnit rerun elements, durations.

One list of sinks for `run`, `shard` and `merge`, called at the coordinator's
`pytest_sessionfinish`, after pytest's plugins wrote their files. The results file is read
back after writing and compared with the report, so a file that does not say what the run
did is an internal error, not a silent artifact.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.model import Outcome, OutputPaths, RunReport, TestResult
from orchestrator.planning.durations.store import DurationStore
from orchestrator.protocol.errors import InternalError
from orchestrator.report.junit import add_rerun_elements
from orchestrator.report.results import iter_written_tests, write_results
from orchestrator.report.spool import ResultSpool

__all__ = ["finish_outputs", "update_store", "warn"]

# Durations of these outcomes are what the test costs (a skip costs almost nothing, and that is
# worth knowing); a crash, a timeout or a test that never ran says nothing about it.
_TIMED_OUTCOMES = frozenset(
    {Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED}
)


def finish_outputs(
    report: RunReport,
    outputs: OutputPaths,
    junitxml: str | None,
    store: DurationStore | None,
    extra: Mapping[str, Any],
    startup: tuple[str, int] | None = None,
    spool: ResultSpool | None = None,
) -> None:
    """Write every output `outputs` names; `startup` (history key, capacity) records the
    agents' fixed costs in the store too (a run's own agents; not after `merge`); the tests
    `spool` holds are written from it (report/spool.py), with every report they had."""
    results, html, durations = outputs.results, outputs.html, outputs.durations
    if results:
        write_results(report, results, extra=extra, spool=spool)
        _check_written(report, results)
    if html:
        from orchestrator.report.html import write_html
        from orchestrator.report.results import report_to_document

        write_html(report_to_document(report, extra, spool), html)
    if junitxml:
        add_rerun_elements(junitxml, report.results)
    if durations and store is not None:
        learned = None
        if startup is not None:
            key, capacity = startup
            learned = store.startup.observe(key, report.agents, capacity)
        update_store(store, report.results, durations, warn, changed=learned is not None)


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


def update_store(
    store: DurationStore,
    results: Sequence[TestResult],
    path: str,
    warn: Callable[[str], None],
    changed: bool = False,
) -> None:
    """Fold the results' durations into `store` and save it (also when only `changed` otherwise)."""
    observations = {r.node_id: _seconds_at_load_one(r) for r in results if r.outcome in _TIMED_OUTCOMES}
    save_durations(store, observations, path, warn, changed)


def _seconds_at_load_one(result: TestResult) -> float:
    final = result.final
    return (
        final.seconds_at_load_one if final is not None and final.seconds_at_load_one > 0 else result.duration
    )


def save_durations(
    store: DurationStore,
    observations: Mapping[str, float],
    path: str,
    warn: Callable[[str], None],
    changed: bool = False,
) -> None:
    """Fold tests' seconds into `store` and save it (also when only `changed` otherwise)."""
    if not observations and not changed:
        return
    store.update(observations)
    try:
        store.save(path)
    except OSError as exc:
        # The run's result stands; only the next plan is less informed.
        warn(f"could not write the duration store {path}: {exc.strerror or exc}")
