"""The worker's clock of its wait for a CPU (agents/run_queue.py), read from this machine's kernel:
a thread that computes beside more computing processes than there are cores waits on the run
queue; one alone on an idle core barely does."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from agents.run_queue import RunQueueClock

_SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"


def _compute(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_a_thread_computing_beside_busier_cores_than_there_are_waits_for_a_cpu() -> None:
    clock = RunQueueClock()
    if clock.waited() < 0.0:
        pytest.skip("this kernel keeps no run-queue delay per thread (sched_info off)")
    before = clock.waited()
    hogs = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        time.sleep(0.2)  # the hogs have started computing
        start = time.monotonic()
        _compute(0.3)
        took = time.monotonic() - start
        waited = clock.waited() - before
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    # Three runnable threads a core: about two thirds of the time spent waiting.
    assert waited > 0.3, (waited, took)
    assert waited <= took + 0.01, (waited, took)
    clock.close()


def test_no_count_where_the_file_is_missing(tmp_path: os.PathLike[str]) -> None:
    assert RunQueueClock(os.path.join(tmp_path, "schedstat")).waited() == -1.0


def test_no_count_where_the_kernel_keeps_none(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "schedstat")
    with open(path, "w") as file:
        file.write("0 0 0\n")
    assert RunQueueClock(path).waited() == -1.0
