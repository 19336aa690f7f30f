"""The Stack protocol: one agent's private set of services (containers), up, reset and down.

Made by `agents.stack.make_stack(..., on_step=)`, whose `on_step` hears each StackStep of `up()`
(from any thread). Called by the agent (agents/agent.py): `up()` once before its pytest worker starts,
`watch(on_death)` once after `up()` succeeded (or `check()` every few seconds while tests run),
`snapshot()` once right after `up()` and before any test, `reset()` before every unit (reruns and
requeued units included) when `resets` is true, `down()` exactly once at the end, whatever
happened (also after a failed `up()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol


@dataclass(frozen=True, slots=True)
class StackEndpoints:
    """What the agent's tests get: env vars, the endpoint of each service, extra pytest arguments."""

    env: dict[str, str] = field(default_factory=dict)
    # service name -> {"host": "172.18.0.2", "port": 5432, "ports": {"5432": 5432}} when the agent
    # reaches the container's own address, else {"host": "127.0.0.1", "port": 49153, "ports":
    # {"5432": 49153}} (the published port)
    services: dict[str, dict[str, object]] = field(default_factory=dict)
    up_seconds: float = 0.0
    setup_seconds: float = 0.0
    # x-orchestrate.pytest_args rendered for this stack: appended to this agent's worker command
    # line (after the run's own pytest arguments), never to the coordinator's collection
    pytest_args: tuple[str, ...] = ()
    # the set-up state cache: "hit" (setup skipped), "miss" (this agent ran setup and committed
    # it), "" (no setup, or the cache is off); a hit's `cache_saved_seconds` is what setup cost
    cache: str = ""
    cache_saved_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class StackStep:
    """Where a stack's `up()` is, for whoever watches it start: its services starting (`ready`
    and `waiting` name them), or its set-up running (here, or in another agent it waits for)."""

    phase: str  # "services" or "setup"
    ready: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()


if TYPE_CHECKING:
    from agents.stack.cgroup_cpu import CgroupCpu


class Stack(Protocol):
    def up(self, on_endpoints: Callable[[StackEndpoints], None] | None = None) -> StackEndpoints:
        """Start every service, wait until each is ready, run the set-up commands.

        `on_endpoints`, if given, is called once with the endpoints as soon as the containers the
        tests will use run, before they are ready (`x-orchestrate.early_worker`). Raises
        StackFailed (orchestrator/protocol/errors.py), (naming the service, with its last log lines).
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

    def watch(self, on_death: Callable[[str], None]) -> Callable[[], None]:
        """Call `on_death(message)` once, from a thread of its own, if a service dies before `down`.

        The message names the service, with its last log lines (what `check()` would raise).
        Waits on events, never polls. Returns `stop()`: it ends the watching promptly, is safe to
        call twice, and once it returned `on_death` is never called; `down()` stops every watch
        before removing anything, so its own removals are no death.
        """
        ...

    def down(self) -> float:
        """Remove everything `up` created (also after a failed `up`); returns seconds taken."""
        ...

    def cpu_meter(self) -> CgroupCpu | None:
        """The CPU its containers spend, as they spend it (agents/stack/cgroup_cpu.py); None when
        it cannot be read. Called once `up()` returned."""
        ...
