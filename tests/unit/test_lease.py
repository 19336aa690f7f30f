"""Stack leases on a node (agents/stack/lease.py): which runs a sweep may judge dead."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agents.stack.lease import STALE_SECONDS, Lease, drop_lease, lease_path, stale_leases


def _lease_at(directory: Path, run_id: str, agent_id: str, mtime: float) -> Path:
    path = lease_path(run_id, agent_id, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))
    return path


def test_only_leases_not_renewed_for_stale_after_are_stale(tmp_path: Path) -> None:
    now = 1_000_000.0
    _lease_at(tmp_path, "run1", "0", now - STALE_SECONDS - 1)
    _lease_at(tmp_path, "run1", "1", now - 2)
    _lease_at(tmp_path, "run2", "3", now - 10)
    (tmp_path / "not-a-lease").touch()
    assert stale_leases(now, directory=tmp_path) == {("run1", "0")}
    assert stale_leases(now, stale_after=5, directory=tmp_path) == {("run1", "0"), ("run2", "3")}


def test_no_lease_directory_means_no_stale_lease(tmp_path: Path) -> None:
    assert stale_leases(directory=tmp_path / "missing") == set()


def test_a_held_lease_is_renewed_and_released(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    lease = Lease("run", "2", errors.append, directory=tmp_path, renew_seconds=0.01)
    lease.take()
    os.utime(lease.path, (0, 0))
    deadline = time.monotonic() + 5
    while lease.path.stat().st_mtime == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lease.path.stat().st_mtime > 0
    assert stale_leases(directory=tmp_path) == set()
    lease.release()
    assert not lease.path.exists() and errors == []


def test_a_lease_kept_on_release_goes_stale_for_a_later_sweep(tmp_path: Path) -> None:
    lease = Lease("run", "0", lambda exc: None, directory=tmp_path, renew_seconds=0.01)
    lease.take()
    lease.release(keep=True)
    assert lease.path.exists()
    assert stale_leases(time.time() + STALE_SECONDS + 1, directory=tmp_path) == {("run", "0")}
    drop_lease("run", "0", tmp_path)
    assert not lease.path.exists()
