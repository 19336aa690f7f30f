"""The status line: what it says for a run's state, as plain values."""

from __future__ import annotations

from orchestrator.report.status import (
    AgentStatus,
    RunStatus,
    SlowTest,
    StatusLines,
    duration_text,
    late_service_notice,
    status_line,
)


def _agents(**phases: int) -> tuple[AgentStatus, ...]:
    agents: list[AgentStatus] = []
    for phase, count in phases.items():
        agents += [AgentStatus(len(agents), phase) for _ in range(count)]
    return tuple(agents)


def test_the_line_holds_the_counts_the_phases_and_the_eta() -> None:
    status = RunStatus(
        elapsed=41.2,
        tests_done=120,
        tests_total=340,
        failed=2,
        eta_seconds=70.0,
        agents=(*_agents(running=2, resetting=1), AgentStatus(3, "setup", 4.0)),
    )
    assert status_line(status) == (
        "orchestrate: status 120/340 tests, 2 failed, 0 errors, 41s elapsed, ETA 1m10s; agents: 3 running, "
        "1 starting; starting: agent 3 running the stack's setup (4s)"
    )


def test_before_any_agent_is_ready_the_eta_is_unknown_and_the_line_says_what_each_waits_for() -> None:
    agents = (
        AgentStatus(0, "services", 3.0, ready=("cache",), waiting=("db",), timeout=60.0),
        AgentStatus(1, "starting", 3.0),
        AgentStatus(2, "worker", 1.0),
        AgentStatus(3, "snapshot", 1.0),
    )
    line = status_line(RunStatus(elapsed=3.0, tests_done=0, tests_total=10, agents=agents))
    assert "ETA unknown" in line
    assert line.endswith(
        "agents: 4 starting; starting: agent 0 waiting for db (ready: cache) (3s), agent 1 starting (3s), "
        "agent 2 starting its pytest worker (1s) and 1 more"
    )


def test_a_service_is_late_after_half_its_ready_timeout() -> None:
    waiting = AgentStatus(2, "services", 29.0, ready=("cache",), waiting=("db",), timeout=60.0)
    assert not waiting.late
    late = AgentStatus(2, "services", 31.0, ready=("cache",), waiting=("db",), timeout=60.0)
    assert late.late
    assert (
        late_service_notice(late)
        == "orchestrate: agent 2: service 'db' not ready after 31s (ready timeout 60s)"
    )
    assert not AgentStatus(2, "services", 31.0, ready=("db",), timeout=60.0).late


def test_slow_tests_are_named_slowest_first_with_their_agent() -> None:
    slow = tuple(SlowTest(f"t.py::test_{i}", i, 10.0 + i) for i in range(5))
    line = status_line(RunStatus(elapsed=60, tests_done=1, tests_total=9, eta_seconds=5, slow=slow))
    assert (
        "SLOW: t.py::test_4 (14s, agent 4), t.py::test_3 (13s, agent 3), t.py::test_2 (12s, agent 2) and 2 more"
        in line
    )


def test_the_lines_come_at_their_interval_and_notices_at_once() -> None:
    written: list[str] = []
    lines = StatusLines(written.append, interval=30.0, now=100.0)
    status = RunStatus(elapsed=1.0, tests_done=0, tests_total=3)
    assert lines.wake_at() == 130.0
    lines.update(110.0, True, lambda: status)
    assert written == []
    lines.notice("orchestrate: agent 0: service 'db' not ready after 30s (ready timeout 60s)")
    lines.update(130.0, False, lambda: status)
    assert len(written) == 2 and written[1].startswith("orchestrate: status 0/3 tests")
    assert lines.wake_at() == 160.0
    # 0: no periodic line, but the notices still.
    quiet = StatusLines(written.append, interval=0.0, now=100.0)
    quiet.update(1e9, True, lambda: status)
    assert quiet.wake_at() == float("inf") and len(written) == 2


def test_durations_read_short() -> None:
    assert [duration_text(s) for s in (0.4, 59.6, 61, 3600 * 2 + 180)] == ["0s", "1m00s", "1m01s", "2h03m"]
