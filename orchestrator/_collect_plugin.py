"""pytest plugin loaded into the coordinator's one collection subprocess (`-p orchestrator._collect_plugin`).

Called by pytest itself in the process started by orchestrator/collect.py: after collection
(and after `-k`/`-m` deselection) it writes every item's node id and unit, plus the options the
coordinator has to honour, to the file named by ORCHESTRATE_COLLECT_OUT.
"""

from __future__ import annotations

import os

import pytest

from orchestrator.protocol import wire

OUT_ENV = "ORCHESTRATE_COLLECT_OUT"
GROUP_ENV = "ORCHESTRATE_GROUP_BY"


def unit_of(item: pytest.Item, group_by: str) -> str:
    """The unit an item belongs to: its outermost class, else its file, else itself."""
    if group_by == "class":
        outermost = None
        node = item.parent
        while node is not None:
            if isinstance(node, pytest.Class):
                outermost = node
            node = node.parent
        if outermost is not None:
            return outermost.nodeid
    file_node = item.getparent(pytest.File)  # type: ignore[type-abstract]
    return file_node.nodeid if file_node is not None else item.nodeid


def splittable(item: pytest.Item) -> bool:
    """Whether the item uses no class- or module-scoped fixture that a cut would duplicate."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for defs in info.name2fixturedefs.values():
        if any(d.scope in ("class", "module", "package") for d in defs):
            return False
    return True


def pytest_collection_finish(session: pytest.Session) -> None:
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    group_by = os.environ.get(GROUP_ENV, "class")
    config = session.config
    items = [[item.nodeid, unit_of(item, group_by), splittable(item)] for item in session.items]

    def ini(name: str, default: object) -> object:
        try:
            return config.getini(name)
        except (ValueError, KeyError):
            return default

    payload = wire.message(
        "collection",
        items=items,
        rootdir=str(config.rootpath),
        maxfail=int(config.getoption("maxfail", 0) or 0),
        junit={
            "suite_name": ini("junit_suite_name", "pytest"),
            "family": ini("junit_family", "xunit1"),
            "logging": ini("junit_logging", "no"),
            "duration_report": ini("junit_duration_report", "total"),
            "log_passing_tests": bool(ini("junit_log_passing_tests", True)),
        },
    )
    with open(out, "wb") as fh:
        fh.write(wire.pack(payload))
