"""What a person sees of a run: live progress while it goes, pytest's summary at its end.

The CLI wraps the session's event loop in a LiveProgress and calls `render_summary` with the
merged RunReport. The summary follows pytest's layout and wording (FAILURES, ERRORS, short test
summary info, the closing counts line), so a CI log reads like pytest's own, and tracebacks are
pytest's text rebuilt from the workers' reports. It adds what only a distributed run has:
crashed, timed out and not-run tests, flaky tests, and a table of what each agent did.
Everything is plain text plus optional color, readable in a CI log without a terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType

from _pytest.reports import TestReport
from _pytest.terminal import format_session_duration
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from orchestrator.model import Outcome, RunReport, TestResult
from orchestrator.report.outcomes import failure_text, rebuild_report

__all__ = ["LiveProgress", "counts_line", "render_summary"]

# The closing line's order and words: pytest's own first, then ours.
_COUNT_ORDER: tuple[tuple[Outcome, str], ...] = (
    (Outcome.FAILED, "failed"),
    (Outcome.PASSED, "passed"),
    (Outcome.SKIPPED, "skipped"),
    (Outcome.XFAILED, "xfailed"),
    (Outcome.XPASSED, "xpassed"),
    (Outcome.ERROR, "error"),
    (Outcome.CRASHED, "crashed"),
    (Outcome.TIMEOUT, "timeout"),
    (Outcome.NOT_RUN, "not-run"),
)

# The short summary's words, pytest's where pytest has one.
_SUMMARY_WORD = {
    Outcome.FAILED: "FAILED",
    Outcome.ERROR: "ERROR",
    Outcome.CRASHED: "CRASHED",
    Outcome.TIMEOUT: "TIMEOUT",
    Outcome.NOT_RUN: "NOT-RUN",
    Outcome.SKIPPED: "SKIPPED",
    Outcome.XFAILED: "XFAIL",
    Outcome.XPASSED: "XPASS",
}
_ALWAYS_LISTED = (Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED, Outcome.TIMEOUT, Outcome.NOT_RUN)
_VERBOSE_LISTED = (Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED)


def render_summary(report: RunReport, console: Console, *, verbose: bool = False) -> None:
    """Print the end-of-run summary of `report` to `console`, the way pytest ends its output.

    `verbose` also lists skipped, xfailed and xpassed tests in the short summary (like -rsxX).
    """
    failures: list[tuple[str, TestReport]] = []
    errors: list[tuple[str, TestReport]] = []
    for result in report.results:
        for rebuilt in _final_reports(result):
            if not rebuilt.failed:
                continue
            if rebuilt.when == "call":
                failures.append((result.node_id, rebuilt))
            else:
                errors.append((result.node_id, rebuilt))
    unfinished = [r for r in report.results if r.outcome in (Outcome.CRASHED, Outcome.TIMEOUT)]

    if failures:
        _rule(console, "FAILURES", "=")
        for node_id, rebuilt in failures:
            _print_failure(console, node_id, rebuilt)
    if errors:
        _rule(console, "ERRORS", "=")
        for node_id, rebuilt in errors:
            _print_failure(console, f"ERROR at {rebuilt.when} of {node_id}", rebuilt)
    if unfinished:
        _rule(console, "CRASHES AND TIMEOUTS", "=")
        for result in unfinished:
            _print_unfinished(console, result)
    if report.agents:
        _print_agents(console, report)
    if report.messages:
        _rule(console, "messages", "=")
        for message in report.messages:
            _print_text(console, message)
    _print_short_summary(console, report, verbose)
    if report.interrupted:
        _rule(console, "Interrupted", "!")
    _closing_line(console, counts_line(report), _main_color(report))


def counts_line(report: RunReport) -> str:
    """pytest's closing line without the rule: "2 failed, 10 passed, 1 crashed in 4.21s"."""
    counts = report.counts()
    parts = []
    for outcome, word in _COUNT_ORDER:
        count = counts.get(outcome, 0)
        if not count:
            continue
        if outcome is Outcome.ERROR and count != 1:
            word = "errors"
        parts.append(f"{count} {word}")
    head = ", ".join(parts) if parts else "no tests ran"
    return f"{head} in {format_session_duration(report.wall_seconds)}"


