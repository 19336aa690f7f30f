"""Work on a Ray instance or cluster besides running agents: the warm agents of `orchestrate up`,
and the sweep of every node for `orchestrate clean --address`. With orchestrator/run/backends/ray.py,
the only modules importing ray."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import ray
from ray.exceptions import RayError

from orchestrator.protocol.errors import ClusterUnreachable
from orchestrator.run.backends.ray import RayBackend, actor_class, first_line, warm_agent_name

__all__ = ["NodeSweep", "start_warm_agents", "sweep_nodes"]


def start_warm_agents(address: str, count: int) -> int:
    """Create `count` detached agent actors on the warm instance at `address`; returns how many
    were new. Called by `orchestrate up --agents N`; a run then borrows them instead of paying
    an actor process start per agent."""
    backend = RayBackend(address)  # connects; it has no agents of its own to stop
    created = []
    try:
        for agent_id in range(count):
            if RayBackend._warm_actor(agent_id) is None:
                created.append(actor_class(name=warm_agent_name(agent_id), lifetime="detached").remote())
        ray.get([actor.ping.remote() for actor in created], timeout=120)
    except RayError as exc:
        raise ClusterUnreachable(f"could not start warm agents at {address}: {first_line(exc)}") from exc
    finally:
        backend.shutdown()
    return len(created)


@dataclass(frozen=True, slots=True)
class NodeSweep:
    """What one node's sweep removed, or why it could not run (no engine on that node)."""

    hostname: str
    address: str
    containers: int = 0
    networks: int = 0
    problem: str = ""
    # True when the node has no Docker engine: nothing of ours can be there.
    no_engine: bool = False


def _sweep_here(all_owners: bool, stale_after: float) -> NodeSweep:
    """One node's sweep, run as a Ray task pinned to that node (see `sweep_nodes`)."""
    from agents.stack import sweep
    from orchestrator.protocol.errors import DockerUnavailable, StackFailed

    where = {"hostname": socket.gethostname(), "address": ray.util.get_node_ip_address()}
    try:
        containers, networks = sweep(all_owners=all_owners, stale_after=stale_after)
    except DockerUnavailable as exc:
        return NodeSweep(**where, problem=str(exc), no_engine=True)
    except StackFailed as exc:
        return NodeSweep(**where, problem=str(exc))
    return NodeSweep(**where, containers=containers, networks=networks)


def sweep_nodes(address: str, all_owners: bool, stale_after: float) -> list[NodeSweep]:
    """Run one sweep on every alive node of the cluster at `address`; one result per node.

    Called by `orchestrate clean --address`: the clean-up after a coordinator that was killed,
    whose agents' stacks stay on their nodes until their leases go stale (agents/stack/lease.py).
    Each task is pinned to its node (NodeAffinitySchedulingStrategy, not soft) and asks for no
    CPU, so it runs on the head and on busy nodes alike.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    backend = RayBackend(address)  # connects (token, address check); it starts no agents
    try:
        task = ray.remote(num_cpus=0, max_retries=0)(_sweep_here)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [
            task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                all_owners, stale_after
            )
            for n in nodes
        ]
        results: list[NodeSweep] = []
        for node, ref in zip(nodes, refs, strict=True):
            try:
                results.append(ray.get(ref, timeout=300))
            except RayError as exc:
                address_of = str(node.get("NodeManagerAddress", ""))
                results.append(NodeSweep(hostname=address_of, address=address_of, problem=first_line(exc)))
        return results
    finally:
        backend.shutdown()
