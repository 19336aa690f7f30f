"""Values from a results document, whatever shape an old or odd file gives them; outcome colours.

Used by report/html.py, report/html_tests.py and report/timeline.py: every accessor tolerates a
missing key or a value of the wrong type (None, or an empty container), because a page is made
from files of older versions too, and every text leaves through `esc` (or `table`, whose cells
are escaped already).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.model import Outcome

OUTCOME_COLOURS = {
    Outcome.PASSED: "#3a9b54",
    Outcome.FAILED: "#d9443b",
    Outcome.ERROR: "#e9892b",
    Outcome.CRASHED: "#8e44ad",
    Outcome.TIMEOUT: "#b0306e",
    Outcome.NOT_RUN: "#9aa0a6",
    Outcome.SKIPPED: "#d8c33f",
    Outcome.XFAILED: "#7fa7c9",
    Outcome.XPASSED: "#3c7dbf",
}
UNKNOWN_COLOUR = "#666"

# Worst first: the order of the counts, the filter and a unit's outcome.
OUTCOME_ORDER = tuple(
    Outcome(value)
    for value in (
        "failed",
        "error",
        "crashed",
        "timeout",
        "not-run",
        "xpassed",
        "xfailed",
        "skipped",
        "passed",
    )
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def number(mapping: Mapping[str, Any], key: str) -> float | None:
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def seconds_text(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def outcome_or_none(value: Any) -> Outcome | None:
    try:
        return Outcome(value)
    except ValueError:
        return None


def colour_of(value: Any) -> str:
    outcome = outcome_or_none(value)
    return OUTCOME_COLOURS[outcome] if outcome else UNKNOWN_COLOUR


def badge(value: Any) -> str:
    return f'<span class="badge" style="background:{colour_of(value)}">{esc(value)}</span>'


def agent_name(agent: Mapping[str, Any]) -> str:
    return f"agent {agent.get('agent_id', '?')}"


def group_by_runner(agents: Sequence[Mapping[str, Any]]) -> list[tuple[Any, list[Mapping[str, Any]]]]:
    """Agents in lane order, under their CI runner (None when the document is not merged)."""
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for agent in agents:
        groups.setdefault(agent.get("runner"), []).append(agent)
    keys = sorted(groups, key=lambda k: (k is not None, str(k).zfill(8)))
    return [(k, sorted(groups[k], key=lambda a: str(a.get("agent_id", "")).zfill(8))) for k in keys]


def units_of(agent: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [u for u in as_list(agent.get("units")) if isinstance(u, Mapping)]


def ordered_outcomes(counts: Mapping[str, int]) -> list[str]:
    known = [o.value for o in OUTCOME_ORDER if o.value in counts]
    return known + sorted(k for k in counts if k not in known)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = ()) -> str:
    """A table of already escaped cells; columns in `numeric` are right-aligned."""
    right = set(numeric)
    head = "".join(
        f'<th class="n">{esc(h)}</th>' if i in right else f"<th>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in right else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
