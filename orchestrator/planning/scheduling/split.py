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
import math
from collections.abc import Sequence

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


def split_oversized(estimates: Sequence[UnitEstimate], agents: int) -> tuple[TestUnit, ...]:
    """The units, with each splittable unit longer than total/agents/4 cut into chunks that long."""
    chunk = _chunk_seconds(estimates, agents)
    if chunk is None:
        return tuple(e.unit for e in estimates)
    units: list[TestUnit] = []
    for estimate in estimates:
        unit = estimate.unit
        if not unit.splittable or estimate.seconds <= chunk or len(unit.node_ids) < 2:
            units.append(unit)
            continue
        chunks = min(len(unit.node_ids), math.ceil(estimate.seconds / chunk))
        size = math.ceil(len(unit.node_ids) / chunks)
        parts = [unit.node_ids[i : i + size] for i in range(0, len(unit.node_ids), size)]
        units.extend(
            dataclasses.replace(unit, unit_id=f"{unit.unit_id} [part {n}/{len(parts)}]", node_ids=part)
            for n, part in enumerate(parts, start=1)
        )
    return tuple(units)
