"""AgentMachine driven with plain values: no threads, no processes, no sleeps, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from agents.agent import (
    MAX_FRUITLESS_RESTARTS,
    Action,
    AgentMachine,
    CommandIn,
    Emit,
    InvalidInput,
    KillWorker,
    ResetDone,
    ResetStack,
    SendToWorker,
    StackDied,
    StackDown,
    StackUp,
    StackUpFailed,
    StartWorker,
    State,
    Stop,
    TakeStackDown,
    Tick,
    WorkerExited,
    WorkerSaid,
)
from orchestrator.protocol import messages as pm
from orchestrator.protocol import worker_hop as wh
from orchestrator.protocol.reports import compact_phase, pack_test_reports, unpack_test_reports

A = "t.py::A"
B = "t.py::B"


# The start-up's moments of Agent.ready(): stack from 0.0 to 10.0, worker from 10.0 to 11.5.
_PHASES = {"stack_started": 11.5, "stack_ready": 1.5, "worker_started": 1.5, "worker_ready": 0.0}
# Taking the stack down is always announced first: the session's report does not wait for it.
_DOWN = [Emit(pm.TearingDown(agent_id=7)), TakeStackDown()]


def _events(actions: list[Action]) -> list[pm.Event]:
    return [a.event for a in actions if isinstance(a, Emit)]


def _names(actions: list[Action]) -> list[str]:
    return [a.event.name if isinstance(a, Emit) else type(a).__name__ for a in actions]


def _units(**units: list[str]) -> CommandIn:
    return CommandIn(pm.Assign(units=tuple(pm.UnitWork(uid, tuple(ids)) for uid, ids in units.items())))


def _packed(node_id: str, call: str = "passed") -> bytes:
    """A test's three phases packed as the worker packs them (the agent never opens them)."""
    phases = []
    for when, outcome in (("setup", "passed"), ("call", call), ("teardown", "passed")):
        attributes = {
            "nodeid": node_id,
            "location": ("t.py", 1, node_id),
            "keywords": {node_id: 1},
            "outcome": outcome,
            "longrepr": None,
            "when": when,
            "user_properties": [],
            "sections": [],
            "duration": 0.01,
            "start": 1.0,
            "stop": 1.01,
        }
        phase = compact_phase(attributes)
        assert phase is not None
        phases.append(phase)
    return pack_test_reports(("t.py", 1, node_id), {node_id: 1}, phases)


def _sent_run(**units: list[str]) -> SendToWorker:
    """The Run command that hands the worker these units, in this order."""
    return SendToWorker(wh.Run(tuple((uid, tuple(ids)) for uid, ids in units.items())))


class Agent:
    """A machine plus everything it ever returned, with shorthands for the usual inputs."""

    def __init__(self, timeout: float | None = None) -> None:
        self.machine = AgentMachine(7, timeout=timeout, node=pm.NodeInfo(hostname="h"))
        self.actions: list[Action] = []

    def __call__(self, event: Any) -> list[Action]:
        out = self.machine.handle(event)
        self.actions.extend(out)
        return out

    def say(self, message: wh.WorkerMessage, now: float = 0.0) -> list[Action]:
        return self(WorkerSaid(message, now))

    def up(self, now: float = 10.0) -> list[Action]:
        """The stack is up: the machine says how its worker starts (StackReady), then the rest."""
        out = self(StackUp(stack_seconds=2.5, now=now, worker_args=("-q",)))
        ready = Emit(pm.StackReady(agent_id=7, worker_args=("-q",)))
        return out[1:] if out[:1] == [ready] else out

    def ready(self, now: float = 11.5) -> list[Action]:
        self.up()
        return self.say(wh.Collected((A, B, "t.py::C")), now)

    def run(self, node_id: str, now: float = 0.0, call: str = "passed", seconds: float = 0.0) -> list[Action]:
        out = self.say(wh.Started(node_id), now)
        return out + self.say(wh.Ended(node_id, _packed(node_id, call)), now + seconds)

    def events(self) -> list[pm.Event]:
        return _events(self.actions)

    def stop_stack(self) -> list[Action]:
        return self(StackDown(seconds=0.5))


