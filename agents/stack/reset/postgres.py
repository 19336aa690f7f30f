"""The `postgres` reset: every database back to its state after setup, by template copy.

Made by `agents.stack.reset.make_reset` for a service named `postgres` in `x-orchestrate.reset`.
It talks to the server only through `psql` inside the service's container (a ContainerExec), as
the superuser over the local socket, connected to `template1`, so the agent needs no Postgres
client library and the server needs no published port.

Snapshot (once, after setup): every database that accepts connections and is not a template
(`postgres` included: suites often use it) is copied to `orchestrate_snapshot_<name>` with
`CREATE DATABASE ... TEMPLATE`, and the copy is marked a template that accepts no connections
(so no test can change it or block the copy). Restore (before every unit), in one `psql` call:
`DROP DATABASE <name> WITH (FORCE)` then `CREATE DATABASE <name> TEMPLATE <snapshot> OWNER
<owner>` for each; databases the tests created since are dropped too. FORCE terminates the
sessions still connected (a session-scoped fixture's connection): they must reconnect.

Not restored: roles and other cluster-wide objects, and per-database settings or grants made
with ALTER DATABASE / GRANT ... ON DATABASE (a template copy does not carry them). Needs
PostgreSQL 13 or later (`WITH (FORCE)`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from agents.stack.reset.protocol import ExecResult, ServiceHandle
from orchestrator.protocol.errors import StackFailed

SNAPSHOT_PREFIX = "orchestrate_snapshot_"
# Always there, never a test database, and not used as a template by our own statements.
MAINTENANCE_DATABASE = "template1"
MINIMUM_VERSION = 130000  # DROP DATABASE ... WITH (FORCE)
_DEFAULT_PORT = 5432
_MAX_IDENTIFIER_BYTES = 63
_OUTPUT_CHARS = 2000
# Exit codes of a command the container cannot run (not found / not executable).
_NOT_RUNNABLE = (126, 127)
# How many times a query whose output the engine lost is asked again (`_printed`).
LOST_OUTPUT_RETRIES = 3

_PROBE = f"""
SELECT json_build_object(
  'version', version(),
  'version_num', current_setting('server_version_num')::int,
  'databases', (
    SELECT coalesce(json_agg(json_build_object('name', datname, 'owner', pg_get_userbyid(datdba))
                             ORDER BY datname), '[]')
    FROM pg_database WHERE NOT datistemplate AND datallowconn),
  'snapshots', (
    SELECT coalesce(json_agg(datname ORDER BY datname), '[]')
    FROM pg_database WHERE left(datname, {len(SNAPSHOT_PREFIX)}) = '{SNAPSHOT_PREFIX}'))
