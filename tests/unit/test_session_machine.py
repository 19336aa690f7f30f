"""The session as a sans-I/O machine: plain events in, `(agent_id, command)` values out.

No backend and no loop: each test hands the session events and reads the commands it decided
(`take_commands`), with an injected clock. The loop around it is tests/unit/test_session.py's.
"""

from __future__ import annotations

import pytest

from orchestrator.model import Attempt, Outcome, TestResult, TestUnit, UnitEstimate
from orchestrator.planning.scheduling import make_scheduler, plan_lpt
from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import InternalError
from orchestrator.protocol.reports import pack_test_reports
from orchestrator.run.agent_states import AgentState
from orchestrator.run.session import Session

A = TestUnit("t.py::A", ("t.py::A::one", "t.py::A::two"))
B = TestUnit("t.py::B", ("t.py::B::one",))


class ListSink:
    """A ReportSink keeping the finals; `stop_after_failures` plays pytest's -x."""

    def __init__(self, stop_after_failures: int = 0) -> None:
        self.finished: list[TestResult] = []
        self.stop_after_failures = stop_after_failures

    def test_started(self, agent_id: int, node_id: str) -> None:
        pass

    def test_finished(self, result: TestResult, replay: bool) -> None:
        self.finished.append(result)

    def attempt_retried(self, node_id: str, attempt: Attempt) -> None:
        pass

    def warning(self, agent_id: int, warning: dict) -> None:
        pass

    def agent_state(self, agent_id: int, text: str) -> None:
        pass

    def stop_requested(self) -> str:
        failures = sum(1 for r in self.finished if r.outcome.is_failure)
        return "stop" if self.stop_after_failures and failures >= self.stop_after_failures else ""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ended(agent_id: int, node_id: str, outcome: str = "passed", seconds: float = 1.0) -> p.TestEnded:
    reports = [
        {"nodeid": node_id, "when": "setup", "outcome": "passed", "duration": 0.0},
        {"nodeid": node_id, "when": "call", "outcome": outcome, "duration": seconds},
        {"nodeid": node_id, "when": "teardown", "outcome": "passed", "duration": 0.0},
    ]
    return p.TestEnded(
        agent_id, node_id=node_id, reports=pack_test_reports(None, {}, reports), seconds=seconds
    )


def _session(agents: int = 2, clock: Clock | None = None, sink: ListSink | None = None, **kwargs) -> Session:
    plan = plan_lpt([UnitEstimate(A, 4.0), UnitEstimate(B, 2.0)], agents)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(agents)]
    session = Session(
        (A, B), make_scheduler("dynamic", plan), configs, sink or ListSink(), clock=clock or Clock(), **kwargs
    )
    session.start(100.0)
    return session


def _names(commands: list[tuple[int, p.Command]]) -> list[tuple[int, str]]:
    return [(agent_id, command.name) for agent_id, command in commands]


def _assigned(commands: list[tuple[int, p.Command]]) -> dict[int, list[str]]:
    return {
        agent_id: [u.unit_id for u in command.units]
        for agent_id, command in commands
        if isinstance(command, p.Assign)
    }


def test_nothing_is_sent_before_an_agent_is_ready() -> None:
    session = _session()
    session.dispatch()
    assert session.take_commands() == []
    assert not session.done()


