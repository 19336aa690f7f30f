"""Agent backends: where agents run. One implementation per module, picked by `make_backend`."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.backends.protocol import AgentBackend
from orchestrator.errors import UsageError

__all__ = ["AgentBackend", "make_backend"]


def make_backend(
    kind: str,
    address: str | None = None,
    warm: bool = False,
    working_dir: str | None = None,
    excludes: Sequence[str] = (),
) -> AgentBackend:
    """ "ray" (a local Ray instance, or the cluster at `address`, where `working_dir` minus
    `excludes` is shipped to the agents; `warm`: borrow the warm agents that `orchestrate up`
    keeps there) or "local" (threads, no Ray)."""
    if kind == "ray":
        # Imported here: `shard`, `plan` and `merge` never pay for importing Ray.
        from orchestrator.backends.ray import RayBackend

        return RayBackend(address, warm=warm, working_dir=working_dir, excludes=excludes)
    if kind == "local":
        if address:
            raise UsageError("--address needs the ray backend")
        from orchestrator.backends.local import LocalBackend

        return LocalBackend()
    raise UsageError(f"unknown backend {kind!r}")
