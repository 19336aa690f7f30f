"""The run's status while it runs, as a value; its one-line form for CI logs; its displays.

The session builds a `RunStatus` from what it owns (the ledger's outcomes so far, the agents'
records, the live re-estimate of the remaining work) when a display asks for it; rendering it
is pure, so what a line or the live view says for a sequence of events is unit-tested without
a run. A display is a consumer of the session's loop (`StatusDisplay`): the CI lines here, the
live terminal area in orchestrator/report/live.py.

    orchestrate: status 120/340 tests, 2 failed, 0 errors, 41s elapsed, ETA 1m10s; agents: 3 running, 1 starting
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_STATUS_INTERVAL",
    "GROUPS",
    "SLOW_MIN_SECONDS",
    "AgentStatus",
    "RunStatus",
    "SlowTest",
    "StatusDisplay",
    "StatusLines",
    "duration_text",
    "late_service_notice",
    "starting_text",
    "status_line",
]

DEFAULT_STATUS_INTERVAL = 30.0
# A test is named as slow once it runs twice its recorded duration, and at least this long.
SLOW_MIN_SECONDS = 10.0
# The groups an agent's phase falls in, in the order the status counts them.
GROUPS = ("running", "idle", "starting", "stopping", "failed", "stopped")
# phase -> its group. "starting": nothing heard yet; "services": its stack's services start;
# "setup", "snapshot": its stack is set up, recorded; "worker": its pytest worker starts and
# collects; "resetting": its stack goes back to its snapshot before a unit.
_GROUP_OF = {
    "starting": "starting",
    "services": "starting",
    "setup": "starting",
    "snapshot": "starting",
    "worker": "starting",
    "running": "running",
    "resetting": "running",
    "idle": "idle",
    "stopping": "stopping",
    "failed": "failed",
    "stopped": "stopped",
}


@dataclass(frozen=True, slots=True)
class SlowTest:
    """A test running much longer than its recorded duration, on `agent_id`, for `seconds`."""

    node_id: str
    agent_id: int
    seconds: float


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One agent as the status shows it: its phase and for how long it has been in it.

    Running, `seconds` is how long it has been on `unit` (estimated at `estimate`), `test`
    the test it runs; starting its stack's services, `ready` and `waiting` name them and
    `timeout` is the stack's ready timeout; failed, `reason` says why.
    """

    agent_id: int
    phase: str
    seconds: float = 0.0
    unit: str = ""
    test: str = ""
    estimate: float | None = None
    ready: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    timeout: float = 0.0
    reason: str = ""

    @property
    def group(self) -> str:
        """The group counted in the status: running, idle, starting, stopping, failed, stopped."""
        return _GROUP_OF.get(self.phase, "starting")

    @property
    def late(self) -> bool:
        """A service still not ready after half the stack's ready timeout."""
        return self.phase == "services" and bool(self.waiting) and self.seconds >= self.timeout / 2 > 0


@dataclass(frozen=True, slots=True)
class RunStatus:
    """What the run has done and has left, at `elapsed` seconds from its start."""

    elapsed: float
    tests_done: int
    tests_total: int
    failed: int = 0
    errors: int = 0
    # Seconds until the last agent is predicted to finish; None while nothing is known yet.
    eta_seconds: float | None = None
    agents: tuple[AgentStatus, ...] = ()
    slow: tuple[SlowTest, ...] = ()

    def counts(self) -> tuple[tuple[str, int], ...]:
        """How many agents are in each group, in `GROUPS` order (groups of none left out)."""
        counted = Counter(agent.group for agent in self.agents)
        return tuple((group, counted[group]) for group in GROUPS if counted[group])


def duration_text(seconds: float) -> str:
    """`41s`, `1m10s`, `2h03m`: short and exact enough for a status line."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def starting_text(agent: AgentStatus) -> str:
    """What a starting agent waits for: `waiting for db, cache (ready: queue)`, `setup`, ..."""
    if agent.phase == "services":
        if not agent.waiting:
            return "services ready"
        text = f"waiting for {', '.join(agent.waiting)}"
        return text + (f" (ready: {', '.join(agent.ready)})" if agent.ready else "")
    return {
        "starting": "starting",
        "setup": "running the stack's setup",
        "snapshot": "taking the stack's snapshot",
        "worker": "starting its pytest worker",
    }.get(agent.phase, agent.phase)


def late_service_notice(agent: AgentStatus) -> str:
    """The line naming services not ready after half the ready timeout, before it ends."""
    names = ", ".join(f"'{name}'" for name in agent.waiting)
    return (
        f"orchestrate: agent {agent.agent_id}: service{'s' if len(agent.waiting) > 1 else ''} {names} "
        f"not ready after {duration_text(agent.seconds)} (ready timeout {agent.timeout:g}s)"
    )


def status_line(status: RunStatus) -> str:
    """The status as one plain line, beginning `orchestrate: status` and holding `ETA`."""
    eta = "ETA unknown" if status.eta_seconds is None else f"ETA {duration_text(status.eta_seconds)}"
    line = (
        f"orchestrate: status {status.tests_done}/{status.tests_total} tests, {status.failed} failed, "
        f"{status.errors} errors, {duration_text(status.elapsed)} elapsed, {eta}"
    )
    phases = ", ".join(f"{count} {group}" for group, count in status.counts())
    if phases:
        line += f"; agents: {phases}"
    starting = [a for a in status.agents if a.group == "starting"]
    if starting:
        shown = ", ".join(
            f"agent {a.agent_id} {starting_text(a)} ({duration_text(a.seconds)})" for a in starting[:3]
        )
        more = f" and {len(starting) - 3} more" if len(starting) > 3 else ""
        line += f"; starting: {shown}{more}"
    if status.slow:
        slowest = sorted(status.slow, key=lambda s: -s.seconds)
        shown = ", ".join(
            f"{s.node_id} ({duration_text(s.seconds)}, agent {s.agent_id})" for s in slowest[:3]
        )
        more = f" and {len(slowest) - 3} more" if len(slowest) > 3 else ""
        line += f"; SLOW: {shown}{more}"
    return line


class StatusDisplay(Protocol):
    """Shows the run's status while it runs; driven by the session's loop, on its thread.

    The loop calls `update` after every wait for events (`changed`: events arrived), waits no
    longer than until `wake_at()`, calls `notice` for a line that must be said at once, and
    `close` when the run is over, before pytest's summary.
    """

    def wake_at(self) -> float:
        """The clock time of the next update it wants even without events (inf: none)."""
        ...

    def update(self, now: float, changed: bool, status: Callable[[], RunStatus]) -> None:
        """Show the status if it is due (`status()` builds it: call it only then)."""
        ...

    def notice(self, text: str) -> None:
        """Say one line now, on a line of its own."""
        ...

    def close(self) -> None:
        """The run is over: leave the terminal to pytest's report."""
        ...


class StatusLines:
    """The CI logs' display: one `orchestrate: status ...` line every `interval` seconds (0:
    none), and its notices (a late service) at once."""

    def __init__(self, write_line: Callable[[str], None], interval: float, now: float) -> None:
        self._write_line = write_line
        self._interval = interval
        self._next = now + interval if interval > 0 else math.inf

    def wake_at(self) -> float:
        return self._next

    def update(self, now: float, changed: bool, status: Callable[[], RunStatus]) -> None:
        if now < self._next:
            return
        self._next = now + self._interval
        self._write_line(status_line(status()))

    def notice(self, text: str) -> None:
        self._write_line(text)

    def close(self) -> None:
        pass
