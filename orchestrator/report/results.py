"""The machine-readable results file: the whole RunReport as JSON, and back.

Written by the CLI at the end of every run (each CI shard writes one) and read by
`orchestrate merge`, which joins the shards' files into one report. JSON, not the msgpack wire
format: people and other tools read this file. The schema (format 1):

    {
      "format": 1,
      "kind": "orchestrate-results",
      "wall_seconds": 12.5, "exit_code": 1, "plan_fingerprint": "3f2a...",
      "interrupted": false, "messages": ["..."],
      "counts": {"passed": 10, "failed": 2},           # for readers; ignored when read back
      "agents": [{"agent_id": 0, "host": "...", "tests": 7, "busy_seconds": 4.1,
                  "idle_seconds": 0.3,                   # derived; ignored when read back
                  "predicted_seconds": 4.0, "wall_seconds": 4.4, "stack_up_seconds": 1.2,
                  "stack_down_seconds": 0.4, "worker_restarts": 0, "error": "",
                  "runner": null,                        # CI runner index, after `merge`
                  "node": {"node_id": "", "address": "", "hostname": "..."},
                  "resets": 0, "reset_seconds": 0.0,     # stack resets between units
                  "worker_start_seconds": 0.9,
                  "stack_cache": "miss",                 # the set-up state cache: hit, miss, ""
                  "setup_seconds": 0.2, "setup_saved_seconds": 0.0,
                  "stack_warm": "",                      # "borrowed", "replaced: <why>", "busy"
                  "timeline": {"started": 0.0, "stack_ready": 1.2, "worker_started": 1.2,
                               "worker_ready": 2.1, "ready": 2.1, "finished": 9.0,
                               "stopped": 9.6},
                  "units": [{"unit_id": "...", "started": 2.1, "finished": 3.0,
                             "predicted_seconds": 0.8, "tests": 4, "outcome": "passed",
                             "groups": ["payments"], "alone": false}]}],   # test groups
      "plan": {"agents": 4, "predicted_makespan": 3.1, "lower_bound": 3.0,
               "total_seconds": 12.0, "longest_unit_seconds": 2.5},
      "tests": [{"node_id": "tests/test_a.py::test_x", "outcome": "passed", "duration": 0.01,
                 "agent": 0, "flaky": false,             # agent/duration of the final attempt
                 "attempts": [{"agent": 0, "outcome": "passed", "duration": 0.01,
                               "started": 2.1, "finished": 2.11,
                               "message": "", "reports": [<pytest's serialised reports>]}]}],
      "extra": {"shard": {"index": 1, "total": 4, ...}}  # whatever the writer adds (sharding.py)
    }

Times in "timeline", "units" and the attempts are seconds since the run's start (the
coordinator's clock); "worker_started" is when its worker started (before "stack_ready" when
it overlapped the stack's start: a borrowed warm stack); "stopped" is when the agent began its
teardown (the report does not wait for it; `stack_down_seconds` is 0 then). Outcomes are Outcome values ("passed" ... "not-run"); `reports`
are pytest's own `pytest_report_to_serializable` dicts, unchanged but for JSON turning tuples
into lists. A value JSON cannot hold (an odd `record_property` value) is written as its repr.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.model import AgentStatistics, Attempt, Outcome, RunReport, TestResult, UnitSpan
from orchestrator.protocol.errors import ArtifactError

if TYPE_CHECKING:
    from orchestrator.report.spool import ResultSpool

__all__ = [
    "FORMAT",
    "iter_written_tests",
    "read_document",
    "read_results",
    "report_to_document",
    "result_line",
    "write_results",
]

FORMAT = 1
KIND = "orchestrate-results"


def write_results(
    report: RunReport,
    path: str,
    extra: Mapping[str, Any] | None = None,
    spool: ResultSpool | None = None,
) -> None:
    """Write `report` (and `extra`, e.g. the shard index and count) to `path` as JSON.

    Written to a temporary file beside `path` and moved into place, so a reader (or a CI
    artifact upload) never sees half a file. A test the `spool` holds is written as spooled
    (with every report its attempts had), not from `report`, whose results may be light.
    """
    head = _head(report, extra)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            # One test per line, written as it is converted: memory stays that of one test,
            # not of the whole document (a 100,000-test run would need gigabytes otherwise).
            stream.write(json.dumps(head, ensure_ascii=False, default=repr)[:-1])
            stream.write(',\n"tests": [\n')
            for index, result in enumerate(report.results):
                if index:
                    stream.write(",\n")
                line = spool.line(result.node_id) if spool is not None else None
                stream.write(line if line is not None else result_line(result))
            stream.write("\n]}\n")
        os.replace(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise


def result_line(result: TestResult) -> str:
    """One test of the "tests" list as the file holds it: one line of JSON."""
    return json.dumps(_result_to_json(result), ensure_ascii=False, default=repr)


def iter_written_tests(path: str) -> Iterator[dict[str, Any]]:
    """The "tests" of a file `write_results` wrote, one at a time (it writes one test per line).

    For the check after writing (report/outputs.py), which must not hold a 100,000-test
    document; any other reader uses `read_document`. Raises ValueError if the file does not
    have write_results' layout.
    """
    with open(path, encoding="utf-8") as stream:
        head = stream.readline()
        if not head.rstrip().endswith(","):
            raise ValueError(f"{path}: not laid out as write_results writes")
        json.loads(head.rstrip()[:-1] + "}")
        if stream.readline().strip() != '"tests": [':
            raise ValueError(f"{path}: no tests list where write_results puts it")
        for line in stream:
            text = line.strip()
            if text == "]}":
                return
            if text:  # an empty tests list leaves one blank line
                yield json.loads(text.removesuffix(","))
    raise ValueError(f"{path}: the tests list does not end")


def report_to_document(
    report: RunReport, extra: Mapping[str, Any] | None = None, spool: ResultSpool | None = None
) -> dict[str, Any]:
    """The results document of `report` as one dict: what `write_results` writes, read back.

    Called by the CLI for `--html` (orchestrator/report/html.py renders this dict), so the page
    of a run and the page `orchestrate report` makes later from its results file are the same.
    """
    # Through JSON, a part at a time: tuples become lists and odd values their repr, as in the file.
    document: dict[str, Any] = json.loads(json.dumps(_head(report, extra), default=repr))
    document["tests"] = [
        json.loads((spool.line(r.node_id) if spool is not None else None) or result_line(r))
        for r in report.results
    ]
    return document


def _head(report: RunReport, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every key of the document but "tests" (written one test per line after it)."""
    return {
        "format": FORMAT,
        "kind": KIND,
        "wall_seconds": report.wall_seconds,
        "exit_code": report.exit_code,
        "plan_fingerprint": report.plan_fingerprint,
        "interrupted": report.interrupted,
        "messages": list(report.messages),
        "stop": None
        if report.stop is None
        else {"kind": report.stop.kind, "message": report.stop.message, "returncode": report.stop.returncode},
        "plan": dict(report.plan),
        "counts": {str(outcome): count for outcome, count in report.counts().items()},
        "agents": [_agent_to_json(agent) for agent in report.agents],
        "extra": dict(extra or {}),
    }


