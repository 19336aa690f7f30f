"""The run's status while it runs, as a value, and its one-line form for CI logs.

The session builds a `RunStatus` from what it owns (the ledger's outcomes so far, the agents'
records, the live re-estimate of the remaining work) when a status line is due; rendering it is
pure, so what a line says for a sequence of events is unit-tested without a run.

    orchestrate: status 120/340 tests, 2 failed, 0 errors, 41s elapsed, ETA 1m10s; agents: 3 running, 1 starting
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_STATUS_INTERVAL",
    "SLOW_MIN_SECONDS",
    "RunStatus",
    "SlowTest",
    "duration_text",
    "status_line",
]

DEFAULT_STATUS_INTERVAL = 30.0
# A test is named as slow once it runs twice its recorded duration, and at least this long.
SLOW_MIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class SlowTest:
    """A test running much longer than its recorded duration, on `agent_id`, for `seconds`."""

    node_id: str
    agent_id: int
    seconds: float


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
    # phase -> how many agents are in it ("starting", "running", "idle", "failed", "stopped")
    agents: tuple[tuple[str, int], ...] = ()
    slow: tuple[SlowTest, ...] = ()


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


def status_line(status: RunStatus) -> str:
    """The status as one plain line, beginning `orchestrate: status` and holding `ETA`."""
    eta = "ETA unknown" if status.eta_seconds is None else f"ETA {duration_text(status.eta_seconds)}"
    line = (
        f"orchestrate: status {status.tests_done}/{status.tests_total} tests, {status.failed} failed, "
        f"{status.errors} errors, {duration_text(status.elapsed)} elapsed, {eta}"
    )
    phases = ", ".join(f"{count} {phase}" for phase, count in status.agents if count)
    if phases:
        line += f"; agents: {phases}"
    if status.slow:
        slowest = sorted(status.slow, key=lambda s: -s.seconds)
        shown = ", ".join(
            f"{s.node_id} ({duration_text(s.seconds)}, agent {s.agent_id})" for s in slowest[:3]
        )
        more = f" and {len(slowest) - 3} more" if len(slowest) > 3 else ""
        line += f"; SLOW: {shown}{more}"
    return line
