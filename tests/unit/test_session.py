"""The session's event loop against a scripted backend: pure logic, no Ray, no pytest process.

The fake implements the AgentBackend protocol: agents "run" a unit the moment it is assigned
and report what the script says each attempt of a test does (pass, fail, crash the worker,
time out, call pytest.exit, raise KeyboardInterrupt, go uncollected, or take the agent down).
Integration through real processes lives in tests/integration and tests/faults; this file pins
the session's ownership of attempts, retries and outstanding work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from orchestrator.model import Attempt, Outcome, TestResult, TestUnit, UnitEstimate
from orchestrator.planning.scheduling import make_scheduler, plan_lpt
from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import InternalError
from orchestrator.protocol.reports import pack_test_reports
from orchestrator.run.invariant import check_results
from orchestrator.run.loop import run_session
from orchestrator.run.session import Session


def _reports(node_id: str, outcome: str) -> list[dict]:
    return [
        {"nodeid": node_id, "when": "setup", "outcome": "passed", "duration": 0.01},
        {"nodeid": node_id, "when": "call", "outcome": outcome, "duration": 0.1},
        {"nodeid": node_id, "when": "teardown", "outcome": "passed", "duration": 0.01},
    ]


def _ended(agent_id: int, node_id: str, reports: list[dict], seconds: float = 0.12) -> p.TestEnded:
    """The one event of a test that ran to its teardown, its reports packed as a worker packs them."""
    return p.TestEnded(
        agent_id, node_id=node_id, reports=pack_test_reports(None, {}, reports), seconds=seconds
    )


class ScriptedBackend:
    """Agents that do, on each attempt of a test, what `script[node_id]` says (default: pass)."""

    def __init__(
        self, script: dict[str, list[str]] | None = None, interrupt_after: int | None = None
    ) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.interrupt_after = interrupt_after
        self.pending: list[p.Event] = []
        self.ran: list[tuple[int, str]] = []
        self.dead: set[int] = set()
        self.stopped: set[int] = set()
        self.commands: list[tuple[int, str]] = []
        self.waits = 0

    def start(self, configs: Sequence[p.AgentConfig]) -> None:
        for config in configs:
            self.pending.append(p.AgentReady(config.agent_id, node=p.NodeInfo(hostname="fake")))

    def send(self, agent_id: int, command: p.Command) -> None:
        self.commands.append((agent_id, command.name))
        if agent_id in self.dead or agent_id in self.stopped:
            return
        if isinstance(command, p.Assign):
            for unit in command.units:
                if not self._run_unit(agent_id, unit):
                    return
            self.pending.append(p.WorkWanted(agent_id))
        elif isinstance(command, p.Finish | p.Abort):
            self.stopped.add(agent_id)
            self.pending.append(p.AgentStopped(agent_id))

    def _run_unit(self, agent_id: int, unit: p.UnitWork) -> bool:
        for node_id in unit.node_ids:
            behaviour = self.script.get(node_id, []).pop(0) if self.script.get(node_id) else "pass"
            self.ran.append((agent_id, node_id))
            if behaviour == "die":
                self.dead.add(agent_id)
                self.pending.append(p.AgentFailed(agent_id, message="agent lost: killed"))
                # Stale: an end the dead agent's worker still sent after the failure (its setup only).
                self.pending.append(_ended(agent_id, node_id, _reports(node_id, "passed")[:1]))
                self.pending.append(p.AgentStopped(agent_id))
                return False
            if behaviour == "crash":
                self.pending.append(
                    p.TestCrashed(agent_id, node_id=node_id, message="worker exited with code 3")
                )
            elif behaviour == "timeout":
                self.pending.append(p.TestTimedOut(agent_id, node_id=node_id, seconds=2.0))
            elif behaviour == "notcollected":
                self.pending.append(p.NotCollected(agent_id, node_ids=(node_id,)))
            elif behaviour in ("exit", "interrupt"):
                self.pending.append(
                    p.TestExited(
                        agent_id,
                        node_id=node_id,
                        message="bye",
                        returncode=3,
                        interrupted=behaviour == "interrupt",
                    )
                )
                return False
            elif behaviour == "slow-report":  # 0.12 s of phases, 1 s with its report's making
                self.pending.append(_ended(agent_id, node_id, _reports(node_id, "failed"), seconds=1.0))
            else:
                self.pending.append(
                    _ended(
                        agent_id, node_id, _reports(node_id, "failed" if behaviour == "fail" else "passed")
                    )
                )
        self.pending.append(p.UnitFinished(agent_id, unit_id=unit.unit_id))
        return True

    def wait_events(self, timeout: float) -> list[p.Event]:
        self.waits += 1
        if self.interrupt_after is not None and self.waits == self.interrupt_after:
            raise KeyboardInterrupt
        events, self.pending = self.pending, []
        return events

    def shutdown(self) -> None:
        raise AssertionError("the session's creator shuts the backend down, never the session")


class ListSink:
    """A ReportSink recording what the session hands on; `stop_after_failures` plays pytest's -x."""

    def __init__(self, stop_after_failures: int = 0) -> None:
        self.finished: list[tuple[TestResult, bool]] = []
        self.retried: list[tuple[str, Outcome]] = []
        self.stop_after_failures = stop_after_failures

    def test_started(self, agent_id: int, node_id: str) -> None:
        pass

    def test_finished(self, result: TestResult, replay: bool) -> None:
        self.finished.append((result, replay))

    def attempt_retried(self, node_id: str, attempt: Attempt) -> None:
        self.retried.append((node_id, attempt.outcome))

    def warning(self, agent_id: int, warning: dict) -> None:
        pass

    def agent_state(self, agent_id: int, text: str) -> None:
        pass

    def stop_requested(self) -> str:
        failures = sum(1 for r, _ in self.finished if r.outcome.is_failure)
        if self.stop_after_failures and failures >= self.stop_after_failures:
            return f"stopping after {failures} failures"
        return ""


