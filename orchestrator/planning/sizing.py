"""How many agents to start: `--agents auto`, and no agent whose stack would come up too late.

Called by the coordinator plugin (orchestrator/front/plugin.py) between estimating and planning, for
`run`, `shard` and `plan`. Pure: it takes the unit estimates, the machine's (or cluster's)
capacity and the start-up model (durations/startup.py), plans each candidate N with the same
`plan_lpt` a run uses (whatif.predict), and returns a decision with its reason in words.

- `choose_agents` (`--agents auto`): the N in 1..min(capacity, units) with the smallest
  predicted wall-clock, startup(N) + makespan(N) + teardown(N) (the capacity is the cores, or
  more for tests that mostly wait: run/costs.py `auto_capacity`; with `--split`, each N planned
  with the units it cuts for N); the smallest N within
  AUTO_TOLERANCE of that minimum wins, since an agent that promises less than the prediction's
  own error is not worth its stack and its process. Without start-up history there is nothing
  to weigh against the test time: one agent per core (and at most one per unit).
- `trim_agents` (an explicit `--agents N`, and auto's choice): the last agent is dropped while
  its start-up would end no earlier than the others would have finished every test without it,
  startup(n) >= startup(n - 1) + makespan(n - 1): it would find nothing to do. The LPT plan
  never has empty shards (prepare caps N at the unit count), but with dynamic scheduling a
  late agent would get nothing, after costing the machine its start-up. Without start-up
  history nothing is trimmed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.model import UnitEstimate
from orchestrator.planning.durations.startup import StartupPrediction
from orchestrator.planning.whatif import Prediction, predict

__all__ = [
    "AGENT_SECONDS_PER_TEST",
    "AUTO_TOLERANCE",
    "IN_PROCESS_SECONDS_PER_TEST",
    "WAITING_TEST_SECONDS",
    "too_short_to_wait",
    "AgentChoice",
    "Capacity",
    "choose_agents",
    "in_process_pays",
    "trim_agents",
]

# An extra agent must promise more than 5% of the predicted wall-clock: the estimates behind it
# (moving averages, guesses for unseen tests, a start-up model linear in the load) are not
# better than that.
AUTO_TOLERANCE = 0.05

FixedCosts = Callable[[int], StartupPrediction | None]

# What a test costs beyond its own phases (pytest's hooks, reports, the terminal), measured on a
# 2-core machine with 5,000 tests that do nothing (benchmarks/README.md): in the coordinator's own
# process, as plain pytest; and on agents, all processes added up (worker, agent, coordinator's
# replay), which the agents share out over the cores they run on.
IN_PROCESS_SECONDS_PER_TEST = 0.0004
AGENT_SECONDS_PER_TEST = 0.0013
# Tests shorter than this on average are not taken to wait: a test of a millisecond spends what
# its seconds hold beyond its CPU in the agent's protocol and under the load it ran at (a `pass`
# test here: 0.6-1.8 ms held on an agent, 0.36 ms of CPU).
WAITING_TEST_SECONDS = 0.005


def too_short_to_wait(estimates: Sequence[UnitEstimate]) -> bool:
    """Whether the units' tests last under WAITING_TEST_SECONDS on average (or there are none)."""
    tests = sum(len(e.unit.node_ids) for e in estimates)
    return not tests or sum(e.seconds for e in estimates) < WAITING_TEST_SECONDS * tests


@dataclass(frozen=True, slots=True)
class Capacity:
    """At most how many agents the machine or cluster runs side by side, and why that many."""

    agents: int
    why: str


@dataclass(frozen=True, slots=True)
class AgentChoice:
    """How many agents to start, the prediction for that many (None without one), and why."""

    agents: int
    reason: str
    prediction: Prediction | None = None


