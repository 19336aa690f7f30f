"""AgentMachine when the worker starts before the stack is ready (a borrowed warm stack being
reset): plain values, no threads, no clock."""

from __future__ import annotations

from agents.agent import (
    AgentMachine,
    CommandIn,
    Emit,
    KillWorker,
    SendToWorker,
    StackReachable,
    StackUp,
    StackUpFailed,
    StartWorker,
    State,
    TakeStackDown,
    WorkerExited,
    WorkerSaid,
)
from orchestrator.protocol import messages as pm
from orchestrator.protocol import worker_hop as wh

A = "t.py::A"
UNIT = CommandIn(pm.Assign((pm.UnitWork("u1", (A,)),)))


def _early(machine: AgentMachine) -> None:
    out = machine.handle(StackReachable(started=0.0, now=0.5, stack_env={"DB": "x:1"}, worker_args=("-q",)))
    assert out == [
        Emit(pm.StackReady(agent_id=1, stack_env={"DB": "x:1"}, worker_args=("-q",))),
        StartWorker(),
    ]
    assert machine.state is State.STARTING_WORKER


def test_a_worker_that_collected_first_waits_for_the_stack_and_gets_no_work_before_it() -> None:
    machine = AgentMachine(1)
    _early(machine)
    assert machine.handle(UNIT) == []
    assert machine.handle(WorkerSaid(wh.Collected((), lazy=True), now=1.5)) == []  # stack not up
    assert machine.state is State.WAITING_STACK
    assert machine.handle(WorkerSaid(wh.NeedWork(), now=1.6)) == []  # work comes once it is ready
    out = machine.handle(StackUp(stack_seconds=2.0, now=2.0, started=0.0, warm="borrowed"))
    ready = out[0]
    assert isinstance(ready, Emit) and isinstance(ready.event, pm.AgentReady)
    assert ready.event.stack_warm == "borrowed"
    assert ready.event.worker_start_seconds == 1.0  # from its start to its collection
    # The timeline: the worker started (0.5) before the stack was ready (2.0).
    assert ready.event.phases_ago == {
        "stack_started": 2.0,
        "worker_started": 1.5,
        "worker_ready": 0.5,
        "stack_ready": 0.0,
    }
    assert out[1:] == [SendToWorker(wh.Run((("u1", (A,)),)))]
    assert machine.state is State.RUNNING


def test_a_stack_ready_before_the_worker_collected_makes_it_ready_at_collection() -> None:
    machine = AgentMachine(1)
    _early(machine)
    assert machine.handle(StackUp(stack_seconds=0.3, now=0.8)) == []
    assert machine.state is State.STARTING_WORKER
    out = machine.handle(WorkerSaid(wh.Collected(()), now=1.5))
    assert isinstance(out[0], Emit) and isinstance(out[0].event, pm.AgentReady)
    assert machine.state is State.RUNNING


def test_a_stack_that_fails_after_the_worker_started_early_stops_the_worker_then_the_stack() -> None:
    machine = AgentMachine(1)
    _early(machine)
    machine.handle(WorkerSaid(wh.Collected(()), now=1.0))
    out = machine.handle(StackUpFailed("reset failed: db"))
    assert out[1:] == [KillWorker()]
    assert isinstance(out[0], Emit) and isinstance(out[0].event, pm.AgentFailed)
    out = machine.handle(WorkerExited(-9))
    assert out == [Emit(pm.TearingDown(agent_id=1)), TakeStackDown()]


def test_an_abort_before_the_stack_is_up_stops_the_early_worker_and_ignores_the_late_stack() -> None:
    machine = AgentMachine(1)
    _early(machine)
    assert machine.handle(CommandIn(pm.Abort())) == [KillWorker()]
    assert machine.handle(StackUp(now=2.0)) == []  # the teardown waits for it; nothing starts
    assert machine.handle(WorkerExited(-9)) == [Emit(pm.TearingDown(agent_id=1)), TakeStackDown()]


def test_an_abort_before_the_endpoints_starts_no_worker() -> None:
    machine = AgentMachine(1)
    machine.handle(CommandIn(pm.Abort()))
    assert machine.handle(StackReachable(now=0.5)) == []
    assert machine.handle(StackUp(now=1.0)) == [Emit(pm.TearingDown(agent_id=1)), TakeStackDown()]
