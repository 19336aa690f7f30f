"""Container stacks: one private set of services per agent, from a Compose-style stack file.

The coordinator calls `check_engine()` and `load_stack_file()` once (bad files fail the run
before any agent starts) and `sweep()` to clear what crashed runs left; each agent calls
`make_stack(...)`, then `up()`, `watch(on_death)`, `snapshot()` / `reset()` (when `resets`) and
`down()` (the Stack protocol), and hands its tests `stack_env_json(endpoints)` as ORCHESTRATE_STACK (read back by
agents/fixtures.py) and `endpoints.pytest_args` on its worker's command line.

`docker` is imported only when a DockerStack is made or the engine is used, so importing this
package (as the coordinator and every agent do) costs no docker import.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from agents.stack.compose import HealthcheckSpec, ServiceSpec, StackSpec, load_stack_file
from agents.stack.lease import STALE_SECONDS
from agents.stack.protocol import Stack, StackEndpoints, StackStep

if TYPE_CHECKING:
    from agents.stack.docker import DockerStack

__all__ = [
    "STALE_SECONDS",
    "HealthcheckSpec",
    "NullStack",
    "ServiceSpec",
    "Stack",
    "StackEndpoints",
    "StackSpec",
    "StackStep",
    "check_engine",
    "clean_cache",
    "current_owner",
    "load_stack_file",
    "make_stack",
    "remove_run",
    "stack_cache_key",
    "stack_env_json",
    "sweep",
]


class NullStack:
    """The Stack for runs without a stack file: nothing to start, empty endpoints."""

    def up(self, on_endpoints: Callable[[StackEndpoints], None] | None = None) -> StackEndpoints:
        """Return empty endpoints; called by the agent like any other stack's `up`."""
        return StackEndpoints()

    @property
    def resets(self) -> bool:
        """Never: there is nothing to reset."""
        return False

    def snapshot(self) -> float:
        """Nothing to record."""
        return 0.0

    def reset(self) -> float:
        """Nothing to restore."""
        return 0.0

    def check(self) -> None:
        """Nothing can stop."""

    def watch(self, on_death: Callable[[str], None]) -> Callable[[], None]:
        """Nothing can die: no thread, and a `stop()` with nothing to do."""
        return _nothing_to_stop

    def down(self) -> float:
        """Nothing to remove."""
        return 0.0

    def cpu_meter(self) -> None:
        """No containers, no CPU of theirs."""
        return None


def _nothing_to_stop() -> None:
    """The `stop()` of a NullStack's watch."""


def make_stack(
    spec: StackSpec | None,
    run_id: str,
    agent_id: str,
    owner: str,
    cwd: str | os.PathLike[str] | None = None,
    on_step: Callable[[StackStep], None] | None = None,
) -> Stack:
    """The stack one agent runs: a DockerStack for a stack file, else a NullStack.

    Called by the agent when it starts. `owner` is the coordinator's `current_owner()`; `cwd`
    is where setup commands run (default: this process's working directory); `on_step` hears
    where `up()` is (services ready and waiting, setup), from any thread.
    """
    if spec is None:
        return NullStack()
    from agents.stack.docker import DockerStack

    stack: DockerStack = DockerStack(spec, run_id, agent_id, owner, cwd=cwd, on_step=on_step)
    return stack


def stack_env_json(endpoints: StackEndpoints) -> str:
    """The ORCHESTRATE_STACK value for an agent's pytest worker (read by agents/fixtures.py)."""
    from agents.worker import stack_value

    return stack_value(endpoints.env, endpoints.services)


def current_owner() -> str:
    """`<hostname>:<pid>` of this process; the coordinator stamps it on everything it creates."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_engine() -> str:
    """Raise DockerUnavailable (one line) unless a Docker engine answers; returns its version."""
    from agents.stack.engine import check_engine as check

    return check()


def stack_cache_key(spec: StackSpec, cwd: str | os.PathLike[str]) -> str:
    """The set-up state cache's key of `spec` run from `cwd`, with this machine's images."""
    from agents.stack.engine import stack_cache_key as key_of

    return key_of(spec, cwd)


def clean_cache(key: str | None = None) -> int:
    """Remove the cached set-up state of `key` (None: all; labelled images) on this machine's
    engine; returns how many images went."""
    from agents.stack.engine import clean_cache as clean

    return clean(key)


def remove_run(run_id: str) -> int:
    """Remove whatever run `run_id` left on this machine's engine; returns the containers removed."""
    from agents.stack.engine import remove_run as remove

    return remove(run_id)


def sweep(all_owners: bool = False, stale_after: float | None = None) -> tuple[int, int]:
    """Remove leftovers of dead runs (or of everyone) on this machine's engine; returns
    (containers, networks) removed. `stale_after`: seconds after which a lease is stale."""
    from agents.stack.engine import sweep as sweep_leftovers
    from agents.stack.lease import STALE_SECONDS

    return sweep_leftovers(
        all_owners=all_owners, stale_after=STALE_SECONDS if stale_after is None else stale_after
    )
