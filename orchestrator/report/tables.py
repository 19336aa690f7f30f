"""Tables printed by `orchestrate plan` (one plan, or what-if over agent counts) and `durations show` (rich)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from orchestrator.bench import BenchResult
from orchestrator.durations.store import UnitDuration
from orchestrator.model import Plan
from orchestrator.whatif import Prediction


def render_plan(plan: Plan, known_tests: int, console: Console) -> None:
    """The plan: per agent its units, tests and predicted seconds; then makespan and bound."""
    table = Table(title="plan", title_justify="left")
    for column in ("agent", "units", "tests", "predicted s", "longest unit"):
        table.add_column(column, justify="right" if column != "longest unit" else "left")
    for shard in plan.shards:
        longest = max(shard.units, key=lambda u: u.seconds, default=None)
        table.add_row(
            str(shard.agent_id),
            str(len(shard.units)),
            str(len(shard.node_ids)),
            f"{shard.seconds:.2f}",
            f"{longest.unit.unit_id} ({longest.seconds:.2f}s)" if longest else "-",
        )
    console.print(table)
    estimated = plan.unseen_tests
    share = estimated / plan.tests if plan.tests else 0.0
    console.print(
        f"{plan.tests} tests, {sum(len(s.units) for s in plan.shards)} units, {plan.agents} agents; "
        f"total {plan.total_seconds:.2f}s; predicted makespan {plan.makespan:.2f}s; "
        f"lower bound max(total/N, longest unit) {plan.lower_bound:.2f}s",
        markup=False,
    )
    console.print(
        f"{estimated} of {plan.tests} tests ({share:.0%}) have no recorded duration and are estimated "
        f"({known_tests} tests in the duration store); plan fingerprint {plan.fingerprint()}",
        markup=False,
    )


def render_slowest(units: Sequence[UnitDuration], known_tests: int, console: Console) -> None:
    """The slowest units by recorded duration."""
    if not units:
        console.print("the duration store is empty", markup=False)
        return
    table = Table(title=f"slowest units ({known_tests} tests known)", title_justify="left")
    table.add_column("seconds", justify="right")
    table.add_column("tests", justify="right")
    table.add_column("unit")
    for unit in units:
        table.add_row(f"{unit.seconds:.2f}", str(unit.tests), unit.unit_id)
    console.print(table)


def render_predictions(
    predictions: Sequence[Prediction], tests: int, units: int, unseen_tests: int, console: Console
) -> None:
    """The what-if table of `orchestrate plan --agents LIST`: one row per agent count."""
    table = Table(title="predicted makespan by agent count", title_justify="left")
    for column in ("agents", "predicted s", "lower bound s", "speed-up", "efficiency"):
        table.add_column(column, justify="right")
    for prediction in predictions:
        table.add_row(
            str(prediction.agents),
            f"{prediction.makespan:.2f}",
            f"{prediction.lower_bound:.2f}",
            f"{prediction.speedup:.2f}x",
            f"{prediction.efficiency:.0%}",
        )
    console.print(table)
    if predictions:
        first = predictions[0]
        console.print(
            f"{tests} tests in {units} units; total {first.total_seconds:.2f}s, longest unit "
            f"{first.longest_unit_seconds:.2f}s; lower bound = max(total/N, longest unit); "
            "efficiency = total / (N x predicted); start-up and stacks not included",
            markup=False,
        )
        console.print(
            f"{unseen_tests} of {tests} tests have no recorded duration and are estimated", markup=False
        )


def render_bench(result: BenchResult, console: Console) -> None:
    """The table of `orchestrate bench`: median (min-max) per method and N, beside the plan."""
    # Compact: it must fit an 80-column CI log without cutting a number.
    table = Table(
        title=f"wall-clock of {result.tests} tests, seconds", title_justify="left", box=box.SIMPLE_HEAD
    )
    for column in ("method", "N", "median", "min-max", "predicted", "lower bound", "failed"):
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=True)

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for row in result.rows:
        table.add_row(
            row.method,
            str(row.agents),
            seconds(row.median),
            f"{seconds(row.min)}-{seconds(row.max)}",
            seconds(row.predicted),
            seconds(row.lower_bound),
            f"{row.failures} of {row.runs}" if row.failures else "",
        )
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
