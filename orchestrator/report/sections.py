"""orchestrate's own sections of pytest's terminal summary: what only a distributed run has.

Called by the coordinator plugin's `pytest_terminal_summary`, so the sections come after
pytest's own FAILURES/ERRORS and before its short summary and closing counts line, which are
pytest's (the replayed reports made them). Written through pytest's TerminalReporter, so
colour, width and `-q` behave as in the rest of the report.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from orchestrator.model import AgentStatistics, Outcome, RunReport, TestResult
from orchestrator.report.outcomes import failure_text
from orchestrator.report.tables import agents_table_text

__all__ = ["write_sections"]

# How many of a crashed attempt's last lines (its message, then the worker's output) are shown.
CRASH_TAIL_LINES = 15
_WORDS = {Outcome.CRASHED: "CRASHED", Outcome.TIMEOUT: "TIMEOUT", Outcome.NOT_RUN: "NOT-RUN"}


def write_sections(terminal: Any, report: RunReport) -> None:
    """Crashed, timed-out and not-run tests, flaky tests, messages, then the agents table."""
    unfinished = [r for r in report.results if r.outcome in _WORDS]
    if unfinished:
        terminal.write_sep("=", "orchestrate: tests pytest did not finish", red=True)
        for result in unfinished:
            terminal.write_line(f"{_WORDS[result.outcome]} {result.node_id} - {_first_line(result)}")
    flaky = [r for r in report.results if len(r.attempts) > 1]
    if flaky:
        terminal.write_sep("=", "orchestrate: tests run more than once", yellow=True)
        for result in flaky:
            tries = ", ".join(f"{a.outcome.value} (agent {a.agent_id})" for a in result.attempts)
            terminal.write_line(("FLAKY " if result.flaky else "") + f"{result.node_id}: {tries}")
            for attempt in result.attempts[:-1]:
                if attempt.outcome is Outcome.CRASHED and attempt.message:
                    for line in crash_lines(attempt.message):
                        terminal.write_line(f"    {line}")
    if report.messages:
        terminal.write_sep("=", "orchestrate: messages")
        for message in report.messages:
            terminal.write_line(message)
    if not report.agents:
        return
    terminal.write_sep("=", "orchestrate: agents")
    width = getattr(getattr(terminal, "_tw", None), "fullwidth", 80)
    for line in agents_table_text(report, width).splitlines():
        terminal.write_line(line)
    if getattr(terminal, "verbosity", 0) > 0:
        # Each worker's own command line, the stack's pytest_args rendered in (issue 20).
        for agent in report.agents:
            if agent.worker_args:
                terminal.write_line(f"agent {agent.agent_id} worker: pytest {shlex.join(agent.worker_args)}")
    if report.plan:
        terminal.write_line(
            f"wall {report.wall_seconds:.1f}s; predicted {report.plan.get('predicted_makespan', 0.0):.1f}s, "
            f"lower bound {report.plan.get('lower_bound', 0.0):.1f}s"
            + (
                f"; re-estimated {report.plan['reestimated_makespan_at_half']:.1f}s at half of the tests"
                if "reestimated_makespan_at_half" in report.plan
                else ""
            )
        )
    cache_line = stack_cache_line(report.agents)
    if cache_line:
        terminal.write_line(cache_line)
    warm_line = warm_stacks_line(report.agents)
    if warm_line:
        terminal.write_line(warm_line)


def warm_stacks_line(agents: Sequence[AgentStatistics]) -> str:
    """What the warm stacks of `orchestrate up --stack` did this run, in one line ("" if none)."""
    uses = [agent.stack_warm for agent in agents if agent.stack_warm]
    if not uses:
        return ""
    borrowed = uses.count("borrowed")
    replaced = [use.removeprefix("replaced: ") for use in uses if use.startswith("replaced")]
    busy = uses.count("busy")
    parts = [f"{borrowed} borrowed (reset to their snapshot)"] if borrowed else []
    if replaced:
        parts.append(f"{len(replaced)} replaced ({replaced[0]})")
    if busy:
        parts.append(f"{busy} held by another run (those agents brought up their own)")
    return "warm stacks: " + ", ".join(parts)


def stack_cache_line(agents: Sequence[AgentStatistics]) -> str:
    """What the stacks' set-up state cache did this run, in one line ("" when no stack used it)."""
    uses = [agent for agent in agents if agent.stack_cache]
    if not uses:
        return ""
    misses = [agent for agent in uses if agent.stack_cache == "miss"]
    clones = len(uses) - len(misses)
    if misses:
        paid = sum(agent.setup_seconds for agent in misses)
        return (
            f"stack cache: miss; setup ran {len(misses)}x ({paid:.1f}s), committed and cloned "
            f"to {clones} other agent(s)"
        )
    saved = max(agent.setup_saved_seconds for agent in uses)
    return f"stack cache: hit on {clones} agent(s); setup skipped (it took {saved:.1f}s when cached)"


def crash_lines(message: str) -> list[str]:
    """Why an attempt crashed, as pytest shows a failure's captured output: the message's first
    line, faulthandler's fatal error line and the crashing thread's frames (innermost first), or
    else the last traceback, or else the worker's last lines; at most CRASH_TAIL_LINES of them."""
    first, *output = message.splitlines() or [""]

    def last(marker: str) -> int | None:
        found = [i for i, line in enumerate(output) if marker in line]
        return found[-1] if found else None

    fatal, current, traceback = last("Fatal Python error"), last("Current thread"), last("Traceback (most")
    if current is not None:
        head = [output[fatal].strip()] if fatal is not None else []
        return [first, *head, *output[current : current + CRASH_TAIL_LINES]]
    if traceback is not None:
        return [first, *output[traceback : traceback + CRASH_TAIL_LINES]]
    return [first, *output[-CRASH_TAIL_LINES:]]


def _first_line(result: TestResult) -> str:
    final = result.final
    if final is None:
        return ""
    if result.outcome is Outcome.NOT_RUN:
        return final.message.splitlines()[0] if final.message else ""
    return failure_text(result.outcome, final.message, final.duration).splitlines()[0]
