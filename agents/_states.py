"""The agent's states and its explicit transition table, checked by AgentMachine.handle.

Read by agents/agent.py's AgentMachine on every input (and by tests naming states). Like h11's
`_state.py`, every state lists the inputs it accepts and the states they may lead to
(`TRANSITIONS`); any other input raises `InvalidInput`.

    SERVING ◄─StackUp (a collection agent: no worker; Finish, Abort or StackDied: STOPPING_STACK)
       ▲
    STARTING_STACK ──StackUp──► STARTING_WORKER ──collected──► RUNNING ──Finish──► FINISHING
         │ StackReachable (a borrowed warm stack: the worker starts while the stack is reset)
         └──────────────────────► STARTING_WORKER ──collected──► WAITING_STACK ──StackUp──► RUNNING
         │                         ▲   │                         │  │                 │
         │ StackUpFailed           │   │ exit before collecting  │  │ timeout         │ worker exits,
         │ (or Abort, then up)     │   ▼                         │  ▼                 │ nothing pending
         │                         │ STOPPING_STACK ◄──┐         │ REPLACING_WORKER   │
         │                         └─ crash, timeout: ─┼─────────┴──┘ (killed; exits) │
         ▼                            a new worker     │                              │
    STOPPING_STACK ◄── worker exited ── STOPPING_WORKER ◄── Abort, StackDied, `stopping`,
         │ StackDown                                     `exit`/`interrupted` from the worker
         ▼
      STOPPED   (AgentStopped emitted: always the last event, exactly once)

TearingDown is emitted as the stack starts coming down (the session's report does not wait).
"""

from __future__ import annotations

import enum

from agents._io import (
    CommandIn,
    ResetDone,
    StackDied,
    StackDown,
    StackReachable,
    StackUp,
    StackUpFailed,
    Tick,
    WorkerExited,
    WorkerSaid,
)

__all__ = ["TRANSITIONS", "State"]


class State(enum.Enum):
    STARTING_STACK = "starting stack"
    STARTING_WORKER = "starting worker"  # started, not yet collected
    WAITING_STACK = "waiting for the stack"  # started early and collected; the stack is not up yet
    SERVING = "serving"  # a collection agent: its stack is up for the coordinator's collection
    RUNNING = "running"  # collected, taking work
    FINISHING = "finishing"  # `finish` sent: the worker exits when its work is done
    REPLACING_WORKER = "replacing worker"  # killed for a timeout: a new one follows its exit
    STOPPING_WORKER = "stopping worker"  # killed (abort, stack died) or stopping by itself
    STOPPING_STACK = "stopping stack"
    STOPPED = "stopped"


