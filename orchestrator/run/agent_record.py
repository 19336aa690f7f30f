"""The session's record of one agent: its state, the units it holds, its counters and timeline.

Owned by orchestrator/run/session.py (one record per agent), whose event handlers update it through
the methods below; `statistics()` is the frozen snapshot that goes into the RunReport, the agents
table and the results file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from orchestrator.model import AgentStatistics, Outcome, TestUnit, UnitSpan
from orchestrator.protocol import messages as p
from orchestrator.report.status import AgentStatus
from orchestrator.run.agent_states import AgentState

# A unit's span in the timeline takes the worst outcome of its tests.
_WORST_FIRST = (
    Outcome.CRASHED,
    Outcome.TIMEOUT,
    Outcome.ERROR,
    Outcome.FAILED,
    Outcome.NOT_RUN,
    Outcome.XPASSED,
    Outcome.XFAILED,
    Outcome.SKIPPED,
    Outcome.PASSED,
)


class AgentRecord:
    """The session's record of one agent: its state, its outstanding units, its counters."""

    def __init__(self, agent_id: int, predicted: float) -> None:
        self.agent_id = agent_id
        self.predicted = predicted
        # Where it is in its life (the session changes it as agent_states.TRANSITIONS allows);
        # why it failed, if it did (kept in the states that follow FAILED).
        self.state = AgentState.STARTING
        self.failure = ""
        # Sent Flush since its last assignment (scheduling, not a state).
        self.flushed = False
        self.node = p.NodeInfo()
        # When a test last ended here (the session's clock): where the next one started.
        self.last_end_at = 0.0
        # unit id -> the unit as assigned; its tests are outstanding until they end. Changed only
        # through hold/drop/drop_all, which keep the index by node id in step.
        self.units: dict[str, TestUnit] = {}
        self._unit_of_node: dict[str, str] = {}
        # (unit id, node id) of held tests that ended here: none of them is the one running.
        self._ended: set[tuple[str, str]] = set()
        self.unit_started: dict[str, float] = {}
        self.spans: list[UnitSpan] = []
        self.tests = 0
        self.busy = 0.0
        self.stack_up = 0.0
        # the stack's set-up state cache, as AgentReady said: (use, setup seconds, saved seconds)
        self.stack_cache: tuple[str, float, float] = ("", 0.0, 0.0)
        self.worker_start = 0.0
        self.worker_args: tuple[str, ...] = ()
        self.stack_down = 0.0
        self.resets = 0
        self.reset_seconds = 0.0
        self.restarts = 0
        self.ready_at: float | None = None
        self.finished_at: float | None = None
        # When it began its teardown (TearingDown), then when it had stopped, if the session
        # still waited then.
        self.stopped_at: float | None = None
        # Where it is in its start-up or its stack's care, as the live status shows it (AgentPhase,
        # StackReady, AgentReady: "starting", "services", "setup", "snapshot", "worker",
        # "resetting", "ready"), since when, and the last AgentPhase (its services' names).
        self.phase = "starting"
        self.phase_at = 0.0
        self.phase_event: p.AgentPhase | None = None
        # Run seconds of its start-up's moments: stack_started, worker_started, stack_ready,
        # worker_ready (from AgentReady.phases_ago).
        self.phases: dict[str, float] = {}
        self.stack_warm = ""

    def hold(self, unit: TestUnit) -> None:
        """The agent was given `unit`."""
        self.units[unit.unit_id] = unit
        self._unit_of_node.update(dict.fromkeys(unit.node_ids, unit.unit_id))

    def drop(self, unit_id: str) -> TestUnit | None:
        """The agent finished `unit_id`: the unit as it was held, if it was."""
        unit = self.units.pop(unit_id, None)
        if unit is not None:
            for node_id in unit.node_ids:
                if self._unit_of_node.get(node_id) == unit_id:
                    del self._unit_of_node[node_id]
                self._ended.discard((unit_id, node_id))
        return unit

    def drop_all(self) -> list[TestUnit]:
        """The agent takes no more work: every unit it held."""
        units = list(self.units.values())
        self.units = {}
        self._unit_of_node = {}
        self._ended = set()
        return units

    def mark_ended(self, node_id: str) -> None:
        """`node_id` ended here (reported, crashed, timed out, exited or not collected)."""
        unit_id = self._unit_of_node.get(node_id)
        if unit_id is not None:
            self._ended.add((unit_id, node_id))

    def running_test(self, is_open: Callable[[str], bool]) -> str | None:
        """The test the agent is running, as far as the session can tell: the first one it holds
        with no end yet (its worker runs what it holds in the order it was given).

        An end here counts even when the test is still open: one that crashed here waits for its
        retry, another agent's to run.
        """
        for unit in self.units.values():
            for node_id in unit.node_ids:
                if (unit.unit_id, node_id) not in self._ended and is_open(node_id):
                    return node_id
        return None

    def running_left(self, predicted_by_unit: Mapping[str, float], now: float) -> float:
        """The predicted seconds the unit it runs (the first it holds) has still to run: its
        plan's prediction less the time since its first test began (0 when it holds nothing
        planned, such as a retry)."""
        running = next(iter(self.units.values()), None)
        if running is None:
            return 0.0
        started = self.unit_started.get(running.unit_id)
        ran = now - started if started is not None else 0.0
        return max(0.0, predicted_by_unit.get(running.unit_id, 0.0) - ran)

    def unit_holding(self, node_id: str) -> str | None:
        """The id of the held unit `node_id` belongs to (a dict lookup: units can hold 50,000 tests)."""
        return self._unit_of_node.get(node_id)

    def enter(self, phase: str, now: float, event: p.AgentPhase | None = None) -> None:
        """The agent entered `phase` (what the live status shows), as `event` said.

        A phase said again (another of its services is ready) keeps the time it began.
        """
        if phase != self.phase:
            self.phase_at = now
        self.phase = phase
        self.phase_event = event

    def view(
        self, now: float, running: str | None, estimate: Callable[[str], float | None], stopping: bool
    ) -> AgentStatus:
        """The agent as the status shows it now; `running` is the test it runs, if any."""
        if self.failure:
            return AgentStatus(self.agent_id, "failed", reason=self.failure)
        if self.state is AgentState.STOPPED:
            return AgentStatus(self.agent_id, "stopped")
        if self.ready_at is None or self.phase == "resetting":
            event = self.phase_event
            if event is None or event.phase != "services":
                return AgentStatus(self.agent_id, self.phase, now - self.phase_at)
            return AgentStatus(
                self.agent_id,
                "services",
                now - self.phase_at,
                ready=event.ready,
                waiting=event.waiting,
                timeout=event.timeout,
            )
        if running is not None:
            unit_id = self.unit_holding(running) or ""
            # No test of the unit ended yet: it started when the one before it ended.
            since = self.unit_started.get(unit_id, max(self.last_end_at, self.ready_at))
            return AgentStatus(
                self.agent_id, "running", now - since, unit=unit_id, test=running, estimate=estimate(unit_id)
            )
        if stopping:
            return AgentStatus(self.agent_id, "stopping")
        return AgentStatus(self.agent_id, "idle", now - max(self.last_end_at, self.ready_at))

    def mark_ready(self, event: p.AgentReady, now: float) -> None:
        """The agent's stack is up and its worker has collected: it can take work."""
        self.enter("ready", now)
        self.state = AgentState.READY
        self.ready_at = now
        self.last_end_at = now
        self.node = event.node
        self.stack_up = event.stack_up_seconds
        self.stack_cache = (event.stack_cache, event.setup_seconds, event.setup_saved_seconds)
        self.worker_start = event.worker_start_seconds
        self.phases = {name: max(0.0, now - ago) for name, ago in event.phases_ago.items()}
        self.stack_warm = event.stack_warm

    def mark_stopped(self, event: p.AgentStopped, now: float) -> None:
        """The agent has stopped, its stack down."""
        self.state = AgentState.STOPPED
        self.stopped_at = now
        self.stack_down = event.stack_down_seconds
        self.restarts = event.worker_restarts

    def mark_failed(self, message: str) -> bool:
        """The agent failed (`message` says why): False if it had failed already, or was tearing
        down (its teardown failed: it runs nothing more either way)."""
        if self.failure:
            return False
        self.failure = message
        if self.state is not AgentState.TEARING_DOWN:
            self.state = AgentState.FAILED
        return True

    def mark_tearing_down(self, now: float) -> None:
        """The agent runs nothing more; its stack comes down (or is kept warm) meanwhile."""
        self.state = AgentState.TEARING_DOWN
        self.stopped_at = now

    @property
    def spent_seconds(self) -> float:
        """Its time from ready to its last test's end, less its stack's resets (0 before a test)."""
        if self.ready_at is None or not self.tests:
            return 0.0
        return self.last_end_at - self.ready_at - self.reset_seconds

    @property
    def ended(self) -> bool:
        """It failed or stopped: its end is what the status shows of it."""
        return bool(self.failure) or self.state is AgentState.STOPPED

    def count_reset(self, seconds: float, now: float) -> None:
        """The stack was reset (the unit it was reset for runs next)."""
        if self.phase == "resetting":
            self.enter("ready", now)
        self.resets += 1
        self.reset_seconds += seconds

    def count_final(self, duration: float, now: float) -> None:
        """A test's final attempt ran here."""
        self.busy += duration
        self.tests += 1
        self.finished_at = now

    def add_span(self, unit: TestUnit, outcomes: list[Outcome], now: float, predicted: float) -> None:
        """The agent finished `unit` (its tests ended with `outcomes`): a span of the timeline."""
        self.finished_at = now
        worst = min(outcomes, key=_WORST_FIRST.index) if outcomes else Outcome.PASSED
        started = self.unit_started.pop(unit.unit_id, now)
        self.spans.append(
            UnitSpan(
                unit.unit_id,
                started,
                now,
                predicted,
                len(unit.node_ids),
                worst,
                groups=unit.group_names,
                alone=unit.alone,
            )
        )

    def statistics(self, run_end: float | None) -> AgentStatistics:
        wall = 0.0
        if self.ready_at is not None and run_end is not None:
            wall = max(0.0, run_end - self.ready_at)
        return AgentStatistics(
            agent_id=self.agent_id,
            tests=self.tests,
            busy_seconds=self.busy,
            predicted_seconds=self.predicted,
            wall_seconds=wall,
            stack_up_seconds=self.stack_up,
            stack_cache=self.stack_cache[0],
            setup_seconds=self.stack_cache[1],
            setup_saved_seconds=self.stack_cache[2],
            stack_down_seconds=self.stack_down,
            worker_restarts=self.restarts,
            host=self.node.hostname,
            error=self.failure,
            node_id=self.node.node_id,
            address=self.node.address,
            resets=self.resets,
            reset_seconds=self.reset_seconds,
            worker_start_seconds=self.worker_start,
            ready_at=self.ready_at,
            finished_at=self.finished_at,
            stopped_at=self.stopped_at,
            units=tuple(self.spans),
            worker_args=self.worker_args,
            phases=dict(self.phases),
            stack_warm=self.stack_warm,
        )
