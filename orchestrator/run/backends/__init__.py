"""Agent backends: where agents run. One implementation per module, picked by `make_backend`.

local  agents on this machine, in the coordinator process, each with its own pytest
       worker process; no Ray (the default when no cluster is named)
ray    Ray actors: on a cluster (`--address`, RAY_ADDRESS), or on the warm local instance
       of `orchestrate up`
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Sequence

from orchestrator.protocol.errors import ClusterUnreachable, UsageError
from orchestrator.run.backends.protocol import AgentBackend

__all__ = ["BACKEND_KINDS", "AgentBackend", "agent_capacity", "check_reachable", "make_backend"]

# What `make_backend` builds: the CLI's and the pytest options' choices.
BACKEND_KINDS = ("local", "ray")

CONNECT_TIMEOUT_SECONDS = 5.0
# Docker's default address pools give about 30 user-defined networks per engine, one per stack.
STACKS_PER_ENGINE = 30


def make_backend(
    kind: str, address: str | None = None, working_dir: str | None = None, excludes: Sequence[str] = ()
) -> AgentBackend:
    """The backend `kind`; "ray" without an address joins the warm instance, else starts Ray here.

    On a cluster (`address`), `working_dir` less `excludes` (and what .gitignore names) is shipped
    to the agents by Ray.
    """
    if kind == "ray":
        # Imported here: runs without Ray never pay for importing it.
        from orchestrator.run import warm
        from orchestrator.run.backends.ray import RayBackend

        instance = None if address else warm.current()
        if instance is not None:
            return RayBackend(instance.address, warm=True)
        return RayBackend(address, working_dir=working_dir, excludes=excludes)
    if kind == "local":
        if address:
            raise UsageError("--address needs the ray backend")
        from orchestrator.run.backends.local import LocalBackend

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


def agent_capacity(kind: str, address: str | None, with_stack: bool) -> tuple[int, str]:
    """At most how many agents run side by side here, and why: the bound of `--agents auto`.

    Local agents and a local Ray: this machine's CPUs (agents on one core each; the start-up
    model in durations/startup.py scales with agents per core), and with a stack no more than
    one engine's networks. A Ray cluster: its CPUs, when orchestrator/run/backends/ray.py offers
    `cluster_cpus(address) -> int | None` (it alone imports ray; the cluster code is the place
    to ask the cluster); until then, or if it cannot tell, this machine's CPU count.
    """
    cpus = os.cpu_count() or 1
    count, why = cpus, f"{cpus} CPUs here"
    if kind == "ray" and address:
        cluster = _cluster_cpus(address)
        if cluster:
            count, why = cluster, f"{cluster} CPUs in the cluster"
        else:
            why = f"{cpus} CPUs here; the cluster's size is not known"
        return count, why  # each node has its own engine: no network bound
    if with_stack and count > STACKS_PER_ENGINE:
        count, why = STACKS_PER_ENGINE, f"{STACKS_PER_ENGINE} stacks per Docker engine (its networks)"
    return count, why


def _cluster_cpus(address: str) -> int | None:
    """The hook for the Ray backend: its `cluster_cpus(address)`, if it has one."""
    module = importlib.import_module("orchestrator.run.backends.ray")
    function = getattr(module, "cluster_cpus", None)
    return int(function(address)) if callable(function) else None
