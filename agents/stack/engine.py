"""Operations on a whole engine: its check, the sweep of dead runs, a run's removal, the cache.

The engine-wide half of the Docker code (agents/stack/docker.py is one agent's stack); the SDK
comes from agents/stack/_sdk.py. Also the removal helpers both halves use. Every engine error
here becomes DockerUnavailable (`_engine`) or StackFailed naming what could not be removed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agents.stack._sdk import Container, docker, engine_client
from agents.stack.cache import cache_key
from agents.stack.compose import StackSpec
from agents.stack.containers import LABEL_AGENT, LABEL_OWNER, LABEL_RUN, engine_message, one_line
from agents.stack.images import image_ids, remove_cache
from agents.stack.lease import STALE_SECONDS, drop_lease, stale_leases
from agents.stack.probes import owner_is_dead
from orchestrator.protocol.errors import DockerUnavailable, StackFailed

__all__ = [
    "API_TIMEOUT",
    "ENGINE_CHECK_TIMEOUT",
    "LOG_TAIL_LINES",
    "check_engine",
    "clean_cache",
    "container_logs",
    "remove_labelled",
    "remove_run",
    "stack_cache_key",
    "sweep",
]

LOG_TAIL_LINES = 20
ENGINE_CHECK_TIMEOUT = 3.0
API_TIMEOUT = 60


# -- engine-wide operations ------------------------------------------------------------------


@contextlib.contextmanager
def _engine(timeout: float = API_TIMEOUT) -> Iterator[docker.DockerClient]:
    """A client of this machine's engine; any engine error in the block becomes DockerUnavailable.

    The one translation of the engine-wide operations below (check_engine, sweep, remove_run).
    """
    try:
        client = engine_client(max(1, round(timeout)))
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(engine_message(exc)) from exc
    try:
        yield client
    except (docker.errors.DockerException, OSError) as exc:
        raise DockerUnavailable(engine_message(exc)) from exc
    finally:
        client.close()


def check_engine(timeout: float = ENGINE_CHECK_TIMEOUT) -> str:
    """Return the engine's version, or raise DockerUnavailable; called by the coordinator first."""
    with _engine(timeout) as client:
        client.ping()
        return str(client.version().get("Version", "unknown"))


def sweep(all_owners: bool = False, stale_after: float = STALE_SECONDS) -> tuple[int, int]:
    """Remove containers and networks of dead runs; returns (containers, networks) removed.

    Called by `orchestrate clean` (here, or on every node with --address), at coordinator start
    and by every agent before its stack comes up. A run is dead here when its owner label names
    this host and a pid that no longer runs (a local run), or when its agent's lease on this
    node was not renewed for `stale_after` seconds (a run whose coordinator was elsewhere; see
    agents/stack/lease.py). Other hosts' owners without a stale lease are left alone. With
    `all_owners=True` everything labelled `orchestrate.owner` goes, live runs included.
    """
    problems: list[str] = []
    stale = stale_leases(stale_after=stale_after)

    def dead(labels: Mapping[str, str]) -> bool:
        return (
            all_owners
            or owner_is_dead(labels.get(LABEL_OWNER, ""))
            or (labels.get(LABEL_RUN, ""), labels.get(LABEL_AGENT, "")) in stale
        )

    with _engine() as client:
        containers = client.containers.list(all=True, filters={"label": LABEL_OWNER})
        doomed = [c for c in containers if dead(c.labels)]
        removed_containers = sum(_remove_containers(doomed, problems))
        networks = client.networks.list(filters={"label": LABEL_OWNER})
        doomed_networks = [n for n in networks if dead(n.attrs.get("Labels") or {})]
        removed_networks = sum(_remove_networks(doomed_networks, problems))
    if problems:
        raise StackFailed(f"sweep could not remove everything: {'; '.join(problems)}")
    for run_id, agent_id in stale:  # their stacks are gone: the leases have served
        drop_lease(run_id, agent_id)
    return removed_containers, removed_networks


def stack_cache_key(spec: StackSpec, cwd: str | os.PathLike[str]) -> str:
    """The set-up state cache's key of `spec` run from `cwd` on this engine (agents/stack/cache.py)."""
    images = sorted({service.image for service in spec.services.values()})
    with _engine() as client:
        return cache_key(spec, image_ids(client, images), Path(cwd))


def clean_cache(key: str | None = None) -> int:
    """Remove the cached set-up images of `key` (None: every key) on this engine; returns how many."""
    with _engine() as client:
        return remove_cache(client, key)


def remove_run(run_id: str) -> int:
    """Remove every container and network of run `run_id`; returns how many containers went.

    Called by the coordinator once its run is over, as a backstop for agents that died without
    taking their stack down (a killed actor). Raises StackFailed if something stays.
    """
    with _engine() as client:
        count = len(client.containers.list(all=True, filters={"label": [f"{LABEL_RUN}={run_id}"]}))
        problems = remove_labelled(client, {LABEL_RUN: run_id})
    if problems:
        raise StackFailed(f"could not remove what run {run_id} left: {'; '.join(problems)}")
    return count


# -- helpers ---------------------------------------------------------------------------------


def remove_labelled(client: docker.DockerClient, labels: Mapping[str, str]) -> list[str]:
    """Remove every container and then every network carrying all `labels`; returns problems."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    problems: list[str] = []
    try:
        containers = client.containers.list(all=True, filters=filters)
        list(_remove_containers(containers, problems))
        networks = client.networks.list(filters=filters)
        list(_remove_networks(networks, problems))
    except docker.errors.DockerException as exc:
        problems.append(one_line(exc))
    return problems


def _remove_containers(containers: list[Container], problems: list[str]) -> list[int]:
    """Force-remove containers concurrently; yields 1 per container removed, appends problems."""

    def remove(container: Container) -> int:
        try:
            container.remove(force=True, v=True)
            return 1
        except docker.errors.NotFound:
            return 0
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "already in progress" in str(exc):
                return 0
            problems.append(f"container {container.name}: {one_line(exc)}")
            return 0

    if not containers:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(containers)), thread_name_prefix="stack-down") as pool:
        return list(pool.map(remove, containers))


def _remove_networks(networks: list[Any], problems: list[str]) -> list[int]:
    removed = []
    for network in networks:
        try:
            network.remove()
            removed.append(1)
        except docker.errors.NotFound:
            removed.append(0)
        except docker.errors.APIError as exc:
            problems.append(f"network {network.name}: {one_line(exc)}")
    return removed


def container_logs(client: docker.DockerClient, container: str) -> str:
    try:
        raw = client.api.logs(container, stdout=True, stderr=True, tail=LOG_TAIL_LINES)
    except docker.errors.DockerException:
        return ""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return text.rstrip()
