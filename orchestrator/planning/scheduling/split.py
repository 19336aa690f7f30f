"""Cut units longer than a fair share into chunks, where that is safe. Pure; called before planning.

A unit longer than total/N caps every plan at its own length. A unit is `splittable` when none of
its tests uses a class-, module- or package-scoped fixture (decided at collection by
orchestrator/planning/pipeline.py): running its tests on several agents then sets nothing up twice that
pytest would have set up once. Such a unit is cut into consecutive chunks of about a quarter of
an agent's share (total/N/4) as soon as it is estimated above that: durations may be stale by a
factor of two either way (a class estimated at 6 s may take 12), and smaller chunks leave the
dynamic scheduler room to even out what the estimates got wrong. The bound becomes the longest
test rather than the longest class. Measured on the generated 60 s suite at 8 agents with
estimates 50% stale (benchmarks/, `--case split`): chunks of total/N/2 took 11.57 s, /4 10.55 s,
/8 10.87 s (there each chunk's dispatch cost more than the finer cut evened out; with a stack
that resets between units, each chunk also pays a reset).

A fixture the user names with `--split-fixture` (a per-process set-up that may run once per chunk
on each agent) does not keep a unit whole; a unit longer than an agent's share that such fixtures
do keep whole is named by the run (`kept_whole`), with the fixtures, so the user can decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from orchestrator.model import TestUnit, UnitEstimate


def _chunk_seconds(estimates: Sequence[UnitEstimate], agents: int) -> float | None:
    """The length of a chunk, a quarter of an agent's share (total/agents/4); None when nothing
    is to be cut."""
    total = sum(e.seconds for e in estimates)
    return total / agents / 4 if agents >= 2 and total > 0 else None


def kept_whole(estimates: Sequence[UnitEstimate], agents: int) -> tuple[UnitEstimate, ...]:
    """The units longer than an agent's share (total/agents) that their class-, module- or
    package-scoped fixtures keep whole, longest first: what caps the plan despite --split."""
    chunk = _chunk_seconds(estimates, agents)
    if chunk is None:
        return ()
    long = [
        e for e in estimates if e.unit.kept_whole_by and e.seconds > 4 * chunk and len(e.unit.node_ids) > 1
    ]
    return tuple(sorted(long, key=lambda e: -e.seconds))


def split_oversized(
    estimates: Sequence[UnitEstimate], agents: int, test_seconds: Callable[[str], float | None] | None = None
) -> tuple[TestUnit, ...]:
    """The units, with each splittable unit longer than total/agents/4 cut into chunks that long.

    `test_seconds`: each test's known seconds (None: not known), by which a unit is cut into
    chunks of about equal seconds; without it, or for tests it does not know (their unit's mean
    of the known), chunks of equal test counts. By seconds, a unit's few long tests (redis-py's
    1 s blocking pops) each become a chunk of their own instead of filling a few chunks of equal
    counts (one of its 15 chunks held 4.8 s of a 13.7 s suite)."""
    chunk = _chunk_seconds(estimates, agents)
    if chunk is None:
        return tuple(e.unit for e in estimates)
    units: list[TestUnit] = []
    for estimate in estimates:
        unit = estimate.unit
        if not unit.splittable or estimate.seconds <= chunk or len(unit.node_ids) < 2:
            units.append(unit)
            continue
        parts = _cut(unit.node_ids, _weights(unit.node_ids, test_seconds), estimate.seconds, chunk)
        units.extend(
            dataclasses.replace(unit, unit_id=f"{unit.unit_id} [part {n}/{len(parts)}]", node_ids=part)
            for n, part in enumerate(parts, start=1)
        )
    return tuple(units)


def _weights(node_ids: Sequence[str], test_seconds: Callable[[str], float | None] | None) -> list[float]:
    """Each test's share of its unit: its known seconds, the mean of the known for the rest
    (all equal when none is known)."""
    known = [test_seconds(n) if test_seconds is not None else None for n in node_ids]
    seen = [s for s in known if s is not None]
    mean = sum(seen) / len(seen) if seen else 1.0
    return [mean if s is None else s for s in known]


def _cut(
    node_ids: Sequence[str], weights: Sequence[float], seconds: float, chunk: float
) -> list[tuple[str, ...]]:
    """Consecutive chunks of about `chunk` seconds of a unit of `seconds`: each test's weight
    scaled to the unit's estimate; a chunk ends where ending it leaves it nearer `chunk` than
    taking the next test would; a test longer than `chunk` is a chunk of its own."""
    total = sum(weights)
    scale = seconds / total if total > 0 else 0.0
    parts: list[tuple[str, ...]] = []
    part: list[str] = []
    held = 0.0
    for node_id, weight in zip(node_ids, weights, strict=True):
        test = weight * scale
        if part and held + test - chunk > chunk - held:
            parts.append(tuple(part))
            part, held = [], 0.0
        part.append(node_id)
        held += test
    if part:
        parts.append(tuple(part))
    return parts