def read_document(path: str) -> dict[str, Any]:
    """The results document in `path` as a dict, its kind and format checked.

    Called by `read_results` and by `orchestrate report` (the HTML page is made from the dict).
    Raises ArtifactError, with a one-line message naming the file, when it is missing, not
    JSON or of another kind or format.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such results file") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read results file: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a results file (invalid JSON: {exc})") from exc
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise ArtifactError(f"{path}: not an orchestrate results file")
    if document.get("format") != FORMAT:
        raise ArtifactError(
            f"{path}: results format {document.get('format')!r} is not {FORMAT}; "
            "write and merge with the same orchestrate version"
        )
    return document


def read_results(path: str) -> tuple[RunReport, dict[str, Any]]:
    """Read a file `write_results` wrote: the RunReport and the writer's `extra`.

    Called by `orchestrate merge` for each shard's file. Raises ArtifactError, with a one-line
    message naming the file, when it is missing, not JSON, of another format, or incomplete.
    """
    document = read_document(path)
    try:
        report = RunReport(
            results=tuple(_result_from_json(item) for item in document["tests"]),
            agents=tuple(_agent_from_json(item) for item in document["agents"]),
            wall_seconds=float(document["wall_seconds"]),
            exit_code=int(document["exit_code"]),
            plan_fingerprint=str(document.get("plan_fingerprint", "")),
            interrupted=bool(document.get("interrupted", False)),
            messages=tuple(str(message) for message in document.get("messages", ())),
            plan={str(k): float(v) for k, v in (document.get("plan") or {}).items()},
        )
        extra = document.get("extra") or {}
        if not isinstance(extra, dict):
            raise TypeError("'extra' is not an object")
    except KeyError as exc:
        raise ArtifactError(f"{path}: corrupt results file: missing {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path}: corrupt results file: {exc}") from exc
    return report, extra


def _agent_to_json(agent: AgentStatistics) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "host": agent.host,
        "tests": agent.tests,
        "busy_seconds": agent.busy_seconds,
        "idle_seconds": agent.idle_seconds,
        "predicted_seconds": agent.predicted_seconds,
        "wall_seconds": agent.wall_seconds,
        "stack_up_seconds": agent.stack_up_seconds,
        "stack_down_seconds": agent.stack_down_seconds,
        "worker_restarts": agent.worker_restarts,
        "error": agent.error,
        "node": {"node_id": agent.node_id, "address": agent.address, "hostname": agent.host},
        "runner": agent.runner,
        "resets": agent.resets,
        "reset_seconds": agent.reset_seconds,
        "worker_start_seconds": agent.worker_start_seconds,
        "worker_args": list(agent.worker_args),
        "stack_cache": agent.stack_cache,
        "setup_seconds": agent.setup_seconds,
        "setup_saved_seconds": agent.setup_saved_seconds,
        "stack_warm": agent.stack_warm,
        "timeline": {
            "started": agent.phases.get("stack_started")
            if "stack_started" in agent.phases
            else None
            if agent.ready_at is None
            else max(0.0, _stack_ready(agent) - agent.stack_up_seconds),
            "ready": agent.ready_at,
            "stack_ready": agent.phases.get("stack_ready")
            if "stack_ready" in agent.phases
            else None
            if agent.ready_at is None
            else _stack_ready(agent),
            "worker_started": agent.phases.get("worker_started"),
            "worker_ready": agent.phases.get("worker_ready", agent.ready_at),
            "finished": agent.finished_at,
            "stopped": agent.stopped_at,
        },
        "units": [
            {
                "unit_id": span.unit_id,
                "started": span.started,
                "finished": span.finished,
                "predicted_seconds": span.predicted_seconds,
                "tests": span.tests,
                "outcome": span.outcome.value,
                "groups": list(span.groups),
                "alone": span.alone,
            }
            for span in agent.units
        ],
    }


def _stack_ready(agent: AgentStatistics) -> float:
    """When the agent's stack was up (its worker started then): the timeline has no other record."""
    return max(0.0, (agent.ready_at or 0.0) - agent.worker_start_seconds)