def test_normal_flow_holds_the_last_test_until_flush() -> None:
    agent = Agent()
    assert agent(_units(u1=[A])) == []  # before the worker collected: kept
    assert agent.up() == [StartWorker()]
    out = agent.say(wh.Collected((A, B)), 11.5)
    assert out[0] == Emit(
        pm.AgentReady(
            agent_id=7,
            node=pm.NodeInfo(hostname="h"),
            collected=2,
            stack_up_seconds=2.5,
            worker_start_seconds=1.5,
            phases_ago=_PHASES,
        )
    )
    assert out[1:] == [_sent_run(u1=[A])]
    assert agent(_units(u2=[B])) == [_sent_run(u2=[B])]
    assert agent(CommandIn(pm.Flush())) == [SendToWorker(wh.FlushHeld())]
    assert _names(agent.say(wh.NeedWork())) == ["work_wanted"]
    # One event per test: its reports as the worker packed them, and how long it ran.
    out = agent.run(A, now=20.0, seconds=0.25)
    assert out == [
        Emit(pm.TestEnded(agent_id=7, node_id=A, reports=_packed(A), seconds=0.25)),
        Emit(pm.UnitFinished(agent_id=7, unit_id="u1")),
    ]
    [ended] = [e for e in _events(out) if isinstance(e, pm.TestEnded)]
    assert [(r["nodeid"], r["when"], r["outcome"]) for r in unpack_test_reports(A, ended.reports)] == [
        (A, "setup", "passed"),
        (A, "call", "passed"),
        (A, "teardown", "passed"),
    ]
    assert agent.say(wh.Started(B), 30.0) == []  # a start is the agent's to know, not the session's
    assert _names(agent.say(wh.Ended(B, _packed(B, "failed")), 31.0)) == ["test_ended", "unit_finished"]
    assert agent(CommandIn(pm.Finish())) == [SendToWorker(wh.FinishRun())]
    assert agent.machine.state is State.FINISHING
    assert agent.say(wh.NeedWork()) == []  # finishing: the session has nothing more to give
    assert agent(WorkerExited(1)) == _DOWN  # exit code 1: a test failed, normal
    assert agent.stop_stack() == [Emit(pm.AgentStopped(agent_id=7, stack_down_seconds=0.5)), Stop()]
    assert agent.machine.state is State.STOPPED
    assert [e for e in agent.events() if isinstance(e, pm.UnitFinished)] == [
        pm.UnitFinished(agent_id=7, unit_id="u1"),
        pm.UnitFinished(agent_id=7, unit_id="u2"),
    ]


def test_a_lazy_worker_is_ready_with_no_node_ids_and_gets_the_work_at_once() -> None:
    agent = Agent()
    agent(_units(u1=[A]))
    agent.up()
    out = agent.say(wh.Collected((), lazy=True, fallback=""), 11.5)
    assert out == [
        Emit(
            pm.AgentReady(
                agent_id=7,
                node=pm.NodeInfo(hostname="h"),
                collected=0,
                lazy_collection=True,
                stack_up_seconds=2.5,
                worker_start_seconds=1.5,
                phases_ago=_PHASES,
            )
        ),
        _sent_run(u1=[A]),
    ]
    # Whether its file had A is the worker's to say, per `run`.
    assert _names(agent.say(wh.NotCollected((A,), ()))) == ["not_collected", "unit_finished"]


def test_a_worker_that_fell_back_to_collecting_everything_says_why() -> None:
    agent = Agent()
    agent.up()
    [ready] = _events(agent.say(wh.Collected((A, B), lazy=False, fallback="conftest.py implements x")))
    assert isinstance(ready, pm.AgentReady)
    assert (ready.collected, ready.lazy_collection, ready.collection_fallback) == (
        2,
        False,
        "conftest.py implements x",
    )


def test_a_flush_asked_before_the_worker_is_up_follows_the_work() -> None:
    agent = Agent()
    agent.up()
    agent(_units(u1=[A]))
    agent(CommandIn(pm.Flush()))
    out = agent.say(wh.Collected((A,)))
    assert out[1:] == [_sent_run(u1=[A]), SendToWorker(wh.FlushHeld())]


