"""A stack's snapshot and reset without the Docker SDK: the reset strategies, then reset_commands.

Owned by agents/stack/docker.py's DockerStack (one per stack), which calls `snapshot` once after
`up()` with a way to get each service's ServiceHandle (`service_handle`, its exec translated to
StackFailed in agents/stack/started.py), `reset` before every unit, and `run_commands` for the setup commands too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from agents.stack.commands import run_commands
from agents.stack.compose import ServiceSpec, StackSpec
from agents.stack.protocol import StackEndpoints
from agents.stack.reset import ContainerExec, ResetStrategy, ServiceHandle, make_reset
from orchestrator.protocol.errors import StackFailed

__all__ = ["StackSnapshots", "service_handle"]


class StackSnapshots:
    """The stack file's `reset` strategies and `reset_commands`, for one agent's stack."""

    def __init__(self, spec: StackSpec, agent_id: str, cwd: Path, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.agent_id = agent_id
        self.cwd = cwd
        self._clock = clock
        # Set by `snapshot()`; None until then, so a `reset()` too early is caught.
        self._strategies: tuple[ResetStrategy, ...] | None = None

    @property
    def resets(self) -> bool:
        """True when the stack file has `reset` or `reset_commands`: the agent then resets per unit."""
        return bool(self.spec.reset or self.spec.reset_commands)

    def snapshot(self, handle_of: Callable[[str], ServiceHandle]) -> float:
        """Record the state of every service in `x-orchestrate.reset`; returns seconds taken.

        Each strategy first checks that its service is the kind of server it expects. Raises
        StackFailed naming the service.
        """
        started_at = self._clock()
        strategies: list[ResetStrategy] = []
        for name, strategy_name in self.spec.reset.items():
            strategy = make_reset(strategy_name, handle_of(name))
            strategy.snapshot()
            strategies.append(strategy)
        self._strategies = tuple(strategies)
        return self._clock() - started_at

    def export(self) -> dict[str, bytes]:
        """Each snapshotted service's recorded state (ResetStrategy.export), by service name."""
        return {strategy.service: strategy.export() for strategy in self._strategies or ()}

    def attach(self, handle_of: Callable[[str], ServiceHandle], states: Mapping[str, bytes]) -> None:
        """Take the recorded states of an earlier `snapshot()` (`export()`) instead of a new one.

        Raises StackFailed when a service named in `reset` has no recorded state.
        """
        strategies: list[ResetStrategy] = []
        for name, strategy_name in self.spec.reset.items():
            if name not in states:
                raise StackFailed(
                    f"service '{name}': the warm stack's record has no snapshot of it", service=name
                )
            strategy = make_reset(strategy_name, handle_of(name))
            strategy.attach(states[name])
            strategies.append(strategy)
        self._strategies = tuple(strategies)

    def reset(self, endpoints: StackEndpoints | None) -> float:
        """Restore every snapshotted service, then run `reset_commands`; returns seconds taken.

        Built-in strategies run first, so reset commands see the state after setup. Raises
        StackFailed naming the service or the command: a unit must never run on dirty state.
        """
        if self._strategies is None and self.spec.reset:
            raise RuntimeError(f"agent {self.agent_id}: stack reset() called before snapshot()")
        started_at = self._clock()
        for strategy in self._strategies or ():
            strategy.restore()
        self.run_commands(self.spec.reset_commands, "reset command", endpoints)
        return self._clock() - started_at

    def run_commands(self, commands: tuple[str, ...], kind: str, endpoints: StackEndpoints | None) -> float:
        """Run setup or reset commands here with the stack's env, in order; returns seconds."""
        assert endpoints is not None, "commands run only after up() found the endpoints"
        return run_commands(commands, kind, self.cwd, endpoints, self._clock)


def service_handle(
    service: ServiceSpec, endpoint: Mapping[str, object], execute: ContainerExec
) -> ServiceHandle:
    """What a reset strategy gets for `service`: its spec, its endpoint and a way in."""
    ports = endpoint.get("ports")
    assert isinstance(ports, dict)
    return ServiceHandle(
        spec=service,
        execute=execute,
        host=str(endpoint["host"]),
        ports={str(port): int(port_there) for port, port_there in ports.items()},
    )