def _main_color(report: RunReport) -> str:
    # pytest's choice: red on any failure, yellow when something is off, green otherwise.
    counts = report.counts()
    if any(outcome.is_failure for outcome in counts):
        return "red"
    if Outcome.XPASSED in counts or Outcome.NOT_RUN in counts or report.interrupted:
        return "yellow"
    return "green" if Outcome.PASSED in counts else "yellow"


def _closing_line(console: Console, line: str, color: str) -> None:
    # A rule cuts a title wider than the console; the counts must never be cut.
    if len(line) + 4 <= console.width:
        console.rule(Text(line, style=color), characters="=", style=color)
    else:
        console.print(Text(f"= {line} =", style=color), soft_wrap=True, highlight=False)


def _final_reports(result: TestResult) -> list[TestReport]:
    final = result.final
    return [rebuild_report(data) for data in final.reports] if final else []


def _rule(console: Console, title: str, characters: str, style: str = "") -> None:
    console.rule(Text(title, style=style), characters=characters, style=style or "rule.line")


def _print_text(console: Console, text: str) -> None:
    # soft_wrap: a traceback line stays one line in a log, whatever the console's width.
    console.print(Text(text), soft_wrap=True, highlight=False)


def _print_failure(console: Console, title: str, rebuilt: TestReport) -> None:
    """One entry of FAILURES or ERRORS: a rule, pytest's traceback text, the captured output."""
    _rule(console, title, "_", "red")
    _print_text(console, rebuilt.longreprtext)
    _print_sections(console, rebuilt.sections)


def _print_sections(console: Console, sections: Iterable[tuple[str, str]]) -> None:
    for heading, content in sections:
        _rule(console, heading, "-")
        _print_text(console, content.rstrip("\n"))


def _print_unfinished(console: Console, result: TestResult) -> None:
    final = result.final
    _rule(console, f"{_SUMMARY_WORD[result.outcome]} {result.node_id}", "_", "red")
    if final is None:
        return
    _print_text(console, failure_text(result.outcome, final.message, final.duration))
    # The worker died mid-test; what pytest captured before that is in its last report.
    rebuilt = [rebuild_report(data) for data in final.reports]
    if rebuilt:
        _print_sections(console, rebuilt[-1].sections)


def _print_agents(console: Console, report: RunReport) -> None:
    _rule(console, "agents", "=")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True, show_edge=False)
    table.add_column("agent", justify="right")
    table.add_column("host")
    # Short headings: the table must fit 80 columns (CI logs). busy = actual test time, to set
    # against the plan's prediction; wall = ready to the end of the run, so idle = wall - busy;
    # up and down are the stack's start-up (with set-up hooks) and teardown.
    for heading in ("tests", "busy s", "idle s", "plan s", "wall s", "up s", "down s"):
        table.add_column(heading, justify="right")
    table.add_column("restarts", justify="right")
    for agent in sorted(report.agents, key=lambda a: a.agent_id):
        table.add_row(
            str(agent.agent_id),
            Text(agent.host),
            str(agent.tests),
            f"{agent.busy_seconds:.1f}",
            f"{agent.idle_seconds:.1f}",
            f"{agent.predicted_seconds:.1f}",
            f"{agent.wall_seconds:.1f}",
            f"{agent.stack_up_seconds:.1f}",
            f"{agent.stack_down_seconds:.1f}",
            str(agent.worker_restarts),
        )
    console.print(table)
    for agent in report.agents:
        if agent.error:
            # The first line only: the whole message, logs included, is under "messages".
            _print_text(console, f"agent {agent.agent_id}: {agent.error.splitlines()[0]}")


def _print_short_summary(console: Console, report: RunReport, verbose: bool) -> None:
    listed = _ALWAYS_LISTED + (_VERBOSE_LISTED if verbose else ())
    lines: list[Text] = []
    for outcome in listed:
        for result in report.results:
            if result.outcome is outcome:
                lines.append(_summary_line(_SUMMARY_WORD[outcome], result.node_id, _summary_message(result)))
    for result in report.results:
        if result.flaky:
            lines.append(_summary_line("FLAKY", result.node_id, _flaky_message(result)))
    if not lines:
        return
    _rule(console, "short test summary info", "=")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)


def _summary_line(word: str, node_id: str, message: str) -> Text:
    style = "red" if word in ("FAILED", "ERROR", "CRASHED", "TIMEOUT") else "yellow"
    line = Text.assemble((word, style), " ", node_id)
    if message:
        line.append(f" - {message}")
    return line


