"""One test's pytest reports, packed once in the worker and unpacked once in the coordinator.

A test's reports (setup, call, teardown, subtests) cross as one msgpack document
`[location, keywords, phases]`: location and keywords once per test (pytest repeats them in
every phase), and each phase either

- compact, `[when, outcome, duration, start, stop, sections, user_properties, extra]`, for a
  TestReport with no longrepr (most reports of a suite: every passing phase); `extra` holds
  the attributes plugins added (pytest-html's `extras`...), passed through as pytest's own
  serialiser passes them, or
- pytest's own serialised form (`pytest_report_to_serializable`), a map, for anything else
  (a failure's traceback, a skip's reason, a subtest).

`unpack_test_reports` gives back pytest's serialised form for every phase either way, so what
reads reports (the session, the replay, the results file) sees one shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.protocol import wire

__all__ = ["COMPACT_KEYS", "compact_phase", "pack_test_reports", "unpack_test_reports"]

# The attributes of a plain TestReport, carried in the compact form's own fields (the others, a
# plugin's, go in its `extra` map). pytest 9.2 keeps the node id as `_id` (`nodeid` became a
# property), earlier ones as `nodeid`: both are the test's, sent once.
COMPACT_KEYS = frozenset(
    {
        "nodeid",
        "_id",
        "location",
        "keywords",
        "outcome",
        "longrepr",
        "when",
        "user_properties",
        "sections",
        "duration",
        "start",
        "stop",
    }
)


def compact_phase(attributes: Mapping[str, Any]) -> list[Any] | None:
    """The compact form of a report's attributes (its `__dict__`), or None with a longrepr."""
    if attributes.get("longrepr") is not None:
        return None
    return [
        attributes["when"],
        attributes["outcome"],
        attributes["duration"],
        attributes["start"],
        attributes["stop"],
        attributes["sections"],
        attributes["user_properties"],
        {key: value for key, value in attributes.items() if key not in COMPACT_KEYS},
    ]


def pack_test_reports(
    location: Sequence[Any] | None,
    keywords: Mapping[str, Any],
    phases: Sequence[list[Any] | Mapping[str, Any]],
) -> bytes:
    """Pack a test's phases (compact lists or serialised maps) with its location and keywords."""
    return wire.pack([location, keywords, phases])


def unpack_test_reports(node_id: str, data: bytes) -> list[dict[str, Any]]:
    """Every phase of a packed test in pytest's serialised form (`$report_type` TestReport)."""
    try:
        location, keywords, phases = wire.unpack(data)
    except (TypeError, ValueError) as exc:
        raise wire.WireError(f"malformed reports of {node_id}: {exc}") from exc
    reports: list[dict[str, Any]] = []
    for phase in phases:
        if isinstance(phase, dict):
            reports.append(phase)
            continue
        when, outcome, duration, start, stop, sections, user_properties, extra = phase
        reports.append(
            {
                **extra,
                "nodeid": node_id,
                "location": location,
                "keywords": keywords,
                "outcome": outcome,
                "longrepr": None,
                "when": when,
                "user_properties": user_properties,
                "sections": sections,
                "duration": duration,
                "start": start,
                "stop": stop,
                "$report_type": "TestReport",
            }
        )
    return reports
