"""How the agent takes what its pytest worker says on the worker hop, and the worker's exit.

`WorkerInputs` is the layer of AgentMachine (agents/agent.py) that handles WorkerSaid and
WorkerExited: a test started or ended, the worker collected (the agent becomes ready once its
stack is up too), it wants work, warned, stops or exits, asks for a stack reset; and a worker
that exited, crashed or was killed for a timeout is replaced, up to MAX_FRUITLESS_RESTARTS in a
row that end no test. The state it reads and the moves it makes are MachineCore's (agents/_core.py).
"""

from __future__ import annotations

from typing import assert_never

from agents._core import InvalidInput, MachineCore
from agents._io import ResetStack, SendToWorker, WorkerExited, WorkerSaid
from agents._states import State
from orchestrator.protocol import messages as pm
from orchestrator.protocol import worker_hop as wh

__all__ = ["MAX_FRUITLESS_RESTARTS", "WorkerInputs", "describe_exit"]

S = State
# A worker that dies this many times in a row without ending a test is not started again.
MAX_FRUITLESS_RESTARTS = 3


def describe_exit(code: int) -> str:
    if code < 0:
        return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"


class WorkerInputs(MachineCore):
    """The handlers of what the worker says (WorkerSaid) and of its exit (WorkerExited)."""

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
            case wh.Ended(node_id, reports, cpu, wait, children):
                seconds = 0.0
                if self._running == node_id:
                    self._running = None
                    seconds = max(0.0, now - self._running_since)
                self._emit(
                    pm.TestEnded(
                        node_id=node_id,
                        reports=reports,
                        seconds=seconds,
                        # The test's child processes computed for it: counted as its services
                        # are, slowed by the load as the worker was (host_load.py).
                        cpu_seconds=cpu + children,
                        service_cpu_seconds=children,
                        wait_seconds=wait,
                    )
                )
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
