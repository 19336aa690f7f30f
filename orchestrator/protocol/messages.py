"""The messages between the coordinator and its agents: typed values, one encoding, both ways.

Commands go from the session (through a backend) to one agent; events come back from agents
and are dispatched by the session to its `on_<event>` handlers. An agent never calls the
coordinator, and nothing crosses the boundary as a pickle: whatever the transport (a thread
queue, a Ray actor call, a socket), it carries the bytes of `encode`, and the other side
rebuilds the same frozen values with `decode`, which refuses unknown tags and versions.

    coordinator ── AgentConfig (once), Assign, Flush, Finish, Abort ──► agent
    coordinator ◄── AgentPhase, StackReady, AgentReady, TestEnded, WarningRecorded, TestCrashed,
                    TestTimedOut, TestExited, NotCollected, StackReset, UnitFinished,
                    WorkWanted, AgentFailed, TearingDown, AgentStopped ── agent

What each side decides: the agent executes what it is given and reports what happened (a
test crashed its worker, a test timed out); it never retries anything. Whether a crashed test
runs again, where, and when the run is over is the session's to decide.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.protocol import wire

_T = typing.TypeVar("_T")

# -- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """Where an agent runs: the cluster node (Ray's node id and address), the host name, and
    what the node has (Ray's resource totals of that node; a local agent: this machine's CPUs),
    which the schedulers match against units' `@pytest.mark.orchestrate(resources=...)`."""

    node_id: str = ""
    address: str = ""
    hostname: str = ""
    resources: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnitWork:
    """One unit handed to an agent: its id and the node ids to run, in order."""

    unit_id: str
    node_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything an agent needs to start: sent once, when the backend creates the agent."""

    agent_id: int
    run_id: str
    # `<hostname>:<pid>` of the coordinator, stamped on every container (see agents.stack).
    owner: str
    cwd: str
    # The user's paths and pytest arguments, as the coordinator's own session got them.
    pytest_args: tuple[str, ...] = ()
    # The stack file's text and path (the agent parses it; relative paths are the file's).
    stack_text: str = ""
    stack_path: str = ""
    timeout: float | None = None
    python: str = ""
    # The worker's base environment; None: the agent process's own (an agent on another node).
    env: dict[str, str] | None = None
    # The user's --basetemp, if any: each agent's worker gets a directory of its own below it.
    basetemp: str | None = None
    # A collection agent: it brings its stack up, says how a worker would be started on it
    # (StackReady) and keeps the stack up until Finish; it never starts a worker.
    collector: bool = False
    # A warm stack to borrow (`orchestrate up --stack`, agents/stack/warm.py): the label its
    # containers carry as their run, the keeper process's `<hostname>:<pid>` that owns them, and
    # the folder of the slots' records and locks; empty: a stack of this run's own.
    warm_id: str = ""
    warm_owner: str = ""
    warm_dir: str = ""


# -- messages -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every command and event; `name` is its type tag on the wire."""

    name: ClassVar[str] = "message"


@dataclass(frozen=True, slots=True)
class Command(Message):
    """From the session to one agent (the backend knows which)."""


@dataclass(frozen=True, slots=True)
class Assign(Command):
    """Run these units after what the agent already holds, in this order."""

    name: ClassVar[str] = "assign"
    units: tuple[UnitWork, ...] = ()


@dataclass(frozen=True, slots=True)
class Flush(Command):
    """Nothing more for now: run the test held back, tearing its fixtures down."""

    name: ClassVar[str] = "flush"


@dataclass(frozen=True, slots=True)
class Finish(Command):
    """No more work: run what is held, stop the worker, take the stack down."""

    name: ClassVar[str] = "finish"


@dataclass(frozen=True, slots=True)
class Abort(Command):
    """Stop now: kill the worker; the stack still comes down."""

    name: ClassVar[str] = "abort"


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
    # The worker's CPU-seconds over the test (its own process; not a service it talked to).
    cpu_seconds: float = 0.0


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


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.name: cls
    for cls in (
        Assign,
        Flush,
        Finish,
        Abort,
        AgentReady,
        AgentPhase,
        StackReady,
        TestEnded,
        WarningRecorded,
        TestCrashed,
        TestTimedOut,
        TestExited,
        NotCollected,
        StackReset,
        UnitFinished,
        WorkWanted,
        AgentFailed,
        TearingDown,
        AgentStopped,
    )
}
# AgentConfig travels alone (once per agent), under its own tag.
_CONFIG_TAG = "agent_config"


# -- encoding -----------------------------------------------------------------------------------


def encode(messages: Iterable[Message]) -> bytes:
    """Pack a batch of messages into one msgpack document."""
    return wire.pack([wire.message(m.name, **_plain_fields(m)) for m in messages])


def decode(data: bytes) -> list[Message]:
    """Unpack a batch packed by `encode`; raises wire.WireError on unknown tags or versions."""
    decoded: list[Message] = []
    batch = wire.unpack(data)
    if not isinstance(batch, list):
        raise wire.WireError("a batch of messages must be a list")
    for raw in batch:
        tag, fields = wire.check(raw)
        cls = MESSAGE_TYPES.get(tag)
        if cls is None:
            raise wire.WireError(f"unknown message {tag!r}")
        decoded.append(_build(cls, fields))
    return decoded


def encode_config(config: AgentConfig) -> bytes:
    return wire.pack(wire.message(_CONFIG_TAG, **_plain_fields(config)))


def decode_config(data: bytes) -> AgentConfig:
    tag, fields = wire.check(wire.unpack(data))
    if tag != _CONFIG_TAG:
        raise wire.WireError(f"expected an agent config, got {tag!r}")
    return _build(AgentConfig, fields)


def _plain_fields(value: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain_fields(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _build(cls: type[_T], fields: dict[str, Any]) -> _T:
    converters = _converters(typing.cast(type, cls))
    try:
        kwargs = {name: converters[name](value) for name, value in fields.items() if name[0] != "$"}
        return cls(**kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise wire.WireError(f"malformed {getattr(cls, 'name', cls.__name__)!r}: {exc}") from exc


@functools.cache
def _converters(cls: type) -> dict[str, Callable[[Any], Any]]:
    """Per field of `cls`, the function turning a decoded plain value back into its declared type.

    Worked out once per class: decoding is on the path of every event of every test.
    """
    return {name: _converter(hint) for name, hint in typing.get_type_hints(cls).items()}


def _identity(value: Any) -> Any:
    return value


def _converter(hint: Any) -> Callable[[Any], Any]:
    """The conversion for one declared type: tuples from lists, nested values from maps."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            return _identity
        inner = _converter(options[0])
        return inner if inner is _identity else (lambda value: None if value is None else inner(value))
    if origin is tuple:
        item = _converter(typing.get_args(hint)[0])
        if item is _identity:
            return lambda value: None if value is None else tuple(value)
        return lambda value: None if value is None else tuple(item(v) for v in value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return lambda value: None if value is None else _build(hint, value)
    return _identity
