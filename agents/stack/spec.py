"""What a validated stack file is: its services and orchestrate's `x-orchestrate` extension,
as frozen values, with the rendering of the extension's templates once a stack's ports are known.

Made by agents/stack/compose.py (`load_stack_file`, `parse_stack`), which re-exports these
names; read by the stack's every part (agents/stack/), the coordinator included. Pure: no
YAML, no docker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.stack._extension import DEFAULT_CACHE_MAX_MB, DEFAULT_READY_TIMEOUT, render

__all__ = ["PUBLISH_HOST", "HealthcheckSpec", "ServiceSpec", "StackSpec"]

# Where every container port is published, at a random host port (so agents never collide).
PUBLISH_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class HealthcheckSpec:
    """A service's health check, in Docker's form; `test == ("NONE",)` disables the image's."""

    test: tuple[str, ...]
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service of the stack: what to run and which container ports to publish."""

    name: str
    image: str
    environment: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    # container ports as "<port>/tcp", in the order written; the first is the service's `port`
    ports: tuple[str, ...] = ()
    healthcheck: HealthcheckSpec | None = None
    # mount point -> options ("" for none), Docker's `tmpfs` form
    tmpfs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StackSpec:
    """A validated stack file: its services and orchestrate's `x-orchestrate` extension."""

    path: Path
    services: dict[str, ServiceSpec]
    # variable name -> template over service endpoints; see `render_env`
    env: dict[str, str] = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    # service name -> built-in strategy (one of RESET_STRATEGIES), in file order
    reset: dict[str, str] = field(default_factory=dict)
    reset_commands: tuple[str, ...] = ()
    # extra arguments for each agent's pytest worker, templates like `env`; see `render_pytest_args`
    pytest_arg_templates: tuple[str, ...] = ()
    # Whether a coordinator collects against a stack of its own when `env`/`pytest_args` are
    # given (orchestrator/run/collection_stack.py).
    collection_stack: bool = True
    # what the set-up state cache hashes and keeps (agents/stack/cache.py); None: the default inputs
    setup_inputs: tuple[str, ...] | None = None
    cache: bool = True
    cache_max_mb: int = DEFAULT_CACHE_MAX_MB
    # The suite's start-up (conftest imports, plugins' configure/sessionstart, collection) uses
    # no service: each worker starts once its stack's containers run, while they become ready.
    early_worker: bool = False

    @property
    def collects_on_own_stack(self) -> bool:
        """Whether a local coordinator collects on a stack of its own: the file gives per-agent
        pytest options or env (what a worker's collection sees) and does not turn it off."""
        per_agent = any(a.startswith("-") for a in self.pytest_arg_templates) or bool(self.env)
        return per_agent and self.collection_stack

    def render_env(self, services: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
        """The `env` templates filled in with published endpoints; called by a stack after `up`.

        `services` is the StackEndpoints form: name -> {"host", "port", "ports": {"5432": N}}.
        The templates were checked when the file was loaded, so only a broken stack can fail here.
        """
        return {name: render(template, services) for name, template in self.env.items()}

    def render_pytest_args(self, services: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
        """The `pytest_args` templates filled in like `render_env`; called by a stack after `up`.

        The agent appends them to its own worker's command line; a collection agent hands them
        to the coordinator for its own collection (orchestrator/run/collection_stack.py).
        """
        return tuple(render(template, services) for template in self.pytest_arg_templates)
