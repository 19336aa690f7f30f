"""The HTML report: one self-contained page built from a results document.

Called by `orchestrate run/shard/merge --html PATH` once the results are known, and by
`orchestrate report results.json --html PATH` later, from the file alone: both pass the
results document (orchestrator/report/results.py, as a dict), so the page shows exactly what
the results file holds. `bench` adds the section of `orchestrate bench`.

Pure string building: every value from the document goes through `html.escape`; CSS, the
little JavaScript (outcome filter, search) and the SVG are inline, and a Content-Security-Policy
forbids any other resource, so the page opens offline from a CI artifact. Keys that old files
lack are left out of the page, never an error. Sections, top to bottom: counts, the timeline
(one lane per agent, grouped by CI runner in merged documents), predicted against actual
seconds per agent and per unit, flaky tests, crashed and timed-out tests, every test.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.report._values import (
    OUTCOME_COLOURS,
    OUTCOME_ORDER,
    agent_name,
    as_list,
    as_map,
    badge,
    colour_of,
    esc,
    group_by_runner,
    number,
    ordered_outcomes,
    seconds_text,
    table,
    units_of,
)
from orchestrator.report.charts import Series, line_chart_svg
from orchestrator.report.html_tests import flaky_section, tests_section, unfinished_section
from orchestrator.report.timeline import timeline_svg, unit_groups

__all__ = ["OUTCOME_COLOURS", "render_html", "write_html"]

_SLOWEST_UNITS = 25

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 40px;color:#222;background:#fafafa}
h1{font-size:20px;margin:18px 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.muted{color:#666}.counts span{display:inline-block;margin:4px 6px 4px 0;padding:2px 8px;border-radius:10px;color:#fff}
table{border-collapse:collapse;background:#fff}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;min-width:58px;padding:0 6px;border-radius:4px;color:#fff;font-size:12px;text-align:center}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:8px;overflow:auto;max-height:480px;white-space:pre;font-size:12px}
details summary{cursor:pointer}code{font-size:13px}.filters label{margin-right:10px;white-space:nowrap}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
.timeline{overflow-x:auto;background:#fff;border:1px solid #ddd}.warn{color:#b03020}
"""

