"""Both agent backends run real agents on a tiny generated suite: events come back in order,
AgentStopped last; the local backend with its agents in threads (without a stack) and in
processes (config, commands and events crossing as protocol bytes), the Ray backend as actors.
A local agent process that dies is reported lost."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.protocol import messages as pm
from orchestrator.protocol.reports import unpack_test_reports
from orchestrator.run.backends import AgentBackend, make_backend
from orchestrator.run.backends.local import LocalBackend


def _config(tmp_path: Path) -> pm.AgentConfig:
    return pm.AgentConfig(
        agent_id=0,
        run_id="r",
        owner="t:0",
        cwd=str(tmp_path),
        pytest_args=("test_x.py",),
        python=sys.executable,
    )


def _run(backend: AgentBackend, tmp_path: Path) -> list[pm.Event]:
    (tmp_path / "test_x.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    try:
        backend.start([_config(tmp_path)])
        units = (pm.UnitWork("u", ("test_x.py::test_a", "test_x.py::test_b")),)
        backend.send(0, pm.Assign(units=units))
        backend.send(0, pm.Finish())
        events: list[pm.Event] = []
        deadline = time.monotonic() + 120
        while not any(isinstance(e, pm.AgentStopped) for e in events) and time.monotonic() < deadline:
            events += backend.wait_events(1.0)
        return events
    finally:
        backend.shutdown()


def _check(events: list[pm.Event]) -> None:
    names = [e.name for e in events]
    # StackReady (how the worker starts on its stack) comes first, AgentStopped last.
    assert names[:2] == ["stack_ready", "agent_ready"] and names[-1] == "agent_stopped", names
    assert names[-2] == "tearing_down", names
    # One event per test, carrying all of its reports.
    phases = [
        (e.node_id, r["nodeid"], r["when"], r["outcome"])
        for e in events
        if isinstance(e, pm.TestEnded)
        for r in unpack_test_reports(e.node_id, e.reports)
    ]
    assert phases == [
        (f"test_x.py::{name}", f"test_x.py::{name}", when, "passed")
        for name in ("test_a", "test_b")
        for when in ("setup", "call", "teardown")
    ]
    assert [e.unit_id for e in events if isinstance(e, pm.UnitFinished)] == ["u"]
    assert "agent_failed" not in names


@pytest.mark.slow
@pytest.mark.parametrize("threads", [True, False], ids=["in-threads", "in-processes"])
def test_local_backend(tmp_path: Path, threads: bool) -> None:
    _check(_run(LocalBackend(threads=threads), tmp_path))
    assert _children() == [], _children()


@pytest.mark.slow
def test_a_local_agent_process_that_dies_is_reported_lost(tmp_path: Path) -> None:
    """Its worker's parent is the agent process: a test that kills it takes the agent down, and
    the backend says so (AgentFailed, then AgentStopped)."""
    (tmp_path / "test_x.py").write_text(
        "import os, signal, time\n\ndef test_kill():\n    os.kill(os.getppid(), signal.SIGKILL)\n    time.sleep(30)\n"
    )
    backend = LocalBackend(threads=False)
    try:
        backend.start([_config(tmp_path)])
        backend.send(0, pm.Assign(units=(pm.UnitWork("u", ("test_x.py::test_kill",)),)))
        backend.send(0, pm.Flush())
        events: list[pm.Event] = []
        deadline = time.monotonic() + 60
        while not any(isinstance(e, pm.AgentStopped) for e in events) and time.monotonic() < deadline:
            events += backend.wait_events(1.0)
    finally:
        backend.shutdown()
    failed = [e for e in events if isinstance(e, pm.AgentFailed)]
    assert [e.message for e in failed] == ["agent lost: its process was killed by signal 9"], events
    assert isinstance(events[-1], pm.AgentStopped)
    # Nothing of the agent is this process's child: its worker, orphaned, ends its test and
    # exits on its own when it finds its command pipe closed.
    assert _children() == [], _children()


@pytest.mark.slow
def test_agents_in_processes_share_one_and_are_each_reported_lost_when_it_dies(tmp_path: Path) -> None:
    """The agents one start brings up in processes (those with a stack; here collection agents
    without one, which start no worker) share one: when it dies, each of them is lost."""
    import signal

    backend = LocalBackend()
    try:
        backend.start([replace(_config(tmp_path), agent_id=i, collector=True) for i in (0, 1)])
        events: list[pm.Event] = []
        deadline = time.monotonic() + 60
        while sum(isinstance(e, pm.StackReady) for e in events) < 2 and time.monotonic() < deadline:
            events += backend.wait_events(1.0)
        hosts = [pid for pid, command in _child_pids() if "agents.host" in command]
        assert len(hosts) == 1, _children()  # one process for both agents
        os.kill(hosts[0], signal.SIGKILL)
        while sum(isinstance(e, pm.AgentStopped) for e in events) < 2 and time.monotonic() < deadline:
            events += backend.wait_events(1.0)
    finally:
        backend.shutdown()
    lost = {e.agent_id: e.message for e in events if isinstance(e, pm.AgentFailed)}
    assert lost == {i: "agent lost: its process was killed by signal 9" for i in (0, 1)}, events
    assert {e.agent_id for e in events if isinstance(e, pm.AgentStopped)} == {0, 1}
    assert _children() == [], _children()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_backend(tmp_path: Path) -> None:
    events = _run(make_backend("ray"), tmp_path)
    _check(events)
    ready = events[1]  # after StackReady
    assert (
        isinstance(ready, pm.AgentReady) and ready.node.node_id and ready.node.address and ready.node.hostname
    )
    # The local instance's processes (its monitor, killed ahead of ray.shutdown(), included) are
    # gone and reaped: none is left running or as a zombie of this process.
    assert _children() == [], _children()


def _children() -> list[str]:
    """The command lines of this process's child processes still in the process table."""
    return [command for _, command in _child_pids()]


