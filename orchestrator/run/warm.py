"""Warm mode: a local Ray instance kept alive between runs (`orchestrate up` / `orchestrate down`).

Starting Ray is most of a cold run's fixed cost (about 2-3 s here, plus 1 s to stop it). `up`
starts `ray start --head --block` on 127.0.0.1 in its own process group and records it in
`.orchestrate/warm.json`; `orchestrate run` without `--address` joins it when it answers; `down`
ends exactly that process group (never `ray stop`, which would stop every Ray on the machine).
Agents and their stacks still start per run, so every run gets fresh databases.

Called by orchestrator/front/commands.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.protocol.errors import EnvironmentProblem

STATE_PATH = Path(".orchestrate") / "warm.json"
LOG_PATH = Path(".orchestrate") / "warm-ray.log"
START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class WarmInstance:
    """A running warm Ray head: its address and the process group that owns it."""

    address: str
    pid: int


def _read_state(state_path: Path) -> WarmInstance | None:
    try:
        data = json.loads(state_path.read_text())
        return WarmInstance(str(data["address"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped by init) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _answers(address: str, timeout: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout):
            return True
    except (OSError, ValueError):
        return False


def current(state_path: Path = STATE_PATH) -> WarmInstance | None:
    """The warm instance recorded here, if its process lives and its port answers."""
    instance = _read_state(state_path)
    if instance is None or not _alive(instance.pid) or not _answers(instance.address):
        return None
    return instance


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def up(num_cpus: int, state_path: Path = STATE_PATH, log_path: Path = LOG_PATH) -> tuple[WarmInstance, bool]:
    """Start the warm instance (or find the running one); returns (instance, started_now)."""
    running = current(state_path)
    if running is not None:
        return running, False
    port = _free_port()
    ray = str(Path(sys.executable).with_name("ray"))
    state_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        head = subprocess.Popen(
            [
                ray,
                "start",
                "--head",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                f"--num-cpus={num_cpus}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                "--block",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: `down` ends exactly this Ray and nothing else.
            start_new_session=True,
        )
    instance = WarmInstance(f"127.0.0.1:{port}", head.pid)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _started(log_path):
        if head.poll() is not None or time.monotonic() > deadline:
            _end(head.pid)
            tail = " ".join(log_path.read_text(errors="replace").splitlines()[-3:])
            raise EnvironmentProblem(f"could not start a warm Ray instance: {tail or 'no output'}")
        time.sleep(0.1)
    state_path.write_text(json.dumps({"address": instance.address, "pid": instance.pid}))
    return instance, True


def _started(log_path: Path) -> bool:
    try:
        return "Ray runtime started" in log_path.read_text(errors="replace")
    except OSError:
        return False


def down(state_path: Path = STATE_PATH) -> WarmInstance | None:
    """Stop the warm instance recorded here; returns what was stopped (None: nothing was up)."""
    instance = _read_state(state_path)
    with contextlib.suppress(FileNotFoundError):
        state_path.unlink()
    if instance is None or not _alive(instance.pid):
        return None
    _end(instance.pid)
    return instance


def _end(pid: int) -> None:
    """SIGTERM the process group (Ray stops its processes), SIGKILL what is left after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
