"""The messages between the coordinator and its agents: typed values, one encoding, both ways.

Commands go from the session (through a backend) to one agent; events come back from agents
and are dispatched by the session to its `on_<event>` handlers. An agent never calls the
coordinator, and nothing crosses the boundary as a pickle: whatever the transport (a thread
queue, a Ray actor call, a socket), it carries the bytes of `encode`, and the other side
rebuilds the same frozen values with `decode`, which refuses unknown tags and versions.

This module is the messages' face and their encoding: the one registry of tags
(`MESSAGE_TYPES`) and `encode`/`decode`; it re-exports the shared values (values.py), the
commands (commands.py) and the events (events.py), so `messages.X` names every one of them.

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
from typing import Any

from orchestrator.protocol import wire
from orchestrator.protocol.commands import Abort, Assign, Command, Finish, Flush, Message
from orchestrator.protocol.events import (
    AgentFailed,
    AgentPhase,
    AgentReady,
    AgentStopped,
    Event,
    NotCollected,
    StackReady,
    StackReset,
    TearingDown,
    TestCrashed,
    TestEnded,
    TestExited,
    TestTimedOut,
    UnitFinished,
    WarningRecorded,
    WorkWanted,
)
from orchestrator.protocol.values import AgentConfig, NodeInfo, UnitWork

__all__ = [
    "MESSAGE_TYPES",
    "Abort",
    "AgentConfig",
    "AgentFailed",
    "AgentPhase",
    "AgentReady",
    "AgentStopped",
    "Assign",
    "Command",
    "Event",
    "Finish",
    "Flush",
    "Message",
    "NodeInfo",
    "NotCollected",
    "StackReady",
    "StackReset",
    "TearingDown",
    "TestCrashed",
    "TestEnded",
    "TestExited",
    "TestTimedOut",
    "UnitFinished",
    "UnitWork",
    "WarningRecorded",
    "WorkWanted",
    "decode",
    "decode_config",
    "encode",
    "encode_config",
]

_T = typing.TypeVar("_T")


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
