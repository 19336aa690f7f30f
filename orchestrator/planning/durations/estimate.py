"""Predicted seconds for each collected unit, from the duration history. Pure: no I/O.

Called by the CLI between collection and planning: `estimate_units(collection.units, store)`
feeds `scheduling.plan_lpt`. A test with history is predicted at its moving average; a test
without is guessed, most specific guess first:

1. the median of the known tests of its module (the node id before the first "::"): tests of
   one file tend to share fixtures and weight, a new test in a slow integration module is
   likely slow too;
2. the median of every test in the store: what a test of this suite usually takes;
3. DEFAULT_TEST_SECONDS when the store is empty.

Medians, not means, so one pathological test does not inflate every guess.

The store keeps seconds at load one (alone on the machine). A plan for agents that want more
CPU than the cores have (`load`: the agents' CPU wanted per core, from how many there are and
each test's recorded `cpu_share`) stretches each known test by its recorded CPU-seconds, as the
load stretched them when they ran (orchestrator/run/host_load.py takes that stretch out): a
test that only waits on a service is not slowed, one that computes all along takes `load` times
as long. Guessed tests are not stretched: nothing is known of their CPU.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from orchestrator.model import TestUnit, UnitEstimate
from orchestrator.planning.durations.store import DurationStore

# The guess for a test when nothing at all is known. With an empty store every test gets it,
# so the plan balances test counts and the value only scales the printed predictions; 0.1 s is
# a fair order of magnitude for a unit test including its share of fixture setup, and keeps
# the predicted wall time of a first run honest rather than zero.
DEFAULT_TEST_SECONDS = 0.1


def estimate_units(
    units: Sequence[TestUnit], store: DurationStore, per_test: float = 0.0, load: float = 1.0
) -> tuple[UnitEstimate, ...]:
    """One UnitEstimate per unit, in the order given; `unseen_tests` counts the guessed tests.

    `per_test`: an agent's own cost per test beyond its duration (durations/startup.py), added
    to every test. `load`: the agents per core the plan is for (above 1: stretched, see above).
    """
    known = {node_id: store.get(node_id) for unit in units for node_id in unit.node_ids}
    if load > 1.0:
        known = {node_id: _stretched(s, store.cpu(node_id), load) for node_id, s in known.items()}

    # Module samples: the store's tests by exact node id, plus collected tests the store only
    # knows through a JUnit import (a dict, so a test counts once however it was found).
    seconds_by_node_id = {node_id: history.seconds for node_id, history in store.items()}
    seconds_by_node_id.update((n, s) for n, s in known.items() if s is not None)
    samples_by_module: dict[str, list[float]] = {}
    for node_id, seconds in seconds_by_node_id.items():
        samples_by_module.setdefault(_module(node_id), []).append(seconds)

    everything = store.known_seconds()
    suite_guess = statistics.median(everything) if everything else DEFAULT_TEST_SECONDS
    guess_by_module: dict[str, float] = {}

    def guess(node_id: str) -> float:
        module = _module(node_id)
        if module not in guess_by_module:
            samples = samples_by_module.get(module)
            guess_by_module[module] = statistics.median(samples) if samples else suite_guess
        return guess_by_module[module]

    estimates = []
    for unit in units:
        seconds = 0.0
        unseen = 0
        # The unit's tests whose CPU is recorded: their CPU and their seconds.
        cpu = timed = 0.0
        for node_id in unit.node_ids:
            test_seconds = known[node_id]
            if test_seconds is None:
                test_seconds = guess(node_id)
                unseen += 1
            elif (test_cpu := store.cpu(node_id)) is not None:
                cpu += test_cpu
                timed += test_seconds
            seconds += test_seconds + per_test
        busy = min(1.0, cpu / timed) if timed > 0.0 else 1.0
        estimates.append(UnitEstimate(unit, seconds, unseen, busy))
    return tuple(estimates)


def cpu_share(units: Sequence[TestUnit], store: DurationStore, per_test: float = 0.0) -> float | None:
    """The CPU-seconds the units' tests spend per second they run alone (their recorded CPU,
    their services' included, over their seconds at load one): how much of a core an agent
    running them keeps busy. `per_test`: a cost around each test that is all CPU (the agents'
    and the coordinator's own), added to both. None when none of them has its CPU recorded."""
    cpu = seconds = 0.0
    for unit in units:
        for node_id in unit.node_ids:
            test_cpu = store.cpu(node_id)
            test_seconds = store.get(node_id)
            if test_cpu is not None and test_seconds:
                cpu += test_cpu + per_test
                seconds += test_seconds + per_test
    return cpu / seconds if seconds > 0.0 else None


def _stretched(seconds: float | None, cpu: float | None, load: float) -> float | None:
    """A test's seconds at load one, stretched to `load`: the inverse of host_load's
    `seconds_at_load_one` (its CPU part slowed by the load, never more than all of it)."""
    if seconds is None or not cpu:
        return seconds
    return min(seconds * load, seconds + cpu * (load - 1.0))


def _module(node_id: str) -> str:
    return node_id.partition("::")[0]
