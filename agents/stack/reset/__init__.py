"""Built-in reset strategies: put a service back to its state after `setup`, between units.

Called by agents/stack/docker.py: `make_reset(strategy, handle)` once per service named in
`x-orchestrate.reset` when the agent takes its snapshot, then `restore()` before every unit.
One module per strategy: `postgres` (template databases, through `psql` in the container),
`redis` (DUMP/RESTORE of every key, over the published port). Neither needs a client library
in the agent process.
"""

from __future__ import annotations

from agents.stack.compose import RESET_STRATEGIES
from agents.stack.reset.postgres import PostgresReset
from agents.stack.reset.protocol import ContainerExec, ExecResult, ResetStrategy, ServiceHandle
from agents.stack.reset.redis import RedisReset

__all__ = [
    "ContainerExec",
    "ExecResult",
    "PostgresReset",
    "RedisReset",
    "ResetStrategy",
    "ServiceHandle",
    "make_reset",
]


def make_reset(strategy: str, handle: ServiceHandle) -> ResetStrategy:
    """The strategy named `strategy` (one of compose.RESET_STRATEGIES) for one running service."""
    if strategy == "postgres":
        return PostgresReset(handle)
    if strategy == "redis":
        return RedisReset(handle)
    # The stack file was validated against RESET_STRATEGIES, so this is a bug, not a user error.
    raise ValueError(f"unknown reset strategy {strategy!r} (known: {', '.join(RESET_STRATEGIES)})")