"""


@dataclass(frozen=True, slots=True)
class _Database:
    """One database to restore: its name, its owner and the template holding its snapshot."""

    name: str
    owner: str
    snapshot: str


@dataclass(frozen=True, slots=True)
class _ServerState:
    """What the probe found: the databases to snapshot and snapshots already there."""

    databases: tuple[_Database, ...]
    stale_snapshots: tuple[str, ...]


class PostgresReset:
    """Snapshot and restore every database of one Postgres service; see the module docstring."""

    def __init__(self, handle: ServiceHandle) -> None:
        self._handle = handle
        self._databases: tuple[_Database, ...] | None = None

    @property
    def service(self) -> str:
        return self._handle.name

    @property
    def databases(self) -> tuple[str, ...]:
        """The names of the databases the snapshot holds (empty before `snapshot()`)."""
        return tuple(database.name for database in self._databases or ())

    def snapshot(self) -> None:
        """Copy every test database to its snapshot template; called once by the stack after setup.

        Raises StackFailed naming the service when it is not a PostgreSQL 13+ server or a copy fails.
        """
        state = self._probe()
        statements: list[str] = []
        for stale in state.stale_snapshots:
            # Left by an earlier snapshot() of this stack: a template cannot be dropped as is.
            statements += [
                f"ALTER DATABASE {_ident(stale)} WITH IS_TEMPLATE false",
                f"DROP DATABASE {_ident(stale)}",
            ]
        for database in state.databases:
            statements += [
                # A copy needs its source to have no other session; setup is over, so these are
                # only idle leftovers (a pool the setup command did not close).
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = {_literal(database.name)} AND pid <> pg_backend_pid()",
                f"CREATE DATABASE {_ident(database.snapshot)} TEMPLATE {_ident(database.name)}",
                f"ALTER DATABASE {_ident(database.snapshot)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            ]
        if statements:
            self._psql(statements, "taking the snapshot")
        self._databases = state.databases

    def export(self) -> bytes:
        """The snapshot's databases (name, owner, template) as JSON: the templates stay in the server."""
        if self._databases is None:
            raise self._failed("export() before snapshot()")
        return json.dumps([[d.name, d.owner, d.snapshot] for d in self._databases]).encode()

    def attach(self, state: bytes) -> None:
        """Restore to the templates an earlier `snapshot()` of this server left (`export()`)."""
        try:
            self._databases = tuple(_Database(str(n), str(o), str(s)) for n, o, s in json.loads(state))
        except (ValueError, TypeError) as exc:
            raise self._failed(f"the warm stack's snapshot record is unreadable: {exc}") from exc

    def restore(self) -> None:
        """Recreate every database from its snapshot, drop databases made since; called before each unit.

        Raises StackFailed naming the service and psql's error when a statement fails.
        """
        if self._databases is None:
            raise StackFailed(f"service '{self.service}': restore() before snapshot()", service=self.service)
        known = ", ".join(_literal(database.name) for database in self._databases) or "NULL"
        statements = [
            # Printed first, acted on below: DROP DATABASE cannot run inside a DO block.
            "SELECT coalesce(json_agg(datname ORDER BY datname), '[]') FROM pg_database "
            f"WHERE NOT datistemplate AND datname NOT IN ({known})"
        ]
        for database in self._databases:
            statements += [
                f"DROP DATABASE IF EXISTS {_ident(database.name)} WITH (FORCE)",
                f"CREATE DATABASE {_ident(database.name)} TEMPLATE {_ident(database.snapshot)} "
                f"OWNER {_ident(database.owner)}",
            ]
        result = self._printed(self._psql(statements, "resetting"), statements[0], "resetting")
        created_since = self._json(result, "resetting")
        if not isinstance(created_since, list):
            raise self._failed(f"resetting: unexpected psql output: {_clip(result.output)}")
        if created_since:
            self._psql([f"DROP DATABASE {_ident(name)} WITH (FORCE)" for name in created_since], "resetting")

    # -- psql ------------------------------------------------------------------------------------

    def _probe(self) -> _ServerState:
        """The server's version and databases; raises StackFailed unless it is PostgreSQL 13+."""
        result = self._psql([_PROBE], "checking the server", check=False)
        if result.exit_code in _NOT_RUNNABLE or "executable file not found" in result.output:
            raise self._failed(
                "the postgres reset runs psql in the service's container, and there is none "
                f"(is '{self.service}' a PostgreSQL server?): {_clip(result.output)}"
            )
        if result.exit_code != 0:
            raise self._failed(
                f"the postgres reset cannot query the server (is '{self.service}' a PostgreSQL "
                f"server?): psql exited with code {result.exit_code}: {_clip(result.output)}"
            )
        state = self._json(self._printed(result, _PROBE, "checking the server"), "checking the server")
        if not isinstance(state, dict) or not str(state.get("version", "")).startswith("PostgreSQL"):
            answer = _clip(result.output)
            raise self._failed(f"the postgres reset needs a PostgreSQL server; it answered {answer}")
        if int(state.get("version_num", 0)) < MINIMUM_VERSION:
            raise self._failed(
                f"the postgres reset needs PostgreSQL 13 or later (DROP DATABASE ... WITH (FORCE)); "
                f"it runs {state['version']}"
            )
        return _ServerState(
            databases=tuple(
                _Database(name=entry["name"], owner=entry["owner"], snapshot=_snapshot_name(entry["name"]))
                for entry in state["databases"]
            ),
            stale_snapshots=tuple(state["snapshots"]),
        )

    def _psql(self, statements: list[str], doing: str, *, check: bool = True) -> ExecResult:
        """Run `statements` in one psql session, each on its own (DROP/CREATE DATABASE refuse a transaction)."""
        environment = dict(self._handle.spec.environment)
        user = environment.get("POSTGRES_USER", "postgres")
        argv = [
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            f"--username={user}",
            f"--dbname={MAINTENANCE_DATABASE}",
            f"--port={self._handle.container_port(_DEFAULT_PORT)}",
        ]
        for statement in statements:
            argv += ["--command", statement]
        process_env = {"PGAPPNAME": "orchestrate-reset", "PGCONNECT_TIMEOUT": "10"}
        if "POSTGRES_PASSWORD" in environment:
            process_env["PGPASSWORD"] = environment["POSTGRES_PASSWORD"]
        result = self._handle.execute(argv, process_env)
        if check and result.exit_code != 0:
            raise self._failed(
                f"{doing} failed: psql exited with code {result.exit_code}: {_clip(result.output)}"
            )
        return result

    def _printed(self, result: ExecResult, query: str, doing: str) -> ExecResult:
        """`result`, or, when psql succeeded and nothing came back, `query` asked again alone.

        The engine sometimes loses a short `docker exec`'s output: it ends before the stream is
        attached, and the exec reports exit code 0 with no output (docker/docker-py#2042,
        moby/moby#27289). Every statement ran; only what the query printed is gone, and asking it
        again (it only reads) prints the same answer.
        """
        for _ in range(LOST_OUTPUT_RETRIES):
            if result.exit_code != 0 or result.output.strip():
                break
            result = self._psql([query], doing)
        return result

    def _json(self, result: ExecResult, doing: str) -> object:
        """The JSON value our query printed (psql prints nothing else with --quiet --tuples-only)."""
        lines = [line for line in result.output.splitlines() if line.strip()]
        try:
            return json.loads(lines[0])
        except (IndexError, ValueError) as exc:
            raise self._failed(f"{doing}: unexpected psql output: {_clip(result.output)}") from exc

    def _failed(self, what: str) -> StackFailed:
        return StackFailed(f"service '{self.service}': {what}", service=self.service)


def _snapshot_name(database: str) -> str:
    """`orchestrate_snapshot_<name>`, or a hash of the name where that would pass 63 bytes."""
    name = SNAPSHOT_PREFIX + database
    if len(name.encode()) <= _MAX_IDENTIFIER_BYTES:
        return name
    return SNAPSHOT_PREFIX + hashlib.sha256(database.encode()).hexdigest()[:24]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clip(output: str) -> str:
    text = " ".join(output.split())
    return text if len(text) <= _OUTPUT_CHARS else text[:_OUTPUT_CHARS] + "..."
