"""The agent machine's state and its primitive moves, shared by the handlers of its inputs.

`MachineCore` owns everything AgentMachine (agents/agent.py) knows: its state, its one record of
pending work (agents/_pending.py), the worker it runs and the start-up's moments; and the moves
every handler makes: start or stop a worker, take the stack down, end a test, emit an event to
the session, hand an action to the caller. The handlers of what the worker says are in
agents/_worker_inputs.py; those of commands and the stack in agents/agent.py.
"""

from __future__ import annotations

import dataclasses

from agents._io import Action, Emit, KillWorker, StackUp, StartWorker, TakeStackDown
from agents._pending import PendingWork
from agents._states import State
from orchestrator.protocol import messages as pm
from orchestrator.protocol import worker_hop as wh

__all__ = ["InvalidInput", "MachineCore"]

S = State


class InvalidInput(RuntimeError):
    """An input the machine's current state does not accept (a bug in the caller, or the session)."""


class MachineCore:
    """One agent's state and the moves its input handlers share; the base of AgentMachine."""

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

    # -- the moves every handler makes -------------------------------------------------------

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
