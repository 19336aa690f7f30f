"""The events an agent sends its coordinator: what happened to its stack, its worker and its tests.

    coordinator ◄── AgentPhase, StackReady, AgentReady, TestEnded, WarningRecorded, TestCrashed,
                    TestTimedOut, TestExited, NotCollected, StackReset, UnitFinished,
                    WorkWanted, AgentFailed, TearingDown, AgentStopped ── agent

The session dispatches each to its `on_<event>` handler. Every event names its agent; the tags
are registered, and encoded, by orchestrator/protocol/messages.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.protocol.commands import Message
from orchestrator.protocol.values import NodeInfo

__all__ = [
    "AgentFailed",
    "AgentPhase",
    "AgentReady",
    "AgentStopped",
    "Event",
    "NotCollected",
    "StackReady",
    "StackReset",
    "TearingDown",
    "TestCrashed",
    "TestEnded",
    "TestExited",
    "TestTimedOut",
    "UnitFinished",
    "WarningRecorded",
    "WorkWanted",
]


@dataclass(frozen=True, slots=True)
class Event(Message):
    """From an agent: every event names the agent it comes from."""

    agent_id: int = 0


@dataclass(frozen=True, slots=True)
class AgentReady(Event):
    """The agent's stack is up and its pytest worker has collected: it can take work."""

    name: ClassVar[str] = "agent_ready"
    node: NodeInfo = field(default_factory=NodeInfo)
    # Tests the worker collected at start-up: none when it collects test files as units arrive
    # (`lazy_collection`); `collection_fallback` says why it collected everything instead.
    collected: int = 0
    lazy_collection: bool = False
    collection_fallback: str = ""
    # Seconds from the agent's start: stack up (set-up commands included), then the worker's
    # start and collection.
    stack_up_seconds: float = 0.0
    worker_start_seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    # The stack's set-up state cache (agents/stack/images.py): "hit" (no setup ran here),
    # "miss" (this agent ran setup and committed it) or "" (no setup, or no cache); the setup
    # seconds paid here, and those a hit saved.
    stack_cache: str = ""
    setup_seconds: float = 0.0
    setup_saved_seconds: float = 0.0
    # A warm stack (AgentConfig.warm_id): "borrowed", "replaced: <why>", "busy" (another run
    # holds it: this agent brought up a stack of its own), or "" (no warm stack).
    stack_warm: str = ""
    # Seconds before this event at which the stack started, the worker started, the stack was
    # ready and the worker had collected (the agent's clock): the agent's start-up timeline,
    # where the worker's start may overlap the stack's.
    phases_ago: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StackReady(Event):
    """The agent's stack is up: how its worker is started on it (before the worker starts).

    `stack_args` and `stack_env` are the stack file's per-agent pytest_args and env rendered
    for this stack; `worker_args` the worker's whole pytest command line after `-m pytest`.
    """

    name: ClassVar[str] = "stack_ready"
    stack_args: tuple[str, ...] = ()
    stack_env: dict[str, str] = field(default_factory=dict)
    worker_args: tuple[str, ...] = ()
    # As AgentReady.stack_warm: "borrowed", "replaced: <why>", "busy" or "" (no warm stack).
    stack_warm: str = ""


@dataclass(frozen=True, slots=True)
class AgentPhase(Event):
    """The agent entered a phase of its start-up or of its stack's care: one message per change,
    never one per test (what the live status shows between StackReady, AgentReady and the tests).

    `phase` is one of `PHASES`: "services" (its stack's services are starting: `ready` and
    `waiting` name them, `timeout` is the stack's ready timeout in seconds), "setup" (the stack's
    set-up commands run, or it waits for the set-up state another agent makes), "snapshot"
    (the stack's state is recorded for resets), "reset" (the stack goes back to its snapshot
    before `unit_id`; StackReset follows).
    """

    name: ClassVar[str] = "agent_phase"
    PHASES: ClassVar[tuple[str, ...]] = ("services", "setup", "snapshot", "reset")
    phase: str = ""
    ready: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    timeout: float = 0.0
    unit_id: str = ""