def test_a_crash_mid_unit_is_reported_once_and_the_rest_goes_to_a_new_worker_in_order() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B, "t.py::C"], u2=["t.py::D"]))
    agent.run(A)
    agent.say(wh.Started(B))
    out = agent(WorkerExited(-9, output="Segmentation fault"))
    assert out == [
        Emit(
            pm.TestCrashed(
                agent_id=7, node_id=B, message="worker killed by signal 9", output="Segmentation fault"
            )
        ),
        StartWorker(),
    ]
    out = agent.say(wh.Collected((A, B)))
    # No AgentReady again; the crashed test is not handed over (the session decides), the rest is.
    assert out == [_sent_run(u1=["t.py::C"], u2=["t.py::D"])]
    assert agent.machine.worker_restarts == 1
    agent.run("t.py::C")
    assert [e.name for e in agent.events()].count("test_crashed") == 1
    assert pm.UnitFinished(agent_id=7, unit_id="u1") in agent.events()


def test_a_crash_message_names_the_exit_code() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B]))
    agent.say(wh.Started(A))
    crashed = _events(agent(WorkerExited(3, "out")))
    assert crashed == [
        pm.TestCrashed(agent_id=7, node_id=A, message="worker exited with code 3", output="out")
    ]


def test_a_crash_on_a_units_last_test_finishes_the_unit() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    agent.say(wh.Started(A))
    assert _names(agent(WorkerExited(-11))) == ["test_crashed", "unit_finished", "StartWorker"]


def test_a_timeout_comes_from_ticks_kills_the_worker_and_a_new_one_takes_the_rest() -> None:
    agent = Agent(timeout=5.0)
    agent.ready()
    agent(_units(u1=[A, B]))
    agent.say(wh.Started(A), now=100.0)
    assert agent(Tick(104.0)) == []
    assert agent(Tick(104.99)) == []
    assert agent(Tick(105.0)) == [KillWorker()]  # its full 5 s are up
    assert agent.machine.state is State.REPLACING_WORKER
    assert agent(Tick(200.0)) == []  # killed once
    out = agent(WorkerExited(-9, output="tail"))
    assert out == [Emit(pm.TestTimedOut(agent_id=7, node_id=A, seconds=5.0, output="tail")), StartWorker()]
    assert agent.say(wh.Collected((A, B))) == [_sent_run(u1=[B])]


def test_no_timeout_between_tests() -> None:
    agent = Agent(timeout=1.0)
    agent.ready()
    agent(_units(u1=[A]))
    agent.run(A, now=0.0)
    assert agent(Tick(50.0)) == []


def test_a_worker_dying_again_and_again_without_ending_a_test_fails_the_agent() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    for _ in range(MAX_FRUITLESS_RESTARTS - 1):
        assert agent(WorkerExited(1, "boom")) == [StartWorker()]
    out = agent(WorkerExited(1, "boom"))
    assert out == [
        Emit(
            pm.AgentFailed(
                agent_id=7,
                message="pytest worker keeps dying (worker exited with code 1); agent gives up",
                logs="boom",
            )
        ),
        *_DOWN,
    ]
    assert agent.machine.worker_restarts == MAX_FRUITLESS_RESTARTS - 1


def test_a_worker_that_exits_before_collecting_fails_the_agent() -> None:
    agent = Agent()
    agent.up()
    out = agent(WorkerExited(4, output="ERROR: usage"))
    assert out == [
        Emit(
            pm.AgentFailed(
                agent_id=7, message="pytest worker exited with code 4 before collecting", logs="ERROR: usage"
            )
        ),
        *_DOWN,
    ]
    assert _names(agent.stop_stack()) == ["agent_stopped", "Stop"]


def test_not_collected_node_ids_end_their_unit() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, "t.py::gone"]))
    agent.run(A)
    out = agent.say(wh.NotCollected(("t.py::gone",), ("t.py::gone[1]",)))
    assert _events(out) == [
        pm.NotCollected(agent_id=7, node_ids=("t.py::gone",), similar=("t.py::gone[1]",)),
        pm.UnitFinished(agent_id=7, unit_id="u1"),
    ]


def test_abort_while_the_stack_comes_up_takes_it_down_once_up() -> None:
    agent = Agent()
    agent(_units(u1=[A]))
    assert agent(CommandIn(pm.Abort())) == []
    assert agent.up() == _DOWN
    assert agent.stop_stack()[-1] == Stop()
    assert [e.name for e in agent.events()] == ["tearing_down", "agent_stopped"]


def test_abort_while_the_stack_fails_to_come_up() -> None:
    agent = Agent()
    agent(CommandIn(pm.Abort()))
    assert _names(agent(StackUpFailed("service 'db' never became ready", "log"))) == [
        "agent_failed",
        "tearing_down",
        "TakeStackDown",
    ]


