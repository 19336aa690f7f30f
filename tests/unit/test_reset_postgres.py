"""The postgres reset strategy (agents/stack/reset/postgres.py) driven by a fake `docker exec`.

What psql is asked to do, and what the user reads when the server is not what the stack file
says; the real server is exercised by tests/integration/test_stack_reset.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest

from agents.stack.compose import ServiceSpec
from agents.stack.reset import PostgresReset, ServiceHandle
from agents.stack.reset.protocol import ExecResult
from orchestrator.protocol.errors import StackFailed


def probe_output(
    databases: Sequence[tuple[str, str]] = (("postgres", "postgres"),),
    snapshots: Sequence[str] = (),
    version: str = "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu",
    version_num: int = 150018,
) -> str:
    return json.dumps(
        {
            "version": version,
            "version_num": version_num,
            "databases": [{"name": name, "owner": owner} for name, owner in databases],
            "snapshots": list(snapshots),
        }
    )


class FakeExec:
    """Answers psql calls from a script of results, recording each call's SQL and environment."""

    def __init__(self, *results: ExecResult) -> None:
        self.results = list(results)
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: Sequence[str], environment: Mapping[str, str]) -> ExecResult:
        self.calls.append((list(argv), dict(environment)))
        return self.results.pop(0) if self.results else ExecResult(0, "")

    def statements(self, call: int) -> list[str]:
        argv = self.calls[call][0]
        return [argv[index + 1] for index, arg in enumerate(argv) if arg == "--command"]


def strategy(fake: FakeExec, **service: object) -> PostgresReset:
    spec = ServiceSpec(name="db", image="orchestrate/postgres:15", **service)  # type: ignore[arg-type]
    return PostgresReset(ServiceHandle(spec=spec, execute=fake))


class TestSnapshot:
    def test_every_database_is_copied_to_a_template_that_takes_no_connections(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output([("app", "alice"), ("postgres", "postgres")])))
        reset = strategy(fake)
        reset.snapshot()
        assert reset.databases == ("app", "postgres")
        argv, environment = fake.calls[1]
        assert argv[:9] == [
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            "--username=postgres",
            "--dbname=template1",
            "--port=5432",
        ]
        assert environment["PGAPPNAME"] == "orchestrate-reset" and "PGPASSWORD" not in environment
        statements = fake.statements(1)
        assert statements[1:3] == [
            'CREATE DATABASE "orchestrate_snapshot_app" TEMPLATE "app"',
            'ALTER DATABASE "orchestrate_snapshot_app" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false',
        ]
        assert "pg_terminate_backend" in statements[0] and "datname = 'app'" in statements[0]
        assert statements[4] == 'CREATE DATABASE "orchestrate_snapshot_postgres" TEMPLATE "postgres"'

    def test_snapshots_left_by_an_earlier_snapshot_are_replaced(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output(snapshots=["orchestrate_snapshot_postgres"])))
        strategy(fake).snapshot()
        assert fake.statements(1)[:2] == [
            'ALTER DATABASE "orchestrate_snapshot_postgres" WITH IS_TEMPLATE false',
            'DROP DATABASE "orchestrate_snapshot_postgres"',
        ]

    def test_odd_and_long_names_are_quoted_and_fit(self) -> None:
        long_name = "d" * 60
        fake = FakeExec(ExecResult(0, probe_output([('we"ird', "o'wner"), (long_name, "postgres")])))
        reset = strategy(fake)
        reset.snapshot()
        creates = [s for s in fake.statements(1) if s.startswith("CREATE DATABASE")]
        assert creates[0] == 'CREATE DATABASE "orchestrate_snapshot_we""ird" TEMPLATE "we""ird"'
        snapshot_name = creates[1].split('"')[1]
        assert snapshot_name.startswith("orchestrate_snapshot_") and len(snapshot_name) <= 63
        fake.results = [ExecResult(0, "[]")]
        reset.restore()
        assert 'OWNER "o\'wner"' in fake.statements(2)[2]

    def test_user_password_and_port_come_from_the_service(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output()))
        strategy(
            fake, environment={"POSTGRES_USER": "admin", "POSTGRES_PASSWORD": "s3cret"}, ports=("5433/tcp",)
        ).snapshot()
        argv, environment = fake.calls[0]
        assert "--username=admin" in argv and "--port=5433" in argv
        assert environment["PGPASSWORD"] == "s3cret"