def _child_pids() -> list[tuple[int, str]]:
    """(pid, command line) of this process's child processes still in the process table."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it exited meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.append((int(entry.name), command.strip() or stat.split()[1]))
    return found


@pytest.mark.slow
def test_local_agents_in_threads_begin_a_cpus_worth_at_a_time(tmp_path: Path) -> None:
    """With one start at a time, agent 1 begins (its first event) only once agent 0 is up; an
    agent sent a command before it begins begins at once; both end with AgentStopped."""
    (tmp_path / "test_x.py").write_text("def test_a():\n    pass\n")
    backend = LocalBackend(starting_at_once=1)
    configs = [replace(_config(tmp_path), agent_id=agent_id) for agent_id in (0, 1, 2)]
    events: list[pm.Event] = []
    try:
        backend.start(configs)
        deadline = time.monotonic() + 60
        while sum(isinstance(e, pm.AgentReady) for e in events) < 2 and time.monotonic() < deadline:
            events += backend.wait_events(1.0)
        backend.send(0, pm.Assign(units=(pm.UnitWork("u", ("test_x.py::test_a",)),)))
        for agent_id in (0, 1, 2):  # agent 2 is not up (not begun, or starting): Finish stops it
            backend.send(agent_id, pm.Finish())
        while sum(isinstance(e, pm.AgentStopped) for e in events) < 3 and time.monotonic() < deadline:
            events += backend.wait_events(1.0)
    finally:
        backend.shutdown()
    first_of = {
        agent_id: next(i for i, e in enumerate(events) if e.agent_id == agent_id) for agent_id in (0, 1)
    }
    ready_0 = next(i for i, e in enumerate(events) if isinstance(e, pm.AgentReady) and e.agent_id == 0)
    assert first_of[1] > ready_0, [(e.name, e.agent_id) for e in events]
    assert sorted(e.agent_id for e in events if isinstance(e, pm.AgentStopped)) == [0, 1, 2]
    assert [e.node_id for e in events if isinstance(e, pm.TestEnded)] == ["test_x.py::test_a"]
    assert _children() == [], _children()
