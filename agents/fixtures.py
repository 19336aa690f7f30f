"""pytest plugin (entry point `orchestrate_stack`): fixtures exposing the agent's identity and stack.

Loaded by pytest in every process through the `pytest11` entry point, so a suite can use the
fixtures under `orchestrate run` and under plain pytest alike. It reads only environment
variables the agent sets for its worker, and costs nothing when they are absent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pytest

from agents.env_names import AGENT_ENV, STACK_ENV

# Registered here, in every pytest process (coordinator, agents' workers, plain pytest), so
# --strict-markers accepts it everywhere; read by the coordinator (orchestrator/planning/pipeline.py).
RESOURCES_MARKER = "orchestrate"
RESOURCES_MARKER_LINE = (
    "orchestrate(resources={name: amount}): run only on an agent whose cluster node has these Ray "
    "resources (e.g. resources={'GPU': 1}); a unit needs the most any of its tests asks for"
)


# Test groups (issue 22), read by the coordinator (orchestrator/planning/groups.py).
GROUP_MARKER = "orchestrate_group"
ALONE_MARKER = "orchestrate_alone"
WEIGHT_MARKER = "orchestrate_weight"
MARKER_LINES = (
    RESOURCES_MARKER_LINE,
    "orchestrate_group(name, limit=N, weight=W): a test group; never more than N slots of it are "
    "held at once across all agents (a test holds W, default 1); limit may come from "
    "[tool.orchestrate.groups] in pyproject.toml instead",
    "orchestrate_alone: run while nothing else runs on any agent",
    "orchestrate_weight(W): the test holds W slots of each of its groups' limits while it runs",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKER_LINES:
        config.addinivalue_line("markers", line)


@dataclass(frozen=True, slots=True)
class StackInfo:
    """The endpoints of this agent's stack: `env` as exported, `services[name]["port"]` etc."""

    agent: str | None
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, dict[str, object]] = field(default_factory=dict)

    def endpoint(self, service: str) -> tuple[str, int]:
        """(host, port) of a service's first published port."""
        try:
            info = self.services[service]
        except KeyError:
            raise LookupError(f"no service {service!r} in this agent's stack") from None
        return str(info["host"]), int(info["port"])  # type: ignore[call-overload]


def current_stack() -> StackInfo:
    """The stack the agent exported to this process (empty outside `orchestrate`)."""
    raw = os.environ.get(STACK_ENV)
    data = json.loads(raw) if raw else {}
    return StackInfo(
        agent=os.environ.get(AGENT_ENV),
        env=dict(data.get("env", {})),
        services=dict(data.get("services", {})),
    )


@pytest.fixture(scope="session")
def orchestrate_stack() -> StackInfo:
    """This agent's container stack: endpoints of its services and the env vars it exported."""
    return current_stack()


@pytest.fixture(scope="session")
def orchestrate_agent() -> str | None:
    """The id of the agent running this test (None outside `orchestrate`)."""
    return os.environ.get(AGENT_ENV)
