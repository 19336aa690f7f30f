"""Tables printed by `orchestrate plan` (one plan, or what-if over agent counts) and `durations show` (rich)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.model import (
    ALONE_BOUND,
    BenchResult,
    Plan,
    Prediction,
    RunReport,
    Shard,
    StartupPrediction,
    UnitDuration,
    UnitEstimate,
    UnitSpan,
)


def render_plan(
    plan: Plan, known_tests: int, console: Console, fixed: StartupPrediction | None = None
) -> None:
    """The plan: per agent its units, tests and predicted seconds; then makespan and bound.

    With `fixed` (the start-up history's prediction for this many agents) also the predicted
    wall-clock: start-up, then the makespan, then teardown.
    """
    table = Table(title="plan", title_justify="left")
    waits = any(shard.waits for shard in plan.shards)
    grouped = any(e.unit.constrained for shard in plan.shards for e in shard.units)
    columns = ("agent", "units", "tests", "predicted s") + (("waits s",) if waits else ())
    columns += (("groups",) if grouped else ()) + ("longest unit",)
    for column in columns:
        table.add_column(column, justify="left" if column in ("longest unit", "groups") else "right")
    for shard in plan.shards:
        longest = max(shard.units, key=lambda u: u.seconds, default=None)
        table.add_row(
            str(shard.agent_id),
            str(len(shard.units)),
            str(len(shard.node_ids)),
            f"{shard.seconds:.2f}",
            *((f"{shard.waits:.2f}",) if waits else ()),
            *((_shard_groups(shard),) if grouped else ()),
            f"{longest.unit.unit_id} ({longest.seconds:.2f}s)" if longest else "-",
        )
    console.print(table)
    estimated = plan.unseen_tests
    share = estimated / plan.tests if plan.tests else 0.0
    console.print(
        f"{plan.tests} tests, {sum(len(s.units) for s in plan.shards)} units, {plan.agents} agents; "
        f"total {plan.total_seconds:.2f}s; predicted makespan {plan.makespan:.2f}s; "
        f"lower bound max(total/N, longest unit{', groups' if grouped else ''}) {plan.lower_bound:.2f}s",
        markup=False,
    )
    bound_by = plan.binding_group()
    if bound_by is not None:
        console.print(
            f"the bound is {_group_words(bound_by)}: {plan.group_bounds()[bound_by]:.2f}s of its units "
            f"cannot be spread further, whatever the number of agents",
            markup=False,
        )
    if fixed is not None:
        console.print(
            f"predicted wall-clock {fixed.startup_seconds + plan.makespan + fixed.teardown_seconds:.2f}s "
            f"= start-up {fixed.startup_seconds:.2f}s + makespan {plan.makespan:.2f}s "
            f"+ teardown {fixed.teardown_seconds:.2f}s (from the start-up history of this backend and stack)",
            markup=False,
        )
    else:
        console.print("start-up and teardown not included: no start-up history for this backend and stack")
    console.print(
        f"{estimated} of {plan.tests} tests ({share:.0%}) have no recorded duration and are estimated "
        f"({known_tests} tests in the duration store); plan fingerprint {plan.fingerprint()}",
        markup=False,
    )


def _group_words(bound: str) -> str:
    return "the alone units, one after another" if bound == ALONE_BOUND else f"test group {bound!r}"


def _count_groups(pairs: Sequence[tuple[tuple[str, ...], bool]]) -> str:
    """`payments x10, alone x1`: how many units ran (or are planned) under each group."""
    counts: dict[str, int] = {}
    for names, alone in pairs:
        for name in (*names, *(("alone",) if alone else ())):
            counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items())) or "-"


def _shard_groups(shard: Shard) -> str:
    return _count_groups([(e.unit.group_names, e.unit.alone) for e in shard.units])


def span_groups(spans: Sequence[UnitSpan]) -> str:
    """The groups the units of an agent ran under, with how many units each (`-`: none)."""
    return _count_groups([(span.groups, span.alone) for span in spans])


def slowest_text(units: Sequence[UnitDuration], known_tests: int) -> str:
    """The slowest units by recorded duration (`orchestrate durations show`)."""
    if not units:
        return "the duration store is empty"
    console = Console(file=io.StringIO(), width=120, highlight=False, color_system=None)
    table = Table(title=f"slowest units ({known_tests} tests known)", title_justify="left")
    table.add_column("seconds", justify="right")
    table.add_column("tests", justify="right")
    table.add_column("unit")
    for unit in units:
        table.add_row(f"{unit.seconds:.2f}", str(unit.tests), unit.unit_id)
    console.print(table)
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def plan_text(plan: Plan, known_tests: int, fixed: StartupPrediction | None = None) -> str:
    """`render_plan`'s output as text (the coordinator writes it through pytest's terminal)."""
    console = Console(file=io.StringIO(), width=120, highlight=False, color_system=None)
    render_plan(plan, known_tests, console, fixed)
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def agents_table_text(report: RunReport, width: int = 80) -> str:
    """One row per agent: where it ran, what it did, what the plan predicted, its stack's costs.

    Short headings, so the table fits 80 columns (CI logs): busy = time in tests; idle = from
    ready to the run's last test, not busy; plan = predicted; up/down = its stack's start-up
    (set-up commands included) and teardown; reset = resets between units (x-orchestrate reset),
    shown when any happened; runner = the CI runner, after `orchestrate merge`; groups = the test
    groups its units ran under, with how many units each, shown when any unit had one.
    """
    # One space between columns (the box's blank separator, no padding): 12 columns fit 80.
    table = Table(box=box.SIMPLE_HEAD, padding=0, pad_edge=False, show_edge=False)
    merged = any(agent.runner is not None for agent in report.agents)
    if merged:
        table.add_column("runner", justify="right")
    table.add_column("agent", justify="right")
    table.add_column("host")
    resets = any(agent.resets for agent in report.agents)
    headings = ("tests", "busy s", "idle s", "plan s", "wall s", "up s", "down s") + (
        ("reset s",) if resets else ()
    )
    for heading in headings:
        table.add_column(heading, justify="right")
    table.add_column("restarts", justify="right")
    grouped = any(span.groups or span.alone for agent in report.agents for span in agent.units)
    if grouped:
        table.add_column("groups")
    for agent in sorted(report.agents, key=lambda a: a.agent_id):
        where = agent.host + (f" {agent.address}" if agent.address else "")
        table.add_row(
            *((str(agent.runner or ""),) if merged else ()),
            str(agent.agent_id),
            Text(where),
            str(agent.tests),
            f"{agent.busy_seconds:.1f}",
            f"{agent.idle_seconds:.1f}",
            f"{agent.predicted_seconds:.1f}",
            f"{agent.wall_seconds:.1f}",
            f"{agent.stack_up_seconds:.1f}",
            f"{agent.stack_down_seconds:.1f}",
            *((f"{agent.reset_seconds:.1f}",) if resets else ()),
            str(agent.worker_restarts),
            *((Text(span_groups(agent.units)),) if grouped else ()),
        )
    console = Console(file=io.StringIO(), width=max(width, 80), highlight=False, color_system=None)
    console.print(table)
    for agent in report.agents:
        if agent.error:
            console.print(Text(f"agent {agent.agent_id}: {agent.error.splitlines()[0]}"))
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def render_predictions(
    predictions: Sequence[Prediction], tests: int, units: int, unseen_tests: int, console: Console
) -> None:
    """The what-if table of `orchestrate plan --agents LIST`: one row per agent count."""
    table = Table(title="predicted makespan by agent count", title_justify="left")
    fixed = any(p.fixed is not None for p in predictions)
    bounded = any(p.bound_by for p in predictions)
    columns = ("agents", "predicted s", "lower bound s", "speed-up", "efficiency") + (
        ("start-up s", "teardown s", "wall-clock s") if fixed else ()
    )
    columns += ("bound by",) if bounded else ()
    for column in columns:
        table.add_column(column, justify="left" if column == "bound by" else "right", no_wrap=True)
    best = min(predictions, key=lambda p: p.wall_seconds) if fixed and predictions else None
    for prediction in predictions:
        table.add_row(
            str(prediction.agents),
            f"{prediction.makespan:.2f}",
            f"{prediction.lower_bound:.2f}",
            f"{prediction.speedup:.2f}x",
            f"{prediction.efficiency:.0%}",
            *(
                (
                    f"{prediction.startup_seconds:.2f}",
                    f"{prediction.teardown_seconds:.2f}",
                    f"{prediction.wall_seconds:.2f}" + (" *" if prediction is best else ""),
                )
                if fixed
                else ()
            ),
            *((_bound_text(prediction.bound_by),) if bounded else ()),
        )
    console.print(table)
    if predictions:
        first = predictions[0]
        console.print(
            f"{tests} tests in {units} units; total {first.total_seconds:.2f}s, longest unit "
            f"{first.longest_unit_seconds:.2f}s; lower bound = max(total/N, longest unit"
            + (", test groups" if bounded else "")
            + "); "
            "efficiency = total / (N x predicted); "
            + (
                "wall-clock = start-up + predicted + teardown, from the start-up history (* the shortest)"
                if fixed
                else "start-up and stacks not included (no start-up history for this backend and stack)"
            ),
            markup=False,
        )
        console.print(
            f"{unseen_tests} of {tests} tests have no recorded duration and are estimated", markup=False
        )


def _bound_text(bound: str | None) -> str:
    if bound is None:
        return ""
    return "alone units" if bound == ALONE_BOUND else f"group {bound}"


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


def predictions_text(predictions: Sequence[Prediction], tests: int, units: int, unseen_tests: int) -> str:
    """`render_predictions`'s output as text (the coordinator writes it through pytest's terminal)."""
    console = Console(file=io.StringIO(), width=120, highlight=False, color_system=None)
    render_predictions(predictions, tests, units, unseen_tests, console)
    return console.file.getvalue().rstrip()  # type: ignore[attr-defined]


def stdout_console() -> Console:
    """The console commands outside a pytest session print their tables on."""
    return Console(highlight=False, soft_wrap=False)


def kept_whole_text(kept: Sequence[UnitEstimate]) -> str:
    """The line naming the long units --split left whole for the scoped fixtures they use."""
    longest = kept[0]
    more = f" and {len(kept) - 1} more" if len(kept) > 1 else ""
    return (
        f"orchestrate: --split kept {len(kept)} unit{'s' if len(kept) != 1 else ''} longer than an agent's "
        f"share whole, for the class-, module- or package-scoped fixtures used: {longest.unit.unit_id} "
        f"({longest.seconds:.1f}s; {', '.join(longest.unit.kept_whole_by)}){more}; --split-fixture NAME "
        "lets such a fixture run once per chunk on each agent, and its units be cut"
    )


# Below this share of a plan's tests guessed, the prediction stands on the durations it knows.
GUESSED_SHARE_SAID = 0.1


def guessed_text(plan: Plan) -> str:
    """A line saying that the prediction is mostly a guess, when a tenth or more of the plan's
    tests have no recorded duration (a first run: all of them); else empty."""
    estimates = [e for shard in plan.shards for e in shard.units]
    tests = sum(len(e.unit.node_ids) for e in estimates)
    unseen = sum(e.unseen_tests for e in estimates)
    if not tests or unseen < GUESSED_SHARE_SAID * tests:
        return ""
    which = "no test has a" if unseen == tests else f"{unseen} of {tests} tests have no"
    return f"orchestrate: {which} recorded duration yet: a guessed prediction, re-estimated as tests end"


def holding_up_text(plan: Plan) -> str:
    """Without --split: a line naming the unit that alone holds the run up, when one does (longer
    than a quarter over an agent's share, with tests to cut between); else empty."""
    agents = len(plan.shards)
    estimates = [e for shard in plan.shards for e in shard.units]
    if agents < 2 or not estimates:
        return ""
    longest = max(estimates, key=lambda e: e.seconds)
    share = plan.total_seconds / agents
    if longest.seconds <= 1.25 * share or len(longest.unit.node_ids) < 2:
        return ""
    fixtures = longest.unit.kept_whole_by
    how = (
        f"--split with --split-fixture {' --split-fixture '.join(fixtures)} would cut it, if "
        f"{'that fixture' if len(fixtures) == 1 else 'those fixtures'} may run once per chunk"
        if fixtures
        else "--split would cut it into chunks run on several agents, if its tests do not depend on each other"
    )
    return (
        f"orchestrate: {longest.unit.unit_id} ({longest.seconds:.1f}s) is longer than an agent's share "
        f"({share:.1f}s) and holds the run up; {how}"
    )