UNITS = tuple(TestUnit(f"t.py::T{u}", tuple(f"t.py::T{u}::test_{i}" for i in range(3))) for u in range(4))


def _run(backend: ScriptedBackend, agents: int = 2, sink: ListSink | None = None, **kwargs):
    plan = plan_lpt([UnitEstimate(u, float(len(u.node_ids))) for u in UNITS], agents)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(agents)]
    sink = sink or ListSink()
    session = Session(UNITS, make_scheduler("dynamic", plan), configs, sink, **kwargs)
    return run_session(session, backend), sink


def _outcomes(report) -> dict[str, Outcome]:
    return {r.node_id: r.outcome for r in report.results}


def test_every_test_gets_one_outcome_and_every_final_goes_to_the_sink_once() -> None:
    report, sink = _run(ScriptedBackend({"t.py::T1::test_2": ["fail"]}))

    outcomes = _outcomes(report)
    assert len(outcomes) == 12
    assert outcomes.pop("t.py::T1::test_2") is Outcome.FAILED
    assert set(outcomes.values()) == {Outcome.PASSED}
    assert Counter(r.node_id for r, _ in sink.finished) == Counter({n: 1 for u in UNITS for n in u.node_ids})
    assert all(replay for _, replay in sink.finished)
    assert report.stop is None


def test_a_crash_mid_unit_is_retried_by_the_session_and_the_unit_goes_on() -> None:
    report, sink = _run(ScriptedBackend({"t.py::T0::test_1": ["crash"]}))

    result = {r.node_id: r for r in report.results}["t.py::T0::test_1"]
    assert [a.outcome for a in result.attempts] == [Outcome.CRASHED, Outcome.PASSED]
    assert sink.retried == [("t.py::T0::test_1", Outcome.CRASHED)]
    assert set(_outcomes(report).values()) == {Outcome.PASSED}