def test_abort_while_running_kills_the_worker_and_reports_no_crash() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B]))
    agent.say(wh.Started(A))
    assert agent(CommandIn(pm.Abort())) == [KillWorker()]
    # What the worker wrote before it died is still relayed; a later command is dropped.
    assert _events(agent.say(wh.Ended(A, _packed(A)))) == [
        pm.TestEnded(agent_id=7, node_id=A, reports=_packed(A), seconds=0.0)
    ]
    assert agent(_units(u2=[B + "2"])) == []
    assert agent(WorkerExited(-9)) == _DOWN
    agent.stop_stack()
    names = [e.name for e in agent.events()]
    assert "test_crashed" not in names
    assert names[-1] == "agent_stopped"


def test_finish_before_ready_is_sent_after_the_work() -> None:
    agent = Agent()
    agent(_units(u1=[A]))
    agent(CommandIn(pm.Finish()))
    agent.up()
    out = agent.say(wh.Collected((A,)))
    assert out[1:] == [_sent_run(u1=[A]), SendToWorker(wh.FinishRun())]
    with pytest.raises(InvalidInput, match="Assign after Finish"):
        agent(_units(u2=[B]))


def test_a_crash_while_finishing_restarts_for_the_rest_then_finishes() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B]))
    agent(CommandIn(pm.Finish()))
    agent.say(wh.Started(A))
    assert _names(agent(WorkerExited(-6))) == ["test_crashed", "StartWorker"]
    assert agent.say(wh.Collected((A, B))) == [_sent_run(u1=[B]), SendToWorker(wh.FinishRun())]
    agent.run(B)
    assert agent(WorkerExited(0)) == _DOWN


def test_a_crash_on_the_last_test_while_finishing_needs_no_new_worker() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    agent(CommandIn(pm.Finish()))
    agent.say(wh.Started(A))
    assert _names(agent(WorkerExited(-6))) == [
        "test_crashed",
        "unit_finished",
        "tearing_down",
        "TakeStackDown",
    ]


def test_a_stack_that_dies_mid_run_fails_the_agent() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    agent.say(wh.Started(A))
    out = agent(StackDied("service 'db' exited with code 137"))
    assert out == [
        Emit(
            pm.AgentFailed(
                agent_id=7,
                message="stack failed mid-run, the agent stopped and its unfinished tests go to other agents: "
                "service 'db' exited with code 137",
            )
        ),
        KillWorker(),
    ]
    assert agent(StackDied("again")) == []
    assert agent(WorkerExited(-9)) == _DOWN
    assert agent(StackDied("late")) == []  # the watchdog raced the teardown
    agent.stop_stack()
    assert [e.name for e in agent.events()][-3:] == ["agent_failed", "tearing_down", "agent_stopped"]


def test_a_stack_that_fails_to_come_up() -> None:
    agent = Agent()
    out = agent(StackUpFailed("service 'db': health check failed", logs="FATAL"))
    assert out == [
        Emit(pm.AgentFailed(agent_id=7, message="service 'db': health check failed", logs="FATAL")),
        *_DOWN,
    ]


def test_a_stack_teardown_error_is_reported_before_the_stop() -> None:
    agent = Agent()
    agent.ready()
    agent(CommandIn(pm.Finish()))
    agent(WorkerExited(5))
    out = agent(StackDown(1.0, error="could not remove its stack"))
    assert _names(out) == ["agent_failed", "agent_stopped", "Stop"]


def test_pytest_stopping_by_itself_is_not_restarted() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B]))
    agent.run(A, call="failed")
    assert agent.say(wh.Stopping("stopping after 1 failures")) == []
    assert agent.machine.state is State.STOPPING_WORKER
    assert agent(WorkerExited(1)) == _DOWN


@pytest.mark.parametrize(
    ("exited", "expected"),
    [
        (
            wh.Exited(A, message="bye", returncode=3),
            pm.TestExited(agent_id=7, node_id=A, message="bye", returncode=3, interrupted=False),
        ),
        (
            wh.Exited(A, message="KeyboardInterrupt", interrupted=True),
            pm.TestExited(agent_id=7, node_id=A, message="KeyboardInterrupt", interrupted=True),
        ),
    ],
)
def test_pytest_exit_and_keyboard_interrupt_stop_the_agent(exited: wh.Exited, expected: pm.Event) -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B]))
    agent.say(wh.Started(A))
    assert _events(agent.say(exited)) == [expected]
    assert agent.machine.state is State.STOPPING_WORKER
    # The worker ends its own session normally (session fixtures torn down): not a crash.
    assert agent(WorkerExited(2 if exited.returncode is None else exited.returncode)) == _DOWN
    agent.stop_stack()
    names = [e.name for e in agent.events()]
    assert "test_crashed" not in names and "unit_finished" not in names
    assert agent.machine.pending == [("u1", B)]


