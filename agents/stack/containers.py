"""A stack's containers without the Docker SDK: labels, names, create options, readiness, endpoints.

Pure helpers of agents/stack/docker.py (the only module that imports docker): DockerStack
builds each container's create options and reads its readiness and endpoint from the engine's
`inspect_container` output with these, and words docker errors with `one_line` and
`engine_message`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.stack.compose import PUBLISH_HOST, HealthcheckSpec, ServiceSpec
from agents.stack.probes import port_answers, published_ports

__all__ = [
    "LABEL_AGENT",
    "LABEL_OWNER",
    "LABEL_RUN",
    "LABEL_SERVICE",
    "Readiness",
    "create_options",
    "endpoint_of",
    "engine_message",
    "one_line",
    "readiness",
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
    an alias (made by the SDK, so by the caller).
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
    }
    if service.entrypoint is not None:
        options["entrypoint"] = list(service.entrypoint)
    if service.tmpfs:
        options["tmpfs"] = dict(service.tmpfs)
    if service.healthcheck is not None:
        options["healthcheck"] = _docker_healthcheck(service.healthcheck)
    return options


def _docker_healthcheck(check: HealthcheckSpec) -> dict[str, Any]:
    result: dict[str, Any] = {"test": list(check.test)}
    for key in ("interval", "timeout", "start_period"):
        seconds = getattr(check, key)
        if seconds is not None:
            result[key] = int(seconds * 1e9)
    if check.retries is not None:
        result["retries"] = check.retries
    return result


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a starting container is ready, in a few words; `failure` if it never will be."""

    ready: bool
    state: str
    failure: str = ""


def readiness(attributes: Mapping[str, Any], ports: Sequence[str]) -> Readiness:
    """How ready a starting container is, from its `inspect_container` output and listed `ports`.

    Called by DockerStack while it waits for its services: ready when healthy (with a health
    check), or running with every listed port published and answering.
    """
    state = attributes.get("State") or {}
    status = state.get("Status", "unknown")
    if status in ("exited", "dead"):
        exit_code = state.get("ExitCode")
        return Readiness(False, status, f"container exited with code {exit_code} while starting")
    health = state.get("Health")
    if health:
        health_status = health.get("Status", "starting")
        if health_status == "healthy":
            return Readiness(True, "healthy")
        checks = health.get("Log") or []
        last_output = one_line(checks[-1].get("Output", "")) if checks else ""
        detail = f"; last check said: {last_output}" if last_output else ""
        if health_status == "unhealthy":
            return Readiness(False, health_status, f"health check failed (unhealthy){detail}")
        # A check that keeps failing within its retries stays "starting": say what it says.
        return Readiness(False, f"health: {health_status}{detail}")
    if status != "running":
        return Readiness(False, f"status: {status}")
    published = published_ports(attributes)
    if any(port not in published for port in ports):
        return Readiness(False, "ports not published yet")
    for host_port in published.values():
        if not port_answers(host_port):
            return Readiness(False, f"port {host_port} not answering yet")
    return Readiness(True, "running")


def endpoint_of(service: ServiceSpec, attributes: Mapping[str, Any]) -> dict[str, object]:
    """{"host", "port" (the first listed), "ports"} of a ready service, from `inspect_container` output."""
    published = published_ports(attributes)
    ports = {spec.split("/")[0]: published[spec] for spec in service.ports if spec in published}
    first = ports[service.ports[0].split("/")[0]] if service.ports else None
    return {"host": PUBLISH_HOST, "port": first, "ports": ports}


def engine_message(exc: BaseException) -> str:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return f"no Docker engine answers at {where} ({one_line(exc)}); start it with deploy/setup-docker.sh"


def safe_name(name: str) -> str:
    return _NAME_UNSAFE.sub("_", name)


def one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