def test_the_crash_budget_holds_across_agents() -> None:
    # Each crash could land on another agent; the session alone counts, so 2 crashes end it.
    backend = ScriptedBackend({"t.py::T2::test_0": ["crash", "crash", "pass"]})
    report, _ = _run(backend, agents=3, max_crashes=2)

    result = {r.node_id: r for r in report.results}["t.py::T2::test_0"]
    assert [a.outcome for a in result.attempts] == [Outcome.CRASHED, Outcome.CRASHED]
    assert result.outcome is Outcome.CRASHED
    assert sum(1 for _, n in backend.ran if n == "t.py::T2::test_0") == 2


def test_a_timeout_is_final_and_the_rest_of_the_unit_runs() -> None:
    report, _ = _run(ScriptedBackend({"t.py::T3::test_0": ["timeout"]}))

    outcomes = _outcomes(report)
    assert outcomes["t.py::T3::test_0"] is Outcome.TIMEOUT
    assert outcomes["t.py::T3::test_1"] is Outcome.PASSED


def test_not_collected_node_ids_are_errors_with_a_message() -> None:
    report, _ = _run(ScriptedBackend({"t.py::T1::test_0": ["notcollected"]}))

    result = {r.node_id: r for r in report.results}["t.py::T1::test_0"]
    assert result.outcome is Outcome.ERROR
    assert "not collected on agent" in result.attempts[-1].message
    assert any("were not collected" in m for m in report.messages)


def test_a_lost_agents_work_is_rerun_elsewhere_and_its_stale_reports_are_dropped() -> None:
    report, _ = _run(ScriptedBackend({"t.py::T0::test_1": ["die"]}))

    by_id = {r.node_id: r for r in report.results}
    lost = by_id["t.py::T0::test_1"]
    assert [a.outcome for a in lost.attempts] == [Outcome.CRASHED, Outcome.PASSED]
    assert lost.attempts[-1].agent_id != lost.attempts[0].agent_id
    assert all(r.outcome is Outcome.PASSED for r in report.results)
    # Each final attempt has exactly its own three reports: nothing stale mixed in.
    assert all(len(r.attempts[-1].reports) == 3 for r in report.results)


def test_with_every_agent_lost_the_rest_is_not_run_and_replayed() -> None:
    script = {"t.py::T0::test_0": ["die"], "t.py::T1::test_0": ["die"], "t.py::T2::test_0": ["die"]}
    script |= {"t.py::T3::test_0": ["die"]}
    report, sink = _run(ScriptedBackend(script), max_crashes=5)

    not_run = [r for r in report.results if r.outcome is Outcome.NOT_RUN]
    assert not_run
    assert all(replay for r, replay in sink.finished if r.outcome is Outcome.NOT_RUN)
    assert "no agent was left" in not_run[0].attempts[-1].message


def test_maxfail_from_pytest_stops_the_run_and_the_rest_is_not_replayed() -> None:
    failing = {f"t.py::T{u}::test_0": ["fail"] for u in range(4)}
    report, sink = _run(ScriptedBackend(failing), agents=1, sink=ListSink(stop_after_failures=1))

    counts = report.counts()
    assert counts[Outcome.FAILED] == 1
    assert counts[Outcome.NOT_RUN] >= 1
    assert report.stop is not None and report.stop.kind == "maxfail"
    assert not any(replay for r, replay in sink.finished if r.outcome is Outcome.NOT_RUN)


def test_pytest_exit_in_a_test_stops_every_agent_with_its_returncode() -> None:
    backend = ScriptedBackend({"t.py::T0::test_1": ["exit"]})
    report, _ = _run(backend)

    assert report.stop is not None
    assert (report.stop.kind, report.stop.returncode, report.stop.message) == ("exit", 3, "bye")
    assert Outcome.NOT_RUN in report.counts()
    assert "abort" in {name for _, name in backend.commands}


