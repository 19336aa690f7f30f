"""AgentRuntime with a real pytest worker on a tiny generated suite, no stack, no backend."""

from __future__ import annotations

import queue
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from agents import _stack_side as stack_side_module
from agents.runtime import AgentRuntime
from agents.stack import StackEndpoints
from agents.worker import start_early, start_early_or_later
from orchestrator.protocol import messages as pm
from orchestrator.protocol.errors import StackFailed
from orchestrator.protocol.reports import unpack_test_reports

SUITE = """
    import os

    class TestOne:
        def test_a(self):
            pass

        def test_b(self):
            assert 1 == 2

    def test_c():
        pass

    def test_c2():
        assert os.environ["FAKE_DB"] == "x"

    def test_crash():
        os._exit(3)

    def test_after_crash():
        pass

    def test_exit():
        import pytest
        pytest.exit("enough", returncode=7)

    def test_warns():
        import warnings
        warnings.warn(UserWarning("careful"))
"""


class Collector:
    """The runtime's `emit`: every batch it hands out, decoded as a backend decodes it."""

    def __init__(self) -> None:
        self.events: queue.Queue[pm.Event] = queue.Queue()
        self.seen: list[pm.Event] = []

    def __call__(self, events: Sequence[pm.Event]) -> None:
        assert events, "the runtime never emits an empty batch"
        # Every batch crosses the boundary encoded, as it does with a backend.
        for decoded in pm.decode(pm.encode(list(events))):
            assert isinstance(decoded, pm.Event)
            self.events.put(decoded)

    def wait_for(self, kind: type[pm.Event], timeout: float = 60.0) -> pm.Event:
        while True:
            event = self.events.get(timeout=timeout)
            self.seen.append(event)
            if isinstance(event, kind):
                return event

    def rest(self, runtime: AgentRuntime) -> list[pm.Event]:
        assert runtime.wait_stopped(60)
        while not self.events.empty():
            self.seen.append(self.events.get())
        return self.seen


def ended_phases(events: Sequence[pm.Event]) -> list[tuple[str, str, str]]:
    """(node id, when, outcome) of every pytest report of every TestEnded, in order.

    Each test that ran to its teardown ends with exactly one TestEnded carrying all its reports.
    """
    ended = [e for e in events if isinstance(e, pm.TestEnded)]
    node_ids = [e.node_id for e in ended]
    assert len(node_ids) == len(set(node_ids)), f"a test ended twice: {node_ids}"
    phases = []
    for event in ended:
        assert event.seconds >= 0.0
        reports = unpack_test_reports(event.node_id, event.reports)
        assert [r["when"] for r in reports][-1] == "teardown", reports
        for report in reports:
            assert report["nodeid"] == event.node_id
            phases.append((event.node_id, report["when"], report["outcome"]))
    return phases


def _runtime(tmp_path: Path, collector: Collector, **overrides: object) -> AgentRuntime:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    config = pm.AgentConfig(
        agent_id=3,
        run_id="r1",
        owner="test:0",
        cwd=str(tmp_path),
        python=sys.executable,
        **{"pytest_args": ("test_suite.py", "-p", "no:randomly", "--sw"), **overrides},  # type: ignore[arg-type]
    )
    return AgentRuntime(config, collector)


def _unit(unit_id: str, *names: str) -> pm.UnitWork:
    return pm.UnitWork(unit_id, tuple(f"test_suite.py::{n}" for n in names))


