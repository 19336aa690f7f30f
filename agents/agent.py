"""The agent as a state machine without threads or I/O: inputs in, actions out.

`AgentMachine.handle(input)` takes one input (a command from the session, something the pytest
worker said on its pipe, the worker's exit, a clock tick, the result of a stack operation) and
returns the actions the caller must carry out (start or kill the worker, write to it, reset or
take down the stack, emit an event to the session, stop). It never reads a clock, never starts
a thread and never touches a process: agents/runtime.py does all of that and feeds the results
back in as inputs, and tests/unit/test_agent.py drives it with plain values.

Every state lists the inputs it accepts and the states they may lead to (`TRANSITIONS`, in
agents/_states.py, with the diagram); any other input raises `InvalidInput`.

What the agent decides, and what it does not: it reports a test that crashed or hung its worker
(TestCrashed, TestTimedOut) and goes on with a new worker for the rest; it never runs a test
again. Whether a crashed test is retried, where, is the session's decision (a new Assign).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import assert_never

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
from agents._pending import PendingWork
from agents._states import TRANSITIONS, State
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
# A worker that dies this many times in a row without ending a test is not started again.
MAX_FRUITLESS_RESTARTS = 3


class InvalidInput(RuntimeError):
    """An input the machine's current state does not accept (a bug in the caller, or the session)."""


def describe_exit(code: int) -> str:
    if code < 0:
        return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"