@dataclass(frozen=True, slots=True)
class TestEnded(Event):
    """`node_id` ran to its teardown on the agent: the one event of a test that ended normally.

    `reports` are all its pytest reports as the worker packed them (orchestrator/protocol/
    reports.py), forwarded unopened by the agent; `seconds` is how long it ran by the agent's
    clock, from the worker's Started to its Ended.
    """

    __test__ = False
    name: ClassVar[str] = "test_ended"
    node_id: str = ""
    reports: bytes = b""
    seconds: float = 0.0
    # The worker's CPU-seconds over the test and its child processes' that ended meanwhile, plus
    # its share of what the agent's containers spent (agents/stack/cgroup_cpu.py; none where
    # their cgroups cannot be read).
    cpu_seconds: float = 0.0
    # Of cpu_seconds, the child processes' and the containers' (agents/load_costs.py).
    service_cpu_seconds: float = 0.0
    # The seconds its worker waited for a CPU meanwhile (agents/run_queue.py; -1.0: the kernel
    # keeps no count): what the machine's load cost it (orchestrator/run/host_load.py).
    wait_seconds: float = -1.0


@dataclass(frozen=True, slots=True)
class WarningRecorded(Event):
    """A warning pytest recorded in the worker (pytest_warning_recorded), serialised."""

    name: ClassVar[str] = "warning_recorded"
    warning: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TestCrashed(Event):
    """The worker died while running `node_id`; the agent went on without it on a new worker."""

    __test__ = False
    name: ClassVar[str] = "test_crashed"
    node_id: str = ""
    message: str = ""
    output: str = ""


@dataclass(frozen=True, slots=True)
class TestTimedOut(Event):
    """`node_id` ran past the timeout: its worker was killed, a new one took the rest."""

    __test__ = False
    name: ClassVar[str] = "test_timed_out"
    node_id: str = ""
    seconds: float = 0.0
    output: str = ""


@dataclass(frozen=True, slots=True)
class TestExited(Event):
    """A test called pytest.exit() (`returncode`) or raised KeyboardInterrupt (`interrupted`)."""

    __test__ = False
    name: ClassVar[str] = "test_exited"
    node_id: str = ""
    message: str = ""
    returncode: int | None = None
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class NotCollected(Event):
    """Node ids the agent was given that its worker's collection does not have."""

    name: ClassVar[str] = "not_collected"
    node_ids: tuple[str, ...] = ()
    # The worker's own node ids with the same names (module::function before any "[params]").
    similar: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StackReset(Event):
    """The stack was reset to its snapshot before `unit_id` (x-orchestrate reset)."""

    name: ClassVar[str] = "stack_reset"
    unit_id: str = ""
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class UnitFinished(Event):
    """Every test of the unit has an end here (reported, crashed, timed out or not collected)."""

    name: ClassVar[str] = "unit_finished"
    unit_id: str = ""


@dataclass(frozen=True, slots=True)
class WorkWanted(Event):
    """The worker is about to run dry: it started the last-but-one test it holds."""

    name: ClassVar[str] = "work_wanted"


@dataclass(frozen=True, slots=True)
class AgentFailed(Event):
    """The agent cannot run tests any more (stack failure, worker cannot start or keeps dying)."""

    name: ClassVar[str] = "agent_failed"
    message: str = ""
    logs: str = ""


@dataclass(frozen=True, slots=True)
class AgentStopped(Event):
    """The agent is done: its worker exited and its stack is down. Always its last event."""

    name: ClassVar[str] = "agent_stopped"
    stack_down_seconds: float = 0.0
    worker_restarts: int = 0


@dataclass(frozen=True, slots=True)
class TearingDown(Event):
    """The agent runs nothing more: its worker is gone, its stack comes down (or is kept warm).

    The session's report does not wait for the teardown; AgentStopped still follows.
    """

    name: ClassVar[str] = "tearing_down"
