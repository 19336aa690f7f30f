"""Agent backends: where agents run. One implementation per module, picked by `make_backend`.

local  agents on this machine, in the coordinator process, each with its own pytest
       worker process; no Ray (the default when no cluster is named)
ray    Ray actors: on a cluster (`--address`, RAY_ADDRESS), or on the warm local instance
       of `orchestrate up`
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from orchestrator.backends.protocol import AgentBackend
from orchestrator.errors import ClusterUnreachable, UsageError

__all__ = ["AgentBackend", "check_reachable", "make_backend"]

CONNECT_TIMEOUT_SECONDS = 5.0


def make_backend(
    kind: str, address: str | None = None, working_dir: str | None = None, excludes: Sequence[str] = ()
) -> AgentBackend:
    """The backend `kind`; "ray" without an address joins the warm instance, else starts Ray here.

    On a cluster (`address`), `working_dir` less `excludes` (and what .gitignore names) is shipped
    to the agents by Ray.
    """
    if kind == "ray":
        # Imported here: runs without Ray never pay for importing it.
        from orchestrator import warm
        from orchestrator.backends.ray import RayBackend

        instance = None if address else warm.current()
        if instance is not None:
            return RayBackend(instance.address, warm=True)
        return RayBackend(address, working_dir=working_dir, excludes=excludes)
    if kind == "local":
        if address:
            raise UsageError("--address needs the ray backend")
        from orchestrator.backends.local import LocalBackend

        return LocalBackend()
    raise UsageError(f"unknown backend {kind!r}")


def check_reachable(address: str) -> None:
    """Fail fast, with one line, when nothing answers at a cluster address (Ray itself waits long)."""
    if address in ("auto", "local"):
        return
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    default_port = 10001 if address.startswith("ray://") else 6379
    try:
        with socket.create_connection(
            (host or "127.0.0.1", int(port or default_port)), CONNECT_TIMEOUT_SECONDS
        ):
            pass
    except (OSError, ValueError) as exc:
        raise ClusterUnreachable(
            f"no Ray cluster answers at {address} ({exc.__class__.__name__}: {exc})"
        ) from exc