# Marks the page when a script fails (the browser test reads it back from the DOM), then the
# filter and the search over the test table.
_ERROR_HOOK = (
    "window.addEventListener('error',function(e){document.documentElement.setAttribute("
    "'data-js-error',String(e.message||e));});"
)
_SCRIPT = """
(function(){
  var boxes=document.querySelectorAll('input[data-outcome]');
  var search=document.getElementById('search');
  var rows=document.querySelectorAll('#tests tbody tr');
  var shown=document.getElementById('shown');
  function apply(){
    var on={};boxes.forEach(function(b){on[b.getAttribute('data-outcome')]=b.checked;});
    var q=search.value.toLowerCase(),count=0;
    rows.forEach(function(r){
      var visible=on[r.getAttribute('data-outcome')]!==false&&(!q||r.getAttribute('data-id').indexOf(q)>=0);
      r.hidden=!visible;if(visible){count++;}
    });
    shown.textContent=String(count);
  }
  document.querySelectorAll('button[data-only]').forEach(function(button){
    button.addEventListener('click',function(){
      var only=button.getAttribute('data-only').split(',');
      boxes.forEach(function(b){b.checked=only[0]==='all'||only.indexOf(b.getAttribute('data-outcome'))>=0;});
      apply();
    });
  });
  boxes.forEach(function(b){b.addEventListener('change',apply);});
  search.addEventListener('input',apply);
  apply();
  document.body.setAttribute('data-ready','1');
})();
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def write_html(document: Mapping[str, Any], path: str, bench: Mapping[str, Any] | None = None) -> None:
    """Write the report page for `document` (and `bench`) to `path`, atomically."""
    page = render_html(document, bench)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
        os.chmod(scratch, 0o644)  # mkstemp's 0600 would hide the page from a web server or a CI viewer
        os.replace(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise


def render_html(document: Mapping[str, Any], bench: Mapping[str, Any] | None = None) -> str:
    """The whole page as a string (what `write_html` writes); tests read it directly."""
    tests = [t for t in as_list(document.get("tests")) if isinstance(t, Mapping)]
    agents = [a for a in as_list(document.get("agents")) if isinstance(a, Mapping)]
    title = "orchestrate bench" if bench and not tests else "orchestrate report"
    body = [
        f"<h1>{esc(title)}</h1>",
        "" if bench and not tests else _summary(document, tests),
        _bench_section(bench) if bench else "",
    ]
    if agents or tests:
        body += [
            _timeline_section(document, agents),
            _agents_section(agents),
            _units_section(agents),
            flaky_section(tests),
            unfinished_section(tests),
            tests_section(tests),
        ]
    script = _SCRIPT if tests else "document.body.setAttribute('data-ready','1');"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
            f"<title>{esc(title)}</title>",
            f"<script>{_ERROR_HOOK}</script>",
            f"<style>{_CSS}</style>",
            "</head><body>",
            *[part for part in body if part],
            f"<script>{script}</script>",
            "</body></html>",
            "",
        ]
    )


# --- sections ---


def _counts(document: Mapping[str, Any], tests: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    if tests or not isinstance(document.get("counts"), Mapping):
        counts: dict[str, int] = {}
        for test in tests:
            outcome = str(test.get("outcome", "?"))
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts
    return {str(k): int(v) for k, v in document["counts"].items() if isinstance(v, int)}


def _summary(document: Mapping[str, Any], tests: Sequence[Mapping[str, Any]]) -> str:
    counts = _counts(document, tests)
    badges = "".join(
        f'<span style="background:{colour_of(o)}">{counts[o]} {esc(o)}</span>'
        for o in ordered_outcomes(counts)
    )
    facts = []
    if (wall := number(document, "wall_seconds")) is not None:
        facts.append(f"{wall:.2f} s wall-clock")
    if "exit_code" in document:
        facts.append(f"exit code {esc(document['exit_code'])}")
    plan = as_map(document.get("plan"))
    if plan:
        facts.append(
            f"{esc(_count_text(plan.get('agents', '?')))} agents; predicted makespan {seconds_text(number(plan, 'predicted_makespan'))} s, "
            f"lower bound max(total/N, longest unit{', test groups' if _grouped(document) else ''}) "
            f"{seconds_text(number(plan, 'lower_bound'))} s"
        )
    extra = as_map(document.get("extra"))
    if isinstance(extra.get("merged"), list):
        facts.append(f"merged from {len(extra['merged'])} CI runner artifact(s)")
    if document.get("plan_fingerprint"):
        facts.append(f"plan {esc(document['plan_fingerprint'])}")
    if document.get("interrupted"):
        facts.append('<span class="warn">interrupted</span>')
    messages = "".join(f'<li class="warn">{esc(m)}</li>' for m in as_list(document.get("messages")))
    return f'<div class="counts">{badges or "no tests"}</div><div class="muted">{"; ".join(facts)}</div>' + (
        f"<ul>{messages}</ul>" if messages else ""
    )


def _count_text(value: Any) -> Any:
    """A count the plan stores as a float (4.0) as people write it (4)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _timeline_section(document: Mapping[str, Any], agents: Sequence[Mapping[str, Any]]) -> str:
    if not agents:
        return ""
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{esc(name)}</span>'
        for name, colour in (
            ("stack start", "#b9c7d8"),
            ("worker start and collection", "#d7c9e6"),
            ("idle", "#f1f1f1"),
            ("stack teardown", "#cfcfcf"),
            *((o.value, OUTCOME_COLOURS[o]) for o in OUTCOME_ORDER),
        )
    )
    return (
        "<h2>Timeline</h2>"
        '<p class="muted">One lane per agent; each unit is a bar coloured by its worst outcome (hover for '
        "details). Times are seconds since the start of the run.</p>"
        f'<div class="timeline">{timeline_svg(document, agents)}</div><div class="legend">{legend}</div>'
    )


def _agents_section(agents: Sequence[Mapping[str, Any]]) -> str:
    if not agents:
        return ""
    merged = any(a.get("runner") is not None for a in agents)
    resets = any(number(a, "resets") for a in agents)
    rows = []
    for _, members in group_by_runner(agents):
        for agent in members:
            predicted, busy = number(agent, "predicted_seconds"), number(agent, "busy_seconds")
            rows.append(
                [
                    *([esc(agent.get("runner", ""))] if merged else []),
                    esc(agent.get("agent_id", "?")),
                    esc(agent.get("host", "")),
                    esc(agent.get("tests", "")),
                    seconds_text(predicted),
                    seconds_text(busy),
                    _ratio(busy, predicted),
                    seconds_text(number(agent, "idle_seconds")),
                    seconds_text(number(agent, "wall_seconds")),
                    seconds_text(number(agent, "stack_up_seconds")),
                    seconds_text(number(agent, "stack_down_seconds")),
                    *(
                        [esc(agent.get("resets", "")), seconds_text(number(agent, "reset_seconds"))]
                        if resets
                        else []
                    ),
                    esc(agent.get("worker_restarts", "")),
                    f'<span class="warn">{esc(agent.get("error", ""))}</span>',
                ]
            )
    headers = [
        *(["runner"] if merged else []),
        "agent", "host", "tests", "predicted s", "busy s", "actual/predicted", "idle s", "wall s", "up s",
        "down s", *(["resets", "reset s"] if resets else []), "restarts", "error",
    ]  # fmt: skip
    first = 1 if merged else 0
    return "<h2>Agents: predicted against actual</h2>" + table(
        headers, rows, numeric=[first, first + 2, *range(first + 3, len(headers) - 1)]
    )