def test_ready_agents_are_assigned_their_units_then_flushed_and_the_run_is_done() -> None:
    clock = Clock()
    session = _session(clock=clock)
    session.handle(p.AgentReady(0, node=p.NodeInfo(hostname="h")))
    session.handle(p.AgentReady(1, node=p.NodeInfo(hostname="h")))
    session.dispatch()
    commands = session.take_commands()
    assert _assigned(commands) == {0: ["t.py::A"], 1: ["t.py::B"]}
    assert session.take_commands() == [], "taken once"

    clock.now = 101.5
    session.handle(_ended(0, "t.py::A::one"))
    session.handle(_ended(0, "t.py::A::two"))
    session.handle(p.UnitFinished(0, unit_id="t.py::A"))
    session.handle(_ended(1, "t.py::B::one", "failed"))
    session.handle(p.UnitFinished(1, unit_id="t.py::B"))
    assert session.done()

    session.stop_agents()
    assert _names(session.take_commands()) == [(0, "finish"), (1, "finish")]
    session.handle(p.TearingDown(0))
    assert not session.agents_run_nothing_more()
    session.handle(p.TearingDown(1))
    assert session.agents_run_nothing_more()
    report = session.report()
    assert {r.node_id: r.outcome for r in report.results} == {
        "t.py::A::one": Outcome.PASSED,
        "t.py::A::two": Outcome.PASSED,
        "t.py::B::one": Outcome.FAILED,
    }
    # The injected clock: the attempt ended at 1.5 s of the run and lasted the second it measured.
    attempt = next(r for r in report.results if r.node_id == "t.py::B::one").attempts[-1]
    assert (attempt.started, attempt.finished) == (pytest.approx(0.5), pytest.approx(1.5))


def test_an_agent_asking_for_work_is_given_more_then_flushed_once() -> None:
    session = _session(agents=1)
    session.handle(p.AgentReady(0))
    session.dispatch()
    assert _assigned(session.take_commands()) == {0: ["t.py::A"]}
    session.handle(p.WorkWanted(0))
    session.dispatch()
    assert _assigned(session.take_commands()) == {0: ["t.py::B"]}
    session.handle(p.WorkWanted(0))
    session.dispatch()
    assert session.take_commands() == []  # B is its unit ahead: no flush while A runs
    session.handle(p.UnitFinished(0, unit_id="t.py::A"))
    session.dispatch()
    assert _names(session.take_commands()) == [(0, "flush")]
    session.handle(p.WorkWanted(0))
    session.dispatch()
    assert session.take_commands() == []


def test_an_agent_the_plan_has_no_shard_for_is_finished_when_ready() -> None:
    plan = plan_lpt([UnitEstimate(A, 4.0), UnitEstimate(B, 2.0)], 1)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(2)]
    session = Session((A, B), make_scheduler("dynamic", plan), configs, ListSink(), clock=Clock())
    session.handle(p.AgentReady(1))
    assert _names(session.take_commands()) == [(1, "finish")]


def test_after_pytest_exit_every_agent_is_aborted_and_a_late_ready_one_too() -> None:
    session = _session()
    session.handle(p.AgentReady(0))
    session.dispatch()
    session.take_commands()
    session.handle(p.TestExited(0, node_id="t.py::A::one", message="bye", returncode=3))
    assert session.done()
    session.handle(p.AgentReady(1))
    assert _names(session.take_commands()) == [(1, "abort")]
    session.stop_agents()
    assert _names(session.take_commands()) == [(0, "abort"), (1, "abort")]
    report = session.report()
    assert report.stop is not None and report.stop.kind == "exit"


def test_a_failed_agents_work_is_requeued_and_its_stale_events_dropped() -> None:
    session = _session()
    session.handle(p.AgentReady(0))
    session.handle(p.AgentReady(1))
    session.dispatch()
    session.take_commands()
    session.handle(_ended(0, "t.py::A::one"))
    session.handle(p.AgentFailed(0, message="agent lost: killed"))
    # Stale: what the failed agent still says about its tests changes nothing.
    session.handle(_ended(0, "t.py::A::two"))
    session.handle(p.UnitFinished(0, unit_id="t.py::A"))
    session.handle(p.TearingDown(0))
    session.handle(p.AgentStopped(0))
    session.handle(p.WorkWanted(1))
    session.dispatch()
    commands = session.take_commands()
    assert [[w.node_ids for w in c.units] for a, c in commands if isinstance(c, p.Assign) and a == 1] == [
        [("t.py::A::two",)]
    ]
    session.handle(_ended(1, "t.py::A::two"))
    session.handle(_ended(1, "t.py::B::one"))
    report = session.report()
    by_id = {r.node_id: r for r in report.results}
    assert [a.outcome for a in by_id["t.py::A::two"].attempts] == [Outcome.CRASHED, Outcome.PASSED]
    assert by_id["t.py::A::two"].attempts[0].agent_id == 0
    assert report.agents[0].error == "agent lost: killed"


