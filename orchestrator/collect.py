"""Collect the suite once, with real pytest collection in a subprocess, and group it into units.

Called by the CLI before planning (`run`, `plan`, `shard`). The subprocess is
`python -m pytest --collect-only` with the user's paths and pytest arguments plus our
collection plugin, so conftest plugins, ini files, rootdir rules, `--pyargs`, `-k` and `-m`
behave exactly as in the user's own pytest runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from agents.worker import pytest_command
from orchestrator._collect_plugin import GROUP_ENV, OUT_ENV
from orchestrator.errors import (
    EXIT_NO_TESTS,
    EXIT_USAGE_ERROR,
    CollectionFailed,
    NoTestsCollected,
    UsageError,
)
from orchestrator.model import Collection, GroupBy, JunitSettings, TestUnit
from orchestrator.protocol import wire


def collect(
    args: Sequence[str],
    *,
    group_by: GroupBy = GroupBy.CLASS,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Collection:
    """Run one real collection and return its units, in collection order.

    Raises CollectionFailed (exit 2, with pytest's own output), UsageError for arguments pytest
    refuses (exit 4) and NoTestsCollected (exit 5).
    """
    return start_collection(args, group_by=group_by, cwd=cwd, env=env).wait()


def start_collection(
    args: Sequence[str],
    *,
    group_by: GroupBy = GroupBy.CLASS,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> PendingCollection:
    """Start the collection subprocess and return at once (the CLI starts Ray meanwhile)."""
    return PendingCollection(args, group_by, cwd, env)


class PendingCollection:
    """A running collection subprocess; `wait()` gives its Collection or raises."""

    def __init__(
        self, args: Sequence[str], group_by: GroupBy, cwd: str | None, env: dict[str, str] | None
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="orchestrate-collect-")
        self._out = os.path.join(self._tmp.name, "collection.msgpack")
        proc_env = dict(os.environ if env is None else env)
        proc_env[OUT_ENV] = self._out
        proc_env[GROUP_ENV] = group_by.value
        command = pytest_command(
            sys.executable,
            ["--collect-only", "-qq", "-p", "orchestrator._collect_plugin", *args],
        )
        self._proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=proc_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def wait(self) -> Collection:
        try:
            stdout, _ = self._proc.communicate()
            output = (stdout or "").strip()
            code = self._proc.returncode
            if code == EXIT_USAGE_ERROR:
                raise UsageError(_last_error_line(output) or "pytest refused its arguments")
            if code == EXIT_NO_TESTS:
                raise NoTestsCollected("no tests collected")
            if code != 0 or not os.path.exists(self._out):
                raise CollectionFailed(
                    f"collection failed (pytest exit code {code})",
                    output=output,
                    exit_code=code if code in (1, 2, 3) else 2,
                )
            with open(self._out, "rb") as fh:
                _, payload = wire.check(wire.unpack(fh.read()))
            return _collection_from(payload)
        finally:
            self._tmp.cleanup()

    def cancel(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._tmp.cleanup()


def _collection_from(payload: dict) -> Collection:
    units: dict[str, list[str]] = {}
    splittable: dict[str, bool] = {}
    for node_id, unit_id, can_split in payload["items"]:
        units.setdefault(unit_id, []).append(node_id)
        splittable[unit_id] = splittable.get(unit_id, True) and bool(can_split)
    if not units:
        raise NoTestsCollected("no tests collected")
    return Collection(
        units=tuple(TestUnit(uid, tuple(ids), splittable[uid]) for uid, ids in units.items()),
        rootdir=payload["rootdir"],
        maxfail=payload["maxfail"],
        junit=JunitSettings(**payload["junit"]),
    )


def _last_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1].strip()
