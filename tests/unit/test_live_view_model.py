"""The live view's model: what the area shows for a sequence of agents' events, as plain values.

A session runs against agents that say exactly what a script says, one batch per wait, on a
fake clock; a recording display keeps the view's lines after every batch. No terminal, no
rich, no process: the terminal's side (orchestrator/report/live.py) is proven by a real run in
a pseudo-terminal (tests/integration/test_live_view.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.model import Attempt, TestResult, TestUnit, UnitEstimate
from orchestrator.planning.scheduling import make_scheduler, plan_lpt
from orchestrator.protocol import messages as p
from orchestrator.protocol.reports import pack_test_reports
from orchestrator.report.live_view import plain, view_lines
from orchestrator.report.status import AgentStatus, RunStatus, SlowTest
from orchestrator.run.loop import run_session
from orchestrator.run.session import Session

A = TestUnit("t.py::A", ("t.py::A::one", "t.py::A::two"))
B = TestUnit("t.py::B", ("t.py::B::one",))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StepBackend:
    """Agents that say what `steps` says: each wait returns the next batch at its clock time."""

    def __init__(self, clock: Clock, steps: Sequence[tuple[float, list[p.Event]]]) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.assigned: list[tuple[int, str]] = []
        self.stopping: list[p.Event] = []

    def start(self, configs: Sequence[p.AgentConfig]) -> None:
        pass

    def send(self, agent_id: int, command: p.Command) -> None:
        if isinstance(command, p.Assign):
            self.assigned += [(agent_id, unit.unit_id) for unit in command.units]
        elif isinstance(command, p.Finish | p.Abort):
            self.stopping.append(p.AgentStopped(agent_id))

    def wait_events(self, timeout: float) -> list[p.Event]:
        if self.steps:
            self.clock.now, events = self.steps.pop(0)
            return events
        # An agent told to stop says so one wait later (its stack takes a while to come down).
        self.clock.now += 1.0
        events, self.stopping = self.stopping, []
        self.steps.append((self.clock.now, events))
        return []

    def shutdown(self) -> None:
        pass


class NullSink:
    def test_started(self, agent_id: int, node_id: str) -> None:
        pass

    def test_finished(self, result: TestResult, replay: bool) -> None:
        pass

    def attempt_retried(self, node_id: str, attempt: Attempt) -> None:
        pass

    def warning(self, agent_id: int, warning: dict) -> None:
        pass

    def agent_state(self, agent_id: int, text: str) -> None:
        pass

    def stop_requested(self) -> str:
        return ""


class RecordingDisplay:
    """Keeps the view's plain lines after every batch, and the notices."""

    def __init__(self) -> None:
        self.screens: list[list[str]] = []
        self.notices: list[str] = []

    def wake_at(self) -> float:
        return float("inf")

    def update(self, now: float, changed: bool, status: Callable[[], RunStatus]) -> None:
        self.screens.append([plain(line) for line in view_lines(status())])

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def close(self) -> None:
        pass


def _ended(agent_id: int, node_id: str, outcome: str = "passed") -> p.TestEnded:
    reports = [
        {"nodeid": node_id, "when": "setup", "outcome": "passed", "duration": 0.0},
        {"nodeid": node_id, "when": "call", "outcome": outcome, "duration": 1.0},
        {"nodeid": node_id, "when": "teardown", "outcome": "passed", "duration": 0.0},
    ]
    return p.TestEnded(agent_id, node_id=node_id, reports=pack_test_reports(None, {}, reports), seconds=1.0)


def _run(steps: Sequence[tuple[float, list[p.Event]]]) -> RecordingDisplay:
    clock = Clock()
    plan = plan_lpt([UnitEstimate(A, 4.0), UnitEstimate(B, 2.0)], 2)
    configs = [p.AgentConfig(i, "run", "owner", ".") for i in range(2)]
    display = RecordingDisplay()
    backend = StepBackend(clock, steps)
    session = Session((A, B), make_scheduler("dynamic", plan), configs, NullSink(), clock=clock)
    run_session(session, backend, display=display)
    return display


SERVICES = ("db", "cache")