def test_an_event_the_agents_state_does_not_accept_is_an_internal_error() -> None:
    session = _session()
    with pytest.raises(InternalError, match="agent 0: event 'test_ended' while starting"):
        session.handle(_ended(0, "t.py::A::one"))
    session.handle(p.AgentStopped(1))
    with pytest.raises(InternalError, match="agent 1: event 'agent_failed' while stopped"):
        session.handle(p.AgentFailed(1, message="late"))


def test_a_failed_teardown_keeps_the_agent_tearing_down_and_says_why() -> None:
    session = _session()
    session.handle(p.AgentReady(0))
    session.handle(p.TearingDown(0))
    session.handle(p.AgentFailed(0, message="stack teardown failed: busy"))
    session.handle(p.TearingDown(1))
    assert session.agents_run_nothing_more()
    assert "agent 0: stack teardown failed: busy" in session.report().messages


def test_a_second_ctrl_c_aborts_every_agent_not_stopped() -> None:
    session = _session()
    session.handle(p.AgentReady(0))
    session.handle(p.AgentStopped(1))
    session.interrupt()
    session.stop_agents()
    assert _names(session.take_commands()) == [(0, "abort")]
    session.interrupt_again()
    assert _names(session.take_commands()) == [(0, "abort")]
    session.gave_up_waiting(120.0)
    report = session.report()
    assert report.interrupted
    assert "agent 0 did not stop within 120 s" in report.messages


def test_the_sinks_maxfail_stops_the_run() -> None:
    session = _session(sink=ListSink(stop_after_failures=1))
    session.handle(p.AgentReady(0))
    session.dispatch()
    session.handle(_ended(0, "t.py::A::one", "failed"))
    session.check_stop_requested()
    assert session.done()
    session.stop_agents()
    assert (0, "abort") in _names(session.take_commands())


def test_each_agents_state_follows_its_events() -> None:
    session = _session()

    def states() -> list[AgentState]:
        return [session.agent_state(0), session.agent_state(1)]

    assert states() == [AgentState.STARTING, AgentState.STARTING]
    session.handle(p.AgentPhase(0, phase="services", waiting=("db",), timeout=60.0))
    session.handle(p.StackReady(0))
    session.handle(p.AgentReady(0))
    session.handle(p.AgentFailed(1, message="stack failed: db"))
    assert states() == [AgentState.READY, AgentState.FAILED]
    session.handle(p.TearingDown(0))
    session.handle(p.TearingDown(1))
    assert states() == [AgentState.TEARING_DOWN, AgentState.TEARING_DOWN]
    session.handle(p.AgentStopped(0))
    session.handle(p.AgentStopped(1))
    assert states() == [AgentState.STOPPED, AgentState.STOPPED]
    assert [a.phase for a in session.status().agents] == ["stopped", "failed"]


def test_the_makespan_re_estimated_at_half_counts_the_agents_own_cost_per_test() -> None:
    """A first run of fast tests: each test's 0.01 s is a tenth of what it costs its agent (0.1 s
    apart). At half of the tests the re-estimate goes at that pace, not at the tests' durations."""
    tests = tuple(f"f.py::test_{n}" for n in range(40))
    unit = TestUnit("f.py", tests)
    clock = Clock()
    plan = plan_lpt([UnitEstimate(unit, 0.1 * len(tests), unseen_tests=len(tests))], 1)
    session = Session(
        (unit,), make_scheduler("dynamic", plan), [p.AgentConfig(0, "run", "o", ".")], ListSink(), clock=clock
    )
    session.start(100.0)
    session.handle(p.AgentReady(0))
    session.dispatch()
    for node_id in tests:
        clock.now += 0.1
        session.handle(_ended(0, node_id, seconds=0.01))
    session.handle(p.UnitFinished(0, unit_id="f.py"))

    report = session.report()
    assert report.plan["reestimated_makespan_at_half"] == pytest.approx(4.0, rel=0.05)  # 40 x 0.1 s
