"""The live area's terminal side: pytest's lines stay intact around it, and it leaves no trace.

pytest's own TerminalWriter writes to a buffer; what reaches it is replayed on a terminal
emulator (tests/terminal.py). The run in a real pseudo-terminal is tests/integration/test_live_view.py.
"""

from __future__ import annotations

import io

from _pytest._io.terminalwriter import TerminalWriter
from terminal import Screen

from orchestrator.report.live import REDRAW_SECONDS, RENDER_SECONDS, TICK_SECONDS, LiveArea
from orchestrator.report.status import AgentStatus, RunStatus

WIDTH = 60


def _writer(markup: bool = False) -> tuple[TerminalWriter, io.StringIO]:
    buffer = io.StringIO()
    writer = TerminalWriter(buffer)
    writer.fullwidth = WIDTH
    writer.hasmarkup = markup
    return writer, buffer


def _status(done: int) -> RunStatus:
    return RunStatus(
        elapsed=float(done),
        tests_done=done,
        tests_total=4,
        eta_seconds=4.0 - done,
        agents=(AgentStatus(0, "running", 1.0, unit="t.py::A", test="t.py::A::x", estimate=2.0),),
    )


def _screen(buffer: io.StringIO) -> list[str]:
    """The screen, as a terminal's line discipline would pass the text on (LF as CR LF)."""
    return Screen(WIDTH).feed(buffer.getvalue().replace("\n", "\r\n")).text()


def test_the_area_stays_below_the_progress_dots_and_goes_at_the_end() -> None:
    writer, buffer = _writer()
    writer.line("collected 4 items")
    area = LiveArea(writer, now=0.0, height=lambda: 24)
    area.update(0.0, True, lambda: _status(0))
    assert _screen(buffer) == [
        "collected 4 items",
        "orchestrate ──────────────────────── 0/4 tests  0 failed  …",
        "  agent 0  running    t.py::A  1s of ~2.0s  t.py::A::x",
    ]
    now = 0.0
    for done in range(1, 5):
        writer.write("t.py " if done == 1 else "")
        writer.write(".")
        now += RENDER_SECONDS
        area.update(now, True, lambda done=done: _status(done))
    lines = _screen(buffer)
    assert lines[1] == "t.py ...."
    assert lines[2].startswith("orchestrate ━━━━━━━━━━━━━━━━━━━━━━━━ 4/4 tests")
    # pytest goes on writing where it stopped, as if the area had never been there.
    writer.write(" [100%]")
    writer.line()
    area.close()
    writer.line("== 4 passed in 1.00s ==")
    assert _screen(buffer) == ["collected 4 items", "t.py .... [100%]", "== 4 passed in 1.00s =="]


def test_verbose_lines_scroll_above_the_area() -> None:
    writer, buffer = _writer()
    area = LiveArea(writer, now=0.0, height=lambda: 24)
    area.update(0.0, True, lambda: _status(0))
    for done, name in enumerate(("a", "b"), start=1):
        writer.write(f"t.py::A::{name} ")
        writer.write("PASSED")
        writer.line()
        area.update(done * TICK_SECONDS, True, lambda done=done: _status(done))
    lines = _screen(buffer)
    assert lines[:2] == ["t.py::A::a PASSED", "t.py::A::b PASSED"]
    assert lines[2].startswith("orchestrate ━━━━━━━━━━━━") and len(lines) == 4
    area.close()
    assert _screen(buffer) == ["t.py::A::a PASSED", "t.py::A::b PASSED"]


def test_redraws_are_rate_limited_and_the_clock_ticks_for_elapsed_time() -> None:
    writer, buffer = _writer()
    area = LiveArea(writer, now=0.0, height=lambda: 24)
    built: list[int] = []

    def status() -> RunStatus:
        built.append(1)
        return _status(0)

    area.update(0.0, True, status)
    area.update(0.1, True, status)  # too soon to build the status again
    assert len(built) == 1 and area.wake_at() == TICK_SECONDS
    writer.write(".")  # pytest's write erases the area; it comes back from the lines drawn last
    assert area.wake_at() == REDRAW_SECONDS
    area.update(0.2, True, status)
    assert len(built) == 1 and "orchestrate" in _screen(buffer)[1]
    area.update(0.4, True, status)
    area.update(1.5, False, status)
    assert len(built) == 3
    area.close()
    assert _screen(buffer) == ["."]


def test_styles_follow_pytest_s_markup_setting() -> None:
    writer, buffer = _writer(markup=True)
    area = LiveArea(writer, now=0.0, height=lambda: 24)
    area.update(0.0, True, lambda: _status(0))
    assert "\x1b[32m" in buffer.getvalue()  # green: the running agent
    plain_writer, plain_buffer = _writer(markup=False)
    plain_area = LiveArea(plain_writer, now=0.0, height=lambda: 24)
    plain_area.update(0.0, True, lambda: _status(0))
    assert "\x1b[3" not in plain_buffer.getvalue() and "\x1b[1m" not in plain_buffer.getvalue()
    area.close()
    plain_area.close()


def test_the_area_never_takes_more_than_the_terminal_has() -> None:
    writer, buffer = _writer()
    status = RunStatus(
        elapsed=1.0, tests_done=0, tests_total=4, agents=tuple(AgentStatus(i, "idle") for i in range(8))
    )
    area = LiveArea(writer, now=0.0, height=lambda: 6)
    area.update(0.0, True, lambda: status)
    assert len(_screen(buffer)) == 4
    area.close()
    assert _screen(buffer) == []
