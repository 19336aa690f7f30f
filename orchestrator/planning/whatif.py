"""What-if planning: the predicted makespan, lower bound and efficiency for several agent counts.

Called by `orchestrate plan --agents 1,2,4,8` (report/tables.py prints the table, and
report/charts.py draws it for --plot) and by `orchestrate bench` (the prediction beside each
measurement). Pure: it takes the unit estimates (collect -> estimate_units) and plans them with
the same `plan_lpt` a run uses, once per agent count; no I/O.

With a start-up history (durations/startup.py) each prediction also carries the fixed costs
for that count, so the predicted wall-clock is startup(N) + LPT makespan(N) + teardown(N);
the makespan alone stays the test time, as the agents table's `plan s` shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.model import Prediction, UnitEstimate
from orchestrator.planning.durations.startup import StartupPrediction
from orchestrator.planning.scheduling import plan_lpt

__all__ = ["MAX_AGENT_COUNT", "Prediction", "parse_agent_counts", "predict"]

# A typo like 1-10000 should be a usage error, not minutes of planning.
MAX_AGENT_COUNT = 4096


def parse_agent_counts(text: str) -> tuple[int, ...]:
    """Agent counts from `4`, `1,2,4,8`, `1-16` or a mix (`1,2,8-10`): sorted, without repeats.

    Called by the CLI (as an argparse type, so a ValueError's message is a one-line usage
    error, exit 4).
    """
    counts: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low_text, dash, high_text = part.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise ValueError(f"not a number, a list (1,2,4) or a range (1-8): {text!r}") from None
        if low < 1 or high < low:
            raise ValueError(f"agent counts must be at least 1 and ranges ascending: {part!r}")
        if high > MAX_AGENT_COUNT:
            raise ValueError(f"at most {MAX_AGENT_COUNT} agents: {part!r}")
        counts.update(range(low, high + 1))
    return tuple(sorted(counts))


def predict(
    estimates: Sequence[UnitEstimate],
    agent_counts: Sequence[int],
    fixed_costs: Callable[[int], StartupPrediction | None] = lambda agents: None,
) -> tuple[Prediction, ...]:
    """Plan `estimates` for each count with `plan_lpt`; one Prediction per count, in order.

    Agents beyond the number of units stay idle in the plan (a run would not start them), so
    past that point the makespan is the longest unit's and only the efficiency keeps falling.
    `fixed_costs(N)` gives the start-up and teardown of N agents (a StartupHistory's
    `predict` for the run's key and capacity), or None when they are not known.
    """
    predictions = []
    for agents in agent_counts:
        plan = plan_lpt(estimates, agents)
        predictions.append(
            Prediction(
                agents,
                plan.makespan,
                plan.lower_bound,
                plan.total_seconds,
                plan.longest_unit_seconds,
                fixed_costs(agents),
                plan.binding_group(),
            )
        )
    return tuple(predictions)
