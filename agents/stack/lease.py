"""Leases: how a node tells a live agent's stack from one whose coordinator is gone.

On a cluster the coordinator runs on another machine, so the owner-pid check of `sweep`
(`probes.owner_is_dead`) cannot judge the containers an agent left on its node. Instead each
agent holds a lease for its stack on its own node: a file, `<lease dir>/<run>.<agent>`, whose
modification time the agent renews every `RENEW_SECONDS` from a thread of its own, from before
its stack comes up until after it is down. When the coordinator is killed, Ray kills its
actors, the renewals stop, and after `STALE_SECONDS` the lease is stale: the next sweep on that
node (every agent runs one before its stack comes up; `orchestrate clean --address` runs one on
every node) removes the run's containers and networks. A container without a lease file is
never judged by leases (it is someone else's, or a local run's, judged by its owner pid).

Called by agents/runtime.py (`Lease`) and agents/stack/docker.py (`stale_leases`).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["RENEW_SECONDS", "STALE_SECONDS", "Lease", "lease_dir", "lease_path", "stale_leases"]

# A renewal every few seconds; a lease is stale after several missed ones, which is far longer
# than a busy node delays a thread, and short enough that the next run on the node cleans up.
RENEW_SECONDS = 3.0
STALE_SECONDS = 30.0


def lease_dir() -> Path:
    """This node's lease directory (the node's temporary directory: agents and sweeps share it)."""
    return Path(tempfile.gettempdir()) / "orchestrate-leases"


def lease_path(run_id: str, agent_id: str, directory: Path | None = None) -> Path:
    return (directory or lease_dir()) / f"{run_id}.{agent_id}"


def stale_leases(
    now: float | None = None, stale_after: float = STALE_SECONDS, directory: Path | None = None
) -> set[tuple[str, str]]:
    """(run id, agent id) of every lease on this node not renewed for `stale_after` seconds.

    `now` is wall-clock time (file modification times are). Called by `sweep` before it
    decides which containers go.
    """
    folder = directory or lease_dir()
    now = time.time() if now is None else now
    stale: set[tuple[str, str]] = set()
    with contextlib.suppress(FileNotFoundError):
        for path in folder.iterdir():
            run_id, dot, agent_id = path.name.partition(".")
            if not dot:
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > stale_after:
                    stale.add((run_id, agent_id))
    return stale


def drop_lease(run_id: str, agent_id: str, directory: Path | None = None) -> None:
    """Remove a lease file (after its stack went, or by a sweep that removed the stack)."""
    with contextlib.suppress(FileNotFoundError):
        lease_path(run_id, agent_id, directory).unlink()


class Lease:
    """One agent's lease on its node, renewed by a thread until `release()`.

    Made by the agent runtime before its stack comes up; `release()` after the stack is down
    removes the file, `release(keep=True)` (the stack could not be removed) leaves it to go
    stale, so a later sweep retries. A renewal that fails calls `on_error` once and stops:
    the thread never swallows an error.
    """

    def __init__(
        self,
        run_id: str,
        agent_id: str,
        on_error: Callable[[BaseException], None],
        directory: Path | None = None,
        renew_seconds: float = RENEW_SECONDS,
    ) -> None:
        self.path = lease_path(run_id, agent_id, directory)
        self._on_error = on_error
        self._renew_seconds = renew_seconds
        self._released = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self) -> None:
        """Write the lease now (raises OSError) and start renewing it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self._thread = threading.Thread(target=self._renew, name="orchestrate-lease", daemon=True)
        self._thread.start()

    def release(self, keep: bool = False) -> None:
        self._released.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _renew(self) -> None:
        while not self._released.wait(self._renew_seconds):
            try:
                self.path.touch()  # recreated if someone removed it
            except OSError as exc:
                self._on_error(exc)
                return
