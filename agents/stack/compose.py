"""Parse and validate a stack file (a subset of the Docker Compose format) into a StackSpec.

Called once by the coordinator (through `agents.stack.load_stack_file`) before any agent
starts, so a typo fails the run at once with `StackFileError` instead of in every agent.
Pure: reads one file, imports no docker. What a StackSpec is lives in agents/stack/spec.py
(re-exported here); each service is validated by agents/stack/_services.py, the `x-orchestrate`
extension validated and its templates rendered by agents/stack/_extension.py, both on the
checks shared in agents/stack/_checks.py.

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

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.stack._checks import YamlChecker
from agents.stack._extension import DEFAULT_READY_TIMEOUT, RESET_STRATEGIES, ExtensionChecker
from agents.stack._services import ServiceChecker
from agents.stack.spec import PUBLISH_HOST, HealthcheckSpec, ServiceSpec, StackSpec
from orchestrator.protocol.errors import StackFileError

if TYPE_CHECKING:
    import yaml

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

_TOP_KEYS = ("services", "x-orchestrate", "version", "name")
_UNSUPPORTED_TOP_KEYS = {
    "volumes": "a stack is thrown away after the run; use tmpfs",
    "networks": "each agent gets its own network",
    "configs": "not part of the supported subset",
    "secrets": "not part of the supported subset",
}


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
    import yaml  # here: an agent without a stack file never needs it (about 12 ms an import)

    where = display if display is not None else str(path)
    try:
        document = yaml.load(text, Loader=_strict_loader())  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        line = f"line {exc.problem_mark.line + 1}: " if exc.problem_mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise StackFileError(f"{where}: {line}YAML syntax error: {problem}") from exc
    except yaml.YAMLError as exc:
        raise StackFileError(f"{where}: YAML syntax error: {_one_line(str(exc))}") from exc
    return _Validator(where).stack(document, path)


@functools.cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """yaml.safe_load's loader, except that a key written twice in one mapping is an error."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
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

    return StrictLoader


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
        checker = ServiceChecker(self.where)
        for name, raw in raw_services.items():
            services[name] = checker.service(name, raw, f"services.{name}")
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


def _one_line(text: str) -> str:
    return " ".join(text.split())
