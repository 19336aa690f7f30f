"""One case's figures: each method's medians (min-max) per N, its CPU-seconds, and their table.

Called by benchmarks/run.py once a case's measurements are in: `summarise` turns them into
{method: {N: cell}}, the JSON part of the case, and `format_table` into the Markdown table printed
and written beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.methods import SERIAL, Measurement

__all__ = ["format_table", "spread", "summarise"]


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(
    measurements: Sequence[Measurement],
    agents_list: Sequence[int],
    methods: Sequence[str],
    lower_bound: dict[str, float],
) -> dict[str, dict[str, dict[str, Any]]]:
    """{method: {N: {"median", "min", "max", "ratio" (to the bound), "runs", "note", ...}}}.

    Where measured: "first_test" (seconds to the first test), "cpu" (the machine's busy
    CPU-seconds per run) and "own_cpu" (the run's processes' and containers'), each a spread.
    """
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for method in methods:
        summary[method] = {}
        for agents in agents_list:
            on = 1 if method == SERIAL else agents
            runs = [m for m in measurements if m.method == method and m.agents == on]
            cell: dict[str, Any] = spread([m.seconds for m in runs if m.seconds is not None])
            bound = lower_bound.get(str(agents))
            cell["ratio"] = None if cell["median"] is None or not bound else cell["median"] / bound
            cell["runs"] = len([m for m in runs if m.seconds is not None])
            cell["note"] = "; ".join(sorted({m.note for m in runs if m.note}))
            firsts = [m.first_test_seconds for m in runs if m.first_test_seconds is not None]
            if firsts:
                cell["first_test"] = spread(firsts)
            cpus = [m.cpu_seconds for m in runs if m.seconds is not None and m.cpu_seconds is not None]
            if cpus:
                cell["cpu"] = spread(cpus)
            owns = [own for m in runs if m.seconds is not None and (own := _own_cpu(m)) is not None]
            if owns:
                cell["own_cpu"] = spread(owns)
            summary[method][str(agents)] = cell
    return summary


def _own_cpu(m: Measurement) -> float | None:
    """The run's own processes' CPU-seconds plus its containers', where both were measured."""
    if m.process_cpu_seconds is None or m.container_cpu_seconds is None:
        return None
    return m.process_cpu_seconds + m.container_cpu_seconds


def format_table(
    summary: dict[str, dict[str, dict[str, Any]]],
    agents_list: Sequence[int],
    lower_bound: dict[str, float],
    serial_median: float | None,
    serial_cpu_per_core: float | None = None,
    bound_name: str = "lower bound",
) -> str:
    """One case's table: median seconds (min-max, x lower bound) per method and N, machine CPU-s."""
    header = ["method"] + [f"N={n}" for n in agents_list]
    rows = []
    if lower_bound:
        rows.append([bound_name] + [f"{lower_bound[str(n)]:.1f}s" for n in agents_list])
    if serial_median is not None:
        rows.append(["serial measured / N"] + [f"{serial_median / n:.1f}s" for n in agents_list])
    if serial_cpu_per_core is not None:
        rows.append(["serial machine CPU-s / cores"] + [f"{serial_cpu_per_core:.1f}s" for _ in agents_list])
    for method, by_agents in summary.items():
        cells, firsts, cpus, owns = [], [], [], []
        for n in agents_list:
            cell = by_agents[str(n)]
            if cell["median"] is None:
                cells.append("n/a" if "n/a" in cell["note"] else "failed")
            else:
                ratio = f", {cell['ratio']:.2f}x" if cell["ratio"] is not None else ""
                cells.append(f"{cell['median']:.2f}s ({cell['min']:.2f}-{cell['max']:.2f}{ratio})")
            first = cell.get("first_test")
            firsts.append(
                "" if not first else f"{first['median']:.2f}s ({first['min']:.2f}-{first['max']:.2f})"
            )
            cpus.append(_spread_text(cell.get("cpu")))
            owns.append(_spread_text(cell.get("own_cpu")))
        rows.append([method] + cells)
        if any(firsts):
            rows.append([f"{method}: to first test"] + firsts)
        if any(cpus):
            rows.append([f"{method}: machine CPU-s"] + cpus)
        if any(owns):
            rows.append([f"{method}: own+containers CPU-s"] + owns)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def _spread_text(figures: dict[str, float] | None) -> str:
    return "" if not figures else f"{figures['median']:.1f}s ({figures['min']:.1f}-{figures['max']:.1f})"
