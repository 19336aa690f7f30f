"""A terminal: a real `orchestrate run` in a pseudo-terminal shows the live area below pytest's
lines, updates it, leaves pytest's progress and counts lines intact, and is gone at the end; a service late to be ready is named before its timeout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ORCHESTRATE, run_orchestrate, write_suite
from terminal import Screen, run_in_terminal

COLUMNS = 100
SUITE = {
    "test_slow.py": """
        import time

        class TestA:
            def test_0(self): time.sleep(0.4)
            def test_1(self): time.sleep(0.4)
            def test_2(self): time.sleep(0.4)

        class TestB:
            def test_0(self): time.sleep(0.4)
            def test_1(self): time.sleep(0.4)
            def test_2(self): time.sleep(0.4)
        """
}
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_HEADER = re.compile(r"orchestrate [━─]+ (\d+)/6 tests  \d+ failed  \d+ errors  \d+s elapsed  ETA")


def _run(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    write_suite(tmp_path, SUITE)
    args = [*ORCHESTRATE, "run", ".", "--agents", "2", "--backend", "local"]
    run = run_in_terminal(
        [*args, "--durations", str(tmp_path / "d.msgpack"), *extra], tmp_path, columns=COLUMNS, env=env
    )
    assert run.returncode == 0, run.output
    return run.output, Screen(COLUMNS).feed(run.output).text()


def _frames(output: str) -> list[list[str]]:
    """The screen each time the area had just been drawn (the cursor back on pytest's line)."""
    ends = [match.end() for match in re.finditer(r"\x1b\[\d+A\r(\x1b\[\d+C)?", output)]
    return [Screen(COLUMNS).feed(output[:end]).text() for end in ends]


def test_the_live_area_updates_below_pytest_s_lines_and_is_gone_at_the_end(tmp_path: Path) -> None:
    output, screen = _run(tmp_path)
    frames = _frames(output)
    # It appeared, and it changed as tests ended: several counts, the agents' phases.
    counts = {int(m.group(1)) for frame in frames for line in frame if (m := _HEADER.match(line))}
    assert len(counts) >= 3, counts
    shown = "\n".join(line for frame in frames for line in frame)
    assert re.search(r"agent [01]  running    test_slow\.py::Test[AB]  \d+s of ~", shown)
    assert re.search(r"agent [01]  starting   ", shown)
    # While it runs, pytest's progress line (or, before the first dot, our lines about the plan)
    # sits right above the area, dots only, never mixed.
    for frame in frames:
        header = next(i for i, line in enumerate(frame) if _HEADER.match(line))
        progress = frame[header - 1]
        assert progress.startswith("orchestrate: ") or re.fullmatch(r"\.{1,6}", progress), frame
    # At the end: pytest's own progress line and counts line, and nothing of the area.
    assert any(re.fullmatch(r"\.{6} +\[100%\]", line) for line in screen), screen
    assert re.fullmatch(r"=+ 6 passed in [\d.]+s =+", screen[-1]), screen
    assert not any(_HEADER.match(line) or line.startswith("  agent ") for line in screen), screen


def test_verbose_lines_stay_whole_and_no_color_is_honoured(tmp_path: Path) -> None:
    output, screen = _run(tmp_path, "-v", env={"NO_COLOR": "1"})
    assert len(_frames(output)) >= 3
    assert not _SGR.search(output), "NO_COLOR: no styles at all"
    verbose = [line for line in screen if " PASSED " in line]
    assert len(verbose) == 6
    assert all(
        re.fullmatch(r"test_slow\.py::Test[AB]::test_[012] PASSED +\[ *\d+%\]", line) for line in verbose
    )
    assert re.fullmatch(r"=+ 6 passed in [\d.]+s =+", screen[-1]), screen
    assert not any(_HEADER.match(line) for line in screen)


def test_off_in_a_terminal_leaves_pytest_alone(tmp_path: Path) -> None:
    output, screen = _run(tmp_path, "--live", "off", "--status-interval", "0")
    assert not _frames(output) and "\x1b[J" not in output
    assert any(re.fullmatch(r"\.{6} +\[100%\]", line) for line in screen)


LATE_STACK = """
services:
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    healthcheck: {disable: true}
    # Ready (listening) only after 5 s: past half of the ready timeout, within it.
    command: ["sh", "-c", "sleep 5; exec redis-server --bind 0.0.0.0 --protected-mode no"]
x-orchestrate:
  ready_timeout: 8
"""


@pytest.mark.docker
def test_a_late_service_is_named_before_its_ready_timeout(tmp_path: Path) -> None:
    write_suite(tmp_path, {"test_one.py": "def test_one(): pass\n", "stack.yml": LATE_STACK})
    run = run_orchestrate(
        ["run", ".", "--agents", "1", "--backend", "local", "--stack", "stack.yml", "--status-interval", "0"],
        tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    notices = [line for line in run.stdout.splitlines() if "not ready after" in line]
    assert len(notices) == 1, run.stdout
    assert re.fullmatch(
        r"orchestrate: agent 0: service 'cache' not ready after [45]s \(ready timeout 8s\)", notices[0]
    )
    assert "orchestrate: status" not in run.stdout
