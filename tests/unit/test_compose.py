"""Stack file parsing and validation (agents/stack/compose.py): pure, no Docker."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agents.stack import load_stack_file
from agents.stack.compose import DEFAULT_READY_TIMEOUT, HealthcheckSpec, StackSpec, parse_stack
from orchestrator.protocol.errors import StackFileError

GOOD = """
services:
  db:
    image: orchestrate/postgres:15
    environment:
      POSTGRES_DB: app
      DEBUG: true
      WORKERS: 4
    command: postgres -c "fsync=off"
    ports: ["5432", 5433, "5434/tcp"]
    healthcheck:
      test: pg_isready -h 127.0.0.1
      interval: 500ms
      timeout: 1m30s
      retries: 5
      start_period: 2s
    tmpfs: /var/lib/postgresql/data:size=64m
  cache:
    image: orchestrate/redis:7
    environment: ["A=1", "B=x=y"]
    command: ["redis-server", "--save", ""]
    ports: ["6379"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/app"
    REDIS_URL: "redis://{cache.host}:{cache.ports[6379]}/0"
    SECOND_PG: "{db.ports[5433]}"
    JSON: '{{"port": {db.port}}}'
  setup:
    - python migrate.py
  ready_timeout: 12.5
x-anchors:
  anything: goes
version: "3.9"
"""


def parse(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), path=Path("stack.yml"), display="stack.yml")


def error_of(text: str) -> str:
    with pytest.raises(StackFileError) as caught:
        parse(text)
    message = str(caught.value)
    assert "\n" not in message
    return message


def with_service(body: str, extension: str = "") -> str:
    return "services:\n  db:\n" + textwrap.indent(textwrap.dedent(body), "    ") + extension


class TestValidFile:
    def test_everything_is_parsed(self) -> None:
        spec = parse(GOOD)
        db, cache = spec.services["db"], spec.services["cache"]
        assert list(spec.services) == ["db", "cache"]
        assert db.image == "orchestrate/postgres:15"
        assert db.environment == {"POSTGRES_DB": "app", "DEBUG": "true", "WORKERS": "4"}
        assert db.command == ("postgres", "-c", "fsync=off")
        assert db.ports == ("5432/tcp", "5433/tcp", "5434/tcp")
        assert db.healthcheck == HealthcheckSpec(
            test=("CMD-SHELL", "pg_isready -h 127.0.0.1"),
            interval=0.5,
            timeout=90.0,
            retries=5,
            start_period=2.0,
        )
        assert db.tmpfs == {"/var/lib/postgresql/data": "size=64m"}
        assert cache.environment == {"A": "1", "B": "x=y"}
        assert cache.command == ("redis-server", "--save", "")
        assert cache.healthcheck == HealthcheckSpec(test=("NONE",))
        assert spec.setup == ("python migrate.py",)
        assert spec.ready_timeout == 12.5

    def test_env_templates_render_with_endpoints(self) -> None:
        spec = parse(GOOD)
        endpoints = {
            "db": {
                "host": "127.0.0.1",
                "port": 40001,
                "ports": {"5432": 40001, "5433": 40002, "5434": 40003},
            },
            "cache": {"host": "127.0.0.1", "port": 40010, "ports": {"6379": 40010}},
        }
        assert spec.render_env(endpoints) == {
            "DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:40001/app",
            "REDIS_URL": "redis://127.0.0.1:40010/0",
            "SECOND_PG": "40002",
            "JSON": '{"port": 40001}',
        }

    def test_minimal_file_gets_defaults(self) -> None:
        spec = parse("services:\n  app:\n    image: busybox\n")
        assert spec.ready_timeout == DEFAULT_READY_TIMEOUT
        assert spec.env == {} and spec.setup == ()
        service = spec.services["app"]
        assert service.ports == () and service.command is None and service.healthcheck is None

    def test_setup_may_be_one_string(self) -> None:
        spec = parse("services:\n  app: {image: x}\nx-orchestrate:\n  setup: make db\n")
        assert spec.setup == ("make db",)

    def test_list_healthcheck_is_kept_as_docker_form(self) -> None:
        spec = parse(with_service("image: x\nhealthcheck:\n  test: [CMD, redis-cli, ping]\n"))
        health = spec.services["db"].healthcheck
        assert health is not None and health.test == ("CMD", "redis-cli", "ping")

    def test_spec_is_frozen(self) -> None:
        spec = parse(GOOD)
        with pytest.raises(AttributeError):
            spec.ready_timeout = 1.0  # type: ignore[misc]


class TestUnknownKeys:
    def test_typo_in_service_key_suggests_the_right_one(self) -> None:
        message = error_of("services:\n  db:\n    imgae: orchestrate/postgres:15\n")
        assert message == "stack.yml: services.db: unknown key 'imgae' (did you mean 'image'?)"

    def test_typo_at_top_level(self) -> None:
        assert error_of("servics:\n  db: {image: x}\n") == (
            "stack.yml: unknown key 'servics' (did you mean 'services'?)"
        )

    def test_typo_in_extension(self) -> None:
        message = error_of("services:\n  db: {image: x}\nx-orchestrate:\n  ready_timout: 5\n")
        assert (
            message == "stack.yml: x-orchestrate: unknown key 'ready_timout' (did you mean 'ready_timeout'?)"
        )

    def test_typo_in_healthcheck(self) -> None:
        message = error_of(with_service("image: x\nhealthcheck: {test: 'true', intervall: 1s}\n"))
        assert message == (
            "stack.yml: services.db.healthcheck: unknown key 'intervall' (did you mean 'interval'?)"
        )

    def test_compose_key_we_do_not_support_says_why(self) -> None:
        message = error_of(with_service("image: x\nvolumes: ['data:/data']\n"))
        assert message.startswith("stack.yml: services.db: key 'volumes' is not supported: ")
        assert "tmpfs" in message

    def test_other_extension_keys_pass(self) -> None:
        spec = parse("x-common: &common {image: x}\nservices:\n  db: *common\n")
        assert spec.services["db"].image == "x"


class TestStructure:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", "stack.yml: the stack file is empty (it needs a 'services' mapping)"),
            ("- a\n- b\n", "stack.yml: must be a mapping, not list"),
            ("version: '3'\n", "stack.yml: missing key 'services'"),
            ("services: {}\n", "stack.yml: services: no services defined"),
            ("services:\n  db:\n", "stack.yml: services.db: must be a mapping, not null"),
            ("services:\n  db: {ports: ['1']}\n", "stack.yml: services.db: missing key 'image'"),
            ("services:\n  db: {image: 3}\n", "stack.yml: services.db.image: must be an image name"),
            ("services:\n  _db: {image: x}\n", "stack.yml: services._db: invalid service name"),
        ],
    )
    def test_structural_errors(self, text: str, expected: str) -> None:
        assert error_of(text).startswith(expected)

    def test_yaml_syntax_error_names_the_line(self) -> None:
        message = error_of("services:\n  db:\n    image: [unclosed\n    ports: x\n")
        assert message.startswith("stack.yml: line ")
        assert "YAML syntax error" in message

    def test_duplicate_key_is_an_error(self) -> None:
        message = error_of("services:\n  db: {image: x}\n  db: {image: y}\n")
        assert message == "stack.yml: line 3: YAML syntax error: duplicate key 'db'"


class TestPorts:
    def test_host_mapping_is_refused_with_the_rule(self) -> None:
        message = error_of(with_service("image: x\nports: ['15432:5432']\n"))
        assert message.startswith("stack.yml: services.db.ports[0]: '15432:5432' maps a host port;")
        assert "'5432'" in message and "127.0.0.1" in message and "random" in message

    @pytest.mark.parametrize(
        ("port", "expected"),
        [
            ("'5432/udp'", "only tcp ports are supported, not 'udp'"),
            ("'http'", "'http' is not a container port"),
            ("70000", "'70000' is not a container port"),
            ("{target: 5432}", "must be a container port"),
        ],
    )
    def test_bad_ports(self, port: str, expected: str) -> None:
        assert expected in error_of(with_service(f"image: x\nports: [{port}]\n"))

    def test_duplicate_port(self) -> None:
        message = error_of(with_service("image: x\nports: [5432, '5432/tcp']\n"))
        assert message == "stack.yml: services.db.ports[1]: port 5432/tcp is listed twice"


class TestValues:
    def test_environment_list_needs_key_value(self) -> None:
        message = error_of(with_service("image: x\nenvironment: ['JUST_A_NAME']\n"))
        assert message == "stack.yml: services.db.environment[0]: must be a 'KEY=VALUE' string"

    def test_environment_value_missing(self) -> None:
        message = error_of(with_service("image: x\nenvironment: {TOKEN: }\n"))
        assert message.startswith("stack.yml: services.db.environment.TOKEN: has no value")

    def test_command_that_cannot_be_split(self) -> None:
        message = error_of(with_service("image: x\ncommand: echo 'unclosed\n"))
        assert message.startswith("stack.yml: services.db.command: cannot split the command")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("1x", "'1x' is not a duration"),
            ("0s", "must be at least 1ms"),
            ("''", "'' is not a duration"),
            ("[1]", "must be a duration"),
        ],
    )
    def test_bad_durations(self, value: str, expected: str) -> None:
        message = error_of(with_service(f"image: x\nhealthcheck: {{test: 'true', interval: {value}}}\n"))
        assert message.startswith("stack.yml: services.db.healthcheck.interval: ")
        assert expected in message

    def test_healthcheck_list_needs_cmd(self) -> None:
        message = error_of(with_service("image: x\nhealthcheck: {test: [pg_isready]}\n"))
        assert message.startswith("stack.yml: services.db.healthcheck.test: a list must start with 'CMD'")

    def test_healthcheck_retries(self) -> None:
        message = error_of(with_service("image: x\nhealthcheck: {test: 'true', retries: 0}\n"))
        assert message == "stack.yml: services.db.healthcheck.retries: must be a whole number of at least 1"

    def test_tmpfs_needs_absolute_path(self) -> None:
        message = error_of(with_service("image: x\ntmpfs: [data]\n"))
        assert message.startswith("stack.yml: services.db.tmpfs[0]: must be an absolute path")

    @pytest.mark.parametrize("value", ["0", "-1", "soon", "true"])
    def test_ready_timeout_must_be_positive(self, value: str) -> None:
        message = error_of(f"services:\n  db: {{image: x}}\nx-orchestrate:\n  ready_timeout: {value}\n")
        assert message == "stack.yml: x-orchestrate.ready_timeout: must be a positive number of seconds"

    def test_setup_items_are_strings(self) -> None:
        message = error_of("services:\n  db: {image: x}\nx-orchestrate:\n  setup: [[a]]\n")
        assert message == "stack.yml: x-orchestrate.setup[0]: must be a non-empty shell command string"


class TestTemplates:
    BASE = "services:\n  db: {image: x, ports: ['5432']}\n  worker: {image: y}\nx-orchestrate:\n  env:\n"

    def test_unknown_service_with_suggestion(self) -> None:
        message = error_of(self.BASE + "    URL: 'postgres://{dbb.host}:{dbb.port}'\n")
        assert message == (
            "stack.yml: x-orchestrate.env.URL: {dbb.host} names unknown service 'dbb' (did you mean 'db'?)"
        )

    def test_port_of_a_service_without_ports(self) -> None:
        message = error_of(self.BASE + "    URL: '{worker.port}'\n")
        assert (
            message == "stack.yml: x-orchestrate.env.URL: {worker.port}: service 'worker' publishes no ports"
        )

    def test_port_that_is_not_published(self) -> None:
        message = error_of(self.BASE + "    URL: '{db.ports[6379]}'\n")
        assert message == (
            "stack.yml: x-orchestrate.env.URL: {db.ports[6379]}: service 'db' does not publish port 6379 "
            "(ports: 5432)"
        )

    @pytest.mark.parametrize("template", ["{db}", "{db.address}", "{db.port:>5}", "{db.port!r}", "{}"])
    def test_bad_references(self, template: str) -> None:
        message = error_of(self.BASE + f"    URL: '{template}'\n")
        assert message.startswith("stack.yml: x-orchestrate.env.URL: bad reference")

    def test_unbalanced_brace(self) -> None:
        message = error_of(self.BASE + "    URL: 'x{db.port'\n")
        assert message.startswith("stack.yml: x-orchestrate.env.URL: bad template: ")

    def test_bad_variable_name(self) -> None:
        message = error_of(self.BASE + "    1URL: x\n")
        assert message.startswith("stack.yml: x-orchestrate.env.1URL: invalid variable name")


class TestFiles:
    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "nope.yml"
        with pytest.raises(StackFileError, match=r"nope\.yml: stack file not found$"):
            load_stack_file(path)

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(StackFileError, match="cannot read stack file"):
            load_stack_file(tmp_path)  # a directory

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "stack.yml"
        path.write_bytes(b"services:\n  db: {image: \xff}\n")
        with pytest.raises(StackFileError, match="cannot read stack file"):
            load_stack_file(path)

    def test_errors_name_the_file_as_given_and_exit_as_usage_errors(self, tmp_path: Path) -> None:
        path = tmp_path / "mystack.yml"
        path.write_text("services:\n  db: {imgae: x}\n")
        with pytest.raises(StackFileError) as caught:
            load_stack_file(path)
        assert str(caught.value).startswith(f"{path}: services.db: unknown key 'imgae'")
        assert caught.value.exit_code == 4

    def test_the_example_stack_file_is_valid(self) -> None:
        example = Path(__file__).resolve().parents[2] / "examples" / "integration" / "stack.yml"
        spec = load_stack_file(example)
        assert set(spec.services) == {"db", "cache"}
        assert set(spec.env) == {"DATABASE_URL", "REDIS_URL"}
        assert spec.path == example


class TestResetAndPytestArgs:
    BASE = (
        "services:\n  db: {image: x, ports: ['5432']}\n  cache: {image: y, ports: ['6379']}\n"
        "  worker: {image: z}\nx-orchestrate:\n"
    )

    def test_everything_is_parsed(self) -> None:
        spec = parse(
            self.BASE + "  reset: {db: postgres, cache: redis}\n"
            "  reset_commands: ['python reseed.py', 'true']\n"
            "  pytest_args: ['--dburi', 'postgresql://u:p@{db.host}:{db.port}/test', 3, '{{x}}']\n"
        )
        assert spec.reset == {"db": "postgres", "cache": "redis"}
        assert spec.reset_commands == ("python reseed.py", "true")
        assert spec.pytest_arg_templates == (
            "--dburi",
            "postgresql://u:p@{db.host}:{db.port}/test",
            "3",
            "{{x}}",
        )
        endpoints = {
            "db": {"host": "127.0.0.1", "port": 40001, "ports": {"5432": 40001}},
            "cache": {"host": "127.0.0.1", "port": 40002, "ports": {"6379": 40002}},
            "worker": {"host": "127.0.0.1", "port": None, "ports": {}},
        }
        assert spec.render_pytest_args(endpoints) == (
            "--dburi",
            "postgresql://u:p@127.0.0.1:40001/test",
            "3",
            "{x}",
        )

    def test_defaults(self) -> None:
        spec = parse("services:\n  app: {image: x}\n")
        assert spec.reset == {} and spec.reset_commands == () and spec.pytest_arg_templates == ()
        assert spec.render_pytest_args({}) == ()

    def test_reset_commands_may_be_one_string(self) -> None:
        assert parse(self.BASE + "  reset_commands: make reseed\n").reset_commands == ("make reseed",)

    def test_postgres_reset_needs_no_published_port(self) -> None:
        assert parse(self.BASE + "  reset: {worker: postgres}\n").reset == {"worker": "postgres"}

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (
                "  reset: {dbb: postgres}\n",
                "stack.yml: x-orchestrate.reset.dbb: names unknown service 'dbb' (did you mean 'db'?)",
            ),
            (
                "  reset: {db: postgress}\n",
                "stack.yml: x-orchestrate.reset.db: unknown reset strategy 'postgress' (did you mean "
                "'postgres'?); built-in: postgres, redis (for anything else use x-orchestrate.reset_commands)",
            ),
            (
                "  reset: {db: mysql}\n",
                "stack.yml: x-orchestrate.reset.db: unknown reset strategy 'mysql'; built-in: postgres, "
                "redis (for anything else use x-orchestrate.reset_commands)",
            ),
            (
                "  reset: {db: [postgres]}\n",
                "stack.yml: x-orchestrate.reset.db: unknown reset strategy 'list'; built-in: postgres, "
                "redis (for anything else use x-orchestrate.reset_commands)",
            ),
            (
                "  reset: {worker: redis}\n",
                "stack.yml: x-orchestrate.reset.worker: the redis reset talks to service 'worker' over its "
                "published port, but it publishes no ports (add one under 'ports')",
            ),
            ("  reset: [db]\n", "stack.yml: x-orchestrate.reset: must be a mapping, not list"),
            (
                "  reset_commands: [[a]]\n",
                "stack.yml: x-orchestrate.reset_commands[0]: must be a non-empty shell command string",
            ),
            (
                "  reset_commands: {a: b}\n",
                "stack.yml: x-orchestrate.reset_commands: must be a shell command or a list of shell commands",
            ),
            (
                "  resett: {db: postgres}\n",
                "stack.yml: x-orchestrate: unknown key 'resett' (did you mean 'reset'?)",
            ),
        ],
    )
    def test_reset_errors(self, body: str, expected: str) -> None:
        assert error_of(self.BASE + body) == expected

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (
                "  pytest_args: --dburi x\n",
                'stack.yml: x-orchestrate.pytest_args: must be a list of arguments, e.g. ["--dburi", '
                '"postgresql://postgres:postgres@{db.host}:{db.port}/test"]',
            ),
            (
                "  pytest_args: ['--dburi', '{dbb.port}']\n",
                "stack.yml: x-orchestrate.pytest_args[1]: {dbb.port} names unknown service 'dbb' "
                "(did you mean 'db'?)",
            ),
            (
                "  pytest_args: ['{worker.port}']\n",
                "stack.yml: x-orchestrate.pytest_args[0]: {worker.port}: service 'worker' publishes no ports",
            ),
            (
                "  pytest_args: [[a]]\n",
                "stack.yml: x-orchestrate.pytest_args[0]: must be a string or a number",
            ),
        ],
    )
    def test_pytest_args_errors(self, body: str, expected: str) -> None:
        assert error_of(self.BASE + body) == expected

    def test_pytest_args_bad_template(self) -> None:
        message = error_of(self.BASE + "  pytest_args: ['x{db.port']\n")
        assert message.startswith("stack.yml: x-orchestrate.pytest_args[0]: bad template: ")

    def test_every_strategy_has_an_implementation(self) -> None:
        from agents.stack.compose import RESET_STRATEGIES
        from agents.stack.reset import ServiceHandle, make_reset
        from agents.stack.reset.protocol import ExecResult

        spec = parse(self.BASE)
        handle = ServiceHandle(spec=spec.services["db"], execute=lambda argv, env: ExecResult(0, ""))
        assert {type(make_reset(name, handle)).__name__ for name in RESET_STRATEGIES} == {
            "PostgresReset",
            "RedisReset",
        }
        with pytest.raises(ValueError):
            make_reset("mysql", handle)
