"""How long the thread running a test waited for a CPU: the run-queue delay Linux keeps per thread.

A test that took d seconds on a machine with more runnable threads than cores spent part of d
runnable but not running. Linux keeps that per thread in /proc/<pid>/task/<tid>/schedstat: the
nanoseconds spent on a CPU, the nanoseconds spent waiting on a run queue, and the count of time
slices (the scheduler's sched_info; where the kernel keeps none, every field stays 0). The worker
reads it for its main thread, which runs the tests, as each test starts and ends: the difference
is what the machine's load cost that test, measured rather than inferred from how many agents
share a core (orchestrator/run/host_load.py). Reading it is one pread of a kept descriptor (about
a microsecond here).
"""

from __future__ import annotations

import os

__all__ = ["RunQueueClock"]


class RunQueueClock:
    """The run-queue delay of the thread that made it (the worker's main thread)."""

    def __init__(self, path: str = "/proc/thread-self/schedstat") -> None:
        # Opened by the thread measured: the descriptor stays that thread's whoever reads it.
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = None

    def waited(self) -> float:
        """Seconds the thread has waited for a CPU so far; -1.0 where the kernel keeps no count."""
        if self._fd is None:
            return -1.0
        try:
            on_cpu, waiting = os.pread(self._fd, 128, 0).split()[:2]
            if int(on_cpu) <= 0:
                return -1.0  # sched_info off: nothing is counted, not even time on a CPU
            return int(waiting) / 1e9
        except (OSError, ValueError):
            return -1.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
