"""The timeline of the HTML report: one SVG lane per agent, grouped by CI runner when merged.

Called by report/html.py. Each lane shows the agent's stack start, worker start and collection,
each unit as a bar coloured by its worst outcome (an SVG <title> gives unit, tests, seconds and
predicted seconds on hover), idle gaps and stack teardown; the plan's lower bound and predicted
makespan are vertical lines, measured from the moment the first worker was ready. A unit that
ran under a test group (or alone) has a stripe in its group's colour along its bar and the
group in its hover text; a legend under the axis names the colours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.report._values import (
    agent_name,
    as_map,
    colour_of,
    esc,
    group_by_runner,
    number,
    units_of,
)
from orchestrator.report.charts import nice_ticks

__all__ = ["group_colour", "timeline_svg", "unit_groups"]


def timeline_svg(document: Mapping[str, Any], agents: Sequence[Mapping[str, Any]]) -> str:
    """The timeline: one lane per agent (under a heading per CI runner when merged), a time axis,
    the lower bound and the predicted makespan as vertical lines."""
    lane_height, lane_gap, group_height, left, width = 20, 6, 20, 120, 1000
    plot_width = width - left - 20
    grouped = group_by_runner(agents)
    plan = as_map(document.get("plan"))
    end = max(
        [number(document, "wall_seconds") or 0.0]
        + [v for a in agents for v in as_map(a.get("timeline")).values() if isinstance(v, int | float)]
        + [number(u, "finished") or 0.0 for a in agents for u in units_of(a)]
        + [1e-6]
    )
    test_start = min(
        (v for a in agents if (v := number(as_map(a.get("timeline")), "worker_ready")) is not None),
        default=0.0,
    )
    marks = [
        (name, test_start + value, colour)
        for name, key, colour in (
            ("lower bound", "lower_bound", "#222"),
            ("predicted", "predicted_makespan", "#2a6fdb"),
        )
        if (value := number(plan, key)) is not None
    ]
    end = max([end] + [x for _, x, _ in marks])
    ticks = nice_ticks(end, 10)
    end = ticks[-1]

    def x(t: float) -> float:
        return left + plot_width * max(0.0, t) / end

    rows: list[str] = []
    y = 8 + 14 * len(marks)  # room for the marks' labels above the lanes
    for runner, members in grouped:
        if runner is not None:
            rows.append(f'<text x="4" y="{y + 14}" font-weight="bold">runner {esc(runner)}</text>')
            y += group_height
        for agent in members:
            rows.append(_lane(agent, y, lane_height, x))
            y += lane_height + lane_gap
    axis_y = y + 4
    axis = [f'<line x1="{left}" x2="{left + plot_width}" y1="{axis_y}" y2="{axis_y}" stroke="#888"/>']
    for tick in ticks:
        axis.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="4" y2="{axis_y + 4}" stroke="#eee"/>'
            f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle" fill="#555">{tick:g}</text>'
        )
    axis.append(
        f'<text x="{left + plot_width / 2:.1f}" y="{axis_y + 32}" text-anchor="middle">seconds</text>'
    )
    for position, (name, at, colour) in enumerate(marks):
        axis.append(
            f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{6 + 14 * position}" y2="{axis_y}" stroke="{colour}" stroke-width="1.5" '
            f'stroke-dasharray="5 3"><title>{esc(name)}: {at - test_start:.2f} s after the first worker was ready'
            f"</title></line>"
            f'<text x="{x(at) + 3:.1f}" y="{16 + 14 * position}" fill="{colour}">{esc(name)} {at - test_start:.1f} s</text>'
        )
    groups = sorted({name for a in agents for u in units_of(a) for name in unit_groups(u)})
    for position, name in enumerate(groups):
        legend_x = left + 110 * position
        axis.append(
            f'<rect x="{legend_x}" y="{axis_y + 42}" width="14" height="5" fill="{group_colour(name)}"/>'
            f'<text x="{legend_x + 18}" y="{axis_y + 49}">{esc(name)}</text>'
        )
    height = axis_y + 40 + (22 if groups else 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="12" id="timeline">' + "".join(axis) + "".join(rows) + "</svg>"
    )


def _lane(agent: Mapping[str, Any], y: int, height: int, x: Callable[[float], float]) -> str:
    """One agent's lane: stack start, worker start, units, idle gaps, stack teardown."""
    timeline = as_map(agent.get("timeline"))
    started = number(timeline, "started")
    stack_ready = number(timeline, "stack_ready")
    worker_ready = number(timeline, "worker_ready")
    finished = number(timeline, "finished")
    stopped = number(timeline, "stopped")
    label = agent_name(agent)
    host = str(agent.get("host", ""))
    node = as_map(agent.get("node"))
    where = ", ".join(str(v) for v in (host, node.get("hostname"), node.get("address")) if v)
    parts = [
        f'<g class="lane" data-agent="{esc(agent.get("agent_id", ""))}">',
        f'<text x="4" y="{y + height - 6}">{esc(label)}<title>{esc(where or label)}</title></text>',
    ]

    def bar(start: float | None, end: float | None, fill: str, tip: str, css: str) -> None:
        if start is None or end is None or end <= start:
            return
        parts.append(
            f'<rect class="{css}" x="{x(start):.1f}" y="{y}" width="{max(0.5, x(end) - x(start)):.1f}" '
            f'height="{height}" fill="{fill}" stroke="#fff" stroke-width="0.5"><title>{esc(tip)}</title></rect>'
        )

    ready = stack_ready if stack_ready is not None else started
    bar(started, stack_ready, "#b9c7d8", f"{label}: stack start, {_span(started, stack_ready)}", "stack")
    bar(
        ready,
        worker_ready,
        "#d7c9e6",
        f"{label}: worker start and collection, {_span(ready, worker_ready)}",
        "worker",
    )
    units = sorted(units_of(agent), key=lambda u: number(u, "started") or 0.0)
    cursor = worker_ready
    for unit in units:
        unit_start, unit_end = number(unit, "started"), number(unit, "finished")
        if cursor is not None and unit_start is not None and unit_start - cursor > 0.01:
            bar(cursor, unit_start, "#f1f1f1", f"{label}: idle {unit_start - cursor:.2f} s", "idle")
        if unit_end is not None:
            cursor = unit_end if cursor is None else max(cursor, unit_end)
        predicted = number(unit, "predicted_seconds")
        tip = (
            f"{unit.get('unit_id', '?')}\n{unit.get('tests', '?')} tests, {unit.get('outcome', '?')}\n"
            f"{_span(unit_start, unit_end)}"
            + (f" (predicted {predicted:.2f} s)" if predicted is not None else "")
        )
        under = unit_groups(unit)
        if under:
            tip += "\nran under " + ", ".join(under)
        bar(unit_start, unit_end, colour_of(unit.get("outcome")), tip, "unit")
        for position, name in enumerate(under):
            if unit_start is not None and unit_end is not None and unit_end > unit_start:
                parts.append(
                    f'<rect class="group" data-group="{esc(name)}" x="{x(unit_start):.1f}" '
                    f'y="{y + height - 4 - 4 * position}" width="{max(0.5, x(unit_end) - x(unit_start)):.1f}" '
                    f'height="3" fill="{group_colour(name)}"><title>{esc(name)}: {esc(unit.get("unit_id", "?"))}'
                    f"</title></rect>"
                )
    # Agents stop together at the end of the run, so an agent that ran out of work first waits
    # (idle) from its last test until its teardown starts: the teardown is only the last
    # `stack_down_seconds` before `stopped`, not everything after its last test.
    down = number(agent, "stack_down_seconds")
    teardown = finished if down is None or stopped is None else max(stopped - down, cursor or 0.0)
    if cursor is not None and teardown is not None and teardown - cursor > 0.01:
        bar(cursor, teardown, "#f1f1f1", f"{label}: idle {teardown - cursor:.2f} s", "idle")
    bar(teardown, stopped, "#cfcfcf", f"{label}: stack teardown, {_span(teardown, stopped)}", "teardown")
    if not timeline and not units:
        parts.append(f'<text x="{x(0) + 4:.1f}" y="{y + height - 6}" fill="#999">no timeline recorded</text>')
    if agent.get("error"):
        parts.append(
            f'<text x="{x(0) - 14:.1f}" y="{y + height - 6}" fill="#d9443b">!<title>{esc(agent["error"])}</title></text>'
        )
    parts.append("</g>")
    return "".join(parts)


# Dark colours none of the outcomes uses, so a stripe never reads as an outcome.
_GROUP_PALETTE = ("#1b1b6f", "#b35806", "#006d6f", "#6b3e26", "#5e3c99", "#7a7a00", "#00441b")


def group_colour(name: str) -> str:
    """A colour per test group, the same in every report ("alone" is black)."""
    if name == "alone":
        return "#111"
    return _GROUP_PALETTE[sum(map(ord, name)) % len(_GROUP_PALETTE)]


def unit_groups(unit: Mapping[str, Any]) -> list[str]:
    """The test groups a unit of the results file ran under, "alone" included."""
    groups = [str(g) for g in unit.get("groups") or ()]
    return groups + (["alone"] if unit.get("alone") else [])


def _span(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "?"
    return f"{end - start:.2f} s ({start:.2f}-{end:.2f})"
