"""Validate and render orchestrate's `x-orchestrate` extension of a stack file.

Called by agents/stack/compose.py's validator once the services are known (env templates,
setup, ready_timeout, reset, reset_commands, pytest_args, in that order), and by StackSpec's
`render_env`/`render_pytest_args` (`render`) once a stack is up and its ports are published.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents.stack._checks import YamlChecker, did_you_mean
from orchestrator.protocol.errors import StackFileError

if TYPE_CHECKING:
    from agents.stack.spec import ServiceSpec

__all__ = [
    "DEFAULT_CACHE_MAX_MB",
    "DEFAULT_READY_TIMEOUT",
    "EXTENSION_KEYS",
    "RESET_STRATEGIES",
    "Extension",
    "ExtensionChecker",
    "render",
]

DEFAULT_READY_TIMEOUT = 60.0
EXTENSION_KEYS = (
    "env",
    "setup",
    "setup_inputs",
    "cache",
    "cache_max_mb",
    "ready_timeout",
    "reset",
    "reset_commands",
    "pytest_args",
    "collection_stack",
    "early_worker",
)
# The set-up state cache's size limit (all cached keys together) unless `cache_max_mb` says.
DEFAULT_CACHE_MAX_MB = 2048
# The built-in reset strategies (agents/stack/reset/ has one module per name).
RESET_STRATEGIES = ("postgres", "redis")
# Strategies that reach their service through a published port rather than `docker exec`.
_STRATEGIES_NEEDING_A_PORT = ("redis",)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TEMPLATE_FIELD = re.compile(r"(?P<service>[^.\[\]]+)\.(?:(?P<attr>host|port)|ports\[(?P<port>\d+)\])\Z")


@dataclass(frozen=True, slots=True)
class Extension:
    """A validated `x-orchestrate` mapping; StackSpec carries each field under the same name."""

    env: dict[str, str] = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    reset: dict[str, str] = field(default_factory=dict)
    reset_commands: tuple[str, ...] = ()
    pytest_arg_templates: tuple[str, ...] = ()
    collection_stack: bool = True
    # glob patterns (relative to the run's directory) of the files `setup` depends on; None: default
    setup_inputs: tuple[str, ...] | None = None
    cache: bool = True
    cache_max_mb: int = DEFAULT_CACHE_MAX_MB
    early_worker: bool = False


class ExtensionChecker(YamlChecker):
    """Turns the `x-orchestrate` mapping into an Extension, naming the place of the first problem."""

    def extension(self, raw: object, services: Mapping[str, ServiceSpec]) -> Extension:
        """Validate `raw` (the extension, {} when absent) against the stack's `services`."""
        body = self.mapping(raw, "x-orchestrate")
        self.check_keys(body, "x-orchestrate", EXTENSION_KEYS)
        env = self.env_templates(body.get("env"), services)
        setup = self.commands(body.get("setup"), "x-orchestrate.setup")
        ready_timeout = self.ready_timeout(body.get("ready_timeout"))
        return Extension(
            env=env,
            setup=setup,
            ready_timeout=ready_timeout,
            reset=self.reset(body.get("reset"), services),
            reset_commands=self.commands(body.get("reset_commands"), "x-orchestrate.reset_commands"),
            pytest_arg_templates=self.pytest_args(body.get("pytest_args"), services),
            collection_stack=self.flag(body.get("collection_stack", True), "x-orchestrate.collection_stack"),
            setup_inputs=self.setup_inputs(body.get("setup_inputs")),
            cache=self.flag(body.get("cache", True), "x-orchestrate.cache"),
            cache_max_mb=self.cache_max_mb(body.get("cache_max_mb")),
            early_worker=self.flag(body.get("early_worker", False), "x-orchestrate.early_worker"),
        )

    def setup_inputs(self, raw: object) -> tuple[str, ...] | None:
        """Glob patterns relative to the run's directory, e.g. ["migrations/**", "fixtures/*.json"]."""
        if raw is None:
            return None
        place = "x-orchestrate.setup_inputs"
        if not isinstance(raw, list):
            raise self.fail(place, 'must be a list of glob patterns, e.g. ["migrations/**"]')
        patterns: list[str] = []
        for index, item in enumerate(raw):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{place}[{index}]", "must be a non-empty glob pattern")
            if item.startswith("/"):
                raise self.fail(f"{place}[{index}]", "must be relative to the run's directory")
            patterns.append(item.strip())
        return tuple(patterns)

    def flag(self, raw: object, place: str) -> bool:
        if not isinstance(raw, bool):
            raise self.fail(place, "must be true or false")
        return raw

    def cache_max_mb(self, raw: object) -> int:
        if raw is None:
            return DEFAULT_CACHE_MAX_MB
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise self.fail("x-orchestrate.cache_max_mb", "must be a whole number of megabytes (0: no limit)")
        return raw

    def env_templates(self, raw: object, services: Mapping[str, ServiceSpec]) -> dict[str, str]:
        if raw is None:
            return {}
        body = self.mapping(raw, "x-orchestrate.env")
        env: dict[str, str] = {}
        for name, value in body.items():
            place = f"x-orchestrate.env.{name}"
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(place, "invalid variable name (letters, digits and '_'; no leading digit)")
            template = self.scalar_text(value, place)
            self.check_template(template, place, services)
            env[name] = template
        return env

    def check_template(self, template: str, place: str, services: Mapping[str, ServiceSpec]) -> None:
        try:
            fields = list(string.Formatter().parse(template))
        except ValueError as exc:
            braces = "write '{{' and '}}' for literal braces"
            raise self.fail(place, f"bad template: {exc} ({braces})") from exc
        for _, field_name, format_spec, conversion in fields:
            if field_name is None:
                continue
            reference = "{" + field_name + "}"
            match = _TEMPLATE_FIELD.match(field_name)
            if match is None or format_spec or conversion:
                raise self.fail(
                    place,
                    f"bad reference '{{{field_name}}}': write {{service.host}}, {{service.port}} or "
                    "{service.ports[5432]}",
                )
            service = match["service"]
            if service not in services:
                hint = did_you_mean(service, services)
                raise self.fail(place, f"{reference} names unknown service '{service}'{hint}")
            published = services[service].ports
            if match["attr"] == "port" and not published:
                raise self.fail(place, f"{reference}: service '{service}' publishes no ports")
            if match["port"] is not None and f"{int(match['port'])}/tcp" not in published:
                listed = ", ".join(port.split("/")[0] for port in published) or "none"
                missing = f"service '{service}' does not publish port {match['port']} (ports: {listed})"
                raise self.fail(place, f"{reference}: {missing}")

    def commands(self, raw: object, place: str) -> tuple[str, ...]:
        """`setup` and `reset_commands`: one shell command or a list of them."""
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.fail(place, "must be a shell command or a list of shell commands")
        commands: list[str] = []
        for index, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{place}[{index}]", "must be a non-empty shell command string")
            commands.append(item)
        return tuple(commands)

    def reset(self, raw: object, services: Mapping[str, ServiceSpec]) -> dict[str, str]:
        if raw is None:
            return {}
        body = self.mapping(raw, "x-orchestrate.reset")
        strategies: dict[str, str] = {}
        for name, strategy in body.items():
            place = f"x-orchestrate.reset.{name}"
            if name not in services:
                raise self.fail(place, f"names unknown service '{name}'{did_you_mean(str(name), services)}")
            if not isinstance(strategy, str) or strategy not in RESET_STRATEGIES:
                shown = strategy if isinstance(strategy, str) else type(strategy).__name__
                builtin = ", ".join(RESET_STRATEGIES)
                raise self.fail(
                    place,
                    f"unknown reset strategy '{shown}'{did_you_mean(str(shown), RESET_STRATEGIES)}; "
                    f"built-in: {builtin} (for anything else use x-orchestrate.reset_commands)",
                )
            if strategy in _STRATEGIES_NEEDING_A_PORT and not services[name].ports:
                raise self.fail(
                    place,
                    f"the {strategy} reset talks to service '{name}' over its published port, "
                    "but it publishes no ports (add one under 'ports')",
                )
            strategies[name] = strategy
        return strategies

    def pytest_args(self, raw: object, services: Mapping[str, ServiceSpec]) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            example = '["--dburi", "postgresql://postgres:postgres@{db.host}:{db.port}/test"]'
            raise self.fail("x-orchestrate.pytest_args", f"must be a list of arguments, e.g. {example}")
        templates: list[str] = []
        for index, item in enumerate(raw):
            place = f"x-orchestrate.pytest_args[{index}]"
            template = self.scalar_text(item, place)
            self.check_template(template, place, services)
            templates.append(template)
        return tuple(templates)

    def ready_timeout(self, raw: object) -> float:
        if raw is None:
            return DEFAULT_READY_TIMEOUT
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
            raise self.fail("x-orchestrate.ready_timeout", "must be a positive number of seconds")
        return float(raw)


def render(template: str, services: Mapping[str, Mapping[str, Any]]) -> str:
    """`template` filled in with `services` endpoints (the StackEndpoints form); checked when loaded."""
    pieces: list[str] = []
    for literal, field_name, _, _ in string.Formatter().parse(template):
        pieces.append(literal)
        if field_name is None:
            continue
        match = _TEMPLATE_FIELD.match(field_name)
        if match is None:
            raise StackFileError(f"bad reference '{{{field_name}}}' in a stack template")
        endpoint = services[match["service"]]
        if match["attr"] == "host":
            pieces.append(str(endpoint["host"]))
        elif match["attr"] == "port":
            pieces.append(str(endpoint["port"]))
        else:
            pieces.append(str(endpoint["ports"][str(int(match["port"]))]))
    return "".join(pieces)