def _agent_from_json(item: Mapping[str, Any]) -> AgentStatistics:
    runner = item.get("runner")
    return AgentStatistics(
        runner=int(runner) if runner is not None else None,
        agent_id=int(item["agent_id"]),
        tests=int(item.get("tests", 0)),
        busy_seconds=float(item.get("busy_seconds", 0.0)),
        predicted_seconds=float(item.get("predicted_seconds", 0.0)),
        wall_seconds=float(item.get("wall_seconds", 0.0)),
        stack_up_seconds=float(item.get("stack_up_seconds", 0.0)),
        stack_down_seconds=float(item.get("stack_down_seconds", 0.0)),
        worker_restarts=int(item.get("worker_restarts", 0)),
        host=str(item.get("host", "")),
        error=str(item.get("error", "")),
        node_id=str((item.get("node") or {}).get("node_id", "")),
        address=str((item.get("node") or {}).get("address", "")),
        resets=int(item.get("resets", 0)),
        reset_seconds=float(item.get("reset_seconds", 0.0)),
        worker_start_seconds=float(item.get("worker_start_seconds", 0.0)),
        worker_args=tuple(str(a) for a in item.get("worker_args", ())),
        stack_cache=str(item.get("stack_cache", "")),
        setup_seconds=float(item.get("setup_seconds", 0.0)),
        setup_saved_seconds=float(item.get("setup_saved_seconds", 0.0)),
        ready_at=(item.get("timeline") or {}).get("ready"),
        stack_warm=str(item.get("stack_warm", "")),
        phases={
            name: float(value)
            for name, value in (
                ("stack_started", (item.get("timeline") or {}).get("started")),
                ("stack_ready", (item.get("timeline") or {}).get("stack_ready")),
                ("worker_started", (item.get("timeline") or {}).get("worker_started")),
                ("worker_ready", (item.get("timeline") or {}).get("worker_ready")),
            )
            if value is not None and (item.get("timeline") or {}).get("worker_started") is not None
        },
        finished_at=(item.get("timeline") or {}).get("finished"),
        stopped_at=(item.get("timeline") or {}).get("stopped"),
        units=tuple(
            UnitSpan(
                str(u["unit_id"]),
                float(u["started"]),
                float(u["finished"]),
                float(u.get("predicted_seconds", 0.0)),
                int(u.get("tests", 0)),
                Outcome(u.get("outcome", "passed")),
                groups=tuple(str(g) for g in u.get("groups", ())),
                alone=bool(u.get("alone", False)),
            )
            for u in item.get("units", ())
        ),
    )


def _result_to_json(result: TestResult) -> dict[str, Any]:
    return {
        "node_id": result.node_id,
        "outcome": result.outcome.value,
        "duration": result.duration,
        "agent": result.agent_id,
        "flaky": result.flaky,
        "attempts": [
            {
                "agent": attempt.agent_id,
                "outcome": attempt.outcome.value,
                "duration": attempt.duration,
                "message": attempt.message,
                "started": attempt.started,
                "finished": attempt.finished,
                "reports": list(attempt.reports),
            }
            for attempt in result.attempts
        ],
    }


def _result_from_json(item: Mapping[str, Any]) -> TestResult:
    attempts = tuple(
        Attempt(
            agent_id=int(attempt["agent"]),
            outcome=Outcome(attempt["outcome"]),
            duration=float(attempt.get("duration", 0.0)),
            reports=tuple(_report_dict(report) for report in attempt.get("reports", ())),
            message=str(attempt.get("message", "")),
            started=float(attempt.get("started", 0.0)),
            finished=float(attempt.get("finished", 0.0)),
        )
        for attempt in item["attempts"]
    )
    return TestResult(node_id=str(item["node_id"]), outcome=Outcome(item["outcome"]), attempts=attempts)


def _report_dict(report: Any) -> dict[str, Any]:
    if not isinstance(report, dict):
        raise TypeError(f"a pytest report is not an object: {str(report)[:80]}")
    return report
