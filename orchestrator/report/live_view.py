"""What the live status area shows for a RunStatus: lines of styled text, as plain values.

Pure, with no terminal and no rich: `view_lines(status)` is the whole model of the area, so
what it shows for a sequence of events is unit-tested on values (tests/unit/test_live_view.py);
orchestrator/report/live.py only renders these lines (styles through rich) and keeps them at
the bottom of the terminal.

    orchestrate ━━━━━━━━━━━━╺─────────────── 12/40 tests  1 failed  0 errors  14s elapsed  ETA 21s
      agent 0  running    test_orders.py::TestOrders  4s of ~6s  test_orders.py::TestOrders::test_pay
      agent 1  starting   waiting for db (ready: cache)  3s
      agent 2  failed     service 'db': not ready after 60 s
      SLOW     test_reports.py::TestReports::test_month  34s on agent 3

With more agents than `max_agent_rows` (a cluster), one line per group of agents instead:

      running   52  longest: agent 7 on test_orders.py::TestOrders 40s of ~12s
      starting  10  waiting for db 6, running the stack's setup 4
"""

from __future__ import annotations

from collections import Counter

from orchestrator.report.status import GROUPS, AgentStatus, RunStatus, duration_text, starting_text

__all__ = ["BAR_WIDTH", "MAX_AGENT_ROWS", "Segment", "ViewLine", "plain", "view_lines"]

# (text, rich style): a piece of a line; a line is a tuple of them.
Segment = tuple[str, str]
ViewLine = tuple[Segment, ...]

BAR_WIDTH = 24
# More agents than this: one line per group of agents, not one per agent.
MAX_AGENT_ROWS = 8
_SLOW_SHOWN = 3
_GROUP_STYLE = {
    "running": "green",
    "idle": "dim",
    "starting": "cyan",
    "stopping": "dim",
    "failed": "bold red",
    "stopped": "dim",
}


def plain(line: ViewLine) -> str:
    """The line's text without its styles."""
    return "".join(text for text, _ in line)


def view_lines(status: RunStatus, max_agent_rows: int = MAX_AGENT_ROWS) -> tuple[ViewLine, ...]:
    """The area for `status`: a header, the agents (one each, or one per group), slow tests."""
    lines = [_header(status)]
    if len(status.agents) <= max_agent_rows:
        lines.extend(_agent_line(agent) for agent in status.agents)
    else:
        lines.extend(_group_lines(status.agents))
    slowest = sorted(status.slow, key=lambda s: -s.seconds)
    for slow in slowest[:_SLOW_SHOWN]:
        lines.append(
            (
                ("  SLOW     ", "bold yellow"),
                (slow.node_id, "yellow"),
                (f"  {duration_text(slow.seconds)} on agent {slow.agent_id}", ""),
            )
        )
    if len(slowest) > _SLOW_SHOWN:
        lines.append((("  SLOW     ", "bold yellow"), (f"and {len(slowest) - _SLOW_SHOWN} more", "")))
    return tuple(lines)


def _header(status: RunStatus) -> ViewLine:
    total = max(1, status.tests_total)
    filled = min(BAR_WIDTH, int(BAR_WIDTH * status.tests_done / total))
    bad = status.failed or status.errors
    eta = "unknown" if status.eta_seconds is None else duration_text(status.eta_seconds)
    return (
        ("orchestrate ", "bold"),
        ("━" * filled, "red" if bad else "green"),
        ("─" * (BAR_WIDTH - filled), "dim"),
        (f" {status.tests_done}/{status.tests_total} tests  ", "bold"),
        (f"{status.failed} failed", "bold red" if status.failed else ""),
        ("  ", ""),
        (f"{status.errors} errors", "bold red" if status.errors else ""),
        (f"  {duration_text(status.elapsed)} elapsed  ", ""),
        (f"ETA {eta}", "bold"),
    )


def _agent_line(agent: AgentStatus) -> ViewLine:
    head: ViewLine = (
        (f"  agent {agent.agent_id:<2} ", ""),
        (f"{_phase_word(agent):<10} ", _GROUP_STYLE.get(agent.group, "")),
    )
    return head + _agent_detail(agent)


def _phase_word(agent: AgentStatus) -> str:
    if agent.phase in ("services", "setup", "snapshot", "worker"):
        return "starting"
    return agent.phase


def _agent_detail(agent: AgentStatus) -> ViewLine:
    if agent.phase == "running":
        estimate = f" of ~{_estimate_text(agent.estimate)}" if agent.estimate is not None else ""
        over = agent.estimate is not None and agent.seconds > 2 * agent.estimate
        return (
            (agent.unit, "bold"),
            (f"  {duration_text(agent.seconds)}{estimate}", "yellow" if over else ""),
            (f"  {agent.test}", "dim"),
        )
    if agent.phase == "failed":
        return ((agent.reason.splitlines()[0] if agent.reason else "", "red"),)
    if agent.phase in ("idle", "stopping", "stopped"):
        return ()
    if agent.phase == "resetting":
        return (("resetting its stack", ""), (f"  {duration_text(agent.seconds)}", ""))
    late = agent.late
    return (
        (starting_text(agent), "bold yellow" if late else ""),
        (f"  {duration_text(agent.seconds)}", "bold yellow" if late else ""),
        (f" (ready timeout {agent.timeout:g}s)" if late else "", "yellow"),
    )


def _estimate_text(seconds: float) -> str:
    """An estimate, to a tenth of a second below 10 s (a unit of short tests is not "~0s")."""
    return f"{seconds:.1f}s" if seconds < 10 else duration_text(seconds)


def _group_lines(agents: tuple[AgentStatus, ...]) -> list[ViewLine]:
    """One line per group of agents with a count, and what matters most in that group."""
    lines: list[ViewLine] = []
    for group in GROUPS:
        members = [a for a in agents if a.group == group]
        if not members:
            continue
        head: ViewLine = ((f"  {group:<9} ", _GROUP_STYLE[group]), (f"{len(members):>3}  ", "bold"))
        lines.append(head + _group_detail(group, members))
    return lines


def _group_detail(group: str, members: list[AgentStatus]) -> ViewLine:
    if group == "running":
        longest = max(members, key=lambda a: a.seconds)
        estimate = f" of ~{_estimate_text(longest.estimate)}" if longest.estimate is not None else ""
        return (
            (
                f"longest: agent {longest.agent_id} on {longest.unit} {duration_text(longest.seconds)}{estimate}",
                "",
            ),
        )
    if group == "starting":
        waits = Counter(starting_text(a) for a in members)
        late = [a for a in members if a.late]
        text = ", ".join(f"{what} {count}" for what, count in waits.most_common(3))
        if late:
            return (
                (text, ""),
                (f"  late: {', '.join(f'agent {a.agent_id}' for a in late[:4])}", "bold yellow"),
            )
        return ((text, ""),)
    if group == "failed":
        shown = "; ".join(
            f"agent {a.agent_id}: {a.reason.splitlines()[0] if a.reason else ''}" for a in members[:2]
        )
        return ((shown + (f"; and {len(members) - 2} more" if len(members) > 2 else ""), "red"),)
    return ()