def test_keyboard_interrupt_in_a_test_is_an_interrupted_run() -> None:
    report, _ = _run(ScriptedBackend({"t.py::T0::test_0": ["interrupt"]}))

    assert report.interrupted
    assert report.stop is not None and report.stop.kind == "interrupt"


def test_ctrl_c_aborts_the_agents_and_reports_what_ran() -> None:
    backend = ScriptedBackend(interrupt_after=2)
    report, _ = _run(backend)

    assert report.interrupted
    assert {name for _, name in backend.commands} >= {"abort"}
    assert len(report.results) == 12


def test_reruns_turn_a_failure_into_attempts() -> None:
    report, sink = _run(ScriptedBackend({"t.py::T2::test_0": ["fail", "fail", "fail"]}), reruns=2)

    result = {r.node_id: r for r in report.results}["t.py::T2::test_0"]
    assert result.outcome is Outcome.FAILED
    assert [a.outcome for a in result.attempts] == [Outcome.FAILED] * 3
    assert len(sink.retried) == 2


def test_a_pass_after_a_rerun_is_flaky() -> None:
    report, _ = _run(ScriptedBackend({"t.py::T2::test_0": ["fail", "pass"]}), reruns=1)

    result = {r.node_id: r for r in report.results}["t.py::T2::test_0"]
    assert result.flaky


def test_the_invariant_check_fails_on_a_corrupted_record() -> None:
    passed = Attempt(0, Outcome.PASSED, 0.1)
    good = [TestResult("a", Outcome.PASSED, (passed,)), TestResult("b", Outcome.PASSED, (passed,))]
    check_results(good, ["a", "b"], Counter({"a": 1, "b": 1}))

    with pytest.raises(InternalError, match="without a result"):
        check_results(good[:1], ["a", "b"], Counter({"a": 1, "b": 1}))
    with pytest.raises(InternalError, match="more than once"):
        check_results([good[0], good[0], good[1]], ["a", "b"], Counter({"a": 1, "b": 1}))
    with pytest.raises(InternalError, match="2 received"):
        check_results(good, ["a", "b"], Counter({"a": 2, "b": 1}))
    with pytest.raises(InternalError, match="not its last attempt"):
        check_results(
            [TestResult("a", Outcome.FAILED, (passed,)), good[1]], ["a", "b"], Counter({"a": 1, "b": 1})
        )


def test_an_agent_with_other_versions_stops_the_run_with_a_named_node() -> None:
    class OtherPytest(ScriptedBackend):
        def start(self, configs: Sequence[p.AgentConfig]) -> None:
            for config in configs:
                node = p.NodeInfo(hostname=f"node-{config.agent_id}", address="10.0.0.9")
                versions = {"python": "3.11.2", "pytest": "8.0.0"}
                self.pending.append(p.AgentReady(config.agent_id, node=node, versions=versions))

    plan = plan_lpt([UnitEstimate(u, 1.0) for u in UNITS], 2)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(2)]
    session = Session(
        UNITS,
        make_scheduler("dynamic", plan),
        configs,
        ListSink(),
        versions={"python": "3.11.7", "pytest": "9.2.0"},
    )
    run_session(session, OtherPytest())

    assert session.fatal is not None
    assert "on node node-0 (10.0.0.9) runs pytest 8.0.0 (coordinator 9.2.0)" in str(session.fatal)
    assert "python" not in str(session.fatal), "Python is compared by major.minor, as Ray does"


def test_a_crash_retry_is_never_requeued_twice_when_its_agent_fails_later() -> None:
    # Agent 0 crashes on test_0 (retried), then dies on test_1: the unit's remainder is requeued
    # without test_0, whose retry already waits in its own unit.
    backend = ScriptedBackend({"t.py::T0::test_0": ["crash", "pass"], "t.py::T0::test_1": ["die"]})
    report, _ = _run(backend)

    runs = Counter(n for _, n in backend.ran)
    assert runs["t.py::T0::test_0"] == 2
    assert {r.node_id: r.outcome for r in report.results}["t.py::T0::test_0"] is Outcome.PASSED


