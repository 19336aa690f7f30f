"""The Docker SDK, imported here once: agents/stack/docker.py (one agent's stack),
agents/stack/started.py (its containers), agents/stack/engine_events.py (its events stream),
agents/stack/setup_state.py (its set-up state), agents/stack/engine.py (engine-wide operations)
and agents/stack/images.py (the set-up state cache's images) reach it through this module only,
and make their clients with `engine_client`."""

from __future__ import annotations

import threading

import docker
import docker.errors
from docker.models.containers import Container

__all__ = ["Container", "docker", "engine_client"]

# The engine's API version, asked once per process: a client made without one asks the engine
# (GET /version), and Docker 20.10 answers that by running `runc --version` and `docker-init
# --version` each time (8 ms here; a run makes a client per agent, per events stream, per
# engine-wide operation).
_api_version: str | None = None
_api_version_lock = threading.Lock()


def engine_client(timeout: int) -> docker.DockerClient:
    """A client of the engine DOCKER_HOST (or the default socket) names, as `docker.from_env`,
    at the API version the first client of this process negotiated. Raises DockerException."""
    global _api_version
    if _api_version is not None:
        return docker.from_env(timeout=timeout, version=_api_version)
    with _api_version_lock:
        client = docker.from_env(timeout=timeout, version=_api_version)
        _api_version = client.api.api_version
        return client