@pytest.mark.slow
def test_two_units_run_and_finish(tmp_path: Path) -> None:
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    runtime.command(
        pm.Assign(units=(_unit("TestOne", "TestOne::test_a", "TestOne::test_b"), _unit("c", "test_c")))
    )
    ready = collector.wait_for(pm.AgentReady)
    # Ready before collecting a test: the worker collects each unit's file when the unit arrives.
    assert isinstance(ready, pm.AgentReady) and ready.collected == 0 and ready.agent_id == 3
    assert ready.lazy_collection and ready.collection_fallback == ""
    assert ready.versions["pytest"] == pytest.__version__
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert isinstance(events[-1], pm.AgentStopped)
    assert [e.name for e in events].count("agent_stopped") == 1
    reports = [(node_id.split("::")[-1], when, outcome) for node_id, when, outcome in ended_phases(events)]
    assert reports == [
        ("test_a", "setup", "passed"),
        ("test_a", "call", "passed"),
        ("test_a", "teardown", "passed"),
        ("test_b", "setup", "passed"),
        ("test_b", "call", "failed"),
        ("test_b", "teardown", "passed"),
        ("test_c", "setup", "passed"),
        ("test_c", "call", "passed"),
        ("test_c", "teardown", "passed"),
    ]
    assert [e.unit_id for e in events if isinstance(e, pm.UnitFinished)] == ["TestOne", "c"]
    assert not [e for e in events if isinstance(e, pm.AgentFailed)]
    # Each agent's worker has its own basetemp and cache, inside a private dir removed at the end.
    assert not (tmp_path / ".pytest_cache").exists()