def _grouped(document: Mapping[str, Any]) -> bool:
    """Whether some unit of the run ran under a test group (or alone)."""
    agents = document.get("agents")
    return isinstance(agents, list) and any(unit_groups(u) for a in agents for u in units_of(as_map(a)))


def _ratio(actual: float | None, predicted: float | None) -> str:
    if actual is None or not predicted:
        return ""
    return f"{actual / predicted:.2f}"


def _units_section(agents: Sequence[Mapping[str, Any]]) -> str:
    units = [
        (agent, unit, (number(unit, "finished") or 0.0) - (number(unit, "started") or 0.0))
        for agent in agents
        for unit in units_of(agent)
    ]
    if not units:
        return ""
    units.sort(key=lambda item: -item[2])
    grouped = any(unit_groups(unit) for _, unit, _ in units)
    rows = [
        [
            f"<code>{esc(unit.get('unit_id', '?'))}</code>",
            esc(agent_name(agent).removeprefix("agent ")),
            esc(unit.get("tests", "")),
            badge(unit.get("outcome", "?")),
            seconds_text(number(unit, "predicted_seconds")),
            seconds_text(seconds),
            _ratio(seconds, number(unit, "predicted_seconds")),
            *([esc(", ".join(unit_groups(unit)))] if grouped else []),
        ]
        for agent, unit, seconds in units[:_SLOWEST_UNITS]
    ]
    shown = (
        f"the {_SLOWEST_UNITS} slowest of {len(units)}"
        if len(units) > _SLOWEST_UNITS
        else f"all {len(units)}"
    )
    return f"<h2>Units: predicted against actual ({shown}, slowest first)</h2>" + table(
        ["unit", "agent", "tests", "outcome", "predicted s", "actual s", "actual/predicted"]
        + (["test groups"] if grouped else []),
        rows,
        numeric=[1, 2, 4, 5, 6],
    )


def _bench_section(bench: Mapping[str, Any]) -> str:
    """The table and chart of `orchestrate bench`: each method and N, measured against predicted."""
    rows_data = [r for r in as_list(bench.get("rows")) if isinstance(r, Mapping)]
    rows = [
        [
            esc(r.get("method", "?")),
            esc(r.get("agents", "")),
            seconds_text(number(r, "median")),
            f"{seconds_text(number(r, 'min'))}–{seconds_text(number(r, 'max'))}"
            if number(r, "min") is not None
            else "",
            seconds_text(number(r, "predicted")),
            seconds_text(number(r, "lower_bound")),
            esc(r.get("failures", "")),
        ]
        for r in rows_data
    ]
    notes = "".join(f"<li>{esc(n)}</li>" for n in as_list(bench.get("notes")))
    return (
        "<h2>Benchmark: measured against predicted wall-clock</h2>"
        + table(
            ["method", "N", "median s", "min–max s", "predicted s", "lower bound s", "failed runs"],
            rows,
            numeric=[1, 2, 3, 4, 5, 6],
        )
        + (f'<ul class="muted">{notes}</ul>' if notes else "")
        + bench_chart_svg(bench)
    )


_METHOD_COLOURS = ("#2a6fdb", "#d9443b", "#3a9b54", "#8e44ad", "#e9892b", "#555")


def bench_chart_svg(bench: Mapping[str, Any]) -> str:
    """The bench chart: median wall-clock (min-max bars) per method against N, and the predictions."""
    rows = [
        r for r in as_list(bench.get("rows")) if isinstance(r, Mapping) and number(r, "median") is not None
    ]
    methods = list(dict.fromkeys(str(r.get("method")) for r in rows))
    series = []
    every_n = sorted({r["agents"] for r in rows if isinstance(r.get("agents"), int)})
    for position, method in enumerate(methods):
        mine = [r for r in rows if str(r.get("method")) == method and isinstance(r.get("agents"), int)]
        points = tuple((float(r["agents"]), number(r, "median") or 0.0) for r in mine)
        ranges = tuple((number(r, "min") or 0.0, number(r, "max") or 0.0) for r in mine)
        if method == "serial" and len(mine) == 1:  # one figure for every N: a reference line across
            points = tuple((float(n), points[0][1]) for n in every_n)
            ranges = ranges * len(every_n)
        series.append(
            Series(
                method,
                points,
                _METHOD_COLOURS[position % len(_METHOD_COLOURS)],
                dashed=method == "serial",
                ranges=ranges,
            )
        )
    for name, key, colour in (("predicted", "predicted", "#999"), ("lower bound", "lower_bound", "#222")):
        points = tuple(
            (float(r["agents"]), value)
            for r in rows
            if str(r.get("method")) == "orchestrate"
            and isinstance(r.get("agents"), int)
            and (value := number(r, key)) is not None
        )
        if points:
            series.append(Series(name, points, colour, dashed=True))
    if not series:
        return ""
    return line_chart_svg(series, title="wall-clock by agents", x_label="agents (N)", y_label="seconds")