class AgentMachine:
    """One agent's decisions: which worker runs what, and what the session is told.

    Owned by agents/runtime.py's driver thread (or a test), which calls `handle` with one
    input at a time and carries out the returned actions in order.
    """

    def __init__(
        self,
        agent_id: int,
        timeout: float | None = None,
        node: pm.NodeInfo | None = None,
        collector: bool = False,
    ) -> None:
        self.agent_id = agent_id
        # A collection agent (AgentConfig.collector): its stack serves the coordinator's collection.
        self.collector = collector
        self.timeout = timeout or None
        self.node = node or pm.NodeInfo()
        self.state = State.STARTING_STACK
        # The one record of assigned work not yet ended here.
        self._pending = PendingWork()
        self._running: str | None = None
        self._running_since = 0.0
        self._timed_out: str | None = None
        self._finish_wanted = False
        self._flush_wanted = False
        self._abort_wanted = False
        self._announced = False
        self._stack_seconds = 0.0
        self._stack_up = StackUp()
        self._worker_started_at = 0.0
        self._worker_restarts = 0
        self._ended_by_this_worker = 0
        self._fruitless_exits = 0
        # Whether a test ran on the stack since it was brought up or last reset.
        self._stack_dirty = False
        # The stack is up (StackUp); the worker may have started before (StackReachable) and
        # collected: its Collected waits here for the stack.
        self._stack_ready = False
        self._waiting_collected: wh.Collected | None = None
        self._worker_early = False
        self._worker_collected_at = 0.0
        # The start-up's moments by the runtime's clock: stack_started, worker_started,
        # stack_ready, worker_ready (AgentReady.phases_ago).
        self._phases: dict[str, float] = {}
        self._out: list[Action] = []

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

    # -- inputs ----------------------------------------------------------------------------

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
                stack_args=event.stack_args, stack_env=dict(event.stack_env), worker_args=event.worker_args
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

    # -- the worker ------------------------------------------------------------------------

    def _on_WorkerSaid(self, event: WorkerSaid) -> None:
        message, now = event.message, event.now
        if self.state is S.STARTING_WORKER and not isinstance(message, wh.Collected | wh.Warned):
            raise InvalidInput(
                f"agent {self.agent_id}: worker said {type(message).__name__} before collecting"
            )
        if self.state is S.WAITING_STACK:
            if isinstance(message, wh.NeedWork):
                return  # the session hands out work once the agent is ready (AgentReady)
            if not isinstance(message, wh.Warned):
                raise InvalidInput(
                    f"agent {self.agent_id}: worker said {type(message).__name__} before it was given work"
                )
        match message:
            case wh.Started(node_id):
                self._running = node_id
                self._running_since = now
                self._stack_dirty = True
                self._pending.mark_started(node_id)
            case wh.Ended(node_id, reports, cpu):
                seconds = 0.0
                if self._running == node_id:
                    self._running = None
                    seconds = max(0.0, now - self._running_since)
                self._emit(pm.TestEnded(node_id=node_id, reports=reports, seconds=seconds, cpu_seconds=cpu))
                self._end(node_id)
            case wh.Collected():
                self._collected(message, now)
            case wh.NeedWork():
                if not self._finish_wanted:
                    self._emit(pm.WorkWanted())
            case wh.NotCollected(node_ids, similar):
                self._emit(pm.NotCollected(node_ids=node_ids, similar=similar))
                for node_id in node_ids:
                    self._end(node_id)
            case wh.Warned(warning):
                self._emit(pm.WarningRecorded(warning=dict(warning)))
            case wh.Stopping():
                # pytest's own shouldstop/shouldfail: the worker ends its session; no new one is started.
                if self.state is not S.STOPPING_WORKER:
                    self._stop_worker(kill=False)
            case wh.Exited():
                self._test_exited(message)
            case wh.ResetWanted(unit_id):
                self._reset_wanted(unit_id)
            case _:
                assert_never(message)

    def _collected(self, message: wh.Collected, now: float) -> None:
        if self.state is not S.STARTING_WORKER:
            raise InvalidInput(f"agent {self.agent_id}: worker collected twice")
        self._worker_collected_at = now
        self._phases.setdefault("worker_ready", now)
        if not self._stack_ready:
            self._waiting_collected = message
            self.state = S.WAITING_STACK
            return
        self._become_ready(message, now)

    def _become_ready(self, message: wh.Collected, now: float) -> None:
        """The stack is up and the worker has collected: announce once, hand it its work."""
        self._waiting_collected = None
        if not self._announced:
            self._announced = True
            self._emit(
                pm.AgentReady(
                    node=self.node,
                    collected=len(message.node_ids),
                    lazy_collection=message.lazy,
                    collection_fallback=message.fallback,
                    stack_up_seconds=self._stack_seconds,
                    stack_cache=self._stack_up.cache,
                    setup_seconds=self._stack_up.setup_seconds,
                    setup_saved_seconds=self._stack_up.setup_saved_seconds,
                    worker_start_seconds=max(0.0, self._worker_collected_at - self._worker_started_at),
                    versions=dict(message.versions or {}),
                    stack_warm=self._stack_up.warm,
                    phases_ago={name: max(0.0, now - at) for name, at in self._phases.items()},
                )
            )
        # Everything still pending, in its order, written once; then what was asked since.
        units = self._pending.by_unit()
        if units:
            self._do(SendToWorker(wh.Run(units)))
        if self._finish_wanted:
            self._do(SendToWorker(wh.FinishRun()))
            self.state = S.FINISHING
        else:
            if self._flush_wanted:
                self._do(SendToWorker(wh.FlushHeld()))
            self.state = S.RUNNING

    def _test_exited(self, message: wh.Exited) -> None:
        """pytest.exit() or KeyboardInterrupt in a test: the worker ends its session, we stop."""
        self._emit(
            pm.TestExited(
                node_id=message.node_id,
                message=message.message,
                returncode=message.returncode,
                interrupted=message.interrupted,
            )
        )
        if self._running == message.node_id:
            self._running = None
        self._end(message.node_id)
        if self.state is not S.STOPPING_WORKER:
            self._stop_worker(kill=False)

    def _reset_wanted(self, unit_id: str) -> None:
        if (
            self._stack_dirty
            and not self._pending.is_started(unit_id)
            and self.state in (S.RUNNING, S.FINISHING)
        ):
            self._emit(pm.AgentPhase(phase="reset", unit_id=unit_id))
            self._do(ResetStack(unit_id))
        else:
            # Nothing ran since the snapshot, or the unit is half done (a new worker resumes it):
            # resetting would not give it the state it expects.
            self._do(SendToWorker(wh.ResetFinished("")))

    def _on_WorkerExited(self, event: WorkerExited) -> None:
        running, self._running = self._running, None
        timed_out, self._timed_out = self._timed_out, None
        if self.state is S.STOPPING_WORKER:
            self._take_stack_down()
            return
        if not self._announced:
            self._emit(
                pm.AgentFailed(
                    message=f"pytest worker exited with code {event.code} before collecting",
                    logs=event.output,
                )
            )
            self._take_stack_down()
            return
        if timed_out is not None:
            self._emit(
                pm.TestTimedOut(node_id=timed_out, seconds=float(self.timeout or 0), output=event.output)
            )
            self._end(timed_out)
        elif running is not None:
            self._emit(
                pm.TestCrashed(node_id=running, message=describe_exit(event.code), output=event.output)
            )
            self._end(running)
        if self._finish_wanted and (not self._pending or (running is None and timed_out is None)):
            # A finished worker exits with pytest's exit code, whatever it is. One that exited
            # between tests while finishing is not replaced: the session requeues what is left.
            self._take_stack_down()
            return
        self._fruitless_exits = 0 if self._ended_by_this_worker else self._fruitless_exits + 1
        if self._fruitless_exits >= MAX_FRUITLESS_RESTARTS:
            self._emit(
                pm.AgentFailed(
                    message=f"pytest worker keeps dying ({describe_exit(event.code)}); agent gives up",
                    logs=event.output,
                )
            )
            self._take_stack_down()
            return
        self._worker_restarts += 1
        self._start_worker(0.0)

    # -- helpers ---------------------------------------------------------------------------

    def _start_worker(self, now: float) -> None:
        self._worker_started_at = now
        self._phases.setdefault("worker_started", now)
        self._ended_by_this_worker = 0
        self._do(StartWorker())
        self.state = S.STARTING_WORKER

    def _stop_worker(self, kill: bool) -> None:
        """Stop for good once the worker is gone: killed now, or exiting by itself."""
        if kill:
            self._do(KillWorker())
        self.state = S.STOPPING_WORKER

    def _take_stack_down(self) -> None:
        # Nothing more runs here: the session's report need not wait for the teardown.
        self._emit(pm.TearingDown())
        self._do(TakeStackDown())
        self.state = S.STOPPING_STACK

    def _end(self, node_id: str) -> None:
        """`node_id` has its end here (reported, crashed, timed out, not collected, exited)."""
        ended = self._pending.end(node_id)
        if ended is None:
            return
        self._ended_by_this_worker += 1
        unit_id, unit_ended = ended
        if unit_ended:
            self._emit(pm.UnitFinished(unit_id=unit_id))

    def _emit(self, event: pm.Event) -> None:
        self._out.append(Emit(dataclasses.replace(event, agent_id=self.agent_id)))

    def _do(self, action: Action) -> None:
        self._out.append(action)
