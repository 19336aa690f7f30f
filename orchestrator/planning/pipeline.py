"""Collected items -> units -> estimates -> plan: written once for `run`, `shard` and `plan`.

Called by the pytest plugin (orchestrator/front/plugin.py) after pytest's own collection in the
coordinator's session, so `-k`, `-m`, `--lf`, `--deselect` and every plugin's
`pytest_collection_modifyitems` have already chosen the items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.fixtures import RESOURCES_MARKER
from orchestrator.model import GroupBy, Plan, TestUnit, UnitEstimate
from orchestrator.planning.durations.estimate import estimate_units
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.groups import GroupResolver, GroupSpec, read_groups
from orchestrator.planning.scheduling import plan_lpt
from orchestrator.planning.scheduling.split import kept_whole, split_oversized
from orchestrator.protocol.errors import UsageError

__all__ = ["Prepared", "prepare", "shard_of", "unit_of", "units_of"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """The units to run and the plan for them."""

    units: tuple[TestUnit, ...]
    plan: Plan
    # With --split: the long units their scoped fixtures kept whole, longest first.
    kept_whole: tuple[UnitEstimate, ...] = ()


def unit_of(item: pytest.Item, group_by: GroupBy) -> str:
    """The unit an item belongs to: its outermost class, else its file, else itself."""
    if group_by is GroupBy.CLASS:
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


def _scoped_fixtures(item: pytest.Item, allowed: frozenset[str]) -> tuple[str, ...] | None:
    """The class-, module- or package-scoped fixtures the item uses that a cut would set up once
    per chunk, less those in `allowed` (`--split-fixture`); None when pytest gave no fixture info."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    return tuple(
        name
        for name, defs in info.name2fixturedefs.items()
        if name not in allowed and any(d.scope in ("class", "module", "package") for d in defs)
    )


def units_of(
    items: Sequence[pytest.Item],
    group_by: GroupBy,
    groups: tuple[GroupSpec, ...] = (),
    split_fixtures: frozenset[str] = frozenset(),
) -> tuple[TestUnit, ...]:
    """Group items into units, in collection order (a unit's tests keep pytest's order).

    A unit is splittable when none of its tests uses a class-, module- or package-scoped fixture
    other than those of `split_fixtures` (`--split-fixture`: fixtures the user lets run once per
    chunk); otherwise it records the fixtures that keep it whole.

    A unit needs the most of each resource any of its tests needs, belongs to the test groups
    of all its tests (`groups`: those declared in pyproject.toml, besides the markers), holds
    the largest weight of its tests and runs alone when one of its tests must.
    """
    node_ids: dict[str, list[str]] = {}
    splittable: dict[str, bool] = {}
    kept_whole_by: dict[str, set[str]] = {}
    needs: dict[str, dict[str, float]] = {}
    limits: dict[str, dict[str, int]] = {}
    weights: dict[str, int] = {}
    alone: dict[str, bool] = {}
    resolver = GroupResolver(groups)
    for item in items:
        unit_id = unit_of(item, group_by)
        node_ids.setdefault(unit_id, []).append(item.nodeid)
        scoped = _scoped_fixtures(item, split_fixtures)
        splittable[unit_id] = splittable.get(unit_id, True) and scoped == ()
        kept_whole_by.setdefault(unit_id, set()).update(scoped or ())
        need = needs.setdefault(unit_id, {})
        for name, amount in resources_of(item).items():
            need[name] = max(need.get(name, 0.0), amount)
        constraints = resolver.of(item)
        limits.setdefault(unit_id, {}).update(constraints.groups)
        weights[unit_id] = max(weights.get(unit_id, 1), constraints.weight)
        alone[unit_id] = alone.get(unit_id, False) or constraints.alone
    return tuple(
        TestUnit(
            uid,
            tuple(ids),
            splittable[uid],
            tuple(sorted(needs[uid].items())),
            groups=tuple(sorted(limits[uid].items())),
            weight=weights[uid] if limits[uid] else 1,
            alone=alone[uid],
            kept_whole_by=tuple(sorted(kept_whole_by[uid])),
        )
        for uid, ids in node_ids.items()
    )


def resources_of(item: pytest.Item) -> dict[str, float]:
    """What the item's `@pytest.mark.orchestrate(resources={...})` markers ask of a node."""
    need: dict[str, float] = {}
    for marker in item.iter_markers(RESOURCES_MARKER):
        asked = marker.kwargs.get("resources", {})
        if not isinstance(asked, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            for k, v in asked.items()
        ):
            raise UsageError(
                f"{item.nodeid}: @pytest.mark.orchestrate(resources=...) takes a dict of resource "
                f"name to a positive amount, got {asked!r}"
            )
        for name, amount in asked.items():
            need[name] = max(need.get(name, 0.0), float(amount))
    return need


def prepare(
    units: Sequence[TestUnit],
    store: DurationStore,
    agents: int,
    split: bool,
    per_test: float = 0.0,
    load: float = 1.0,
) -> Prepared:
    """Estimate the units from the store and pack them into at most `agents` shards.

    `per_test`: the agents' own cost per test, learned from earlier runs (durations/startup.py).
    `load`: the agents per core they run at (above 1, each test is stretched by its CPU part).
    With `split`, oversized units without shared fixtures are cut first (scheduling/split.py).
    More agents than units would only start idle stacks, so the plan has at most one per unit.
    """
    units = tuple(units)
    whole: tuple[UnitEstimate, ...] = ()
    if split:
        estimates = estimate_units(units, store, per_test, load)
        units, whole = split_oversized(estimates, agents, store.get), kept_whole(estimates, agents)
    plan = plan_lpt(estimate_units(units, store, per_test, load), max(1, min(agents, len(units))))
    return Prepared(units, plan, whole)


def shard_of(
    units: Sequence[TestUnit], store: DurationStore, runners: int, index: int, split: bool
) -> tuple[Plan, tuple[TestUnit, ...]]:
    """The whole plan for `runners` CI runners, and the units of runner `index` (1-based).

    Every runner computes the same plan from the same collection and durations: no clamping to
    the unit count here, so a runner with nothing to do still knows the plan's fingerprint.
    """
    units = tuple(units)
    if split:
        units = split_oversized(estimate_units(units, store), runners, store.get)
    whole = plan_lpt(estimate_units(units, store), runners)
    return whole, tuple(e.unit for e in whole.shards[index - 1].units)


def collect_units(args: Sequence[str], group_by: GroupBy) -> tuple[TestUnit, ...]:
    """Collect in this process with pytest's own collection and return the units (quietly).

    For callers that are not a pytest session themselves (`orchestrate bench`). Raises
    UsageError with pytest's exit code when the collection fails.
    """
    import contextlib
    import io

    found: list[pytest.Item] = []
    roots: list[Path] = []

    class _Keep:
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            found.extend(session.items)
            roots.append(session.config.rootpath)

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = pytest.main([*args, "--collect-only", "-qq", "-p", "no:cacheprovider"], plugins=[_Keep()])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise UsageError(
            f"collection failed (pytest exit code {int(code)}): {output.getvalue().strip()[-500:]}"
        )
    groups = read_groups(roots[0] / "pyproject.toml") if roots else ()
    return units_of(found, group_by, groups)
