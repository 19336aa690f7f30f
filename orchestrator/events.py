"""Events an agent reports to the coordinator, and their wire form.

An agent never calls the coordinator: it queues these, the backend carries them (batched, as
msgpack bytes) and the session dispatches each to its `on_<event>` handler. An event type the
session does not handle is an error, never silently dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.protocol import wire


@dataclass(frozen=True, slots=True)
class Event:
    """Base: every event names the agent it comes from."""

    name: ClassVar[str] = "event"
    agent_id: int


@dataclass(frozen=True, slots=True)
class AgentReady(Event):
    """The agent's stack is up and its pytest worker has collected; it can take work."""

    name: ClassVar[str] = "agent_ready"
    host: str = ""
    collected: int = 0
    stack_up_seconds: float = 0.0
    startup_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TestStarted(Event):
    __test__ = False
    name: ClassVar[str] = "test_started"
    node_id: str = ""


@dataclass(frozen=True, slots=True)
class WorkWanted(Event):
    """The agent's worker is about to run dry: it started the last-but-one test it holds."""

    name: ClassVar[str] = "work_wanted"


@dataclass(frozen=True, slots=True)
class TestReported(Event):
    """One of pytest's reports (setup, call or teardown), serialised by pytest itself."""

    __test__ = False
    name: ClassVar[str] = "test_reported"
    node_id: str = ""
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TestCrashed(Event):
    """The worker died while running `node_id`; `retry` says whether the agent runs it again."""

    __test__ = False
    name: ClassVar[str] = "test_crashed"
    node_id: str = ""
    message: str = ""
    output: str = ""
    retry: bool = False


@dataclass(frozen=True, slots=True)
class TestTimedOut(Event):
    __test__ = False
    name: ClassVar[str] = "test_timed_out"
    node_id: str = ""
    seconds: float = 0.0
    output: str = ""


@dataclass(frozen=True, slots=True)
class NotCollected(Event):
    """Node ids the coordinator assigned that this agent's collection does not have."""

    name: ClassVar[str] = "not_collected"
    node_ids: tuple[str, ...] = ()
    message: str = ""
    # The worker's own node ids with the same names (module::function before any "[params]").
    similar: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UnitFinished(Event):
    name: ClassVar[str] = "unit_finished"
    unit_id: str = ""


@dataclass(frozen=True, slots=True)
class AgentFailed(Event):
    """The agent cannot run tests (stack failure, worker cannot start); it takes no more work."""

    name: ClassVar[str] = "agent_failed"
    message: str = ""
    logs: str = ""


@dataclass(frozen=True, slots=True)
class AgentStopped(Event):
    """The agent finished: its worker exited and its stack is down."""

    name: ClassVar[str] = "agent_stopped"
    busy_seconds: float = 0.0
    stack_down_seconds: float = 0.0
    worker_restarts: int = 0


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (
        AgentReady,
        TestStarted,
        WorkWanted,
        TestReported,
        TestCrashed,
        TestTimedOut,
        NotCollected,
        UnitFinished,
        AgentFailed,
        AgentStopped,
    )
}


def to_wire(events: list[Event]) -> bytes:
    """Pack a batch of events into one msgpack frame."""
    return wire.pack(
        [wire.message(e.name, **{f.name: getattr(e, f.name) for f in dataclasses.fields(e)}) for e in events]
    )


def from_wire(data: bytes) -> list[Event]:
    """Unpack a batch packed by `to_wire`; raises wire.WireError on unknown tags or versions."""
    events: list[Event] = []
    for raw in wire.unpack(data):
        tag, msg = wire.check(raw)
        cls = EVENT_TYPES.get(tag)
        if cls is None:
            raise wire.WireError(f"unknown event {tag!r}")
        kwargs = {k: v for k, v in msg.items() if not k.startswith("$")}
        for key in ("node_ids", "similar"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        events.append(cls(**kwargs))
    return events
