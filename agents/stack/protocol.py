"""The Stack protocol: one agent's private set of services (containers), up and down.

Called by the agent (agents/agent.py): `up()` once before its pytest worker starts, `check()`
every few seconds while tests run, `down()` exactly once at the end, whatever happened (also
after a failed `up()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StackEndpoints:
    """What the agent's tests get: env vars, and the published endpoint of each service."""

    env: dict[str, str] = field(default_factory=dict)
    # service name -> {"host": "127.0.0.1", "port": 49153, "ports": {"5432": 49153}}
    services: dict[str, dict[str, object]] = field(default_factory=dict)
    up_seconds: float = 0.0
    setup_seconds: float = 0.0


class Stack(Protocol):
    def up(self) -> StackEndpoints:
        """Start every service, wait until each is ready, run the set-up commands.

        Raises agents.stack.errors.StackFailed (naming the service, with its last log lines).
        """
        ...

    def check(self) -> None:
        """Raise StackFailed (naming the service, with its last log lines) if one stopped since `up`."""
        ...

    def down(self) -> float:
        """Remove everything `up` created (also after a failed `up`); returns seconds taken."""
        ...