class TestRestore:
    def test_recreates_each_database_from_its_snapshot_with_its_owner(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output([("app", "alice")])), ExecResult(0, ""))
        reset = strategy(fake)
        reset.snapshot()
        fake.results = [ExecResult(0, "[]\n")]
        reset.restore()
        statements = fake.statements(2)
        assert "NOT IN ('app')" in statements[0]
        assert statements[1:] == [
            'DROP DATABASE IF EXISTS "app" WITH (FORCE)',
            'CREATE DATABASE "app" TEMPLATE "orchestrate_snapshot_app" OWNER "alice"',
        ]
        assert len(fake.calls) == 3

    def test_databases_created_since_the_snapshot_are_dropped(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output()), ExecResult(0, ""))
        reset = strategy(fake)
        reset.snapshot()
        fake.results = [ExecResult(0, '["made_by_a_test"]')]
        reset.restore()
        assert fake.statements(3) == ['DROP DATABASE "made_by_a_test" WITH (FORCE)']

    def test_a_failing_statement_names_the_service_and_says_what_psql_said(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output()), ExecResult(0, ""))
        reset = strategy(fake)
        reset.snapshot()
        fake.results = [
            ExecResult(3, 'ERROR:  database "postgres" is used by an active logical replication slot')
        ]
        with pytest.raises(StackFailed) as caught:
            reset.restore()
        assert caught.value.service == "db"
        assert str(caught.value) == (
            "service 'db': resetting failed: psql exited with code 3: ERROR: database \"postgres\" is used "
            "by an active logical replication slot"
        )

    def test_restore_before_snapshot(self) -> None:
        with pytest.raises(StackFailed, match="restore\\(\\) before snapshot\\(\\)"):
            strategy(FakeExec()).restore()


class TestNotPostgres:
    def test_no_psql_in_the_container(self) -> None:
        oci = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "psql": executable file not found in $PATH'
        with pytest.raises(StackFailed) as caught:
            strategy(FakeExec(ExecResult(126, oci))).snapshot()
        assert caught.value.service == "db"
        assert str(caught.value).startswith(
            "service 'db': the postgres reset runs psql in the service's container, and there is none "
            "(is 'db' a PostgreSQL server?): OCI runtime exec failed"
        )

    def test_psql_cannot_connect(self) -> None:
        said = 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed'
        with pytest.raises(StackFailed, match="cannot query the server \\(is 'db' a PostgreSQL server\\?\\)"):
            strategy(FakeExec(ExecResult(2, said))).snapshot()

    def test_something_else_answers(self) -> None:
        answer = probe_output(version="CockroachDB CCL v23.1")
        with pytest.raises(StackFailed, match="needs a PostgreSQL server; it answered"):
            strategy(FakeExec(ExecResult(0, answer))).snapshot()

    def test_too_old(self) -> None:
        answer = probe_output(version="PostgreSQL 12.17", version_num=120017)
        with pytest.raises(StackFailed, match="needs PostgreSQL 13 or later .* it runs PostgreSQL 12.17"):
            strategy(FakeExec(ExecResult(0, answer))).snapshot()


class TestLostOutput:
    """The engine sometimes loses a short `docker exec`'s output (exit code 0, nothing printed)."""

    def test_the_restore_asks_its_query_again_and_drops_what_was_created_since(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output([("app", "alice")])), ExecResult(0, ""))
        reset = strategy(fake)
        reset.snapshot()
        fake.results = [ExecResult(0, ""), ExecResult(0, '["scratch"]\n'), ExecResult(0, "")]
        reset.restore()
        restore, again, drop = fake.statements(2), fake.statements(3), fake.statements(4)
        assert len(restore) == 3 and again == restore[:1]  # only the query, which reads
        assert drop == ['DROP DATABASE "scratch" WITH (FORCE)']

    def test_the_probe_is_asked_again(self) -> None:
        fake = FakeExec(ExecResult(0, ""), ExecResult(0, probe_output([("app", "alice")])), ExecResult(0, ""))
        reset = strategy(fake)
        reset.snapshot()
        assert reset.databases == ("app",)

    def test_output_lost_every_time_is_still_a_one_line_failure(self) -> None:
        fake = FakeExec(ExecResult(0, probe_output()), ExecResult(0, ""))
        reset = strategy(fake)
        reset.snapshot()
        fake.results = [ExecResult(0, "")] * 5
        with pytest.raises(StackFailed, match="service 'db': resetting: unexpected psql output"):
            reset.restore()
