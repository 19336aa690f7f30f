"""The values AgentMachine (agents/agent.py) takes in and hands out: plain frozen dataclasses.

Inputs are what happened (a command, a worker message, an exit, a tick, a stack result);
actions are what the caller (agents/runtime.py, or a test) must do next. Both are re-exported
by agents.agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.protocol import messages as pm
from orchestrator.protocol import worker_hop as wh

# -- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackUp:
    """The stack is up (and snapshotted when it resets): `stack_seconds` it took; `now` after."""

    stack_seconds: float = 0.0
    resets: bool = False
    now: float = 0.0
    # How the worker is started on this stack (pm.StackReady's fields).
    stack_args: tuple[str, ...] = ()
    stack_env: dict[str, str] = field(default_factory=dict)
    worker_args: tuple[str, ...] = ()
    # the set-up state cache: "hit", "miss" or "" (no setup / cache off); the setup seconds this
    # agent paid, and those a hit saved (what the setup cost when it was cached)
    cache: str = ""
    setup_seconds: float = 0.0
    setup_saved_seconds: float = 0.0
    # when the stack's start began (the runtime's clock); "borrowed", "replaced: <why>", "busy"
    # or "" (AgentReady.stack_warm)
    started: float = 0.0
    warm: str = ""


@dataclass(frozen=True, slots=True)
class StackReachable:
    """The stack's endpoints are known and final, but it is not ready yet (a borrowed warm stack
    being reset): the worker may start now, with these arguments; StackUp follows."""

    started: float = 0.0
    now: float = 0.0
    stack_args: tuple[str, ...] = ()
    stack_env: dict[str, str] = field(default_factory=dict)
    worker_args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StackUpFailed:
    message: str
    logs: str = ""


@dataclass(frozen=True, slots=True)
class CommandIn:
    command: pm.Command


@dataclass(frozen=True, slots=True)
class WorkerSaid:
    """A message the worker wrote on its pipe (orchestrator/protocol/worker_hop.py); `now`: when read."""

    message: wh.WorkerMessage
    now: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkerExited:
    """The worker's pipe closed and the process exited (`code` < 0: killed by that signal)."""

    code: int
    output: str = ""


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class StackDied:
    message: str


@dataclass(frozen=True, slots=True)
class ResetDone:
    unit_id: str
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class StackDown:
    seconds: float = 0.0
    error: str = ""


Input = (
    StackUp
    | StackReachable
    | StackUpFailed
    | CommandIn
    | WorkerSaid
    | WorkerExited
    | Tick
    | StackDied
    | ResetDone
    | StackDown
)

# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartWorker:
    """Start a new pytest worker (the previous one, if any, has exited)."""


@dataclass(frozen=True, slots=True)
class SendToWorker:
    command: wh.WorkerCommand


@dataclass(frozen=True, slots=True)
class KillWorker:
    """Kill the worker and its process group; its exit comes back as WorkerExited."""


@dataclass(frozen=True, slots=True)
class ResetStack:
    """Reset the stack to its snapshot; the result comes back as ResetDone."""

    unit_id: str


@dataclass(frozen=True, slots=True)
class TakeStackDown:
    """Take the stack down (also after a failed up); the result comes back as StackDown."""


@dataclass(frozen=True, slots=True)
class Emit:
    event: pm.Event


@dataclass(frozen=True, slots=True)
class Stop:
    """Nothing more will happen: the runtime's threads may end."""


Action = StartWorker | SendToWorker | KillWorker | ResetStack | TakeStackDown | Emit | Stop
