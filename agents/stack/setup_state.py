"""A stack's set-up state: made once per cache key on an engine, then cloned by every agent.

The flow of `DockerStack.up` (agents/stack/docker.py) over the cache of agents/stack/images.py
when the stack file has `setup` and the cache is on: the state of the stack's key is found in
the cache, or made by this agent under the engine-wide setup lock (the stack starts its
services from their images and runs setup: `set_up`; here each container is then committed and
removed, and the lock released, so that the waiting agents find the images). Services that keep
their state in memory, not on disk (Redis), have their keys kept beside the image and loaded
into each clone once it is ready. Uses the Docker SDK's types (agents/stack/_sdk.py) only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.stack._sdk import Container, docker
from agents.stack.cache import cache_key
from agents.stack.compose import StackSpec
from agents.stack.images import (
    CachedStack,
    commit_services,
    image_ids,
    prune_cache,
    read_state,
    release_lock,
    take_lock_or_wait,
)
from agents.stack.reset import RedisReset, ServiceHandle
from agents.stack.started import StartedService

__all__ = ["SetUp", "cached_or_set_up", "in_memory_services", "load_states", "memory_state", "state_key"]

# How long an agent waits, beyond ready_timeout, for another agent's setup of the same key.
_SETUP_WAIT_SECONDS = 1800.0


@dataclass(frozen=True, slots=True)
class SetUp:
    """What this agent's setup made: the set-up containers by service, the seconds setup took,
    and the in-memory state of the services that keep one (`memory_state`)."""

    containers: Mapping[str, Container]
    setup_seconds: float
    states: Mapping[str, bytes]


def state_key(client: docker.DockerClient, spec: StackSpec, cwd: Path) -> str:
    """The cache key of `spec` run from `cwd`, with the engine's images of its services now."""
    images = sorted({service.image for service in spec.services.values()})
    return cache_key(spec, image_ids(client, images), cwd)


def cached_or_set_up(
    client: docker.DockerClient,
    spec: StackSpec,
    key: str,
    labels: Mapping[str, str],
    set_up: Callable[[], SetUp],
    on_wait: Callable[[], None],
) -> tuple[CachedStack, float | None]:
    """The committed set-up state of `key`, and the setup seconds this agent paid.

    Found in the cache (None: no setup here, perhaps after waiting for another agent's, when
    `on_wait()` is called once), or made here under the setup lock: `set_up()` starts the
    services and runs setup, then each container is committed and removed. The cache is then
    pruned to the stack file's `cache_max_mb`, keeping `key`.
    """
    bases = {name: service.image for name, service in spec.services.items()}
    waited_for = spec.ready_timeout + _SETUP_WAIT_SECONDS
    first_image = next(iter(bases.values()))
    cached = take_lock_or_wait(client, key, list(spec.services), first_image, labels, waited_for, on_wait)
    if cached is not None:
        return cached, None
    try:
        made = set_up()
        cached = commit_services(client, made.containers, key, made.setup_seconds, bases, made.states)
        for container in made.containers.values():
            container.remove(force=True, v=True)
    finally:
        release_lock(client, key)
    prune_cache(client, spec.cache_max_mb * 1024 * 1024, keep=key)
    return cached, made.setup_seconds


def in_memory_services(spec: StackSpec) -> list[str]:
    """The services whose state after setup is in memory, not on disk: Redis (`reset: redis`,
    or an image whose name says redis). A clone loads their keys once it is ready."""
    return [
        name
        for name, service in spec.services.items()
        if service.ports and (spec.reset.get(name) == "redis" or "redis" in service.image.lower())
    ]


def memory_state(handle: ServiceHandle) -> bytes:
    """The keys of the Redis service behind `handle`, taken now, as the cache keeps them."""
    strategy = RedisReset(handle)
    strategy.snapshot()
    return strategy.state_bytes()


def load_states(
    started: Sequence[StartedService], services: Collection[str], handle_of: Callable[[str], ServiceHandle]
) -> None:
    """Load each cloned service's kept state (agents/stack/images.py) into its running server."""
    for item in started:
        if item.service.name in services:
            RedisReset(handle_of(item.service.name)).load_state(read_state(item.container))
