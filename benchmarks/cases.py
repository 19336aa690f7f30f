"""The cases of `run.py --all` and the goals of issue 11 they are checked against.

Called by benchmarks/run.py: `all_cases()` lists what one `--all` run measures, each case a
suite, its N values and the methods compared on it; `CHECKS` says, per goal, which median must
be below which (or below a factor of it), and `evaluate()` turns the cases' summaries into the
combined table's rows: measured medians with min-max, the target, met or missed.
`other_cases()` are cases outside `--all` (issue 18's integration suite needs a Docker engine),
run with `--case NAME`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKS",
    "ISSUE18_CASES",
    "ISSUE18_CHECKS",
    "Case",
    "Check",
    "all_cases",
    "evaluate",
    "format_goals",
    "other_cases",
]

# {case: {method: {N: {"median": s, "min": s, "max": s, "first_test": {...}, ...}}}}
Summaries = Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Case:
    """One suite measured with several methods at several N, repetitions interleaved."""

    name: str
    kind: str  # "generated", "trivial", "startup", "real", "integration" or "public"
    agents: tuple[int, ...]
    methods: tuple[str, ...]
    what: str  # one line for the README and the output
    total_seconds: float = 60.0
    classes: int = 60
    sigma: float = 1.0
    setup_share: float = 0.15
    drift: float = 0.5
    tests: int = 0  # trivial, startup and integration suites
    test_level_bound: bool = False  # classes may be cut: the bound is max(total/N, longest test)
    serial_once: bool = False  # serial pytest in the first repetition only (a long suite)
    # A limit-1 test group of this many seconds over `group_classes` classes (generate.make_group_suite).
    group_seconds: float = 0.0
    group_classes: int = 0


@dataclass(frozen=True, slots=True)
class Check:
    """One target: `method`'s median on `case` at N is below `factor` x `against`'s (or the bound)."""

    goal: str
    case: str
    agents: int
    method: str
    against: str  # a method, or "lower bound"
    factor: float = 1.0
    strict: bool = True  # "faster than" (<) rather than "not slower than" (<=)
    metric: str = "median"  # "median" of the whole command, or "first_test" (to the first test)

    def target(self) -> str:
        relation = "<" if self.strict else "<="
        factor = "" if self.factor == 1.0 else f"{self.factor:g}x "
        metric = "first test at" if self.metric == "first_test" else "wall"
        return f"{metric} {relation} {factor}{self.against}"


TRIVIAL = Case(
    "trivial",
    "trivial",
    (4,),
    ("xdist-worksteal", "orchestrate", "orchestrate-ray"),
    "5,000 tests that do nothing (50 modules of 100, half in classes): per-test overhead",
    tests=5000,
)
BALANCE = Case(
    "balance-60s",
    "generated",
    (2, 4, 8),
    ("xdist-worksteal", "xdist-loadscope", "orchestrate"),
    "generated 60 s suite, 60 classes, durations 50% stale: balance",
)
BALANCE_300 = Case(
    "balance-300s",
    "generated",
    (8,),
    ("xdist-worksteal", "xdist-loadscope", "orchestrate"),
    "generated 300 s suite, 60 classes, durations 50% stale: balance on long runs",
    total_seconds=300.0,
)
SPLIT = Case(
    "split",
    "generated",
    (8,),
    ("pytest-split", "orchestrate", "orchestrate-split"),
    "generated 60 s suite, 20 classes (sigma 1.5) without class fixtures, so the big ones can be "
    "cut; durations 50% stale",
    classes=20,
    sigma=1.5,
    setup_share=0.0,
    test_level_bound=True,
)
STARTUP = Case(
    "startup",
    "startup",
    (2, 4),
    ("xdist-worksteal", "orchestrate"),
    "200 trivial tests whose conftest records when each starts: command start to the first test",
    tests=200,
)
REAL = Case(
    "real",
    "real",
    (2, 4),
    ("serial", "xdist-worksteal", "orchestrate-first", "orchestrate-second"),
    "a real CPU-bound suite (--real CHECKOUT): first run (empty store) and second run (its store)",
    serial_once=True,
)


INTEGRATION = Case(
    "integration",
    "integration",
    (2, 4),
    ("serial", "orchestrate", "orchestrate-warm"),
    "3,000 generated tests of ~15 ms against a real Postgres per agent: module-level functions, a "
    "new connection per test, a conftest reordering items; bound max(serial CPU-s / cores, serial / N); "
    "orchestrate-warm borrows the stacks of `orchestrate up --stack` (untimed), as serial's Postgres is up "
    "before its clock",
    tests=3000,
)


GROUPS = Case(
    "groups",
    "generated",
    (4,),
    ("xdist-loadgroup", "orchestrate"),
    "sleep-bound 60 s suite, 15 s of it one test group of limit 1 over 10 classes (xdist_group and "
    "orchestrate_group markers), durations 50% stale; bound max(total/N, group, longest class)",
    classes=40,
    group_seconds=15.0,
    group_classes=10,
)


SQLALCHEMY = Case(
    "sqlalchemy",
    "public",
    (4,),
    ("serial", "xdist-worksteal", "orchestrate", "orchestrate-warm"),
    "SQLAlchemy's own tests (3 files, 3,296 tests) against a Postgres per agent, its plugin's "
    "collection hook naming classes after the server; --split --split-fixture setup_class_methods; "
    "xdist's workers share plain pytest's one Postgres (the suite provisions a database per worker)",
)
REDIS_PY = Case(
    "redis-py",
    "public",
    (4,),
    ("serial", "orchestrate", "orchestrate-warm"),
    "redis-py's own tests (3 files, 710 tests) against a Redis per agent, its session start asking "
    "the server; --split",
)

# Issue 18's targets, all measured by one `--issue18` run (with `scale.py` for 100,000 tests).
ISSUE18_CASES = (
    STARTUP,
    Case(
        "trivial",
        "trivial",
        (4,),
        ("serial", "xdist-worksteal", "orchestrate", "orchestrate-auto"),
        "5,000 tests that do nothing (50 modules of 100, half in classes): per-test overhead; "
        "orchestrate-auto is `--agents auto` whatever N says, a second run (an earlier run's store)",
        tests=5000,
    ),
    SPLIT,
    Case(
        "balance-60s",
        "generated",
        (8,),
        ("xdist-worksteal", "orchestrate"),
        "generated 60 s suite, 60 classes, durations 50% stale: balance",
    ),
    Case(
        "ray-60s",
        "generated",
        (4,),
        ("orchestrate", "orchestrate-ray", "orchestrate-warm"),
        "the same 60 s suite on local agents, on a fresh local Ray (--backend ray), and on the Ray "
        "`orchestrate up` keeps (orchestrate-warm)",
    ),
    INTEGRATION,
    SQLALCHEMY,
    REDIS_PY,
    Case(
        "real",
        "real",
        (4,),
        ("serial", "xdist-worksteal", "orchestrate-first", "orchestrate-second"),
        "a real CPU-bound suite (--real CHECKOUT): first run (empty store) and second run (its store)",
        serial_once=True,
    ),
)


def all_cases(real: bool) -> list[Case]:
    """The cases of `--all`, cheapest first; the real suite only when a checkout is given."""
    cases = [STARTUP, TRIVIAL, SPLIT, BALANCE, BALANCE_300]
    return cases + [REAL] if real else cases


def other_cases() -> list[Case]:
    """Cases only `--case NAME` runs: no goal of issue 11 rests on them."""
    return [INTEGRATION, GROUPS, SQLALCHEMY, REDIS_PY]


CHECKS: tuple[Check, ...] = (
    Check("1 per-test overhead", "trivial", 4, "orchestrate", "xdist-worksteal", strict=False),
    *(
        Check("2 balance", "balance-60s", n, "orchestrate", against)
        for n in (2, 4, 8)
        for against in ("xdist-worksteal", "xdist-loadscope")
    ),
    Check("2 balance", "balance-300s", 8, "orchestrate", "xdist-worksteal"),
    Check("2 balance", "balance-300s", 8, "orchestrate", "xdist-loadscope"),
    Check("2 balance", "balance-300s", 8, "orchestrate", "lower bound", factor=1.05, strict=False),
    Check("2 balance (--split)", "split", 8, "orchestrate-split", "pytest-split"),
    *(
        Check("3 real suite", "real", n, method, "xdist-worksteal")
        for n in (2, 4)
        for method in ("orchestrate-first", "orchestrate-second")
    ),
    *(
        Check("4 start-up", "startup", n, "orchestrate", "xdist-worksteal", strict=False, metric="first_test")
        for n in (2, 4)
    ),
    Check("5 Ray where used", "trivial", 4, "orchestrate-ray", "orchestrate", factor=1.3, strict=False),
)

ISSUE18_CHECKS: tuple[Check, ...] = (
    Check("trivial, 4 agents", "trivial", 4, "orchestrate", "xdist-worksteal", factor=0.8, strict=False),
    Check("trivial, auto", "trivial", 4, "orchestrate-auto", "serial", factor=1.2, strict=False),
    Check("60 s, 8 agents", "balance-60s", 8, "orchestrate", "xdist-worksteal", factor=0.95, strict=False),
    Check(
        "60 s, 8 agents, --split", "split", 8, "orchestrate-split", "pytest-split", factor=0.95, strict=False
    ),
    *(
        Check("integration case", "integration", n, method, "lower bound", factor=1.2, strict=False)
        for n in (2, 4)
        for method in ("orchestrate", "orchestrate-warm")
    ),
    *(
        Check(f"{suite}, 4 agents", suite, 4, method, "lower bound", factor=1.2, strict=False)
        for suite in ("sqlalchemy", "redis-py")
        for method in ("orchestrate-warm", "orchestrate")
    ),
    Check(
        "CPU-bound public suite", "real", 4, "orchestrate-second", "xdist-worksteal", factor=0.9, strict=False
    ),
    Check("Ray", "ray-60s", 4, "orchestrate-ray", "orchestrate", factor=1.25, strict=False),
    Check("Ray, `orchestrate up`", "ray-60s", 4, "orchestrate-warm", "orchestrate", factor=1.1, strict=False),
    *(
        Check("first test", "startup", n, "orchestrate", "xdist-worksteal", strict=False, metric="first_test")
        for n in (2, 4)
    ),
)


def _cell(figures: Mapping[str, Any] | None, metric: str) -> tuple[float | None, str]:
    """(median, 'median (min-max)') of one method at one N, or (None, why not)."""
    if not figures:
        return None, "not run"
    values = figures.get(metric) if metric != "median" else figures
    if not isinstance(values, Mapping) or not isinstance(values.get("median"), float):
        return None, str(figures.get("note") or "failed")
    median, low, high = values["median"], values["min"], values["max"]
    return median, f"{median:.2f}s ({low:.2f}-{high:.2f})"


def evaluate(
    summaries: Summaries,
    lower_bounds: Mapping[str, Mapping[str, float]],
    checks: Sequence[Check] = CHECKS,
) -> list[dict[str, str]]:
    """One row per check: goal, case, N, measured, compared with, target, and met/missed/not run."""
    rows = []
    for check in checks:
        by_method = summaries.get(check.case, {})
        n = str(check.agents)
        ours, ours_text = _cell(by_method.get(check.method, {}).get(n), check.metric)
        if check.against == "lower bound":
            bound = lower_bounds.get(check.case, {}).get(n)
            theirs, theirs_text = bound, "not run" if bound is None else f"{bound:.2f}s (bound)"
        else:
            theirs, theirs_text = _cell(by_method.get(check.against, {}).get(n), check.metric)
        if check.case not in summaries:
            verdict = "not run"
        elif ours is None or theirs is None:
            verdict = "no figure"
        else:
            limit = check.factor * theirs
            met = ours < limit if check.strict else ours <= limit
            verdict = f"{'met' if met else 'MISSED'} ({ours / theirs:.2f}x)"
        rows.append(
            {
                "goal": check.goal,
                "case": check.case,
                "N": n,
                "method": f"{check.method} {ours_text}",
                "against": f"{check.against} {theirs_text}"
                if check.against != "lower bound"
                else theirs_text,
                "target": check.target(),
                "result": verdict,
            }
        )
    return rows


def format_goals(rows: Sequence[Mapping[str, str]]) -> str:
    """The combined table, as Markdown: one line per check."""
    header = ["goal", "case", "N", "measured (median, min-max)", "compared with", "target", "result"]
    keys = ["goal", "case", "N", "method", "against", "target", "result"]
    table = [header] + [[row[k] for k in keys] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in table
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _median_of(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _row(
    goal: str, case: str, n: str, measured: str, against: str, target: str, result: str
) -> dict[str, str]:
    return {
        "goal": goal,
        "case": case,
        "N": n,
        "method": measured,
        "against": against,
        "target": target,
        "result": result,
    }


def issue18_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Issue 18's targets that are not one median against another, from the cases' measurements.

    Own CPU per test (the trivial case: machine CPU-s beyond plain pytest's, per test, against
    xdist's), the first run's prediction (the real suite's orchestrate-first: its plan's
    makespan against its test phase), Docker's CPU with idle stacks up and test-for-test parity
    (where the case measured them).
    """
    by_case = {r["case"]: r for r in results}
    rows = []
    trivial = by_case.get("trivial")
    if trivial is not None:
        summary, tests = trivial["summary"], trivial.get("tests") or 5000
        plain = summary.get("serial", {}).get("4", {}).get("cpu")
        ours = summary.get("orchestrate", {}).get("4", {}).get("cpu")
        theirs = summary.get("xdist-worksteal", {}).get("4", {}).get("cpu")
        if plain and ours and theirs:
            own = (ours["median"] - plain["median"]) / tests * 1000
            xdist = (theirs["median"] - plain["median"]) / tests * 1000
            met = own <= 1.0 and own <= xdist
            rows.append(
                _row(
                    "own CPU per test",
                    "trivial",
                    "4",
                    f"{own:.2f} ms (machine {ours['median']:.1f} CPU-s)",
                    f"xdist {xdist:.2f} ms ({theirs['median']:.1f}); plain {plain['median']:.1f} CPU-s",
                    "<= 1 ms and <= xdist's",
                    "met" if met else "MISSED",
                )
            )
    real = by_case.get("real")
    if real is not None:
        firsts = [
            m for m in real["measurements"] if m["method"] == "orchestrate-first" and m["test_phase_seconds"]
        ]
        # The plan line of a first run is a guess it says is one (no test has a duration yet);
        # the run re-estimates the makespan from the results in at half of the tests.
        for goal, key in (
            ("first run: the plan's guess", "predicted_seconds"),
            ("first run: re-estimated at half", "reestimated_seconds"),
        ):
            errors = [m[key] / m["test_phase_seconds"] - 1 for m in firsts if m.get(key)]
            error = _median_of(errors)
            if error is not None:
                rows.append(
                    _row(
                        goal,
                        "real",
                        "4",
                        f"{error:+.0%} (runs {', '.join(f'{e:+.0%}' for e in errors)})",
                        "its own test phase",
                        "within 30%",
                        "met" if abs(error) <= 0.3 else "MISSED",
                    )
                )
    for r in results:
        idle = r.get("idle_stacks")
        if idle:
            per_agent = idle["cpu_seconds"] / idle["seconds"] / idle["agents"]
            rows.append(
                _row(
                    "Docker with stacks up",
                    r["case"],
                    str(idle["agents"]),
                    f"{idle['cpu_seconds']:.2f} machine CPU-s over {idle['seconds']:.0f} s idle: "
                    f"{per_agent:.2%} of a core per agent",
                    "",
                    "<= 1% of a core per agent",
                    "met" if per_agent <= 0.01 else "MISSED",
                )
            )
        for method, verdict in sorted(r.get("parity", {}).items()):
            rows.append(
                _row(
                    "parity with plain pytest",
                    r["case"],
                    "",
                    method,
                    "serial's JUnit",
                    "test for test",
                    verdict,
                )
            )
    return rows
