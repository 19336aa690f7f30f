"""The HTML report's sections about single tests: flaky and retried, crashed and timed out, all.

Called by orchestrator/report/html.py's `render_html`, which places these sections under the
run's; each takes the results document's tests (dicts, as results.py writes them) and tolerates
keys that old files lack. A test that did not pass shows what the terminal would: its
tracebacks and captured output, rebuilt from pytest's own reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.model import Outcome
from orchestrator.report._values import (
    OUTCOME_ORDER,
    as_list,
    badge,
    esc,
    number,
    ordered_outcomes,
    outcome_or_none,
    seconds_text,
    table,
)
from orchestrator.report.outcomes import failure_text, rebuild_report

__all__ = ["flaky_section", "tests_section", "unfinished_section"]


def _attempts(test: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [a for a in as_list(test.get("attempts")) if isinstance(a, Mapping)]


def _attempts_text(test: Mapping[str, Any]) -> str:
    return " → ".join(
        f"{a.get('outcome', '?')} (agent {a.get('agent', '?')}, {seconds_text(number(a, 'duration')) or '?'} s)"
        for a in _attempts(test)
    )


def flaky_section(tests: Sequence[Mapping[str, Any]]) -> str:
    """Tests that needed more than one attempt, with each attempt's outcome, agent and seconds."""
    flaky = [t for t in tests if t.get("flaky") or len(_attempts(t)) > 1]
    if not flaky:
        return ""
    rows = [
        [f"<code>{esc(t.get('node_id', '?'))}</code>", badge(t.get("outcome", "?")), esc(_attempts_text(t))]
        for t in flaky
    ]
    return f"<h2>Flaky and retried tests ({len(flaky)})</h2>" + table(
        ["test", "final outcome", "attempts"], rows
    )


def unfinished_section(tests: Sequence[Mapping[str, Any]]) -> str:
    """Tests that crashed or timed out their worker, with the worker's last output."""
    unfinished = [t for t in tests if t.get("outcome") in (Outcome.CRASHED.value, Outcome.TIMEOUT.value)]
    if not unfinished:
        return ""
    items = "".join(
        f"<li>{badge(t.get('outcome'))} <code>{esc(t.get('node_id', '?'))}</code> on agent "
        f"{esc(t.get('agent', '?'))}<pre>{esc(_details_text(t))}</pre></li>"
        for t in unfinished
    )
    return (
        f"<h2>Crashed and timed-out tests ({len(unfinished)})</h2>"
        f'<p class="muted">With the worker\'s last output.</p><ul>{items}</ul>'
    )


def _details_text(test: Mapping[str, Any]) -> str:
    """What the terminal prints for a test that did not pass: tracebacks and captured output."""
    attempts = _attempts(test)
    if not attempts:
        return ""
    final = attempts[-1]
    outcome = outcome_or_none(test.get("outcome"))
    reports = [r for r in as_list(final.get("reports")) if isinstance(r, Mapping)]
    chunks: list[str] = []
    if outcome in (Outcome.CRASHED, Outcome.TIMEOUT, Outcome.NOT_RUN):
        chunks.append(failure_text(outcome, str(final.get("message", "")), number(final, "duration") or 0.0))
        reports = reports[-1:]  # what pytest captured before the worker died is in its last report
        show_longrepr = False
    else:
        show_longrepr = True
    for data in reports:
        try:
            rebuilt = rebuild_report(data)
        except Exception:  # an odd report must not cost the page; show what it says
            chunks.append(str(data.get("longrepr", "")))
            continue
        if show_longrepr and rebuilt.outcome == "failed" and rebuilt.longreprtext:
            chunks.append(f"--- {rebuilt.when} ---\n{rebuilt.longreprtext}")
        for heading, content in rebuilt.sections:
            chunks.append(f"--- {heading} ---\n{content.rstrip()}")
    if not chunks and final.get("message"):
        chunks.append(str(final["message"]))
    return "\n".join(chunks)


def tests_section(tests: Sequence[Mapping[str, Any]]) -> str:
    """Every test, filterable by outcome and node id; those that did not pass unfold their details."""
    counts: dict[str, int] = {}
    for test in tests:
        counts[str(test.get("outcome", "?"))] = counts.get(str(test.get("outcome", "?")), 0) + 1
    boxes = "".join(
        f'<label><input type="checkbox" data-outcome="{esc(o)}" checked> {badge(o)} {counts[o]}</label>'
        for o in ordered_outcomes(counts)
    )
    failing = ",".join(o.value for o in OUTCOME_ORDER if o.is_failure or o is Outcome.NOT_RUN)
    rows = []
    for test in tests:
        node_id = str(test.get("node_id", "?"))
        outcome = str(test.get("outcome", "?"))
        details = _details_text(test) if outcome not in ("passed", "skipped", "xfailed") else ""
        attempts = _attempts(test)
        cell = f"<code>{esc(node_id)}</code>"
        if details:
            cell = f"<details><summary>{cell}</summary><pre>{esc(details)}</pre></details>"
        rows.append(
            f'<tr data-outcome="{esc(outcome)}" data-id="{esc(node_id.lower())}"><td>{badge(outcome)}</td>'
            f'<td>{cell}</td><td class="n">{seconds_text(number(test, "duration"))}</td>'
            f'<td class="n">{esc(test.get("agent", ""))}</td>'
            f"<td>{esc(_attempts_text(test)) if len(attempts) > 1 else len(attempts)}</td></tr>"
        )
    return (
        f'<h2>Tests (<span id="shown">{len(tests)}</span> of {len(tests)} shown)</h2>'
        f'<div class="filters">{boxes} <button data-only="all">all</button> '
        f'<button data-only="{failing}">failures only</button> '
        '<input id="search" type="search" placeholder="filter by node id" size="40"></div>'
        '<table id="tests"><thead><tr><th>outcome</th><th>test</th><th class="n">seconds</th>'
        '<th class="n">agent</th><th>attempts</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
    )
