"""The agent as a state machine without threads or I/O: inputs in, actions out.

`AgentMachine.handle(input)` takes one input (a command from the session, something the pytest
worker said on its pipe, the worker's exit, a clock tick, the result of a stack operation) and
returns the actions the caller must carry out (start or kill the worker, write to it, reset or
take down the stack, emit an event to the session, stop). It never reads a clock, never starts
a thread and never touches a process: agents/runtime.py does all of that and feeds the results
back in as inputs, and tests/unit/test_agent.py drives it with plain values.

Every state lists the inputs it accepts and the states they may lead to (`TRANSITIONS`, in
agents/_states.py, with the diagram); any other input raises `InvalidInput`.

The machine is built in layers, one per kind of input: its state and shared moves
(agents/_core.py), what the worker says and its exit (agents/_worker_inputs.py), and here the
entry point, the session's commands and the stack's results.

What the agent decides, and what it does not: it reports a test that crashed or hung its worker
(TestCrashed, TestTimedOut) and goes on with a new worker for the rest; it never runs a test
again. Whether a crashed test is retried, where, is the session's decision (a new Assign).
"""

from __future__ import annotations

from collections.abc import Iterable

from agents._core import InvalidInput
from agents._io import (
    Action,
    CommandIn,
    Emit,
    Input,
    KillWorker,
    ResetDone,
    ResetStack,
    SendToWorker,
    StackDied,
    StackDown,
    StackReachable,
    StackUp,
    StackUpFailed,
    StartWorker,
    Stop,
    TakeStackDown,
    Tick,
    WorkerExited,
    WorkerSaid,
)
from agents._states import TRANSITIONS, State
from agents._worker_inputs import MAX_FRUITLESS_RESTARTS, WorkerInputs
from orchestrator.protocol import messages as pm
from orchestrator.protocol import worker_hop as wh

__all__ = [
    "MAX_FRUITLESS_RESTARTS",
    "Action",
    "AgentMachine",
    "CommandIn",
    "Emit",
    "Input",
    "InvalidInput",
    "KillWorker",
    "ResetDone",
    "ResetStack",
    "SendToWorker",
    "StackDied",
    "StackDown",
    "StackReachable",
    "StackUp",
    "StackUpFailed",
    "StartWorker",
    "State",
    "Stop",
    "TakeStackDown",
    "Tick",
    "WorkerExited",
    "WorkerSaid",
]

S = State


