"""The CPU time a stack's containers spent, read from their cgroups: what a test cost its services.

A test's duration is stored as it would be alone (orchestrator/run/host_load.py): under L agents
per core, the CPU part of it was stretched L times. The worker's own CPU is known; the CPU of the
services the test talked to (a Postgres backend running its queries) is spent in the agent's
containers, on the same cores, and stretched alike. Counted as waiting, it made the store learn
the integration case at 4 agents on 2 cores 1.8x slower than it runs serially. So the agent reads
its containers' CPU counters as tests end and adds what they spent to the tests' CPU.

The counter of a container is its cgroup's: `cpuacct.usage` (nanoseconds) under cgroup v1's
cpuacct hierarchy, else `cpu.stat`'s `usage_usec` under cgroup v2 (the unified hierarchy at
/sys/fs/cgroup or, mounted beside v1, /sys/fs/cgroup/unified). The path comes from the
container's main process (`/proc/<pid>/cgroup`), which names the container's cgroup, so a
restarted container (a reset) keeps its path; its counter may start again from zero, which the
reader of differences clamps. Where none is readable (another kernel layout, an agent that does
not share the engine's view of /proc and /sys), there is no meter and durations are corrected
for the worker's CPU alone, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CgroupCpu", "cgroup_cpu"]

_ROOT = Path("/sys/fs/cgroup")


class CgroupCpu:
    """The summed CPU-seconds of some cgroups, read from their counter files."""

    def __init__(self, files: Iterable[Path]) -> None:
        self.files = tuple(files)

    def seconds(self) -> float:
        """The CPU-seconds the cgroups have spent so far (a file gone meanwhile counts nothing)."""
        total = 0.0
        for path in self.files:
            with contextlib.suppress(OSError, ValueError):
                total += _read(path)
        return total


def cgroup_cpu(pids: Iterable[int], proc: Path = Path("/proc"), root: Path = _ROOT) -> CgroupCpu | None:
    """A meter of the cgroups of processes `pids` (containers' main processes); None when the
    counter of any of them cannot be found or read."""
    files = []
    for pid in pids:
        path = _counter_file(pid, proc, root)
        if path is None:
            return None
        try:
            _read(path)
        except (OSError, ValueError):
            return None
        files.append(path)
    return CgroupCpu(files) if files else None


def _counter_file(pid: int, proc: Path, root: Path) -> Path | None:
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                candidate = root / mount / path.lstrip("/") / "cpuacct.usage"
                if candidate.is_file():
                    return candidate
        if hierarchy == "0" and not controllers:
            unified = path
    if unified is not None:
        for base in (root, root / "unified"):
            candidate = base / unified.lstrip("/") / "cpu.stat"
            if candidate.is_file():
                return candidate
    return None


def _read(path: Path) -> float:
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text.strip()) / 1e9
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    raise ValueError(f"{path}: no usage_usec")
