"""The base of every coordinator <-> agent message, and the commands from the session to an agent.

    coordinator ── Assign, Flush, Finish, Abort ──► agent

A message's `name` is its type tag on the wire; orchestrator/protocol/messages.py holds the one
registry of tags and the encoding. The events coming back are in orchestrator/protocol/events.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from orchestrator.protocol.values import UnitWork

__all__ = ["Abort", "Assign", "Command", "Finish", "Flush", "Message"]


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
