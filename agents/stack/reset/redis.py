"""The `redis` reset: every key of every database back to its state after setup.

Made by `agents.stack.reset.make_reset` for a service named `redis` in `x-orchestrate.reset`.
It speaks RESP itself (a few dozen lines below) to the service's port (6379 if listed, else
the first) where the tests reach it: the container's own address, or the port published on
127.0.0.1; so the agent needs no redis-py.

Snapshot (once, after setup): `INFO server` must name a Redis version (so a strategy on some
other server fails here, naming the service); then, in every database `INFO keyspace` lists,
every key is read with `DUMP` and `PTTL`, in one pipeline, and kept in the agent's memory.
Restore (before every unit), in one pipeline: `FLUSHALL`, then `SELECT` + `RESTORE` of every
recorded key with the TTL it had at snapshot time. Connections the tests hold stay open.

Not restored: server configuration (CONFIG SET), loaded scripts and functions, pub/sub state.
No AUTH: a password-protected server fails at snapshot with its NOAUTH error.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from agents.stack.reset.protocol import ServiceHandle
from orchestrator.protocol.errors import StackFailed

_DEFAULT_PORT = 6379
_TIMEOUT = 10.0
_SCAN_COUNT = b"1000"
_KEYSPACE_LINE = re.compile(rb"^db(\d+):keys=(\d+)", re.MULTILINE)

Command = Sequence[bytes]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One key as DUMP gave it, with its remaining time to live (0: none)."""

    key: bytes
    ttl_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class _ErrorReply:
    """A RESP error reply (`-ERR ...`): a value, so a pipeline's replies can all be read first."""

    message: str


class _ProtocolError(Exception):
    """The peer does not speak RESP (or closed the connection)."""


class RedisReset:
    """Snapshot and restore every key of one Redis service; see the module docstring."""

    def __init__(self, handle: ServiceHandle, timeout: float = _TIMEOUT) -> None:
        self._handle = handle
        self._timeout = timeout
        self._entries: dict[int, tuple[_Entry, ...]] | None = None
        # An earlier snapshot's `state_bytes()`, taken over by `attach()` (a warm stack).
        self._attached: bytes | None = None

    @property
    def service(self) -> str:
        return self._handle.name

    @property
    def keys(self) -> int:
        """How many keys the snapshot holds, over all databases."""
        return sum(len(entries) for entries in (self._entries or {}).values())

    def snapshot(self) -> None:
        """DUMP every key of every database; called once by the stack after setup.

        Raises StackFailed naming the service when it is not a Redis server or does not answer.
        """
        with self._connect("taking the snapshot") as connection:
            info = self._call(connection, [b"INFO", b"server"], "checking the server")
            if not isinstance(info, bytes) or b"redis_version:" not in info:
                raise self._failed(f"the redis reset needs a Redis server; INFO answered {_clip(info)}")
            keyspace = self._call(connection, [b"INFO", b"keyspace"], "taking the snapshot")
            assert isinstance(keyspace, bytes)  # _call raised if it was not a bulk string
            entries: dict[int, tuple[_Entry, ...]] = {}
            for match in _KEYSPACE_LINE.finditer(keyspace):
                database = int(match[1])
                entries[database] = self._dump_database(connection, database)
        self._entries = entries

    def restore(self) -> None:
        """FLUSHALL, then RESTORE every recorded key; called by the stack before every unit.

        Raises StackFailed naming the service and the first command Redis refused.
        """
        if self._entries is None and self._attached is not None:
            self._restore_attached(self._attached)
            return
        if self._entries is None:
            raise self._failed("restore() before snapshot()")
        commands = self._restore_commands()
        with self._connect("resetting") as connection:
            replies = self._pipeline(connection, commands, "resetting")
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, _ErrorReply):
                shown = b" ".join(command[:2]).decode(errors="replace")
                raise self._failed(f"resetting failed: {shown}: {reply.message}")

    def export(self) -> bytes:
        """The snapshot as `state_bytes()`, for a warm stack's record."""
        return self._attached if self._entries is None and self._attached is not None else self.state_bytes()

    def attach(self, state: bytes) -> None:
        """Restore to an earlier snapshot's `state_bytes()` from now on, instead of `snapshot()`."""
        self._attached = state

    def _restore_attached(self, state: bytes) -> None:
        with self._connect("resetting") as connection:
            self._call(connection, [b"FLUSHALL"], "resetting")
        self.load_state(state)

    def state_bytes(self) -> bytes:
        """The snapshot as bytes (a count line, then the RESTORE pipeline in RESP): a clone's state."""
        if self._entries is None:
            raise self._failed("state_bytes() before snapshot()")
        commands = self._restore_commands()[1:]  # no FLUSHALL: a clone starts empty
        return b"%d\n" % len(commands) + b"".join(_encode(command) for command in commands)

    def load_state(self, state: bytes) -> None:
        """Send a `state_bytes()` pipeline to this (empty) server; raises StackFailed naming it."""
        header, _, pipeline = state.partition(b"\n")
        with self._connect("loading the cached state") as connection:
            try:
                replies = connection.send_raw(pipeline, int(header))
            except (_ProtocolError, OSError, ValueError) as exc:
                raise self._failed(f"loading the cached state failed: {exc}") from exc
        errors = [reply.message for reply in replies if isinstance(reply, _ErrorReply)]
        if errors:
            raise self._failed(f"loading the cached state failed: {errors[0]}")

    def _restore_commands(self) -> list[Command]:
        assert self._entries is not None
        commands: list[Command] = [[b"FLUSHALL"]]
        for database, entries in self._entries.items():
            commands.append([b"SELECT", str(database).encode()])
            commands += [
                [b"RESTORE", entry.key, str(entry.ttl_ms).encode(), entry.payload] for entry in entries
            ]
        return commands

    # -- the steps -------------------------------------------------------------------------------

    def _dump_database(self, connection: _Connection, database: int) -> tuple[_Entry, ...]:
        self._call(connection, [b"SELECT", str(database).encode()], "taking the snapshot")
        keys: list[bytes] = []
        cursor = b"0"
        while True:
            reply = self._call(connection, [b"SCAN", cursor, b"COUNT", _SCAN_COUNT], "taking the snapshot")
            if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)):
                raise self._failed(f"taking the snapshot: unexpected SCAN reply {_clip(reply)}")
            cursor = reply[0]
            keys += [key for key in reply[1] if isinstance(key, bytes)]
            if cursor == b"0":
                break
        # SCAN may return a key twice; RESTORE of the same key twice would fail.
        unique = list(dict.fromkeys(keys))
        commands: list[Command] = []
        for key in unique:
            commands += [[b"DUMP", key], [b"PTTL", key]]
        replies = self._pipeline(connection, commands, "taking the snapshot")
        entries: list[_Entry] = []
        for index, key in enumerate(unique):
            payload, ttl = replies[2 * index], replies[2 * index + 1]
            if isinstance(payload, _ErrorReply) or isinstance(ttl, _ErrorReply):
                error = payload if isinstance(payload, _ErrorReply) else ttl
                assert isinstance(error, _ErrorReply)
                raise self._failed(f"taking the snapshot: DUMP {key!r}: {error.message}")
            if payload is None or not isinstance(ttl, int) or ttl == -2:
                continue  # expired between SCAN and DUMP: not part of the state
            assert isinstance(payload, bytes)
            entries.append(_Entry(key=key, ttl_ms=max(ttl, 0), payload=payload))
        return tuple(entries)

    def _connect(self, doing: str) -> _Connection:
        port = self._handle.ports.get(str(self._handle.container_port(_DEFAULT_PORT)))
        if port is None:
            raise self._failed(f"{doing}: the service publishes no port to reach Redis on")
        try:
            return _Connection(self._handle.host, port, self._timeout)
        except OSError as exc:
            raise self._failed(f"{doing}: cannot connect to {self._handle.host}:{port}: {exc}") from exc

    def _call(self, connection: _Connection, command: Command, doing: str) -> object:
        (reply,) = self._pipeline(connection, [command], doing)
        if isinstance(reply, _ErrorReply):
            name = command[0].decode(errors="replace")
            raise self._failed(f"{doing}: {name}: {reply.message}")
        return reply

    def _pipeline(self, connection: _Connection, commands: Sequence[Command], doing: str) -> list[object]:
        try:
            return connection.pipeline(commands)
        except _ProtocolError as exc:
            raise self._failed(
                f"{doing}: it does not speak the Redis protocol (is '{self.service}' a Redis server?): {exc}"
            ) from exc
        except OSError as exc:
            raise self._failed(f"{doing}: connection failed: {exc}") from exc

    def _failed(self, what: str) -> StackFailed:
        return StackFailed(f"service '{self.service}': {what}", service=self.service)


