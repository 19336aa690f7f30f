"""Parse and validate a stack file (a subset of the Docker Compose format) into a StackSpec.

Called once by the coordinator (through `agents.stack.load_stack_file`) before any agent
starts, so a typo fails the run at once with `StackFileError` instead of in every agent.
Pure: reads one file, imports no docker. The `x-orchestrate` extension is validated and its
templates rendered by agents/stack/_extension.py, on the checks shared in agents/stack/_checks.py.

The subset, with orchestrate's one extension (`x-orchestrate`):

    services:
      db:
        image: orchestrate/postgres:15          # required; never pulled, must exist locally
        environment: {POSTGRES_DB: app}         # map or ["KEY=VALUE", ...]
        command: ["postgres", "-c", "fsync=off"]  # string (split like a shell) or list
        entrypoint: ...                         # same forms as command
        ports: ["5432"]                         # container side only ("5432", 5432, "5432/tcp")
        healthcheck: {test: ["CMD", "pg_isready"], interval: 500ms, timeout: 5s,
                      retries: 30, start_period: 0s}   # or {disable: true}
        tmpfs: ["/var/lib/postgresql/data:size=256m"]
    x-orchestrate:
      env:                                      # exported to setup commands and to the tests
        DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
        REDIS_URL: "redis://{cache.host}:{cache.ports[6379]}/0"
      setup: ["python migrate.py"]              # run once, after the stack is ready; its result
                                                # is committed, cached and cloned to every agent
      setup_inputs: ["migrations/**"]           # globs (run's directory) the cache key hashes
      cache: true                               # false: every agent runs setup, nothing is kept
      cache_max_mb: 2048                        # the cache's size limit (0: none); oldest go first
      ready_timeout: 60                         # seconds for every service to become ready
      reset: {db: postgres, cache: redis}       # service -> built-in strategy, before every unit
      reset_commands: ["python reseed.py"]      # shell commands run on the agent before every unit
      pytest_args: ["--dburi", "postgresql://postgres:postgres@{db.host}:{db.port}/test"]
      early_worker: true                        # start-up uses no service: worker starts early

Ports are always published on 127.0.0.1 at a random host port, so that any number of agents
can run the same stack on one machine; a "host:container" mapping is therefore refused
rather than silently ignored. In `env` templates `{svc.host}`, `{svc.port}` (the first listed)
and `{svc.ports[N]}` (for container port N) are where the agent reaches `svc`: the container's
own IP on the stack's network and its container ports when a TCP connect there succeeds (Linux,
the agent on the Docker host: no docker-proxy in the way), else 127.0.0.1 and the published
host ports. `{{`/`}}` are literal braces; `pytest_args` items are the same kind of template,
rendered per agent and appended to that agent's worker command line only.

`reset` names built-in strategies (RESET_STRATEGIES; agents/stack/reset/ implements them);
`redis` talks to the service over its port (6379 if listed, else the first) at the tests'
address, so it needs one. Whether the service really is that kind of server is only known once it runs:
the strategy checks it when the agent takes the snapshot. Unknown keys are errors (with a
suggestion), except keys starting with `x-`, which Compose reserves for extensions.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.stack._checks import YamlChecker
from agents.stack._extension import (
    DEFAULT_CACHE_MAX_MB,
    DEFAULT_READY_TIMEOUT,
    RESET_STRATEGIES,
    ExtensionChecker,
    render,
)
from orchestrator.protocol.errors import StackFileError

__all__ = [
    "DEFAULT_READY_TIMEOUT",
    "PUBLISH_HOST",
    "RESET_STRATEGIES",
    "HealthcheckSpec",
    "ServiceSpec",
    "StackSpec",
    "load_stack_file",
    "parse_stack",
]

PUBLISH_HOST = "127.0.0.1"

_SERVICE_KEYS = ("image", "environment", "command", "entrypoint", "ports", "healthcheck", "tmpfs")
# Compose keys people will reasonably write; named so the error says "not supported", not "unknown".
_UNSUPPORTED_SERVICE_KEYS = {
    "build": "images are built beforehand (see deploy/images/build.sh)",
    "volumes": "a stack is thrown away after the run; use tmpfs",
    "depends_on": "services start concurrently and setup runs after all are ready",
    "networks": "each agent gets its own network; services reach each other by name",
    "container_name": "names are generated per run and agent",
    "network_mode": "each agent gets its own network",
    "expose": "list the port under 'ports'",
    "restart": "a service that exits fails the stack",
    "env_file": "write the variables under 'environment'",
}
_HEALTHCHECK_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")
_TOP_KEYS = ("services", "x-orchestrate", "version", "name")
_UNSUPPORTED_TOP_KEYS = {
    "volumes": "a stack is thrown away after the run; use tmpfs",
    "networks": "each agent gets its own network",
    "configs": "not part of the supported subset",
    "secrets": "not part of the supported subset",
}

_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_PORT = re.compile(r"(?P<port>\d{1,5})(?:/(?P<proto>[a-z]+))?\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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


def load_stack_file(path: str | os.PathLike[str]) -> StackSpec:
    """Read, parse and validate a stack file; every problem is one StackFileError line."""
    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise StackFileError(f"{where}: stack file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StackFileError(f"{where}: cannot read stack file: {exc}") from exc
    return parse_stack(text, path=Path(path), display=where)


def parse_stack(text: str, path: Path = Path("stack.yml"), display: str | None = None) -> StackSpec:
    """Parse and validate stack file text; `display` names the file in error messages."""
    where = display if display is not None else str(path)
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        line = f"line {exc.problem_mark.line + 1}: " if exc.problem_mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise StackFileError(f"{where}: {line}YAML syntax error: {problem}") from exc
    except yaml.YAMLError as exc:
        raise StackFileError(f"{where}: YAML syntax error: {_one_line(str(exc))}") from exc
    return _Validator(where).stack(document, path)


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, except that a key written twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Validator(YamlChecker):
    """Turns the loaded YAML document into a StackSpec, naming the place of the first problem."""

    def stack(self, document: object, path: Path) -> StackSpec:
        if document is None:
            raise self.fail("", "the stack file is empty (it needs a 'services' mapping)")
        top = self.mapping(document, "")
        self.check_keys(top, "", _TOP_KEYS, _UNSUPPORTED_TOP_KEYS)
        if "services" not in top:
            raise self.fail("", "missing key 'services'")
        raw_services = self.mapping(top["services"], "services")
        if not raw_services:
            raise self.fail("services", "no services defined")
        services: dict[str, ServiceSpec] = {}
        for name, raw in raw_services.items():
            place = f"services.{name}"
            if not isinstance(name, str) or not _SERVICE_NAME.match(name):
                raise self.fail(place, "invalid service name (use letters, digits, '_' and '-')")
            services[name] = self.service(name, raw, place)
        extension = ExtensionChecker(self.where).extension(top.get("x-orchestrate") or {}, services)
        return StackSpec(
            path=path,
            services=services,
            env=extension.env,
            setup=extension.setup,
            ready_timeout=extension.ready_timeout,
            reset=extension.reset,
            reset_commands=extension.reset_commands,
            pytest_arg_templates=extension.pytest_arg_templates,
            collection_stack=extension.collection_stack,
            setup_inputs=extension.setup_inputs,
            cache=extension.cache,
            cache_max_mb=extension.cache_max_mb,
            early_worker=extension.early_worker,
        )

    # -- services ------------------------------------------------------------------------------

    def service(self, name: str, raw: object, place: str) -> ServiceSpec:
        body = self.mapping(raw, place)
        self.check_keys(body, place, _SERVICE_KEYS, _UNSUPPORTED_SERVICE_KEYS)
        image = body.get("image")
        if image is None:
            raise self.fail(place, "missing key 'image'")
        if not isinstance(image, str) or not image.strip():
            raise self.fail(f"{place}.image", "must be an image name such as 'orchestrate/postgres:15'")
        return ServiceSpec(
            name=name,
            image=image.strip(),
            environment=self.environment(body.get("environment"), f"{place}.environment"),
            command=self.argv(body.get("command"), f"{place}.command"),
            entrypoint=self.argv(body.get("entrypoint"), f"{place}.entrypoint"),
            ports=self.ports(body.get("ports"), f"{place}.ports"),
            healthcheck=self.healthcheck(body.get("healthcheck"), f"{place}.healthcheck"),
            tmpfs=self.tmpfs(body.get("tmpfs"), f"{place}.tmpfs"),
        )

    def environment(self, raw: object, place: str) -> dict[str, str]:
        if raw is None:
            return {}
        pairs: list[tuple[object, object]] = []
        if isinstance(raw, dict):
            pairs = list(raw.items())
        elif isinstance(raw, list):
            for index, item in enumerate(raw):
                if not isinstance(item, str) or "=" not in item:
                    raise self.fail(f"{place}[{index}]", "must be a 'KEY=VALUE' string")
                name, _, text = item.partition("=")
                pairs.append((name, text))
        else:
            raise self.fail(place, "must be a mapping or a list of 'KEY=VALUE' strings")
        environment: dict[str, str] = {}
        for key, value in pairs:
            if not isinstance(key, str) or not key:
                raise self.fail(place, f"invalid variable name {key!r}")
            if value is None:
                raise self.fail(
                    f"{place}.{key}", "has no value (passing the host's value through is not supported)"
                )
            environment[key] = self.scalar_text(value, f"{place}.{key}")
        return environment

    def argv(self, raw: object, place: str) -> tuple[str, ...] | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                return tuple(shlex.split(raw))
            except ValueError as exc:
                raise self.fail(place, f"cannot split the command: {exc}") from exc
        if isinstance(raw, list):
            return tuple(self.scalar_text(item, f"{place}[{index}]") for index, item in enumerate(raw))
        raise self.fail(place, "must be a string or a list of strings")

    def ports(self, raw: object, place: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(place, "must be a list of container ports, e.g. ['5432']")
        ports: list[str] = []
        for index, item in enumerate(raw):
            here = f"{place}[{index}]"
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise self.fail(here, "must be a container port such as 5432 or '5432/tcp'")
            text = str(item).strip()
            if ":" in text:
                raise self.fail(
                    here,
                    f"'{text}' maps a host port; give the container port only (e.g. "
                    f"'{text.rsplit(':', 1)[-1]}'): orchestrate publishes every port on "
                    f"{PUBLISH_HOST} at a random host port so that agents never collide",
                )
            match = _PORT.match(text)
            if match is None or not 1 <= int(match["port"]) <= 65535:
                raise self.fail(here, f"'{text}' is not a container port such as 5432 or '5432/tcp'")
            protocol = match["proto"] or "tcp"
            if protocol != "tcp":
                raise self.fail(here, f"only tcp ports are supported, not '{protocol}'")
            port = f"{int(match['port'])}/tcp"
            if port in ports:
                raise self.fail(here, f"port {port} is listed twice")
            ports.append(port)
        return tuple(ports)

    def healthcheck(self, raw: object, place: str) -> HealthcheckSpec | None:
        if raw is None:
            return None
        body = self.mapping(raw, place)
        self.check_keys(body, place, _HEALTHCHECK_KEYS)
        if body.get("disable") is True:
            if set(body) - {"disable"}:
                raise self.fail(place, "'disable: true' cannot be combined with other keys")
            return HealthcheckSpec(test=("NONE",))
        if "disable" in body and body["disable"] is not False:
            raise self.fail(f"{place}.disable", "must be true or false")
        if "test" not in body:
            raise self.fail(place, "missing key 'test'")
        test = self.health_test(body["test"], f"{place}.test")
        retries = body.get("retries")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 1):
            raise self.fail(f"{place}.retries", "must be a whole number of at least 1")
        return HealthcheckSpec(
            test=test,
            interval=self.duration(body.get("interval"), f"{place}.interval", minimum=0.001),
            timeout=self.duration(body.get("timeout"), f"{place}.timeout", minimum=0.001),
            retries=retries,
            start_period=self.duration(body.get("start_period"), f"{place}.start_period", minimum=0.0),
        )

    def health_test(self, raw: object, place: str) -> tuple[str, ...]:
        if isinstance(raw, str):
            if not raw.strip():
                raise self.fail(place, "is empty")
            return ("CMD-SHELL", raw)
        if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
            kind = raw[0]
            if kind == "NONE" and len(raw) == 1:
                return ("NONE",)
            if kind in ("CMD", "CMD-SHELL") and len(raw) > 1:
                return tuple(raw)
            raise self.fail(
                place, "a list must start with 'CMD' or 'CMD-SHELL' followed by the command, or be ['NONE']"
            )
        raise self.fail(place, "must be a shell command string or a list like ['CMD', 'pg_isready']")

    def duration(self, raw: object, place: str, minimum: float) -> float | None:
        """A Compose duration ("1m30s", "500ms") or a plain number of seconds."""
        if raw is None:
            return None
        if isinstance(raw, bool):
            raise self.fail(place, "must be a duration such as '1s' or '500ms'")
        if isinstance(raw, int | float):
            seconds = float(raw)
        elif isinstance(raw, str):
            text = raw.strip()
            parts = _DURATION_PART.findall(text)
            if not text or "".join(number + unit for number, unit in parts) != text:
                raise self.fail(place, f"'{raw}' is not a duration such as '1s', '500ms' or '1m30s'")
            seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
        else:
            raise self.fail(place, "must be a duration such as '1s' or '500ms'")
        if seconds < minimum or (minimum > 0 and seconds == 0):
            raise self.fail(place, f"must be at least {minimum * 1000:g}ms")
        return seconds

    def tmpfs(self, raw: object, place: str) -> dict[str, str]:
        if raw is None:
            return {}
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.fail(place, "must be a path or a list of paths (optionally 'path:options')")
        mounts: dict[str, str] = {}
        for index, item in enumerate(items):
            here = f"{place}[{index}]"
            if not isinstance(item, str) or not item.startswith("/"):
                raise self.fail(here, "must be an absolute path, optionally followed by ':options'")
            mount, _, options = item.partition(":")
            mounts[mount] = options
        return mounts


def _one_line(text: str) -> str:
    return " ".join(text.split())