def test_the_view_follows_each_agent_from_its_stack_to_its_tests_and_its_end() -> None:
    display = _run(
        [
            (0.5, [p.AgentPhase(0, phase="services", waiting=SERVICES, timeout=60.0)]),
            (2.0, [p.AgentPhase(0, phase="services", ready=("cache",), waiting=("db",), timeout=60.0)]),
            (2.5, [p.AgentPhase(1, phase="setup")]),
            (3.0, [p.AgentPhase(0, phase="snapshot"), p.StackReady(1)]),
            (3.5, [p.StackReady(0), p.AgentReady(1)]),
            (4.0, [p.AgentReady(0)]),
            (5.0, [_ended(1, "t.py::B::one"), p.UnitFinished(1, unit_id="t.py::B")]),
            (6.0, [_ended(0, "t.py::A::one", "failed")]),
            (7.0, [p.AgentFailed(1, message="stack failed mid-run: service 'db' died\nits last log lines")]),
            (8.5, [_ended(0, "t.py::A::two"), p.UnitFinished(0, unit_id="t.py::A")]),
        ]
    )
    screens = display.screens
    assert screens[0] == [
        "orchestrate ──────────────────────── 0/3 tests  0 failed  0 errors  0s elapsed  ETA unknown",
        "  agent 0  starting   waiting for db, cache  0s",
        "  agent 1  starting   starting  0s",
    ]
    # The services' wait is timed from its start, as each service becomes ready.
    assert screens[1][1] == "  agent 0  starting   waiting for db (ready: cache)  2s"
    assert screens[2][2] == "  agent 1  starting   running the stack's setup  0s"
    assert screens[3][1:] == [
        "  agent 0  starting   taking the stack's snapshot  0s",
        "  agent 1  starting   starting its pytest worker  0s",
    ]
    # Agent 1 is ready first; it is given its unit of the plan once the loop dispatches.
    assert screens[4] == [
        "orchestrate ──────────────────────── 0/3 tests  0 failed  0 errors  4s elapsed  ETA 3s",
        "  agent 0  starting   starting its pytest worker  0s",
        "  agent 1  idle       ",
    ]
    assert screens[5][1:] == [
        "  agent 0  idle       ",
        "  agent 1  running    t.py::B  0s of ~2.0s  t.py::B::one",
    ]
    assert screens[6] == [
        "orchestrate ━━━━━━━━──────────────── 1/3 tests  0 failed  0 errors  5s elapsed  ETA 3s",
        "  agent 0  running    t.py::A  1s of ~4.0s  t.py::A::one",
        "  agent 1  idle       ",
    ]
    assert screens[7][:2] == [
        "orchestrate ━━━━━━━━━━━━━━━━──────── 2/3 tests  1 failed  0 errors  6s elapsed  ETA 2s",
        "  agent 0  running    t.py::A  1s of ~4.0s  t.py::A::two",
    ]
    assert screens[8][2] == "  agent 1  failed     stack failed mid-run: service 'db' died"
    # Every test ended: the agents are told to finish, and the view says so until they stopped.
    assert screens[9][0].startswith("orchestrate ━━━━━━━━━━━━━━━━━━━━━━━━ 3/3 tests  1 failed  0 errors")
    assert screens[-2][1] == "  agent 0  stopping   "
    assert screens[-1][1:] == [
        "  agent 0  stopped    ",
        "  agent 1  failed     stack failed mid-run: service 'db' died",
    ]
    assert display.notices == []


def test_a_service_not_ready_after_half_its_ready_timeout_is_named_once_before_the_timeout() -> None:
    display = _run(
        [
            (0.5, [p.AgentPhase(0, phase="services", waiting=SERVICES, timeout=20.0)]),
            (1.0, [p.AgentPhase(0, phase="services", ready=("cache",), waiting=("db",), timeout=20.0)]),
            (1.0, [p.AgentReady(1)]),
            (11.5, []),
            (12.0, []),
            (
                15.0,
                [_ended(1, "t.py::A::one"), _ended(1, "t.py::A::two"), p.UnitFinished(1, unit_id="t.py::A")],
            ),
            (16.0, [_ended(1, "t.py::B::one"), p.UnitFinished(1, unit_id="t.py::B")]),
        ]
    )
    assert display.notices == ["orchestrate: agent 0: service 'db' not ready after 11s (ready timeout 20s)"]
    assert (
        display.screens[3][1]
        == "  agent 0  starting   waiting for db (ready: cache)  11s (ready timeout 20s)"
    )


def test_many_agents_shrink_to_a_line_per_group() -> None:
    agents = (
        *(
            AgentStatus(i, "running", 5.0 + i, unit=f"t.py::U{i}", test=f"t.py::U{i}::x", estimate=3.0)
            for i in range(50)
        ),
        *(AgentStatus(50 + i, "services", 8.0, waiting=("db",), timeout=60.0) for i in range(6)),
        *(AgentStatus(56 + i, "setup", 2.0) for i in range(4)),
        AgentStatus(60, "idle"),
        AgentStatus(61, "failed", reason="service 'db': not ready after 60 s"),
        AgentStatus(62, "failed", reason="worker keeps dying"),
        AgentStatus(63, "failed", reason="agent lost"),
    )
    status = RunStatus(
        elapsed=75.0,
        tests_done=900,
        tests_total=3000,
        failed=3,
        eta_seconds=140.0,
        agents=agents,
        slow=(SlowTest("t.py::U7::x", 7, 31.0),),
    )
    assert [plain(line) for line in view_lines(status)] == [
        "orchestrate ━━━━━━━───────────────── 900/3000 tests  3 failed  0 errors  1m15s elapsed  ETA 2m20s",
        "  running    50  longest: agent 49 on t.py::U49 54s of ~3.0s",
        "  idle        1  ",
        "  starting   10  waiting for db 6, running the stack's setup 4",
        "  failed      3  agent 61: service 'db': not ready after 60 s; agent 62: worker keeps dying; and 1 more",
        "  SLOW     t.py::U7::x  31s on agent 7",
    ]
