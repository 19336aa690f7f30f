"""A finished run recorded in the duration store: each test's seconds (at load 1) and, for a
run's own agents, their fixed costs. A store that cannot be written warns; the run stands."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from orchestrator.model import Outcome, RunReport, TestResult
from orchestrator.planning.durations.store import DurationStore

__all__ = ["record_run", "save_durations", "update_store"]

# Durations of these outcomes are what the test costs (a skip costs almost nothing, and that is
# worth knowing); a crash, a timeout or a test that never ran says nothing about it.
_TIMED_OUTCOMES = frozenset(
    {Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED}
)


def record_run(
    store: DurationStore,
    report: RunReport,
    path: str,
    warn: Callable[[str], None],
    startup: tuple[str, int] | None = None,
) -> None:
    """Fold the run's durations into `store` and save it; `startup` (history key, capacity)
    records the agents' fixed costs too (a run's own agents; not after `merge`)."""
    learned = None
    if startup is not None:
        key, capacity = startup
        learned = store.startup.observe(key, report.agents, capacity)
    update_store(store, report.results, path, warn, changed=learned is not None)


def update_store(
    store: DurationStore,
    results: Sequence[TestResult],
    path: str,
    warn: Callable[[str], None],
    changed: bool = False,
) -> None:
    """Fold the results' durations into `store` and save it (also when only `changed` otherwise)."""
    timed = [r for r in results if r.outcome in _TIMED_OUTCOMES]
    observations = {r.node_id: _seconds_at_load_one(r) for r in timed}
    cpu = {r.node_id: r.final.cpu_seconds for r in timed if r.final is not None and r.final.cpu_seconds > 0}
    save_durations(store, observations, path, warn, changed, cpu)


def _seconds_at_load_one(result: TestResult) -> float:
    final = result.final
    return (
        final.seconds_at_load_one if final is not None and final.seconds_at_load_one > 0 else result.duration
    )


def save_durations(
    store: DurationStore,
    observations: Mapping[str, float],
    path: str,
    warn: Callable[[str], None],
    changed: bool = False,
    cpu: Mapping[str, float] | None = None,
) -> None:
    """Fold tests' seconds (and CPU-seconds, where measured) into `store` and save it (also when
    only `changed` otherwise)."""
    if not observations and not changed:
        return
    store.update(observations, cpu)
    try:
        store.save(path)
    except OSError as exc:
        # The run's result stands; only the next plan is less informed.
        warn(f"could not write the duration store {path}: {exc.strerror or exc}")