def choose_agents(
    estimates: Sequence[UnitEstimate],
    capacity: Capacity,
    fixed_costs: FixedCosts,
    tolerance: float = AUTO_TOLERANCE,
    cut: Callable[[int], Sequence[UnitEstimate]] | None = None,
) -> AgentChoice:
    """`--agents auto`: the N that minimises the predicted wall-clock within `capacity`.

    `cut(N)`: the units as `--split` cuts them for N agents (their count grows with N); without
    it, `estimates` at every N."""
    upper = max(1, min(capacity.agents, len(cut(capacity.agents) if cut else estimates)))
    limit = f"at most {upper}: {capacity.why}" + (f", {upper} units" if upper < capacity.agents else "")
    if fixed_costs(1) is None:
        return AgentChoice(
            upper, f"no start-up history for this backend and stack yet: one agent per core ({limit})"
        )
    predictions = tuple(
        prediction
        for n in range(1, upper + 1)
        for prediction in predict(cut(n) if cut else estimates, (n,), fixed_costs)
    )
    best = min(p.wall_seconds for p in predictions)
    chosen = next(p for p in predictions if p.wall_seconds <= best * (1 + tolerance))
    others = [p for p in predictions if abs(p.agents - chosen.agents) == 1]
    compared = ", ".join(f"{p.agents}: {p.wall_seconds:.1f}s" for p in others)
    reason = f"predicted {_breakdown(chosen)}" + (f"; with {compared}" if compared else "") + f" ({limit})"
    trimmed = trim_agents(cut(chosen.agents) if cut else estimates, chosen.agents, fixed_costs)
    if trimmed.agents < chosen.agents:
        return trimmed
    return AgentChoice(chosen.agents, reason, chosen)


def trim_agents(
    estimates: Sequence[UnitEstimate], requested: int, fixed_costs: FixedCosts, started: bool = False
) -> AgentChoice:
    """`requested` agents less those whose start-up would end after the others finished the work.

    `started`: the agents are starting already (before collection); the rest are left idle.
    """
    agents = max(1, min(requested, len(estimates)))
    if fixed_costs(agents) is None:
        return AgentChoice(agents, "")
    predictions = {p.agents: p for p in predict(estimates, range(1, agents + 1), fixed_costs)}
    first_late: tuple[float, float] | None = None
    while agents > 1:
        up = predictions[agents].startup_seconds
        fewer = predictions[agents - 1]
        done_without = fewer.startup_seconds + fewer.makespan
        if up < done_without:
            break
        first_late = first_late or (up, done_without)
        agents -= 1
    if first_late is None:
        return AgentChoice(agents, "", predictions[agents])
    up, done_without = first_late
    return AgentChoice(
        agents,
        f"{'planning for' if started else 'starting'} {agents} of {requested} agents: with more, the last would be up after {up:.1f}s, "
        f"when the others would have finished the work ({done_without:.1f}s); predicted "
        f"{_breakdown(predictions[agents])}",
        predictions[agents],
    )


def _breakdown(prediction: Prediction) -> str:
    return (
        f"{prediction.wall_seconds:.1f}s with {prediction.agents} agent{'s' if prediction.agents != 1 else ''} "
        f"= {prediction.startup_seconds:.1f}s start-up + {prediction.makespan:.1f}s tests "
        f"+ {prediction.teardown_seconds:.1f}s teardown"
    )


def in_process_pays(estimates: Sequence[UnitEstimate], choice: AgentChoice, cores: int) -> str:
    """Why `--agents auto` should run the suite in the coordinator's own process, or "" if not.

    Only when every test has a recorded duration and the chosen agents' start-up is known: the
    serial test time plus pytest's own per-test cost, against the best prediction for agents
    (start-up, makespan, teardown) plus their machinery's per-test cost shared over the cores.
    Tests shorter than WAITING_TEST_SECONDS on average count their recorded CPU, not the seconds
    they held an agent for.
    """
    if not estimates or any(e.unseen_tests for e in estimates):
        return ""
    if choice.prediction is None:
        return ""
    agents_wall = choice.prediction.wall_seconds
    tests = sum(len(e.unit.node_ids) for e in estimates)
    agents_wall += tests * AGENT_SECONDS_PER_TEST / max(1, min(choice.agents, cores))
    seconds = sum(e.seconds for e in estimates)
    if too_short_to_wait(estimates):
        # Tests this short do not wait: what an agent held them beyond their CPU was its
        # protocol's latency and the load it ran under, neither of which this process has.
        seconds = sum(e.seconds * e.busy for e in estimates)
    serial = seconds + tests * IN_PROCESS_SECONDS_PER_TEST
    if serial > agents_wall:
        return ""
    return (
        f"in this process: predicted {serial:.1f}s for {tests} tests here, against {agents_wall:.1f}s "
        f"on {choice.agents} agent{'s' if choice.agents != 1 else ''} (start-up and per-test cost included)"
    )
