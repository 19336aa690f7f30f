"""The session's event loop against a scripted fake backend: pure logic, no Ray, no pytest process.

The fake implements the AgentBackend protocol: agents "run" a unit the moment it is assigned
and report pytest-shaped setup/call/teardown reports. Integration through real processes lives
in tests/integration and tests/faults; this file pins the session's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator import events as ev
from orchestrator.model import Collection, Outcome, TestUnit, UnitEstimate
from orchestrator.scheduling import make_scheduler, plan_lpt
from orchestrator.session import Session


def _reports(node_id: str, outcome: str) -> list[dict]:
    return [
        {"nodeid": node_id, "when": "setup", "outcome": "passed", "duration": 0.01},
        {"nodeid": node_id, "when": "call", "outcome": outcome, "duration": 0.1},
        {"nodeid": node_id, "when": "teardown", "outcome": "passed", "duration": 0.01},
    ]


class FakeBackend:
    """Agents that pass every test at once, except `failing` ones; `dies_on` kills an agent."""

    def __init__(self, failing: set[str] = frozenset(), dies_on: str | None = None) -> None:
        self.failing = failing
        self.dies_on = dies_on
        self.pending: list[ev.Event] = []
        self.assigned: dict[int, list[str]] = {}
        self.dead: set[int] = set()
        self.shut_down = False

    def start(self, configs: Sequence) -> None:
        for config in configs:
            self.pending.append(ev.AgentReady(config.agent_id, host="fake"))

    def assign(self, agent_id: int, units: Sequence[TestUnit]) -> None:
        for unit in units:
            for node_id in unit.node_ids:
                self.assigned.setdefault(agent_id, []).append(node_id)
                self.pending.append(ev.TestStarted(agent_id, node_id=node_id))
                if node_id == self.dies_on and not self.dead:
                    self.dead.add(agent_id)
                    self.pending.append(ev.AgentFailed(agent_id, message="agent lost: killed"))
                    # Stale: a report the dead agent's worker still sent after the failure.
                    self.pending.append(
                        ev.TestReported(agent_id, node_id=node_id, report=_reports(node_id, "passed")[0])
                    )
                    self.pending.append(ev.AgentStopped(agent_id))
                    return
                outcome = "failed" if node_id in self.failing else "passed"
                for report in _reports(node_id, outcome):
                    self.pending.append(ev.TestReported(agent_id, node_id=node_id, report=report))
            self.pending.append(ev.UnitFinished(agent_id, unit_id=unit.unit_id))
        self.pending.append(ev.WorkWanted(agent_id))

    def flush(self, agent_id: int) -> None:
        pass

    def finish(self, agent_id: int) -> None:
        if agent_id not in self.dead:
            self.pending.append(ev.AgentStopped(agent_id))

    abort = finish

    def wait_events(self, timeout: float) -> list[ev.Event]:
        events, self.pending = self.pending, []
        return events

    def shutdown(self) -> None:
        self.shut_down = True


class _Config:
    def __init__(self, agent_id: int) -> None:
        self.agent_id = agent_id


def _session(backend: FakeBackend, agents: int = 2, **kwargs) -> Session:
    units = tuple(TestUnit(f"t.py::T{u}", tuple(f"t.py::T{u}::test_{i}" for i in range(3))) for u in range(4))
    collection = Collection(units=units, rootdir=".")
    plan = plan_lpt([UnitEstimate(u, float(len(u.node_ids))) for u in units], agents)
    scheduler = make_scheduler("dynamic", plan)
    return Session(collection, scheduler, backend, [_Config(i) for i in range(agents)], **kwargs)  # type: ignore[list-item]


def test_every_test_gets_one_outcome_and_failures_set_the_exit_code() -> None:
    backend = FakeBackend(failing={"t.py::T1::test_2"})
    report = _session(backend).run()

    outcomes = {r.node_id: r.outcome for r in report.results}
    assert len(outcomes) == 12
    assert outcomes.pop("t.py::T1::test_2") is Outcome.FAILED
    assert set(outcomes.values()) == {Outcome.PASSED}
    assert report.exit_code == 1
    assert not backend.shut_down, "the session's creator shuts the backend down"


def test_a_lost_agents_unit_is_rerun_elsewhere_and_its_stale_reports_are_dropped() -> None:
    backend = FakeBackend(dies_on="t.py::T0::test_1")
    report = _session(backend).run()

    by_id = {r.node_id: r for r in report.results}
    lost = by_id["t.py::T0::test_1"]
    assert [a.outcome for a in lost.attempts] == [Outcome.CRASHED, Outcome.PASSED]
    assert lost.attempts[-1].agent_id != lost.attempts[0].agent_id
    assert all(r.outcome is Outcome.PASSED for r in report.results)
    # Each test's final attempt has exactly its own three reports: nothing stale mixed in.
    assert all(len(r.attempts[-1].reports) == 3 for r in report.results)


def test_maxfail_stops_the_run_and_the_rest_is_not_run() -> None:
    failing = {f"t.py::T{u}::test_0" for u in range(4)}
    report = _session(FakeBackend(failing=failing), agents=1, maxfail=1).run()

    counts = report.counts()
    assert counts[Outcome.FAILED] == 1
    assert counts[Outcome.NOT_RUN] >= 1
    assert sum(counts.values()) == 12
    assert report.exit_code == 1


def test_reruns_turn_a_failure_into_attempts() -> None:
    report = _session(FakeBackend(failing={"t.py::T2::test_0"}), reruns=2).run()

    result = {r.node_id: r for r in report.results}["t.py::T2::test_0"]
    assert result.outcome is Outcome.FAILED
    assert [a.outcome for a in result.attempts] == [Outcome.FAILED] * 3