@pytest.mark.slow
def test_a_crashing_test_is_reported_and_the_next_one_still_runs(tmp_path: Path) -> None:
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    runtime.command(pm.Assign(units=(_unit("m", "test_crash", "test_after_crash"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    crashed = [e for e in events if isinstance(e, pm.TestCrashed)]
    assert [(c.node_id, c.message) for c in crashed] == [
        ("test_suite.py::test_crash", "worker exited with code 3")
    ]
    calls = [(node_id, outcome) for node_id, when, outcome in ended_phases(events) if when == "call"]
    assert calls == [("test_suite.py::test_after_crash", "passed")]
    assert [e.unit_id for e in events if isinstance(e, pm.UnitFinished)] == ["m"]
    assert isinstance(events[-1], pm.AgentStopped) and events[-1].worker_restarts == 1


@pytest.mark.slow
def test_the_worker_its_process_started_early_runs_the_first_tests(tmp_path: Path) -> None:
    """agents/host.py starts the worker of an agent without a stack before it imports the
    runtime; the runtime takes that very process (it ran test_crash: its exit code is 3) and
    replaces it after the crash as it would its own."""
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    early = start_early(runtime.config)
    assert early is not None
    runtime = AgentRuntime(runtime.config, collector, early_worker=early)
    runtime.start()
    runtime.command(pm.Assign(units=(_unit("m", "test_crash", "test_after_crash"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert early.process.wait(10) == 3
    calls = [(node_id, outcome) for node_id, when, outcome in ended_phases(events) if when == "call"]
    assert calls == [("test_suite.py::test_after_crash", "passed")]
    assert isinstance(events[-1], pm.AgentStopped) and events[-1].worker_restarts == 1
    assert not Path(early.private_dir).exists()


def test_no_early_worker_with_a_stack_or_for_the_collection_agent(tmp_path: Path) -> None:
    base = pm.AgentConfig(agent_id=0, run_id="r", owner="o", cwd=str(tmp_path), pytest_args=())
    assert start_early(replace(base, stack_text="services: {}")) is None
    assert start_early(replace(base, collector=True)) is None


def test_an_early_worker_that_cannot_start_leaves_no_private_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its starters (agents/host.py, the local backend, the Ray actor) then leave the start to the
    runtime, which reports the failure: `start_early_or_later` says None."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    config = pm.AgentConfig(
        agent_id=0, run_id="r", owner="o", cwd=str(tmp_path), pytest_args=(), python="/no/such/python"
    )
    with pytest.raises(OSError):
        start_early(config)
    assert start_early_or_later(config) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_pytest_exit_in_a_test_stops_the_agent(tmp_path: Path) -> None:
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    runtime.command(pm.Assign(units=(_unit("m", "test_warns", "test_exit", "test_c"),)))
    runtime.command(pm.Flush())
    events = collector.rest(runtime)
    exited = [e for e in events if isinstance(e, pm.TestExited)]
    assert exited == [
        pm.TestExited(agent_id=3, node_id="test_suite.py::test_exit", message="enough", returncode=7)
    ]
    warnings = [e.warning for e in events if isinstance(e, pm.WarningRecorded)]
    assert [(w["message_str"], w["category_class_name"], w["nodeid"]) for w in warnings] == [
        ("careful", "UserWarning", "test_suite.py::test_warns")
    ]
    assert not [e for e in events if isinstance(e, pm.TestCrashed | pm.AgentFailed)]
    assert isinstance(events[-1], pm.AgentStopped)


class FakeResettingStack:
    """A stack with issue 14's snapshot/reset, without containers; reset fails for one unit."""

    resets = True

    def __init__(self) -> None:
        self.calls: list[str] = []

    def up(self) -> StackEndpoints:
        return StackEndpoints(env={"FAKE_DB": "x"})

    def snapshot(self) -> float:
        self.calls.append("snapshot")
        return 0.25

    def reset(self) -> float:
        self.calls.append("reset")
        if self.calls.count("reset") == 1:
            raise StackFailed("service 'db': reset failed: connection refused", service="db")
        return 0.125

    def check(self) -> None:
        pass

    def down(self) -> float:
        self.calls.append("down")
        return 0.0


@pytest.mark.slow
def test_stack_reset_between_units_and_a_failed_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = FakeResettingStack()
    monkeypatch.setattr(stack_side_module, "make_stack", lambda *args, **kwargs: stack)
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    runtime.command(
        pm.Assign(
            units=(
                _unit("u1", "test_c"),
                _unit("u2", "TestOne::test_a", "TestOne::test_b"),
                _unit("u3", "test_c2"),
            )
        )
    )
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert stack.calls == ["snapshot", "reset", "reset", "down"]
    resets = [(e.unit_id, e.error) for e in events if isinstance(e, pm.StackReset)]
    assert resets == [("u2", "service 'db': reset failed: connection refused"), ("u3", "")]
    outcomes = [
        (node_id.split("::")[-1], when, outcome)
        for node_id, when, outcome in ended_phases(events)
        if when != "teardown"
    ]
    # The unit whose reset failed: every test a setup error, none run; the next unit runs.
    assert outcomes == [
        ("test_c", "setup", "passed"),
        ("test_c", "call", "passed"),
        ("test_a", "setup", "failed"),
        ("test_b", "setup", "failed"),
        ("test_c2", "setup", "passed"),
        ("test_c2", "call", "passed"),
    ]
    assert [e.unit_id for e in events if isinstance(e, pm.UnitFinished)] == ["u1", "u2", "u3"]
    assert isinstance(events[-1], pm.AgentStopped)


@pytest.mark.slow
def test_a_hanging_test_times_out_and_the_next_one_runs_on_a_new_worker(tmp_path: Path) -> None:
    collector = Collector()
    runtime = _runtime(tmp_path, collector, timeout=1.0, pytest_args=("test_hang.py",))
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_hang():\n    time.sleep(60)\n\ndef test_ok():\n    pass\n"
    )
    runtime.start()
    units = (pm.UnitWork("h", ("test_hang.py::test_hang", "test_hang.py::test_ok")),)
    runtime.command(pm.Assign(units=units))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    timed_out = [e for e in events if isinstance(e, pm.TestTimedOut)]
    assert [(e.node_id, e.seconds) for e in timed_out] == [("test_hang.py::test_hang", 1.0)]
    calls = [(node_id, outcome) for node_id, when, outcome in ended_phases(events) if when == "call"]
    assert calls == [("test_hang.py::test_ok", "passed")]
    assert isinstance(events[-1], pm.AgentStopped) and events[-1].worker_restarts == 1
