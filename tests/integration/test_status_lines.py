"""CI logs: a real run prints `orchestrate: status ... ETA ...` lines at the interval asked for
(stdout is not a terminal: the live area stays off)."""

from __future__ import annotations

from pathlib import Path

from conftest import run_orchestrate, write_suite

SUITE = {
    "test_slow.py": """
        import time

        class TestA:
            def test_one(self): time.sleep(1.2)
            def test_two(self): time.sleep(1.2)

        class TestB:
            def test_one(self): time.sleep(1.2)
            def test_two(self): time.sleep(1.2)
        """
}


def _status_lines(tmp_path: Path, *extra: str) -> list[str]:
    write_suite(tmp_path, SUITE)
    run = run_orchestrate(
        ["run", ".", "--agents", "2", "--durations", str(tmp_path / "d.msgpack"), *extra], tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "\x1b[" not in run.stdout, "not a terminal: no live area (auto), no styles"
    return [line for line in run.stdout.splitlines() if "orchestrate: status" in line]


def test_status_lines_at_the_interval_with_the_eta(tmp_path: Path) -> None:
    lines = _status_lines(tmp_path, "--status-interval", "0.5")
    assert len(lines) >= 2, lines
    assert all("ETA" in line and "/4 tests" in line for line in lines)


def test_no_status_lines_when_turned_off_or_quiet(tmp_path: Path) -> None:
    assert _status_lines(tmp_path, "--status-interval", "0") == []
    assert _status_lines(tmp_path, "--status-interval", "0.5", "--", "-q") == []
