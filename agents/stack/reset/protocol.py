"""What every built-in reset strategy is, and what it is given to reach its service.

A strategy is made per service by `agents.stack.reset.make_reset` when the stack takes its
snapshot (DockerStack.snapshot); the stack then calls `restore()` on it before every unit. It
never imports docker: the stack hands it a `ContainerExec` (docker exec, translated to
StackFailed at agents/stack/started.py) and the address and ports the agent reaches it at (the
tests' endpoint: the container's own IP and ports, or 127.0.0.1 and the published ports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agents.stack.compose import ServiceSpec


@dataclass(frozen=True, slots=True)
class ExecResult:
    """The exit code and the merged stdout/stderr of one command run inside a container."""

    exit_code: int
    output: str


class ContainerExec(Protocol):
    """Run `argv` inside the service's container and wait for it; made by the Docker stack.

    Raises StackFailed (naming the service) when the engine cannot run it at all; a command
    that runs and fails is an ExecResult with its exit code.
    """

    def __call__(self, argv: Sequence[str], environment: Mapping[str, str]) -> ExecResult: ...


@dataclass(frozen=True, slots=True)
class ServiceHandle:
    """One running service as a strategy sees it: its spec, where to connect to it, a way in."""

    spec: ServiceSpec
    execute: ContainerExec
    host: str = "127.0.0.1"
    # container port ("6379") -> the port to connect to on `host` (the published host port on
    # 127.0.0.1, or the container port itself on the container's address)
    ports: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def container_port(self, preferred: int) -> int:
        """`preferred` if the service lists it (or lists none), else its first listed port."""
        listed = [int(port.split("/")[0]) for port in self.spec.ports]
        return preferred if not listed or preferred in listed else listed[0]


class ResetStrategy(Protocol):
    """Puts one service back to the state it had when `snapshot()` ran."""

    @property
    def service(self) -> str:
        """The service's name, for messages."""
        ...

    def snapshot(self) -> None:
        """Record the service's state; checks it is the right kind of server. Raises StackFailed."""
        ...

    def restore(self) -> None:
        """Put the service back to the recorded state. Raises StackFailed naming the service."""
        ...

    def export(self) -> bytes:
        """The recorded state as bytes, for a warm stack's record (agents/stack/warm.py)."""
        ...

    def attach(self, state: bytes) -> None:
        """Take an `export()` of this service's snapshot, instead of `snapshot()`: a warm stack
        borrowed by a later run restores to the state recorded when it was first set up."""
        ...