def _summary_message(result: TestResult) -> str:
    """The first line of what went wrong (pytest's reprcrash message), or of our own message."""
    final = result.final
    if final is None:
        return ""
    if result.outcome in (Outcome.CRASHED, Outcome.TIMEOUT):
        return failure_text(result.outcome, final.message, final.duration).splitlines()[0]
    for rebuilt in _final_reports(result):
        if rebuilt.failed or rebuilt.skipped or hasattr(rebuilt, "wasxfail"):
            return _first_line(rebuilt)
    return final.message.splitlines()[0] if final.message else ""


def _first_line(rebuilt: TestReport) -> str:
    if hasattr(rebuilt, "wasxfail") and not rebuilt.failed:
        return str(rebuilt.wasxfail)
    reprcrash = getattr(rebuilt.longrepr, "reprcrash", None)
    if reprcrash is not None:
        return str(reprcrash.message).splitlines()[0] if reprcrash.message else ""
    if isinstance(rebuilt.longrepr, tuple):  # a skip: (path, line, reason)
        return str(rebuilt.longrepr[2]).removeprefix("Skipped: ")
    return (rebuilt.longreprtext.splitlines() or [""])[0]


def _flaky_message(result: TestResult) -> str:
    failed = [a for a in result.attempts[:-1] if a.outcome.is_failure]
    return f"passed on attempt {len(result.attempts)} after {len(failed)} failed"


class LiveProgress:
    """Shows, while a run goes, tests done of all and one line per agent; nothing off a terminal.

    The CLI enters it around the session's event loop; the session calls the `on_*` handlers
    from its own thread while rich redraws from another, hence the lock. On a console that is
    not a terminal (a CI log) it prints nothing at all: the summary says everything at the end.
    """

    def __init__(self, console: Console, total: int, agent_ids: Iterable[int] = ()) -> None:
        self._console = console
        self._total = total
        self._lock = threading.Lock()
        self._done = 0
        self._failed = 0
        self._done_by_agent: dict[int, int] = {agent_id: 0 for agent_id in agent_ids}
        self._current_by_agent: dict[int, str] = {}
        self._state_by_agent: dict[int, str] = {}
        self._live: Live | None = None

    @property
    def enabled(self) -> bool:
        """Whether anything is drawn: only on a terminal."""
        return self._console.is_terminal

    def __enter__(self) -> LiveProgress:
        if self.enabled:
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, traceback)
            self._live = None

    def on_test_started(self, agent_id: int, node_id: str) -> None:
        """An agent's worker started `node_id`."""
        with self._lock:
            self._done_by_agent.setdefault(agent_id, 0)
            self._current_by_agent[agent_id] = node_id

    def on_test_finished(self, agent_id: int, outcome: Outcome) -> None:
        """A test of `agent_id` got its final outcome."""
        with self._lock:
            self._done += 1
            self._failed += outcome.is_failure
            self._done_by_agent[agent_id] = self._done_by_agent.get(agent_id, 0) + 1
            self._current_by_agent.pop(agent_id, None)

    def on_agent_state(self, agent_id: int, text: str) -> None:
        """What an agent is doing besides tests ("stack up", "stopped", "failed: ...")."""
        with self._lock:
            self._done_by_agent.setdefault(agent_id, 0)
            self._state_by_agent[agent_id] = text

    def __rich__(self) -> RenderableType:
        """The current frame; rich's Live calls this on every refresh."""
        with self._lock:
            header = Table.grid(padding=(0, 1))
            header.add_row(
                ProgressBar(total=max(self._total, 1), completed=self._done, width=40),
                Text(f"{self._done}/{self._total} tests"),
                Text(f"{self._failed} failed", style="red") if self._failed else Text(""),
            )
            agents = Table.grid(padding=(0, 2))
            for agent_id in sorted(self._done_by_agent):
                agents.add_row(
                    Text(f"agent {agent_id}"),
                    Text(self._state_by_agent.get(agent_id, ""), style="dim"),
                    Text(f"{self._done_by_agent[agent_id]} done"),
                    Text(self._current_by_agent.get(agent_id, ""), overflow="ellipsis", no_wrap=True),
                )
            return Group(header, agents)