def test_warnings_are_relayed() -> None:
    agent = Agent()
    agent.up()
    warning = {
        "message_str": "old",
        "category_module": "builtins",
        "category_class_name": "DeprecationWarning",
    }
    assert _events(agent.say(wh.Warned(warning))) == [pm.WarningRecorded(agent_id=7, warning=warning)]


def test_reset_handshake_between_units() -> None:
    agent = Agent()
    agent(StackUp(stack_seconds=1.0, resets=True))
    agent.say(wh.Collected((A, B)))
    agent(_units(u1=[A], u2=[B]))
    # Nothing ran on the fresh stack yet: no reset needed.
    assert agent.say(wh.ResetWanted("u1")) == [SendToWorker(wh.ResetFinished(""))]
    agent.run(A)
    # The session hears the reset begin (its live status shows it), then the stack is reset.
    assert agent.say(wh.ResetWanted("u2")) == [
        Emit(pm.AgentPhase(agent_id=7, phase="reset", unit_id="u2")),
        ResetStack("u2"),
    ]
    out = agent(ResetDone("u2", seconds=0.2))
    assert out == [
        Emit(pm.StackReset(agent_id=7, unit_id="u2", seconds=0.2)),
        SendToWorker(wh.ResetFinished("")),
    ]


def test_reset_failure_is_told_to_the_worker_and_the_session() -> None:
    agent = Agent()
    agent(StackUp(resets=True))
    agent.say(wh.Collected((A, B)))
    agent(_units(u1=[A], u2=[B]))
    agent.run(A)
    agent.say(wh.ResetWanted("u2"))
    error = "service 'db': reset failed: connection refused"
    out = agent(ResetDone("u2", seconds=1.0, error=error))
    assert out == [
        Emit(pm.StackReset(agent_id=7, unit_id="u2", seconds=1.0, error=error)),
        SendToWorker(wh.ResetFinished(error)),
    ]


def test_a_new_worker_resuming_a_unit_gets_no_reset() -> None:
    agent = Agent()
    agent(StackUp(resets=True))
    agent.say(wh.Collected((A, B)))
    agent(_units(u1=[A, B]))
    agent.say(wh.Started(A))
    agent(WorkerExited(-9))
    agent.say(wh.Collected((A, B)))
    assert agent.say(wh.ResetWanted("u1")) == [SendToWorker(wh.ResetFinished(""))]


def test_agent_stopped_is_last_and_once() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    agent(CommandIn(pm.Abort()))
    agent(CommandIn(pm.Abort()))
    agent(WorkerExited(-9))
    agent.stop_stack()
    agent(CommandIn(pm.Finish()))  # dropped: the session had not yet seen AgentStopped
    names = [e.name for e in agent.events()]
    assert names.count("agent_stopped") == 1 and names[-1] == "agent_stopped"
    assert isinstance(agent.actions[-1], Stop)


@pytest.mark.parametrize(
    ("prepare", "event"),
    [
        ([], WorkerSaid(wh.Started(A))),
        ([], WorkerExited(0)),
        ([], StackDown()),
        ([StackUp()], WorkerSaid(wh.Started(A))),
        ([StackUp()], WorkerSaid(wh.Ended(A, b""))),
        ([StackUp()], WorkerSaid(wh.NeedWork())),
        ([StackUp()], StackUp()),
        ([StackUp(), WorkerSaid(wh.Collected())], WorkerSaid(wh.Collected())),
        ([StackUpFailed("x"), StackDown()], Tick(1.0)),
    ],
)
def test_an_input_not_valid_in_the_state_raises(prepare: list, event: Any) -> None:
    machine = AgentMachine(1)
    for before in prepare:
        machine.handle(before)
    with pytest.raises(InvalidInput):
        machine.handle(event)


