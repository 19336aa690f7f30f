"""The run's status while it runs, read from the session's records: what its displays show.

Built by the session (orchestrator/run/session.py) when a display asks for it; reads the agents'
records, which tests are still open (the ledger) and the live estimate, and changes none of
them. The values and their rendering are orchestrator/report/status.py's and live_view.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from orchestrator.planning.durations.learning import LiveEstimate
from orchestrator.report.status import SLOW_MIN_SECONDS, AgentStatus, RunStatus, SlowTest
from orchestrator.run.agent_record import AgentRecord

__all__ = ["Forecast", "late_services", "run_status"]


@dataclass(frozen=True, slots=True)
class Forecast:
    """What the ETA adds to the tests' work: the agents' predicted start-up (from the session's
    start to ready) and teardown (stacks down), from the duration store's start-up history."""

    startup_seconds: float = 0.0
    teardown_seconds: float = 0.0


def run_status(
    records: Collection[AgentRecord],
    is_open: Callable[[str], bool],
    live: LiveEstimate,
    predicted_by_unit: Mapping[str, float],
    *,
    now: float,
    failed: int,
    errors: int,
    forecast: Forecast,
    stopping_at: float | None,
    unplanned: Collection[int],
    queued_units: int = 0,
) -> RunStatus:
    """The run as it stands at `now` (seconds from its start): tests done, failures so far, each
    agent's phase, slow tests, the ETA (`stopping_at`: when the agents were told to stop)."""
    agents: list[AgentStatus] = []
    slow: list[SlowTest] = []
    for record in records:
        running = None
        if record.ready_at is not None and not record.ended:
            running = record.running_test(is_open)
        agent = record.view(now, running, predicted_by_unit.get, stopping_at is not None)
        agents.append(agent)
        if agent.phase == "running" and running is not None:
            # How long this test has run: since the test before it ended here.
            since = max(record.last_end_at, record.ready_at or 0.0)
            unit = record.units.get(agent.unit)
            recorded = (agent.estimate or 0.0) / max(1, len(unit.node_ids) if unit else 1)
            if now - since >= max(SLOW_MIN_SECONDS, 2 * recorded):
                slow.append(SlowTest(running, record.agent_id, now - since))
    if stopping_at is not None:
        eta: float | None = max(0.0, forecast.teardown_seconds - (now - stopping_at))
    else:
        eta = _eta(records, is_open, live, now, forecast, unplanned, queued_units)
    return RunStatus(
        elapsed=now,
        tests_done=live.tests_ended,
        tests_total=live.tests,
        failed=failed,
        errors=errors,
        eta_seconds=eta,
        agents=tuple(agents),
        slow=tuple(slow),
    )


def late_services(records: Iterable[AgentRecord], now: float, told: set[tuple[int, float]]) -> list[str]:
    """The notices of services not ready after half their ready timeout, each said once (`told`
    keeps which agents' waits were named, by when they began)."""
    from orchestrator.report.status import late_service_notice

    notices = []
    for record in records:
        if record.ready_at is not None or record.phase != "services" or record.ended:
            continue
        agent = record.view(now, None, lambda unit_id: None, False)
        key = (record.agent_id, record.phase_at)
        if agent.late and key not in told:
            told.add(key)
            notices.append(late_service_notice(agent))
    return notices


def _eta(
    records: Collection[AgentRecord],
    is_open: Callable[[str], bool],
    live: LiveEstimate,
    now: float,
    forecast: Forecast,
    unplanned: Collection[int],
    queued_units: int,
) -> float | None:
    """Seconds until the run is predicted to end (tests, then teardown); None while no agent is
    ready and no start-up was predicted. An agent still starting is expected at the predicted
    start-up, or when the first agent was ready if that was later (they start together, on the
    same machines). Stack resets are counted apart from the pace: one per unit still to start
    (queued, or held behind an agent's current one), at the mean measured so far."""
    ready = [a for a in records if a.state.takes_work]
    starting = [a for a in records if a.ready_at is None and not a.ended and a.agent_id not in unplanned]
    if not ready and not (starting and forecast.startup_seconds > 0):
        return None
    first_ready = min((a.ready_at for a in records if a.ready_at is not None), default=0.0)
    expected_ready = max(forecast.startup_seconds, first_ready)
    ready_in = [0.0] * len(ready) + [max(0.0, expected_ready - now)] * len(starting)
    spent = sum(a.spent_seconds for a in records)
    resets = sum(a.resets for a in records)
    reset_mean = sum(a.reset_seconds for a in records) / resets if resets else 0.0
    resets_left = queued_units + sum(max(0, len(a.units) - 1) for a in ready)
    held = ([n for unit in a.units.values() for n in unit.node_ids] for a in ready)
    running = [
        (test, now - max(a.last_end_at, a.ready_at or 0.0))
        for a in ready
        if (test := a.running_test(is_open)) is not None
    ]
    return live.eta(ready_in, spent, held, running, resets_left * reset_mean) + forecast.teardown_seconds
