"""The agent <-> pytest worker hop: typed messages, one compact frame each, both ways.

The worker (agents/plugin.py) and its agent (agents/agent.py, agents/runtime.py) speak only
these values over two private pipes. Each frame is one msgpack array `[tag, version, *fields]`
(positional: this hop carries a frame per test, so it spends no bytes and no time on field
names); `decode` refuses an unknown tag or version, and the agent's machine handles the closed
set with `match` and `assert_never`.

    agent ── Run, FlushHeld, FinishRun, ResetFinished ──────────────────► worker
    agent ◄── Collected, Started, Ended, NeedWork, NotCollected, Stopping,
              Warned, Exited, ResetWanted ─────────────────────────────── worker

One message ends a test: `Ended`, carrying all of that test's pytest reports packed once by the
worker (orchestrator/protocol/reports.py). The agent never opens them: it forwards the bytes to
the coordinator inside a TestEnded event, so a report is encoded once and decoded once, where
it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from orchestrator.protocol import wire

__all__ = [
    "Collected",
    "Ended",
    "Exited",
    "FinishRun",
    "FlushHeld",
    "NeedWork",
    "NotCollected",
    "ResetFinished",
    "ResetWanted",
    "Run",
    "Started",
    "Stopping",
    "WorkerCommand",
    "WorkerMessage",
    "Warned",
    "decode",
    "encode",
]

HOP_VERSION = 4

# -- worker -> agent ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Collected:
    """The worker is ready: what it collected at start-up (nothing when it collects lazily)."""

    node_ids: tuple[str, ...] = ()
    versions: dict[str, str] | None = None
    lazy: bool = False
    fallback: str = ""


@dataclass(frozen=True, slots=True)
class Started:
    """The worker starts running `node_id` (written before the test's setup begins)."""

    node_id: str


@dataclass(frozen=True, slots=True)
class Ended:
    """`node_id` ran to its teardown: `reports` are all its pytest reports, packed once;
    `cpu` the worker process's CPU-seconds from its start to its end; `wait` the seconds its
    thread waited for a CPU meanwhile (agents/run_queue.py; -1.0: not known); `children` the
    CPU-seconds of the worker's child processes that ended and were waited for meanwhile (a test
    that runs a command: its time is theirs, and the load slowed them too)."""

    node_id: str
    reports: bytes
    cpu: float = 0.0
    wait: float = -1.0
    children: float = 0.0


@dataclass(frozen=True, slots=True)
class NeedWork:
    """The worker started the last-but-one test it holds: it will run dry soon."""


@dataclass(frozen=True, slots=True)
class NotCollected:
    """Node ids the worker was given that its collection does not have, and its own similar ones."""

    node_ids: tuple[str, ...]
    similar: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Stopping:
    """pytest wants to stop (shouldstop/shouldfail): the worker ends its session."""

    reason: str


@dataclass(frozen=True, slots=True)
class Warned:
    """A warning pytest recorded in the worker, serialised (see agents/plugin.py)."""

    warning: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Exited:
    """A test called pytest.exit() (`returncode`) or raised KeyboardInterrupt (`interrupted`)."""

    node_id: str
    message: str = ""
    returncode: int | None = None
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class ResetWanted:
    """Before the first test of `unit_id`: reset the stack, then say ResetFinished."""

    unit_id: str


WorkerMessage = (
    Collected | Started | Ended | NeedWork | NotCollected | Stopping | Warned | Exited | ResetWanted
)

# -- agent -> worker ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """Run these units after what the worker holds: (unit id, node ids) in order."""

    units: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class FlushHeld:
    """Nothing more for now: run the test held back, tearing its fixtures down."""


@dataclass(frozen=True, slots=True)
class FinishRun:
    """No more work: run what is held, then end the session."""


@dataclass(frozen=True, slots=True)
class ResetFinished:
    """The reset asked for is done; `error` is empty when it worked."""

    error: str = ""


WorkerCommand = Run | FlushHeld | FinishRun | ResetFinished

_TYPES: tuple[type, ...] = (
    Collected,
    Started,
    Ended,
    NeedWork,
    NotCollected,
    Stopping,
    Warned,
    Exited,
    ResetWanted,
    Run,
    FlushHeld,
    FinishRun,
    ResetFinished,
)
_TAG_OF: dict[type, int] = {cls: index for index, cls in enumerate(_TYPES)}
_FIELD_NAMES: dict[type, tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in _TYPES}


def encode(message: WorkerMessage | WorkerCommand) -> bytes:
    """One frame: `[tag, version, *fields]` as msgpack."""
    cls = type(message)
    return wire.pack([_TAG_OF[cls], HOP_VERSION, *(getattr(message, n) for n in _FIELD_NAMES[cls])])


def decode(frame: Any) -> WorkerMessage | WorkerCommand:
    """The value of one decoded frame; raises wire.WireError on anything else."""
    if not isinstance(frame, list) or len(frame) < 2:
        raise wire.WireError(f"not a frame of the worker hop: {frame!r:.200}")
    tag, version, *values = frame
    if version != HOP_VERSION:
        raise wire.WireError(f"worker hop version {version!r} is not {HOP_VERSION}")
    if not isinstance(tag, int) or not 0 <= tag < len(_TYPES):
        raise wire.WireError(f"unknown worker hop message {tag!r}")
    cls = _TYPES[tag]
    try:
        if cls is Run:
            return Run(tuple((str(u), tuple(ids)) for u, ids in values[0]))
        if cls is Collected:
            node_ids, versions, lazy, fallback = values
            return Collected(tuple(node_ids), dict(versions or {}), bool(lazy), str(fallback))
        if cls is NotCollected:
            return NotCollected(tuple(values[0]), tuple(values[1]))
        return cls(*values)
    except (TypeError, ValueError) as exc:
        raise wire.WireError(f"malformed {cls.__name__}: {exc}") from exc
