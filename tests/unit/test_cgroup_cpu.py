"""Finding and reading a container's CPU counter (agents/stack/cgroup_cpu.py), and sharing what the
agent's containers spent among the tests that ended (agents/runtime.py's `with_service_cpu`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.load_costs import with_service_cpu
from agents.stack.cgroup_cpu import cgroup_cpu
from orchestrator.protocol import messages as pm

V1 = "12:pids:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/docker/abc\n"
V2 = "0::/system.slice/docker-abc.scope\n"


def _proc(tmp_path: Path, pid: int, cgroup: str) -> Path:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cgroup").write_text(cgroup)
    return proc


def test_cgroup_v1_cpuacct_usage_in_nanoseconds(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 7, V1)
    counter = tmp_path / "sys" / "cpu,cpuacct" / "docker" / "abc" / "cpuacct.usage"
    counter.parent.mkdir(parents=True)
    counter.write_text("2500000000\n")
    meter = cgroup_cpu([7], proc=proc, root=tmp_path / "sys")
    assert meter is not None and meter.seconds() == pytest.approx(2.5)
    counter.write_text("3000000000\n")
    assert meter.seconds() == pytest.approx(3.0)


@pytest.mark.parametrize("base", ["", "unified"])
def test_cgroup_v2_cpu_stat_usage_in_microseconds(tmp_path: Path, base: str) -> None:
    proc = _proc(tmp_path, 8, V2)
    stat = tmp_path / "sys" / base / "system.slice" / "docker-abc.scope" / "cpu.stat"
    stat.parent.mkdir(parents=True)
    stat.write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    meter = cgroup_cpu([8], proc=proc, root=tmp_path / "sys")
    assert meter is not None and meter.seconds() == pytest.approx(1.5)
    stat.unlink()  # the container went away: it counts nothing, the meter still answers
    assert meter.seconds() == 0.0


def test_no_meter_when_a_process_or_its_counter_is_not_there(tmp_path: Path) -> None:
    proc = _proc(tmp_path, 9, V1)
    assert cgroup_cpu([9], proc=proc, root=tmp_path / "sys") is None  # no counter file
    assert cgroup_cpu([10], proc=proc, root=tmp_path / "sys") is None  # no such process
    assert cgroup_cpu([], proc=proc, root=tmp_path / "sys") is None


def test_what_the_containers_spent_goes_to_the_tests_by_their_waiting() -> None:
    waited = pm.TestEnded(node_id="a", seconds=1.0, cpu_seconds=0.2)
    busy = pm.TestEnded(node_id="b", seconds=0.5, cpu_seconds=0.5)
    other = pm.UnitFinished(unit_id="u")
    shared = with_service_cpu([waited, other, busy], 0.4)
    assert [type(e) for e in shared] == [pm.TestEnded, pm.UnitFinished, pm.TestEnded]
    # `a` waited 0.8 s beyond its own CPU, `b` not at all: `a` gets it all.
    assert [e.cpu_seconds for e in shared if isinstance(e, pm.TestEnded)] == pytest.approx([0.6, 0.5])
    # The coordinator is told which part of that CPU was the services'.
    assert [e.service_cpu_seconds for e in shared if isinstance(e, pm.TestEnded)] == pytest.approx([0.4, 0.0])
    # Tests that waited for nothing share it evenly; nothing spent changes nothing.
    even = with_service_cpu([busy, pm.TestEnded(node_id="c", seconds=0.1, cpu_seconds=0.1)], 0.2)
    assert [e.cpu_seconds for e in even if isinstance(e, pm.TestEnded)] == pytest.approx([0.6, 0.2])
    assert with_service_cpu([waited], 0.0) == [waited]
