"""A stack's containers without the Docker SDK: labels, names, create options, endpoints, deaths.

Pure helpers of agents/stack/docker.py (no SDK here: it is imported in _sdk.py only): DockerStack
builds each container's create options and reads its endpoint from the engine's
`inspect_container` output with these, DeathWatcher reads deaths from its events (`death_of`),
and both word docker errors with `one_line` and `engine_message`. When a container is ready is
agents/stack/readiness.py's business.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.stack.compose import PUBLISH_HOST, ServiceSpec
from agents.stack.probes import published_ports

__all__ = [
    "LABEL_AGENT",
    "LABEL_OWNER",
    "LABEL_RUN",
    "LABEL_SERVICE",
    "Death",
    "container_address",
    "create_options",
    "death_of",
    "direct_targets",
    "endpoint_of",
    "engine_message",
    "one_line",
    "safe_name",
    "stack_labels",
]

LABEL_RUN = "orchestrate.run"
LABEL_AGENT = "orchestrate.agent"
LABEL_OWNER = "orchestrate.owner"
LABEL_SERVICE = "orchestrate.service"

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def stack_labels(run_id: str, agent_id: str, owner: str, service: str | None = None) -> dict[str, str]:
    """The labels of everything one agent's stack creates (of one service's container, if named)."""
    labels = {LABEL_RUN: run_id, LABEL_AGENT: agent_id, LABEL_OWNER: owner}
    if service is not None:
        labels[LABEL_SERVICE] = service
    return labels


def create_options(
    service: ServiceSpec, *, name: str, labels: Mapping[str, str], network: str, endpoint_config: Any
) -> dict[str, Any]:
    """The keyword arguments of `containers.create` for `service` on the stack's `network`.

    `endpoint_config` is the engine's endpoint config giving the container its service name as
    an alias (made by the SDK, so by the caller). Docker's health check is always off (the
    image's too): DockerStack runs the check itself until it passes (agents/stack/readiness.py).
    """
    options: dict[str, Any] = {
        "name": name,
        "detach": True,
        "labels": dict(labels),
        "environment": dict(service.environment),
        "ports": {port: (PUBLISH_HOST, None) for port in service.ports},
        "network": network,
        "networking_config": {network: endpoint_config},
        "hostname": service.name,
        "healthcheck": {"test": ["NONE"]},
    }
    if service.entrypoint is not None:
        options["entrypoint"] = list(service.entrypoint)
    if service.tmpfs:
        options["tmpfs"] = dict(service.tmpfs)
    return options


def container_address(attributes: Mapping[str, Any], network: str) -> str | None:
    """The container's IP address on `network`, from `inspect_container` output (None: none yet)."""
    networks = (attributes.get("NetworkSettings") or {}).get("Networks") or {}
    address = (networks.get(network) or {}).get("IPAddress")
    return str(address) if address else None


def direct_targets(
    services: Sequence[ServiceSpec], attributes: Mapping[str, Mapping[str, Any]], network: str
) -> list[tuple[str, int]] | None:
    """(container IP, first container port) of every service with ports, to try a TCP connect to.

    None when some service has no address on `network`, or when no service lists a port (then
    nothing shows that the agent reaches the containers directly).
    """
    targets: list[tuple[str, int]] = []
    for service in services:
        if not service.ports:
            continue
        address = container_address(attributes[service.name], network)
        if address is None:
            return None
        targets.append((address, int(service.ports[0].split("/")[0])))
    return targets or None


def endpoint_of(
    service: ServiceSpec, attributes: Mapping[str, Any], direct_network: str | None = None
) -> dict[str, object]:
    """{"host", "port" (the first listed), "ports"} of a ready service, from `inspect_container` output.

    With `direct_network`, the container's IP on that network and its container ports (the agent
    reaches it without docker-proxy); without, 127.0.0.1 and the published host ports.
    """
    if direct_network is not None:
        address = container_address(attributes, direct_network)
        assert address is not None, "direct_targets checked every address"
        ports = {spec.split("/")[0]: int(spec.split("/")[0]) for spec in service.ports}
        host = address
    else:
        published = published_ports(attributes)
        ports = {spec.split("/")[0]: published[spec] for spec in service.ports if spec in published}
        host = PUBLISH_HOST
    first = ports[service.ports[0].split("/")[0]] if service.ports else None
    return {"host": host, "port": first, "ports": ports}


@dataclass(frozen=True, slots=True)
class Death:
    """What one container event says about a service: `what` happened to it (for the message)."""

    service: str
    what: str


def death_of(event: Mapping[str, Any], signals: dict[str, str]) -> Death | None:
    """The death a container event of the Docker events stream reports, or None.

    `die`, `oom` and `destroy` end a service; a `kill` only sends a signal (the container may
    live on), so it is remembered in `signals` (container id -> signal) for the `die` after it.
    """
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    service = str(attributes.get(LABEL_SERVICE) or attributes.get("name") or "?")
    container = str(actor.get("ID") or event.get("id") or "")
    action = event.get("Action") or event.get("status")
    if action == "kill":
        signals[container] = str(attributes.get("signal", "?"))
        return None
    if action == "oom":
        return Death(service, "was killed mid-run: out of memory (OOM)")
    if action == "die":
        signal_sent = signals.get(container)
        after = f", after signal {_signal_name(signal_sent)}" if signal_sent else ""
        return Death(service, f"died mid-run (exit code {attributes.get('exitCode', '?')}{after})")
    if action == "destroy":
        return Death(service, "its container was removed mid-run")
    return None


def _signal_name(number: str) -> str:
    try:
        return f"{number} ({signal.Signals(int(number)).name})"
    except ValueError:
        return number


def engine_message(exc: BaseException) -> str:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return f"no Docker engine answers at {where} ({one_line(exc)}); start it with deploy/setup-docker.sh"


def safe_name(name: str) -> str:
    return _NAME_UNSAFE.sub("_", name)


def one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