def test_a_lost_agent_blames_the_test_it_ran_not_one_that_crashed_there_before() -> None:
    # test_0 crashed on agent 0 and waits for its retry (still open) while agent 0 goes on; it
    # then dies in test_1, which gets the crash attempt, and test_0 keeps its one crash.
    backend = ScriptedBackend({"t.py::T0::test_0": ["crash", "pass"], "t.py::T0::test_1": ["die"]})
    report, _ = _run(backend)

    by_id = {r.node_id: r for r in report.results}
    assert [a.outcome for a in by_id["t.py::T0::test_0"].attempts] == [Outcome.CRASHED, Outcome.PASSED]
    assert [a.outcome for a in by_id["t.py::T0::test_1"].attempts] == [Outcome.CRASHED, Outcome.PASSED]
    assert "agent lost: killed" in by_id["t.py::T0::test_1"].attempts[0].message


def test_an_attempt_spans_the_seconds_its_agent_measured() -> None:
    now = [100.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    plan = plan_lpt([UnitEstimate(u, float(len(u.node_ids))) for u in UNITS], 2)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(2)]
    session = Session(UNITS, make_scheduler("dynamic", plan), configs, ListSink(), clock=clock)
    report = run_session(session, ScriptedBackend())

    for result in report.results:
        [attempt] = result.attempts
        assert attempt.finished - attempt.started == pytest.approx(0.12)
        assert attempt.reports == tuple(_reports(result.node_id, "passed"))


def test_a_test_is_learnt_and_counted_busy_for_all_the_time_it_held_its_agent() -> None:
    slow = "t.py::T0::test_0"
    now = [100.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    report, _ = _run(ScriptedBackend({slow: ["slow-report"]}), clock=clock)

    [result] = [r for r in report.results if r.node_id == slow]
    [attempt] = result.attempts
    assert attempt.duration == pytest.approx(0.12)  # pytest's phases: what JUnit and --durations say
    assert attempt.occupied == pytest.approx(1.0)
    assert attempt.seconds_at_load_one == pytest.approx(1.0)  # what the duration store learns
    busy = sum(a.busy_seconds for a in report.agents)
    assert busy == pytest.approx(1.0 + 0.12 * (len(report.results) - 1))


class NodesBackend(ScriptedBackend):
    """Scripted agents whose nodes have the resources given per agent id."""

    def __init__(self, resources: dict[int, dict[str, float]], script: dict[str, list[str]] | None = None):
        super().__init__(script)
        self.resources = resources

    def start(self, configs: Sequence[p.AgentConfig]) -> None:
        for config in configs:
            node = p.NodeInfo(hostname=f"node-{config.agent_id}", resources=self.resources[config.agent_id])
            self.pending.append(p.AgentReady(config.agent_id, node=node))


GPU_UNITS = (
    TestUnit("g.py::TestGpu", ("g.py::TestGpu::test_0", "g.py::TestGpu::test_1"), resources=(("GPU", 1.0),)),
    *UNITS,
)


def _run_on_nodes(backend: NodesBackend, agents: int = 2):
    plan = plan_lpt([UnitEstimate(u, float(len(u.node_ids))) for u in GPU_UNITS], agents)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(agents)]
    sink = ListSink()
    session = Session(GPU_UNITS, make_scheduler("dynamic", plan), configs, sink, max_crashes=2)
    report = run_session(session, backend)
    return report, sink


def test_units_needing_a_resource_run_only_on_agents_whose_node_has_it() -> None:
    backend = NodesBackend({0: {"CPU": 2.0}, 1: {"CPU": 2.0, "GPU": 1.0}})
    report, _ = _run_on_nodes(backend)
    assert set(_outcomes(report).values()) == {Outcome.PASSED}
    assert {agent for agent, node_id in backend.ran if node_id.startswith("g.py")} == {1}


