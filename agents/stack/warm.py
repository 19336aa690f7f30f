"""Warm stacks: one agent's stack kept up between runs, borrowed by each run, replaced when stale.

`orchestrate up --stack FILE --agents N` starts a keeper process (agents/stack/keeper.py) that
brings up N slots, each one agent's stack with its reset snapshot, and then only waits: the
containers' owner label is the keeper, so `sweep` removes them once it is gone. Each later run's
agent `i < N` borrows slot `i` (`open_slot`), under the slot's lock (an flock, which the kernel
drops with the process that held it, so a killed run never leaves a slot locked):

- kept and current (the record's cache key is the key now: same stack file, images and setup
  inputs) and every service running: it adopts the containers, says their endpoints (its worker
  may start), resets every service to the recorded snapshot (what the run before, or a run
  killed mid-test, left is gone before the first unit) and is up;
- otherwise it removes what the slot holds and brings the stack up anew (the set-up state cache
  still applies), takes the snapshot and records it with the key: a stale stack is replaced,
  never used.

A run ends by keeping the stack (`WarmDockerStack.keep`); a stack that failed (a service died,
a reset failed) is removed and its record dropped, so the next run replaces it. The slot's
record, `<dir>/<slot>.json`, holds the key, each reset strategy's exported snapshot and the
endpoints the stack's worker gets (`Recorded`): a run's agent reads them before anything else
(`recorded`, no Docker SDK) and starts its worker on them at once (agents/worker.py), and keeps
that worker only if the slot is borrowed as is with those very endpoints.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.stack.compose import StackSpec
from agents.stack.protocol import StackEndpoints
from orchestrator.protocol.errors import StackFailed

if TYPE_CHECKING:
    from agents.stack.borrowed import WarmDockerStack

__all__ = ["Recorded", "WarmSlot", "WarmStackUp", "open_slot", "recorded", "slot_stack"]

# Why a slot was brought up anew, in the words of AgentReady.stack_warm ("replaced: <why>").
STALE = "stale: its cache key changed (stack file, images or setup inputs)"
NOT_KEPT = "none kept yet"


@dataclass(frozen=True, slots=True)
class WarmSlot:
    """Which warm stack an agent borrows: the warm stacks' id, the slot, their owner, where the
    records and locks are."""

    warm_id: str
    slot: int
    owner: str
    directory: Path

    @property
    def record_path(self) -> Path:
        return self.directory / f"{self.slot}.json"

    @property
    def lock_path(self) -> Path:
        return self.directory / f"{self.slot}.lock"

    def lock(self) -> int | None:
        """Take the slot's lock without waiting: its file descriptor, or None (another run has it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def drop_record(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path.unlink()


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a slot's record says its stack's worker gets: the endpoints and whether it resets."""

    endpoints: StackEndpoints
    resets: bool


def recorded(slot: WarmSlot) -> Recorded | None:
    """The endpoints the slot's record holds (None: no record, or one written before they were
    kept). Whether the slot is still current and its containers alive is `open_slot`'s to say."""
    record = _read_record(slot.record_path)
    if record is None or not isinstance(part := record[2], dict):
        return None
    try:
        endpoints = StackEndpoints(
            env={str(k): str(v) for k, v in part["env"].items()},
            services={str(k): dict(v) for k, v in part["services"].items()},
            pytest_args=tuple(str(a) for a in part["pytest_args"]),
        )
        return Recorded(endpoints, bool(part["resets"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class WarmStackUp:
    """A borrowed or rebuilt slot: its stack, endpoints, "borrowed" or "replaced: <why>", and
    the seconds it took (the reset when borrowed; up, setup and snapshot when rebuilt)."""

    stack: WarmDockerStack
    endpoints: StackEndpoints
    how: str
    seconds: float


def open_slot(
    spec: StackSpec,
    slot: WarmSlot,
    cwd: str | os.PathLike[str],
    clock: Callable[[], float],
    on_endpoints: Callable[[StackEndpoints], None] | None = None,
) -> WarmStackUp:
    """Borrow `slot` (the caller holds its lock), or replace it; see the module docstring.

    `on_endpoints` is called once a kept stack's endpoints are known, before its reset (the
    agent starts its worker then). Raises StackFailed when the reset of a kept stack fails (the
    caller removes it) or when bringing it up anew fails.
    """
    from agents.stack.borrowed import WarmDockerStack

    def new_stack() -> WarmDockerStack:
        return WarmDockerStack(spec, slot.warm_id, str(slot.slot), slot.owner, cwd=cwd, clock=clock)

    stack = new_stack()
    key = stack.current_key()
    record = _read_record(slot.record_path)
    why = NOT_KEPT if record is None else STALE if record[0] != key else ""
    if not why and record is not None:
        try:
            endpoints = stack.adopt()
            stack.attach(record[1])
        except StackFailed as exc:
            why = f"not usable: {exc}"
        else:
            if on_endpoints is not None:
                on_endpoints(endpoints)
            if _endpoints_part(endpoints, stack.resets) != record[2]:  # the next run's early worker
                _write_record(slot.record_path, key, record[1], endpoints, stack.resets)
            return WarmStackUp(stack, endpoints, "borrowed", stack.reset())
    slot.drop_record()
    stack.down()
    stack = new_stack()
    started = clock()
    endpoints = stack.up()
    stack.snapshot()
    _write_record(slot.record_path, key, stack.export(), endpoints, stack.resets)
    return WarmStackUp(stack, endpoints, f"replaced: {why}", clock() - started)


def slot_stack(spec: StackSpec, slot: WarmSlot, cwd: str | os.PathLike[str]) -> WarmDockerStack:
    """A handle on whatever `slot` holds, to remove it (`down()`) after it failed."""
    from agents.stack.borrowed import WarmDockerStack

    return WarmDockerStack(spec, slot.warm_id, str(slot.slot), slot.owner, cwd=cwd)


def _read_record(path: Path) -> tuple[str, dict[str, bytes], object] | None:
    """(cache key, snapshot per service, endpoints part) of a slot's record; None when there is
    none to trust."""
    try:
        data = json.loads(path.read_text())
        snapshots = {str(k): base64.b64decode(v) for k, v in data["snapshots"].items()}
        return str(data["key"]), snapshots, data.get("endpoints")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _endpoints_part(endpoints: StackEndpoints, resets: bool) -> dict[str, object]:
    """The record's "endpoints", as JSON gives it back (what `recorded` reads)."""
    part = {
        "env": endpoints.env,
        "services": endpoints.services,
        "pytest_args": list(endpoints.pytest_args),
        "resets": resets,
    }
    return dict(json.loads(json.dumps(part)))


def _write_record(
    path: Path, key: str, snapshots: dict[str, bytes], endpoints: StackEndpoints, resets: bool
) -> None:
    """Write the record atomically: a half-written one would be read as none (and replaced)."""
    data = {
        "key": key,
        "snapshots": {k: base64.b64encode(v).decode() for k, v in snapshots.items()},
        "endpoints": _endpoints_part(endpoints, resets),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)