class _Connection:
    """A minimal RESP2 client: send commands in one write, read one reply per command."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._socket = socket.create_connection((host, port), timeout=timeout)
        self._reader = self._socket.makefile("rb")

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._reader.close()
        self._socket.close()

    def pipeline(self, commands: Sequence[Command]) -> list[object]:
        """Send every command at once, then read as many replies; errors come back as _ErrorReply."""
        self._socket.sendall(b"".join(_encode(command) for command in commands))
        try:
            return [self._read() for _ in commands]
        except TimeoutError as exc:
            raise _ProtocolError("no answer (timed out)") from exc
        except ValueError as exc:  # a length or integer that is not a number
            raise _ProtocolError(f"malformed reply: {exc}") from exc

    def send_raw(self, pipeline: bytes, count: int) -> list[object]:
        """Send already encoded commands, then read `count` replies."""
        self._socket.sendall(pipeline)
        try:
            return [self._read() for _ in range(count)]
        except TimeoutError as exc:
            raise _ProtocolError("no answer (timed out)") from exc

    def _read(self) -> object:
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise _ProtocolError(f"connection closed after {line[:40]!r}" if line else "connection closed")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode(errors="replace")
        if kind == b"-":
            return _ErrorReply(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            length = int(body)
            if length < 0:
                return None
            data = self._reader.read(length + 2)
            if len(data) != length + 2:
                raise _ProtocolError("connection closed mid-reply")
            return data[:-2]
        if kind == b"*":
            count = int(body)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise _ProtocolError(f"unexpected reply {line[:40]!r}")


def _encode(command: Command) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    for argument in command:
        parts.append(b"$%d\r\n%s\r\n" % (len(argument), argument))
    return b"".join(parts)


def _clip(value: object) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:200] + "..."