def test_a_crash_retry_of_a_unit_needing_a_resource_needs_it_too() -> None:
    backend = NodesBackend(
        {0: {"CPU": 2.0, "GPU": 1.0}, 1: {"CPU": 2.0}, 2: {"GPU": 2.0}},
        {"g.py::TestGpu::test_0": ["crash", "pass"]},
    )
    report, sink = _run_on_nodes(backend, agents=3)
    assert set(_outcomes(report).values()) == {Outcome.PASSED}
    assert sink.retried == [("g.py::TestGpu::test_0", Outcome.CRASHED)]
    assert {agent for agent, node_id in backend.ran if node_id.startswith("g.py")} <= {0, 2}


def test_tests_no_live_agent_can_run_end_not_run_saying_what_they_need() -> None:
    backend = NodesBackend({0: {"CPU": 2.0}, 1: {"CPU": 2.0}})
    report, sink = _run_on_nodes(backend)
    outcomes = _outcomes(report)
    assert [n for n, o in outcomes.items() if o is Outcome.NOT_RUN] == list(GPU_UNITS[0].node_ids)
    assert {o for n, o in outcomes.items() if not n.startswith("g.py")} == {Outcome.PASSED}
    assert not [node_id for _, node_id in backend.ran if node_id.startswith("g.py")]
    not_run = next(r for r in report.results if r.node_id == "g.py::TestGpu::test_0")
    assert not_run.attempts[-1].message == "needs GPU=1, which no live agent's node has"
    assert (
        "2 test(s) of g.py::TestGpu not run: needs GPU=1, which no live agent's node has" in report.messages
    )
    # Replayed through pytest like any test that did not run: the run fails, as it should.
    assert [replay for result, replay in sink.finished if result.outcome is Outcome.NOT_RUN] == [True, True]


def test_the_last_capable_agent_lost_leaves_its_unit_not_run_with_the_reason() -> None:
    backend = NodesBackend({0: {"CPU": 2.0}, 1: {"GPU": 1.0}}, {"g.py::TestGpu::test_1": ["die"]})
    report, _ = _run_on_nodes(backend)
    outcomes = _outcomes(report)
    # test_0 passed on agent 1; test_1 took agent 1 down (a crash attempt) and, with no GPU left,
    # is not retried anywhere: not run, saying why.
    assert outcomes["g.py::TestGpu::test_0"] is Outcome.PASSED
    assert outcomes["g.py::TestGpu::test_1"] is Outcome.NOT_RUN
    lost = next(r for r in report.results if r.node_id == "g.py::TestGpu::test_1")
    assert [a.outcome for a in lost.attempts] == [Outcome.CRASHED, Outcome.NOT_RUN]
    assert "needs GPU=1" in lost.attempts[-1].message
    assert {o for n, o in outcomes.items() if not n.startswith("g.py")} == {Outcome.PASSED}


class TearingDownBackend(ScriptedBackend):
    """Agents that, once finished, say TearingDown and never get to AgentStopped during the run
    (their stacks take long to come down)."""

    def send(self, agent_id: int, command: p.Command) -> None:
        if isinstance(command, p.Finish | p.Abort) and agent_id not in self.stopped:
            self.commands.append((agent_id, command.name))
            self.stopped.add(agent_id)
            self.pending.append(p.TearingDown(agent_id))
            return
        super().send(agent_id, command)


def test_the_report_does_not_wait_for_the_stacks_to_come_down() -> None:
    backend = TearingDownBackend()
    report, _ = _run(backend)
    assert set(_outcomes(report).values()) == {Outcome.PASSED}
    # Every agent said it runs nothing more: the report is made, no AgentStopped awaited.
    assert all(agent.stopped_at is not None and agent.stack_down_seconds == 0.0 for agent in report.agents)
    assert not any("did not stop" in message for message in report.messages)
