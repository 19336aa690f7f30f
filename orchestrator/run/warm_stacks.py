"""Warm stacks: `orchestrate up --stack FILE --agents N` keeps N agents' stacks up between runs.

`up` starts the keeper, `python -m agents.stack.keeper` (its own session: a Ctrl-C at the
terminal does not reach it), which brings up N slots, each one agent's stack with its snapshot
(agents/stack/warm.py), and records it in `.orchestrate/warm-stacks.json`. Every later
`orchestrate run` in that directory with the same stack file gives agent `i < N` slot `i` to
borrow (`borrow_fields`): the agent resets it to its snapshot and starts a fresh worker, or
replaces it when it is stale. `down` ends the keeper, which removes every container and network
of the warm stacks; `down` then removes whatever is left by label, so nothing stays even when
the keeper was killed.

Why not Ray's warm actors, nor live agent processes in a daemon: docs/decisions.md, issue 21.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from orchestrator.protocol.errors import EnvironmentProblem, UsageError
from orchestrator.protocol.values import COLLECTOR_ID
from orchestrator.run.warm import _alive

STATE_PATH = Path(".orchestrate") / "warm-stacks.json"
SLOTS_DIR = Path(".orchestrate") / "warm-stacks"
LOG_PATH = Path(".orchestrate") / "warm-stacks.log"
STOP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class WarmStacks:
    """The warm stacks recorded here: their keeper, id, stack file (resolved) and slot count."""

    pid: int
    owner: str
    warm_id: str
    stack: str
    agents: int
    directory: str


def _read(state_path: Path) -> WarmStacks | None:
    try:
        data = json.loads(state_path.read_text())
        return WarmStacks(
            int(data["pid"]),
            str(data["owner"]),
            str(data["warm_id"]),
            str(data["stack"]),
            int(data["agents"]),
            str(data["directory"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def current(state_path: Path = STATE_PATH) -> WarmStacks | None:
    """The warm stacks recorded here, if their keeper still runs."""
    stacks = _read(state_path)
    return stacks if stacks is not None and _alive(stacks.pid) else None


def borrow_fields(stacks: WarmStacks, agent_id: int) -> dict[str, str]:
    """The AgentConfig fields that give agent `agent_id` its warm slot (none beyond the slots).
    The coordinator's collection agent (COLLECTOR_ID) has one too: the keeper keeps it when the
    stack file gives the coordinator a stack of its own (one kept by an older keeper without it
    is brought up by the first run that borrows it, and kept)."""
    if agent_id >= stacks.agents and agent_id != COLLECTOR_ID:
        return {}
    return {"warm_id": stacks.warm_id, "warm_owner": stacks.owner, "warm_dir": stacks.directory}


def check_resettable(stack_file: str) -> None:
    """A warm stack must be reset to its snapshot before each run: refuse a stack file whose
    services would keep the last run's data (one line, exit 4)."""
    from agents.stack import load_stack_file

    spec = load_stack_file(stack_file)
    if spec.reset_commands:
        return
    unreset = [name for name in spec.services if name not in spec.reset]
    if unreset:
        raise UsageError(
            f"{stack_file}: warm stacks are reset to their snapshot before each run, and "
            f"x-orchestrate.reset names no strategy for {', '.join(unreset)} (nor are there "
            "reset_commands): the next run would see this run's data"
        )


def up(stack_file: str, agents: int, state_path: Path = STATE_PATH) -> tuple[WarmStacks, bool]:
    """Start the keeper of `agents` warm stacks of `stack_file` (or find it); (stacks, started now).

    Waits until every slot is up (its setup and snapshot included); raises EnvironmentProblem
    with the keeper's reason when one could not come up (it then removed what it made).
    """
    from agents.stack import check_engine, current_owner

    stack = os.path.realpath(stack_file)
    running = current(state_path)
    if running is not None:
        if running.stack == stack and running.agents == agents:
            return running, False
        raise UsageError(
            f"warm stacks are up already ({running.agents} of {running.stack}): `orchestrate down` first"
        )
    check_resettable(stack_file)
    check_engine()
    warm_id = f"warm-{uuid.uuid4().hex[:8]}"
    directory = os.path.abspath(SLOTS_DIR)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG_PATH, "wb") as log:
        keeper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agents.stack.keeper",
                f"--stack={stack}",
                f"--agents={agents}",
                f"--dir={directory}",
                f"--warm-id={warm_id}",
                f"--cwd={os.getcwd()}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    # The owner its containers carry is the keeper's own `<hostname>:<pid>`.
    owner = current_owner().rpartition(":")[0] + f":{keeper.pid}"
    stacks = WarmStacks(keeper.pid, owner, warm_id, stack, agents, directory)
    # Recorded at once, so that `down` finds a keeper still bringing its stacks up.
    state_path.write_text(json.dumps(_to_json(stacks)))
    assert keeper.stdout is not None
    line = keeper.stdout.readline().decode("utf-8", "replace").strip()
    keeper.stdout.close()
    if line != "ready":
        keeper.wait()
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
        why = line.removeprefix("failed: ") or _log_tail()
        raise EnvironmentProblem(f"could not bring the warm stacks up: {why}")
    return stacks, True


def _to_json(stacks: WarmStacks) -> dict[str, object]:
    return {
        "pid": stacks.pid,
        "owner": stacks.owner,
        "warm_id": stacks.warm_id,
        "stack": stacks.stack,
        "agents": stacks.agents,
        "directory": stacks.directory,
    }


def _log_tail() -> str:
    try:
        return " ".join(LOG_PATH.read_text(errors="replace").splitlines()[-3:]) or "no output"
    except OSError:
        return "no output"


def down(state_path: Path = STATE_PATH) -> tuple[WarmStacks | None, int]:
    """End the keeper recorded here and remove its stacks; (what was up, containers removed last).

    The keeper removes its stacks on SIGTERM; what it left (it was killed, or it is stuck past
    STOP_SECONDS and then killed) is removed here by label.
    """
    from agents.stack import remove_run

    stacks = _read(state_path)
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()
    if stacks is None:
        return None, 0
    if _alive(stacks.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(stacks.pid, signal.SIGTERM)
        if not _wait_exit(stacks.pid, STOP_SECONDS):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stacks.pid, signal.SIGKILL)
    removed = remove_run(stacks.warm_id)
    shutil.rmtree(stacks.directory, ignore_errors=True)  # the slots' records and locks
    return stacks, removed


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child to end (its pidfd becomes readable): no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable) or not _alive(pid)
    finally:
        os.close(fd)