S = State
_WORKER_GONE = frozenset({S.STARTING_WORKER, S.STOPPING_STACK})
# state -> input type -> the states that input may lead to. Anything else is InvalidInput.
TRANSITIONS: dict[State, dict[type, frozenset[State]]] = {
    S.STARTING_STACK: {
        # STOPPING_STACK after an Abort; SERVING for a collection agent (no worker).
        StackUp: frozenset({S.STARTING_WORKER, S.SERVING, S.STOPPING_STACK}),
        # The worker starts at once, unless an abort came first (the stack comes down once up).
        StackReachable: frozenset({S.STARTING_WORKER, S.STARTING_STACK}),
        StackUpFailed: frozenset({S.STOPPING_STACK}),
        CommandIn: frozenset({S.STARTING_STACK}),
        Tick: frozenset({S.STARTING_STACK}),
    },
    S.STARTING_WORKER: {
        WorkerSaid: frozenset({S.STARTING_WORKER, S.RUNNING, S.FINISHING, S.WAITING_STACK}),
        WorkerExited: _WORKER_GONE,  # a replacement is retried; the first worker fails the agent
        CommandIn: frozenset({S.STARTING_WORKER, S.STOPPING_WORKER}),
        StackDied: frozenset({S.STOPPING_WORKER}),
        # Only after StackReachable: the worker started before the stack was up.
        StackUp: frozenset({S.STARTING_WORKER}),
        StackUpFailed: frozenset({S.STOPPING_WORKER}),
        Tick: frozenset({S.STARTING_WORKER}),
    },
    S.WAITING_STACK: {
        WorkerSaid: frozenset({S.WAITING_STACK}),
        WorkerExited: frozenset({S.STOPPING_STACK}),
        CommandIn: frozenset({S.WAITING_STACK, S.STOPPING_WORKER}),
        StackDied: frozenset({S.STOPPING_WORKER}),
        StackUp: frozenset({S.RUNNING, S.FINISHING}),
        StackUpFailed: frozenset({S.STOPPING_WORKER}),
        Tick: frozenset({S.WAITING_STACK}),
    },
    S.RUNNING: {
        WorkerSaid: frozenset({S.RUNNING, S.STOPPING_WORKER}),
        WorkerExited: _WORKER_GONE,
        ResetDone: frozenset({S.RUNNING}),
        CommandIn: frozenset({S.RUNNING, S.FINISHING, S.STOPPING_WORKER}),
        StackDied: frozenset({S.STOPPING_WORKER}),
        Tick: frozenset({S.RUNNING, S.REPLACING_WORKER}),
    },
    S.FINISHING: {
        WorkerSaid: frozenset({S.FINISHING, S.STOPPING_WORKER}),
        WorkerExited: _WORKER_GONE,
        ResetDone: frozenset({S.FINISHING}),
        CommandIn: frozenset({S.FINISHING, S.STOPPING_WORKER}),
        StackDied: frozenset({S.STOPPING_WORKER}),
        Tick: frozenset({S.FINISHING, S.REPLACING_WORKER}),
    },
    S.SERVING: {
        CommandIn: frozenset({S.SERVING, S.STOPPING_STACK}),
        StackDied: frozenset({S.STOPPING_STACK}),
        Tick: frozenset({S.SERVING}),
    },
    S.REPLACING_WORKER: {
        # What the killed worker had written before it died is still relayed.
        WorkerSaid: frozenset({S.REPLACING_WORKER}),
        WorkerExited: _WORKER_GONE,
        ResetDone: frozenset({S.REPLACING_WORKER}),
        CommandIn: frozenset({S.REPLACING_WORKER, S.STOPPING_WORKER}),
        StackDied: frozenset({S.STOPPING_WORKER}),
        Tick: frozenset({S.REPLACING_WORKER}),
    },
    S.STOPPING_WORKER: {
        # A stack still coming up behind a worker that started early (and was stopped).
        StackUp: frozenset({S.STOPPING_WORKER}),
        StackUpFailed: frozenset({S.STOPPING_WORKER}),
        WorkerSaid: frozenset({S.STOPPING_WORKER}),
        WorkerExited: frozenset({S.STOPPING_STACK}),
        ResetDone: frozenset({S.STOPPING_WORKER}),
        CommandIn: frozenset({S.STOPPING_WORKER}),
        StackDied: frozenset({S.STOPPING_WORKER}),
        Tick: frozenset({S.STOPPING_WORKER}),
    },
    S.STOPPING_STACK: {
        StackDown: frozenset({S.STOPPED}),
        StackUp: frozenset({S.STOPPING_STACK}),
        StackUpFailed: frozenset({S.STOPPING_STACK}),
        CommandIn: frozenset({S.STOPPING_STACK}),
        # The stack watchdog may have seen the stack go before it was told to stop watching.
        StackDied: frozenset({S.STOPPING_STACK}),
        Tick: frozenset({S.STOPPING_STACK}),
    },
    S.STOPPED: {
        # Commands the session sent before it saw AgentStopped are dropped, and so is the end
        # of a stack's start that the teardown waited for (its worker had started early).
        CommandIn: frozenset({S.STOPPED}),
        StackUp: frozenset({S.STOPPED}),
        StackUpFailed: frozenset({S.STOPPED}),
    },
}