def test_a_value_that_is_not_a_worker_message_is_refused() -> None:
    # Unknown tags never get this far (worker_hop.decode refuses them); a command is no message.
    agent = Agent()
    agent.ready()
    with pytest.raises(AssertionError):
        agent.say(wh.Run(()))  # type: ignore[arg-type]


def test_an_end_of_a_test_not_running_has_no_duration() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A, B]))
    agent.say(wh.Started(A), 5.0)
    assert _events(agent.say(wh.Ended(B, _packed(B)), 9.0)) == [
        pm.TestEnded(agent_id=7, node_id=B, reports=_packed(B), seconds=0.0)
    ]
    assert _events(agent.say(wh.Ended(A, _packed(A)), 9.0)) == [
        pm.TestEnded(agent_id=7, node_id=A, reports=_packed(A), seconds=4.0),
        pm.UnitFinished(agent_id=7, unit_id="u1"),
    ]


def test_what_a_tests_child_processes_computed_counts_as_its_services_cpu() -> None:
    # host_load.seconds_at_load_one slows services as the worker was slowed: a child process the
    # test ran waited for a CPU as its worker did.
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    agent.say(wh.Started(A), 5.0)
    (ended, _) = _events(agent.say(wh.Ended(A, _packed(A), cpu=0.25, wait=0.5, children=1.5), 9.0))
    assert isinstance(ended, pm.TestEnded)
    assert (ended.cpu_seconds, ended.service_cpu_seconds, ended.wait_seconds) == (1.75, 1.5, 0.5)


def test_deadline_is_none_without_a_timeout() -> None:
    agent = Agent()
    agent.ready()
    agent(_units(u1=[A]))
    agent.say(wh.Started(A), 100.0)
    assert agent.machine.deadline() is None


def test_deadline_is_the_running_tests_start_plus_the_timeout() -> None:
    agent = Agent(timeout=5.0)
    assert agent.machine.deadline() is None  # no worker yet
    agent.ready()
    agent(_units(u1=[A, B]))
    assert agent.machine.deadline() is None  # nothing runs: the driver waits without ticks
    agent.say(wh.Started(A), 100.0)
    assert agent.machine.deadline() == 105.0
    agent.say(wh.Ended(A, _packed(A)), 101.0)
    assert agent.machine.deadline() is None  # between tests
    agent(CommandIn(pm.Finish()))
    agent.say(wh.Started(B), 102.5)
    assert agent.machine.state is State.FINISHING
    assert agent.machine.deadline() == 107.5
    assert agent(Tick(107.49)) == []  # before the deadline
    assert agent(Tick(107.5)) == [KillWorker()]  # at it: the driver sleeps exactly until then
    assert agent.machine.deadline() is None  # killed once: the exit is awaited, not timed


def test_a_collection_agent_serves_its_stack_without_a_worker_until_finish() -> None:
    machine = AgentMachine(3, collector=True)
    out = machine.handle(StackUp(stack_seconds=1.0, stack_args=("--db", "x:1"), stack_env={"DB": "x:1"}))
    assert out == [Emit(pm.StackReady(agent_id=3, stack_args=("--db", "x:1"), stack_env={"DB": "x:1"}))]
    assert machine.state is State.SERVING
    with pytest.raises(InvalidInput):
        machine.handle(CommandIn(pm.Assign((pm.UnitWork("u", ("t.py::a",)),))))
    assert machine.handle(CommandIn(pm.Finish())) == [Emit(pm.TearingDown(agent_id=3)), TakeStackDown()]
    out = machine.handle(StackDown(seconds=0.2))
    assert out[-1] == Stop() and isinstance(out[0], Emit) and isinstance(out[0].event, pm.AgentStopped)


def test_a_collection_agent_whose_stack_dies_fails_and_takes_it_down() -> None:
    machine = AgentMachine(3, collector=True)
    machine.handle(StackUp())
    out = machine.handle(StackDied("db exited"))
    assert isinstance(out[0], Emit) and isinstance(out[0].event, pm.AgentFailed)
    assert out[1:] == [Emit(pm.TearingDown(agent_id=3)), TakeStackDown()]


def test_a_collection_agent_finished_while_its_stack_starts_takes_it_down_once_up() -> None:
    machine = AgentMachine(3, collector=True)
    assert machine.handle(CommandIn(pm.Finish())) == []
    assert machine.handle(StackUp()) == [Emit(pm.TearingDown(agent_id=3)), TakeStackDown()]