class AgentMachine(WorkerInputs):
    """One agent's decisions: which worker runs what, and what the session is told.

    Owned by agents/runtime.py's driver thread (or a test), which calls `handle` with one
    input at a time and carries out the returned actions in order.
    """

    # -- the one entry point ---------------------------------------------------------------

    def handle(self, event: Input) -> list[Action]:
        """Apply one input; return the actions to carry out, in order."""
        allowed = TRANSITIONS[self.state].get(type(event))
        if allowed is None:
            raise InvalidInput(
                f"agent {self.agent_id}: {type(event).__name__} is not valid while {self.state.value}"
            )
        before = self.state
        self._out = []
        handler = getattr(self, f"_on_{type(event).__name__}")
        handler(event)
        if self.state not in allowed:
            raise AssertionError(f"{type(event).__name__} moved {before} to {self.state}, not in {allowed}")
        out, self._out = self._out, []
        return out

    @property
    def pending(self) -> list[tuple[str, str]]:
        """(unit id, node id) of the work assigned and not yet ended here, in run order."""
        return self._pending.items()

    @property
    def worker_restarts(self) -> int:
        return self._worker_restarts

    def deadline(self) -> float | None:
        """When the running test times out (the caller ticks then); None: nothing to time."""
        if self.timeout is None or self._running is None or self.state not in (S.RUNNING, S.FINISHING):
            return None
        return self._running_since + self.timeout

    # -- the stack's results and the clock ------------------------------------------------

    def _on_StackReachable(self, event: StackReachable) -> None:
        """A borrowed stack's endpoints: the worker starts now, while the stack is reset."""
        self._phases["stack_started"] = event.started
        if self._abort_wanted or self.collector:
            return  # the stack comes down once it is up
        self._emit(
            pm.StackReady(
                stack_args=event.stack_args, stack_env=dict(event.stack_env), worker_args=event.worker_args
            )
        )
        self._worker_early = True
        self._start_worker(event.now)

    def _on_StackUp(self, event: StackUp) -> None:
        self._stack_seconds = event.stack_seconds
        self._stack_up = event
        self._stack_ready = True
        self._phases.setdefault("stack_started", event.started)
        self._phases["stack_ready"] = event.now
        if self.state is not S.STARTING_STACK:
            if not self._worker_early and self.state is not S.STOPPING_STACK and self.state is not S.STOPPED:
                raise InvalidInput(f"agent {self.agent_id}: the stack came up twice")
            # The worker started early (StackReachable): ready once it has collected too.
            if self.state is S.WAITING_STACK and self._waiting_collected is not None:
                self._become_ready(self._waiting_collected, event.now)
            return
        if self._abort_wanted or (self.collector and self._finish_wanted):
            self._take_stack_down()
            return
        self._emit(
            pm.StackReady(
                stack_args=event.stack_args,
                stack_env=dict(event.stack_env),
                worker_args=event.worker_args,
                stack_warm=event.warm,
            )
        )
        if self.collector:
            self.state = S.SERVING
            return
        self._start_worker(event.now)

    def _on_StackUpFailed(self, event: StackUpFailed) -> None:
        if self.state in (S.STOPPING_WORKER, S.STOPPING_STACK, S.STOPPED):
            return  # stopping already (an abort): the stack comes down after the worker
        self._emit(pm.AgentFailed(message=event.message, logs=event.logs))
        if self.state is S.STARTING_STACK:
            self._take_stack_down()
        else:
            self._stop_worker(kill=True)  # it started early; the stack comes down after it

    def _on_Tick(self, event: Tick) -> None:
        if (
            self.timeout is not None
            and self.state in (S.RUNNING, S.FINISHING)
            and self._running is not None
            and event.now - self._running_since >= self.timeout
        ):
            self._timed_out = self._running
            self._do(KillWorker())
            self.state = S.REPLACING_WORKER

    def _on_StackDied(self, event: StackDied) -> None:
        if self.state in (S.STOPPING_WORKER, S.STOPPING_STACK):
            return  # already stopping: the stack going too changes nothing
        if self.state is S.SERVING:
            self._emit(pm.AgentFailed(message=f"stack failed: {event.message}"))
            self._take_stack_down()
            return
        self._emit(
            pm.AgentFailed(
                message="stack failed mid-run, the agent stopped and its unfinished tests go to "
                f"other agents: {event.message}"
            )
        )
        self._stop_worker(kill=True)

    def _on_ResetDone(self, event: ResetDone) -> None:
        self._stack_dirty = False
        self._emit(pm.StackReset(unit_id=event.unit_id, seconds=event.seconds, error=event.error))
        if self.state in (S.RUNNING, S.FINISHING):
            self._do(SendToWorker(wh.ResetFinished(event.error)))

    def _on_StackDown(self, event: StackDown) -> None:
        if event.error:
            self._emit(pm.AgentFailed(message=f"stack teardown failed: {event.error}"))
        self._emit(pm.AgentStopped(stack_down_seconds=event.seconds, worker_restarts=self._worker_restarts))
        self._do(Stop())
        self.state = S.STOPPED

    # -- commands --------------------------------------------------------------------------

    def _on_CommandIn(self, event: CommandIn) -> None:
        command = event.command
        if self.state is S.STOPPING_WORKER and isinstance(command, pm.Abort):
            self._do(KillWorker())  # a worker ending its session by itself: no need to wait
            return
        if self.state in (S.STOPPING_WORKER, S.STOPPING_STACK, S.STOPPED):
            return  # sent before the session knew this agent stops; it requeues what is pending
        if self.state is S.SERVING:
            if isinstance(command, pm.Finish | pm.Abort):
                self._take_stack_down()
                return
            raise InvalidInput(f"agent {self.agent_id}: a collection agent takes no {type(command).__name__}")
        if isinstance(command, pm.Assign):
            self._assign(command.units)
        elif isinstance(command, pm.Flush):
            self._flush_wanted = True
            if self.state is S.RUNNING:
                self._do(SendToWorker(wh.FlushHeld()))
        elif isinstance(command, pm.Finish):
            if self._finish_wanted:
                return
            self._finish_wanted = True
            if self.state is S.RUNNING:
                self._do(SendToWorker(wh.FinishRun()))
                self.state = S.FINISHING
        elif isinstance(command, pm.Abort):
            self._abort_wanted = True
            if self.state is not S.STARTING_STACK:  # else: the stack comes down once it is up
                self._stop_worker(kill=True)
        else:
            raise InvalidInput(f"unknown command {command!r}")

    def _assign(self, units: Iterable[pm.UnitWork]) -> None:
        if self._finish_wanted:
            raise InvalidInput(f"agent {self.agent_id}: Assign after Finish")
        units = tuple(units)
        for unit in units:
            for node_id in unit.node_ids:
                if node_id in self._pending:
                    raise InvalidInput(f"agent {self.agent_id}: {node_id} assigned twice")
                self._pending.add(unit.unit_id, node_id)
        # The last held test has a successor again: no flush until the session asks anew.
        self._flush_wanted = False
        if self.state is S.RUNNING:
            self._do(SendToWorker(wh.Run(tuple((u.unit_id, u.node_ids) for u in units))))
