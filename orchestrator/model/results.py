"""The values of a run's results: attempts, each test's result, each agent's statistics, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.model.units import Outcome


@dataclass(frozen=True, slots=True)
class OutputPaths:
    """Where a session's own outputs go (none: not written)."""

    results: str | None = None
    html: str | None = None
    durations: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one test: where it ran and what came of it."""

    agent_id: int
    outcome: Outcome
    duration: float
    # pytest's own serialised reports (setup/call/teardown), for JUnit and the terminal.
    reports: tuple[dict[str, Any], ...] = ()
    message: str = ""
    # Seconds since the run's start (the session's clock): from the test's start to its end.
    started: float = 0.0
    finished: float = 0.0
    # What the test would take on an uncontended machine, for the duration store: `occupied`
    # less what the load it ran under cost it (0: unknown, use `duration`).
    seconds_at_load_one: float = 0.0
    # The CPU-seconds it spent: its worker's, and its share of its stack's containers' where the
    # agent can read them (0: unknown). The duration store keeps them, so that a plan for more
    # agents than cores stretches each test by its CPU part (durations/estimate.py).
    cpu_seconds: float = 0.0

    @property
    def occupied(self) -> float:
        """Seconds the test held its agent: pytest's phases and what its protocol does around
        them, building a failure's report included (redis-py's failing ACL tests: 0.02 s of
        phases, 0.9 s in all); never less than `duration`."""
        return max(self.duration, self.finished - self.started)


@dataclass(frozen=True, slots=True)
class TestResult:
    """The final record of one test in the merged report."""

    __test__ = False

    node_id: str
    outcome: Outcome
    attempts: tuple[Attempt, ...]

    @property
    def final(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def duration(self) -> float:
        final = self.final
        return final.duration if final else 0.0

    @property
    def agent_id(self) -> int | None:
        final = self.final
        return final.agent_id if final else None

    @property
    def flaky(self) -> bool:
        """Passed after at least one failed attempt."""
        return self.outcome is Outcome.PASSED and any(a.outcome.is_failure for a in self.attempts[:-1])


@dataclass(frozen=True, slots=True)
class UnitSpan:
    """When one unit ran on one agent (seconds since the run's start), for the timeline."""

    unit_id: str
    started: float
    finished: float
    predicted_seconds: float
    tests: int
    outcome: Outcome
    # The test groups the unit ran under, and whether it ran alone.
    groups: tuple[str, ...] = ()
    alone: bool = False


@dataclass(frozen=True, slots=True)
class AgentStatistics:
    """What one agent did, for the per-agent table and the results file."""

    agent_id: int
    tests: int = 0
    busy_seconds: float = 0.0
    predicted_seconds: float = 0.0
    wall_seconds: float = 0.0
    stack_up_seconds: float = 0.0
    stack_down_seconds: float = 0.0
    worker_restarts: int = 0
    # the stack's set-up state cache: "hit", "miss" or ""; setup seconds paid, and saved by a hit
    stack_cache: str = ""
    setup_seconds: float = 0.0
    setup_saved_seconds: float = 0.0
    host: str = ""
    error: str = ""
    # The cluster node (Ray node id and address); empty for local agents.
    node_id: str = ""
    address: str = ""
    # Stack resets between units (x-orchestrate reset): how many, and their seconds in all.
    resets: int = 0
    reset_seconds: float = 0.0
    worker_start_seconds: float = 0.0
    # Seconds since the run's start: ready for work, last test ended, stopped (stack down).
    ready_at: float | None = None
    finished_at: float | None = None
    stopped_at: float | None = None
    units: tuple[UnitSpan, ...] = ()
    # Run seconds of the start-up's moments (stack_started, worker_started, stack_ready,
    # worker_ready): where the worker's start overlapped the stack's; empty when not recorded.
    phases: dict[str, float] = field(default_factory=dict)
    # A warm stack (`orchestrate up --stack`): "borrowed", "replaced: <why>", "busy" or "".
    stack_warm: str = ""
    # The CI runner (1-based `--index`) whose artifact this agent came from; None unless merged.
    runner: int | None = None
    # The worker's pytest arguments (after `-m pytest`), the stack's pytest_args rendered in.
    worker_args: tuple[str, ...] = ()

    @property
    def idle_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.busy_seconds)


@dataclass(frozen=True, slots=True)
class StopRequest:
    """Why a run stopped before every test ran: what pytest would have stopped for."""

    kind: str  # "exit" (pytest.exit in a test), "interrupt" (Ctrl-C, KeyboardInterrupt), "maxfail"
    message: str
    returncode: int | None = None


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything the merged report says: one TestResult per collected test."""

    results: tuple[TestResult, ...]
    agents: tuple[AgentStatistics, ...]
    wall_seconds: float
    exit_code: int
    plan_fingerprint: str = ""
    interrupted: bool = False
    messages: tuple[str, ...] = ()
    stop: StopRequest | None = None
    # The plan's figures: agents, predicted makespan, lower bound, total and longest unit.
    plan: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[Outcome, int]:
        counts: dict[Outcome, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts
