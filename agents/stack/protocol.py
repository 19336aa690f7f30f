"""The Stack protocol: one agent's private set of services (containers), up, reset and down.

Called by the agent (agents/agent.py): `up()` once before its pytest worker starts,
`snapshot()` once right after `up()` and before any test, `reset()` before every unit
(reruns and requeued units included) when `resets` is true, `check()` every few seconds while
tests run, `down()` exactly once at the end, whatever happened (also after a failed `up()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StackEndpoints:
    """What the agent's tests get: env vars, the endpoint of each service, extra pytest arguments."""

    env: dict[str, str] = field(default_factory=dict)
    # service name -> {"host": "127.0.0.1", "port": 49153, "ports": {"5432": 49153}}
    services: dict[str, dict[str, object]] = field(default_factory=dict)
    up_seconds: float = 0.0
    setup_seconds: float = 0.0
    # x-orchestrate.pytest_args rendered for this stack: appended to this agent's worker command
    # line (after the run's own pytest arguments), never to the coordinator's collection
    pytest_args: tuple[str, ...] = ()


class Stack(Protocol):
    def up(self) -> StackEndpoints:
        """Start every service, wait until each is ready, run the set-up commands.

        Raises agents.stack.errors.StackFailed (naming the service, with its last log lines).
        """
        ...

    @property
    def resets(self) -> bool:
        """True when the stack file asks for a reset before every unit (`reset` or `reset_commands`).

        Read by the agent to decide whether to call `snapshot()` and `reset()` at all.
        """
        ...

    def snapshot(self) -> float:
        """Record the state of every service named in `reset`; returns seconds taken.

        Called once by the agent after `up()` returned and before any test. Also checks that
        each service is the kind of server its strategy expects. Raises StackFailed naming the
        service. A no-op (0.0) when nothing is to be reset.
        """
        ...

    def reset(self) -> float:
        """Put every service back to its snapshot, then run `reset_commands`; returns seconds taken.

        Called by the agent before every unit, while its worker runs no test. Raises StackFailed
        naming the service (or the command) and what failed: a unit must never run on dirty state.
        """
        ...

    def check(self) -> None:
        """Raise StackFailed (naming the service, with its last log lines) if one stopped since `up`."""
        ...

    def down(self) -> float:
        """Remove everything `up` created (also after a failed `up`); returns seconds taken."""
        ...
