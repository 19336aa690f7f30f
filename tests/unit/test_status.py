"""The status line: what it says for a run's state, as plain values."""

from __future__ import annotations

from orchestrator.report.status import RunStatus, SlowTest, duration_text, status_line


def test_the_line_holds_the_counts_the_phases_and_the_eta() -> None:
    status = RunStatus(
        elapsed=41.2,
        tests_done=120,
        tests_total=340,
        failed=2,
        eta_seconds=70.0,
        agents=(("running", 3), ("idle", 0), ("starting", 1)),
    )
    assert status_line(status) == (
        "orchestrate: status 120/340 tests, 2 failed, 0 errors, 41s elapsed, ETA 1m10s; agents: 3 running, 1 starting"
    )


def test_before_any_agent_is_ready_the_eta_is_unknown() -> None:
    line = status_line(RunStatus(elapsed=3.0, tests_done=0, tests_total=10, agents=(("starting", 2),)))
    assert "ETA unknown" in line and line.endswith("agents: 2 starting")


def test_slow_tests_are_named_slowest_first_with_their_agent() -> None:
    slow = tuple(SlowTest(f"t.py::test_{i}", i, 10.0 + i) for i in range(5))
    line = status_line(RunStatus(elapsed=60, tests_done=1, tests_total=9, eta_seconds=5, slow=slow))
    assert (
        "SLOW: t.py::test_4 (14s, agent 4), t.py::test_3 (13s, agent 3), t.py::test_2 (12s, agent 2) and 2 more"
        in line
    )


def test_durations_read_short() -> None:
    assert [duration_text(s) for s in (0.4, 59.6, 61, 3600 * 2 + 180)] == ["0s", "1m00s", "1m01s", "2h03m"]
