"""What the stack layer learns without the Docker SDK: published ports, readiness, owners alive.

Pure helpers of agents/stack/docker.py (no SDK here: it is imported in _sdk.py only), kept apart so
they can be read and tested without an engine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from agents.stack.compose import PUBLISH_HOST

__all__ = ["address_answers", "owner_is_dead", "port_answers", "published_ports"]

# How long one readiness probe of a published port waits.
PROBE_TIMEOUT = 0.2
# How long the one TCP connect to a container's own address waits: a local bridge answers in
# microseconds; an address this host does not route to (Docker Desktop's VM) may never answer.
DIRECT_CONNECT_TIMEOUT = 0.5


def published_ports(attributes: Mapping[str, Any]) -> dict[str, int]:
    """'5432/tcp' -> host port published on 127.0.0.1, from `inspect_container` output."""
    bindings = (attributes.get("NetworkSettings") or {}).get("Ports") or {}
    published: dict[str, int] = {}
    for container_port, hosts in bindings.items():
        for binding in hosts or []:
            if binding.get("HostIp") == PUBLISH_HOST and binding.get("HostPort"):
                published[container_port] = int(binding["HostPort"])
                break
    return published


def port_answers(port: int) -> bool:
    """True when something in the container listens behind the published `port`.

    docker-proxy accepts on the host side even when nothing listens in the container, and then
    closes at once; so EOF means "not yet", while data (a banner) or silence (a server waiting
    for the client to speak) means a real listener.
    """
    try:
        with socket.create_connection((PUBLISH_HOST, port), timeout=PROBE_TIMEOUT) as connection:
            connection.settimeout(PROBE_TIMEOUT)
            try:
                return connection.recv(1) != b""
            except TimeoutError:
                return True
    except OSError:
        return False


def address_answers(host: str, port: int, timeout: float = DIRECT_CONNECT_TIMEOUT) -> bool:
    """True when a TCP connect from this process to `host`:`port` succeeds (a container's own IP)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def address_reachable(host: str, port: int, timeout: float = DIRECT_CONNECT_TIMEOUT) -> bool:
    """True when this process reaches `host`:`port` at all: a connect succeeds, or the host
    answers that nothing listens there yet (a container's own IP before its service is ready)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def owner_is_dead(owner: str) -> bool:
    """True when `owner` (`<hostname>:<pid>`) is a process on this host that no longer runs."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
