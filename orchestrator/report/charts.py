"""Small SVG line charts written by hand: no plotting library at run time.

Called by `orchestrate plan --agents LIST --plot` (predicted makespan against N), by
`orchestrate bench` (measured against predicted) and by the HTML report, which inlines the same
SVG. The x axis is categorical (the agent counts asked for, evenly spaced), the y axis starts at
zero. Every text is escaped; the result is a complete `<svg>` element with its namespace, so it
is valid both inline in HTML and as a standalone .svg file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.model import Prediction

__all__ = ["Series", "line_chart_svg", "nice_ticks", "predictions_svg"]


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: its name (for the legend), its points and how it is drawn."""

    name: str
    points: tuple[tuple[float, float], ...]
    colour: str
    dashed: bool = False
    # (low, high) per point, drawn as a vertical range bar (e.g. min-max of repetitions).
    ranges: tuple[tuple[float, float], ...] = ()


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `maximum`, about `count` of them (1, 2 or 5 steps)."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


def line_chart_svg(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 360,
) -> str:
    """An SVG line chart of `series` over the union of their x values (categorical, sorted)."""
    e = html.escape
    left, right, top, bottom = 58, 150, 34, 46
    plot_width, plot_height = width - left - right, height - top - bottom
    xs = sorted({x for s in series for x, _ in s.points})
    top_value = max(
        [y for s in series for _, y in s.points] + [high for s in series for _, high in s.ranges] + [0.0]
    )
    ticks = nice_ticks(top_value * 1.05)
    y_max = ticks[-1] or 1.0

    def px(x: float) -> float:
        if len(xs) < 2:
            return left + plot_width / 2
        return left + plot_width * xs.index(x) / (len(xs) - 1)

    def py(y: float) -> float:
        return top + plot_height * (1 - y / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{e(title)}</text>',
    ]
    for tick in ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_label(tick)}</text>'
        )
    for x in xs:
        parts.append(
            f'<text x="{px(x):.1f}" y="{top + plot_height + 18}" text-anchor="middle" fill="#555">{_label(x)}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_width}" y1="{top + plot_height}" y2="{top + plot_height}" stroke="#888"/>'
        f'<text x="{left + plot_width / 2:.1f}" y="{height - 8}" text-anchor="middle">{e(x_label)}</text>'
        f'<text transform="translate(14 {top + plot_height / 2:.1f}) rotate(-90)" text-anchor="middle">{e(y_label)}</text>'
    )
    for position, line in enumerate(series):
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        points = sorted(line.points)
        if len(points) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{e(line.colour)}" stroke-width="2"{dash}/>'
            )
        for (x, y), span in zip(line.points, line.ranges or [None] * len(line.points), strict=True):
            if span is not None:
                low, high = span
                parts.append(
                    f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(low):.1f}" y2="{py(high):.1f}" '
                    f'stroke="{e(line.colour)}" stroke-width="1.5"/>'
                )
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{e(line.colour)}">'
                f"<title>{e(line.name)}: N={_label(x)}, {y:.2f} s</title></circle>"
            )
        legend_y = top + 8 + 20 * position
        legend_x = left + plot_width + 14
        parts.append(
            f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="{legend_y}" y2="{legend_y}" stroke="{e(line.colour)}" '
            f'stroke-width="2"{dash}/><text x="{legend_x + 28}" y="{legend_y + 4}">{e(line.name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def predictions_svg(predictions: Sequence[Prediction]) -> str:
    """The picture for `plan --plot`: predicted makespan and lower bound against N."""
    return line_chart_svg(
        [
            Series("predicted makespan", tuple((p.agents, p.makespan) for p in predictions), "#2a6fdb"),
            Series("lower bound", tuple((p.agents, p.lower_bound) for p in predictions), "#222", dashed=True),
        ],
        title="predicted makespan by agent count",
        x_label="agents (N)",
        y_label="seconds",
    )
