"""Wall-clock of orchestrate against serial pytest, pytest-xdist and pytest-split, side by side.

    python benchmarks/run.py --all [--real CHECKOUT]   # every goal of issue 11, one combined table
    python benchmarks/run.py --issue18 [--real CHECKOUT] [--public sqlalchemy=CHECKOUT ...]
                                                   # every target of issue 18, one combined table
    python benchmarks/run.py --case trivial            # one case of --all (see benchmarks/cases.py)
    python benchmarks/run.py --case integration [--tests 3000]   # a Postgres per agent (Docker)
    python benchmarks/run.py --case real --real CHECKOUT [--real-paths networkx] [-- PYTEST ARGS]
    python benchmarks/run.py                       # 60 s suite, every method, N = 2 4 8, 3 repetitions
    python benchmarks/run.py --quick               # ~10 s suite, N = 2 4, 1 repetition (smoke test)
    python benchmarks/run.py --agents 8 --repetitions 1 --methods serial,xdist-load,orchestrate
    python benchmarks/run.py --planning            # planning time and merge memory at 100,000 tests

One suite is generated (benchmarks/generate.py) with stale recorded durations, then every
method runs it as a user would, as a subprocess whose whole wall-clock is measured: start-up,
collection, scheduling, teardown included. Repetitions are interleaved: each repetition runs
serial pytest once, then every (N, method) pair, the method order rotated per repetition, so a
slow spell of the machine hits every method alike. Medians are reported against the lower
bound max(true total / N, longest class), which no schedule can beat; the integration case's
bound is measured instead: max(serial CPU-seconds of the machine / cores, serial wall / N), as
is that of a public suite run from its checkout (`--public NAME=CHECKOUT`, benchmarks/public.py),
where every run's JUnit is also compared test for test with serial pytest's.
Every run records the machine's busy CPU-seconds meanwhile (/proc/stat) and its own processes'.

PYTHONDONTWRITEBYTECODE is removed from every benchmark subprocess's environment (all methods
alike): with it set, every pytest process redoes assertion rewriting of every test module.

A single generated suite writes benchmarks/out/results.json and benchmarks/out/wallclock.png
(copied to benchmarks/wallclock.png for the README); --all writes benchmarks/out/results-all.json
with every case and the goals table, --case NAME benchmarks/out/results-NAME.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cases import (  # noqa: E402
    CHECKS,
    ISSUE18_CASES,
    ISSUE18_CHECKS,
    Case,
    all_cases,
    evaluate,
    format_goals,
    issue18_rows,
    other_cases,
)
from benchmarks.generate import (  # noqa: E402
    ORCHESTRATE_DURATIONS,
    SPLIT_DURATIONS,
    Suite,
    make_group_suite,
    make_suite,
    recorded_durations,
    write_durations,
    write_suite,
    write_trivial_suite,
)
from benchmarks.integration import (  # noqa: E402
    STACK_FILE,
    WARM_STACK_FILE,
    idle_stacks_cpu,
    make_integration_suite,
    measured_bound,
    write_integration_suite,
)
from benchmarks.methods import (  # noqa: E402
    EXTRA_METHODS,
    METHODS,
    SERIAL,
    Context,
    Measurement,
    benchmark_env,
    measure,
    orchestrate_command,
    pytest_command,
)
from benchmarks.public import PUBLIC_SUITES, compare_outcomes, junit_outcomes, write_stacks  # noqa: E402
from benchmarks.tables import format_table, spread, summarise  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

# -- the run -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A case's suite written and ready: where its commands run, and its lower bound per N."""

    context: Context
    lower_bound: dict[str, float]  # empty when unknown (trivial and real suites) or measured later
    description: str
    suite: Suite | None = None


def prepare(case: Case, out: Path, args: argparse.Namespace) -> Prepared:
    """Write (or point at) the case's suite, warm its __pycache__, and make its Context."""
    root = out / "cases" / case.name
    scratch = root / "scratch"
    shutil.rmtree(root, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = benchmark_env()
    common: dict[str, Any] = {"scratch": scratch, "logs": out / "logs" / case.name, "env": env}
    suite: Suite | None = None
    bound: dict[str, float] = {}
    history: Path | None = None  # written by an unmeasured orchestrate run before the measured ones
    if case.kind == "generated":
        if case.group_seconds:
            suite = make_group_suite(
                case.total_seconds,
                case.group_seconds,
                case.group_classes,
                case.classes - case.group_classes,
                seed=args.seed,
                sigma=case.sigma,
                setup_share=case.setup_share,
            )
        else:
            suite = make_suite(
                case.classes,
                case.total_seconds,
                seed=args.seed,
                sigma=case.sigma,
                setup_share=case.setup_share,
            )
        suite_dir = write_suite(suite, root / "suite")
        write_durations(recorded_durations(suite, case.drift), suite_dir)
        measure_bound = suite.test_lower_bound if case.test_level_bound else suite.lower_bound
        bound = {str(n): measure_bound(n) for n in case.agents}
        context = Context(
            suite_dir=suite_dir,
            timeout=max(300.0, 5 * case.total_seconds + 120),
            stale_store=suite_dir / ORCHESTRATE_DURATIONS,
            split_durations=suite_dir / SPLIT_DURATIONS,
            **common,
        )
        description = (
            f"{suite.tests} tests in {len(suite.classes)} classes, {suite.total_seconds:.0f}s serial, longest class "
            f"{suite.longest_unit_seconds:.1f}s, recorded durations off by up to {case.drift:.0%}"
            + ("; no class fixtures: classes can be cut" if case.setup_share == 0 else "")
            + "".join(
                f"; group {name} {seconds:.1f}s (limit 1)" for name, seconds in suite.group_seconds().items()
            )
        )
    elif case.kind in ("trivial", "startup"):
        suite_dir = root / "suite"
        write_trivial_suite(
            suite_dir,
            case.tests,
            modules=min(50, case.tests // 50 or 1),
            record_starts=case.kind == "startup",
        )
        # `--agents auto` is measured as a user's second run: it plans from the store an earlier
        # run left (a first run knows nothing of its tests, so it cannot choose this process).
        history = (
            scratch / "history.msgpack" if "orchestrate-auto" in (args.methods or case.methods) else None
        )
        context = Context(
            suite_dir=suite_dir,
            timeout=600.0,
            record_starts=case.kind == "startup",
            history_store=history,
            **common,
        )
        description = f"{case.tests} trivial tests" + (
            "; orchestrate-auto plans from the store of an earlier run" if history else ""
        )
    elif case.kind == "integration":
        integration = make_integration_suite(case.tests, seed=args.seed)
        suite_dir = write_integration_suite(integration, root / "suite")
        history = scratch / "history.msgpack"
        # Each orchestrate run plans from a fresh copy of the store the unmeasured run leaves.
        context = Context(
            suite_dir=suite_dir,
            timeout=900.0,
            stale_store=history,
            stack_file=Path(STACK_FILE),
            warm_stack_file=Path(WARM_STACK_FILE),
            junit=True,
            **common,
        )
        description = (
            f"{integration.tests} tests in {len(integration.modules)} modules ({integration.slow_tests} "
            "slow, run last), a Postgres per agent, one for serial (up before its clock starts)"
        )
    elif case.kind == "public":
        spec = PUBLIC_SUITES[case.name]
        checkout = args.public[case.name].resolve()
        history = scratch / "history.msgpack"
        stack, warm_stack = write_stacks(spec, scratch / "stack")
        context = Context(
            suite_dir=checkout,
            timeout=1800.0,
            paths=spec.paths,
            pytest_args=(*_own_config(checkout), *spec.pytest_args),
            stale_store=history,
            stack_file=stack,
            warm_stack_file=warm_stack,
            orchestrate_args=spec.orchestrate_args,
            ok_exit_codes=spec.ok_exit_codes,
            junit=True,
            **common,
        )
        description = f"{checkout} ({spec.fetch}) {' '.join(spec.paths)}"
    else:  # real
        checkout = args.real.resolve()
        history = scratch / "history.msgpack"
        context = Context(
            suite_dir=checkout,
            timeout=3600.0,
            paths=tuple(args.real_paths),
            pytest_args=(*_own_config(checkout), *args.pytest_args),
            history_store=history,
            junit=True,
            **common,
        )
        description = f"{checkout} {' '.join(args.real_paths)} {' '.join(args.pytest_args)}".strip()
    # Unmeasured: compile the suite's modules (and rewritten asserts) into __pycache__ once,
    # so the first measured method does not pay for what later ones reuse.
    subprocess.run(
        pytest_command(context, "--collect-only"), cwd=context.suite_dir, env=env, capture_output=True
    )
    if history is not None:
        # Unmeasured: the "previous run" whose store every orchestrate-second run (the real
        # suite's) or orchestrate run (the integration suite's) starts from.
        done = subprocess.run(
            orchestrate_command(context, max(case.agents), history),
            cwd=context.suite_dir,
            env=env,
            capture_output=True,
            text=True,
        )
        (scratch / "history-run.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            print(f"   the unmeasured first run exited {done.returncode}: {scratch / 'history-run.log'}")
        if not history.exists():
            raise SystemExit(
                f"the history run of {case.name} wrote no store; see {scratch / 'history-run.log'}"
            )
    return Prepared(context, bound, description, suite)


def _own_config(checkout: Path) -> list[str]:
    """pytest options that keep a checkout's tests on its own configuration and rootdir.

    A checkout without a pytest section (networkx has none) would otherwise pick up the
    configuration of a directory above it, such as this project's when it lies in benchmarks/out.
    """
    found = [
        name
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
        if (checkout / name).is_file()
    ]
    return [f"--rootdir={checkout}"] + ([f"--config-file={found[0]}"] if found else [])


def run_all(
    agents_list: Sequence[int],
    methods: Sequence[str],
    repetitions: int,
    context: Context,
    progress: Callable[[Measurement], None],
    serial_once: bool = False,
) -> list[Measurement]:
    """Every repetition: serial once (or only in the first), then each (N, method), the order rotated."""
    parallel = [m for m in methods if m != SERIAL]
    measurements = []
    for repetition in range(repetitions):
        if SERIAL in methods and not (serial_once and repetition):
            measurements.append(measure(SERIAL, 1, repetition, context))
            progress(measurements[-1])
        shift = repetition % len(parallel) if parallel else 0
        order = parallel[shift:] + parallel[:shift]
        for agents in agents_list:
            for method in order:
                measurements.append(measure(method, agents, repetition, context))
                progress(measurements[-1])
    return measurements


def run_case(
    case: Case, agents: Sequence[int], methods: Sequence[str], out: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Prepare, measure and summarise one case; print its table; return its JSON part."""
    print(f"\n== {case.name}: {case.what}", flush=True)
    prepared = prepare(case, out, args)
    print(
        f"   {prepared.description}; N = {' '.join(map(str, agents))}; {args.repetitions} repetition(s)"
        + (f" ({args.real_repetitions} for the real suite)" if args.real_repetitions else ""),
        flush=True,
    )

    def progress(m: Measurement) -> None:
        took = f"{m.seconds:7.2f}s" if m.seconds is not None else f"   {m.note}"
        first = f"  first test {m.first_test_seconds:.2f}s" if m.first_test_seconds is not None else ""
        cpu = f"  CPU-s: machine {m.cpu_seconds:.1f}" if m.cpu_seconds is not None else ""
        cpu += f", own {m.process_cpu_seconds:.1f}" if m.process_cpu_seconds is not None else ""
        cpu += f", containers {m.container_cpu_seconds:.1f}" if m.container_cpu_seconds is not None else ""
        print(f"  rep {m.repetition + 1} N={m.agents:<2} {m.method:<20}{took}{first}{cpu}", flush=True)

    started = time.perf_counter()
    repetitions = args.real_repetitions if case.kind == "real" and args.real_repetitions else args.repetitions
    measurements = run_all(agents, methods, repetitions, prepared.context, progress, case.serial_once)
    serial_runs = [m for m in measurements if m.method == SERIAL and m.seconds is not None]
    serial = spread([m.seconds for m in serial_runs if m.seconds is not None])["median"]
    serial_cpu = [m.cpu_seconds for m in serial_runs if m.cpu_seconds is not None]
    serial_cpu_median = statistics.median(serial_cpu) if serial_cpu else None
    cores = os.cpu_count() or 1
    bound, bound_name, cpu_per_core = prepared.lower_bound, "lower bound", None
    if case.kind in ("integration", "public"):  # measured: max(serial CPU-s / cores, serial wall / N)
        bound = measured_bound(serial_cpu, [m.seconds for m in serial_runs if m.seconds], agents, cores)
        bound_name = "bound max(CPU-s/cores, serial/N)"
        cpu_per_core = serial_cpu_median / cores if serial_cpu_median is not None else None
    summary = summarise(measurements, agents, methods, bound)
    table = format_table(summary, agents, bound, serial, cpu_per_core, bound_name)
    print(table, flush=True)
    parity = _parity(measurements)
    for method, verdict in sorted(parity.items()):
        print(f"   JUnit (classname, name, outcome) of {method} against serial's: {verdict}", flush=True)
    idle = None
    if case.kind == "integration" and prepared.context.warm_stack_file is not None:
        idle = idle_stacks_cpu(prepared.context, max(agents))
        print(
            f"   {idle['agents']} idle stacks up: the machine spent {idle['cpu_seconds']:.2f} CPU-s in "
            f"{idle['seconds']:.0f} s",
            flush=True,
        )
    return {
        "case": case.name,
        "what": case.what,
        "tests": case.tests,
        "suite": prepared.description,
        "agents": list(agents),
        "methods": list(methods),
        "lower_bound": bound,
        "cores": cores,
        "serial_median": serial,
        "serial_cpu_median": serial_cpu_median,
        "summary": summary,
        "measurements": [asdict(m) for m in measurements],
        "table": table,
        "parity": parity,
        "idle_stacks": idle,
        "seconds": time.perf_counter() - started,
        "_suite": prepared.suite,
    }


def _throughput_row() -> dict[str, str]:
    """Issue 18's coordinator throughput: results a second turned into pytest reports, fake agents."""
    from benchmarks.planning import measure_planning

    bare = measure_planning()["coordinator"]["bare"]
    rate = bare["results_per_second"]
    return {
        "goal": "coordinator throughput",
        "case": "planning",
        "N": "2",
        "method": f"{rate:,.0f} results/s ({bare['tests']:,} tests, fake agents)",
        "against": "",
        "target": ">= 5,000 results/s",
        "result": "met" if rate >= 5000 else "MISSED",
    }


def _parity(measurements: Sequence[Measurement]) -> dict[str, str]:
    """Per method, every run's JUnit against serial's first: 'equal (...)' or what differs."""
    reference_run = next((m for m in measurements if m.method == SERIAL and m.junit), None)
    if reference_run is None or reference_run.junit is None:
        return {}
    reference = junit_outcomes(Path(reference_run.junit))
    verdicts: dict[str, list[str]] = {}
    for m in measurements:
        if m.method != SERIAL and m.junit:
            verdicts.setdefault(m.method, []).append(
                compare_outcomes(reference, junit_outcomes(Path(m.junit)))
            )
    return {
        method: next((v for v in found if v.startswith("DIFFERS")), found[0]) + f" ({len(found)} runs)"
        for method, found in verdicts.items()
    }


def plot(
    suite: Suite,
    summary: dict[str, dict[str, dict[str, Any]]],
    agents_list: Sequence[int],
    path: Path,
    title: str,
) -> None:
    """Wall-clock against N per method, with the lower bound; written as PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for method, by_agents in summary.items():
        points = [(n, by_agents[str(n)]["median"]) for n in agents_list]
        points = [(n, s) for n, s in points if isinstance(s, float)]
        if not points:
            continue
        style: dict[str, Any] = {"linestyle": ":", "color": "grey"} if method == SERIAL else {}
        if method.startswith("orchestrate"):
            style = {"linewidth": 2.5}
        axes.plot(*zip(*points, strict=True), marker="o", label=method, **style)
    axes.plot(
        agents_list,
        [suite.lower_bound(n) for n in agents_list],
        color="black",
        linestyle="--",
        label="lower bound",
    )
    axes.set_xscale("log", base=2)
    axes.set_xticks(list(agents_list), [str(n) for n in agents_list])
    axes.set_xlabel("N (xdist workers, split groups, orchestrate agents)")
    axes.set_ylabel("wall-clock, median (s)")
    axes.set_ylim(bottom=0)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _parse_public(text: str) -> tuple[str, Path]:
    name, _, checkout = text.partition("=")
    if name not in PUBLIC_SUITES or not checkout:
        raise argparse.ArgumentTypeError(
            f"expected NAME=CHECKOUT with NAME one of {', '.join(PUBLIC_SUITES)}"
        )
    marker = Path(checkout) / PUBLIC_SUITES[name].marker
    if not marker.is_file():
        raise argparse.ArgumentTypeError(
            f"{checkout} is not a {name} checkout (no {PUBLIC_SUITES[name].marker})"
        )
    return name, Path(checkout)


def _parse_agents(text: str) -> list[int]:
    agents = [int(part) for part in text.replace(",", " ").split()]
    if not agents or min(agents) < 1:
        raise argparse.ArgumentTypeError(f"need agent counts of at least 1: {text!r}")
    return agents


def _parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS + EXTRA_METHODS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS + EXTRA_METHODS)}"
        )
    return methods


CASES = {case.name: case for case in [*all_cases(real=True), *other_cases()]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark orchestrate against serial pytest, pytest-xdist and pytest-split.",
        epilog="Arguments after `--` go to pytest in every method (with --real or --case real).",
    )
    parser.add_argument(
        "--all", action="store_true", help="every case of issue 11's goals, one combined table"
    )
    parser.add_argument("--case", choices=sorted(CASES), help="only this case of --all")
    parser.add_argument(
        "--issue18",
        action="store_true",
        help="every target of issue 18 in one run (with --real and --public for the public suites)",
    )
    parser.add_argument(
        "--public",
        type=_parse_public,
        action="append",
        default=[],
        metavar="NAME=CHECKOUT",
        help=f"a public suite's checkout, NAME one of {', '.join(PUBLIC_SUITES)} (see benchmarks/README.md)",
    )
    parser.add_argument("--real", type=Path, metavar="CHECKOUT", help="a real suite's checkout (see README)")
    parser.add_argument(
        "--real-paths",
        nargs="*",
        default=["networkx"],
        metavar="PATH",
        help="test paths in CHECKOUT (networkx)",
    )
    parser.add_argument("--total-seconds", type=float, default=60.0, help="true serial time of the suite")
    parser.add_argument("--classes", type=int, default=60, help="test classes (orchestrate's units)")
    parser.add_argument(
        "--tests", type=int, help="tests of a trivial, startup or integration case (default: the case's)"
    )
    parser.add_argument(
        "--agents", type=_parse_agents, help="N values, e.g. 2,4,8 (default: 2,4,8 or the case's)"
    )
    parser.add_argument("--repetitions", type=int, default=3, help="interleaved repetitions per case")
    parser.add_argument(
        "--real-repetitions",
        type=int,
        metavar="K",
        help="repetitions of the real case (default: --repetitions)",
    )
    parser.add_argument(
        "--drift", type=float, default=0.5, help="recorded durations off by up to this factor"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--methods",
        type=_parse_methods,
        help=f"comma-separated, from {', '.join(METHODS + EXTRA_METHODS)} (default: {','.join(METHODS)}, or the case's)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: ~10 s suite, 1 repetition, N=2,4")
    parser.add_argument("--planning", action="store_true", help="only the planning/merge micro-benchmark")
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (default: benchmarks/out)")
    return parser


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("orchestrate", "pytest", "pytest-xdist", "pytest-split", "ray"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    found["commit"] = commit.stdout.strip() or "unknown"
    return found


def _run_cases(
    cases: Sequence[Case], args: argparse.Namespace, out: Path, argv: Sequence[str], issue18: bool = False
) -> int:
    """Run `cases` one after the other, print and write the combined table of the issue's goals.

    Issue 11's goals by default; with `issue18`, issue 18's targets, the coordinator's
    throughput (benchmarks/planning.py) measured after the cases.
    """
    machine = {**_machine(), **_versions()}
    print(
        f"{machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, orchestrate "
        f"{machine['orchestrate']} ({machine['commit']}), {machine['date']}; {args.repetitions} repetition(s)"
    )
    print("note: PYTHONDONTWRITEBYTECODE is unset in every benchmark subprocess (all methods alike)")
    shutil.rmtree(out / "logs", ignore_errors=True)
    results = []
    started = time.perf_counter()
    for case in cases:
        agents = args.agents or list(case.agents)
        methods = args.methods or list(case.methods)
        if args.tests and case.tests:
            case = dataclasses.replace(case, tests=args.tests)
        results.append(run_case(case, agents, methods, out, args))
    rows = evaluate(
        {r["case"]: r["summary"] for r in results},
        {r["case"]: r["lower_bound"] for r in results},
        ISSUE18_CHECKS if issue18 else CHECKS,
    )
    if issue18:
        rows += issue18_rows(results)
        rows.append(_throughput_row())
    if len(cases) == 1:  # one case: only its own goals
        rows = [row for row in rows if row["case"] == cases[0].name]
    goals = format_goals(rows)
    issue = "issue 18's targets" if issue18 else "issue 11's goals"
    if rows:
        print(f"\n{issue} ({args.repetitions} interleaved repetition(s) per case, medians):\n")
        print(goals)
    seconds = time.perf_counter() - started
    print(f"\nall cases took {seconds / 60:.1f} min")
    document = {
        "command": "python benchmarks/run.py " + " ".join(argv),
        "machine": machine,
        "repetitions": args.repetitions,
        "seconds": seconds,
        "goals": rows,
        "goals_table": goals,
        "cases": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
        "notes": ["PYTHONDONTWRITEBYTECODE unset in every benchmark subprocess"],
    }
    name = (
        "results-issue18.json"
        if issue18
        else "results-all.json"
        if len(cases) > 1
        else f"results-{cases[0].name}.json"
    )
    (out / name).write_text(json.dumps(document, indent=1) + "\n")
    print(f"written: {out / name}")
    return 0 if all(m["seconds"] is not None for r in results for m in r["measurements"]) else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = build_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = pytest_args
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.planning:
        from benchmarks.planning import format_planning, measure_planning

        figures = measure_planning()
        print(format_planning(figures))
        (out / "planning.json").write_text(json.dumps({**figures, "machine": _machine()}, indent=1) + "\n")
        print(f"written: {out / 'planning.json'}")
        return 0
    if args.real is not None and not (args.real / args.real_paths[0]).exists():
        print(
            f"run.py: {args.real / args.real_paths[0]} does not exist; see benchmarks/README.md",
            file=sys.stderr,
        )
        return 4
    if args.quick:
        args.repetitions = 1
    args.public = dict(args.public)
    if args.all:
        return _run_cases(all_cases(real=args.real is not None), args, out, argv)
    if args.issue18:
        cases = [
            case
            for case in ISSUE18_CASES
            if (case.kind != "real" or args.real is not None)
            and (case.kind != "public" or case.name in args.public)
        ]
        return _run_cases(cases, args, out, argv, issue18=True)
    if args.case in PUBLIC_SUITES and args.case not in args.public:
        print(f"run.py: the {args.case} case needs --public {args.case}=CHECKOUT", file=sys.stderr)
        return 4
    if args.case or args.real is not None:
        name = args.case or "real"
        if name == "real" and args.real is None:
            print("run.py: the real case needs --real CHECKOUT", file=sys.stderr)
            return 4
        return _run_cases([CASES[name]], args, out, argv)
    # The single generated suite, every method (the original benchmark; plotted).
    if args.quick:
        args.total_seconds, args.agents = 10.0, args.agents or [2, 4]
    case = Case(
        "generated",
        "generated",
        tuple(args.agents or [2, 4, 8]),
        tuple(args.methods or METHODS),
        "generated suite, every method",
        total_seconds=args.total_seconds,
        classes=args.classes,
        drift=args.drift,
    )
    shutil.rmtree(out / "logs", ignore_errors=True)
    machine = _machine()
    result = run_case(case, case.agents, case.methods, out, args)
    suite = result.pop("_suite")
    document = {"command": "python benchmarks/run.py " + " ".join(argv), "machine": machine, **result}
    (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    title = (
        f"{suite.tests} tests, {len(suite.classes)} classes, {suite.total_seconds:.0f}s serial, drift "
        f"{args.drift:.0%}; {machine['cpus']} CPUs, {args.repetitions} rep(s), {machine['date']}"
    )
    plot(suite, result["summary"], case.agents, out / "wallclock.png", title)
    if out == HERE / "out":
        shutil.copyfile(out / "wallclock.png", HERE / "wallclock.png")
    print(f"\nwritten: {out / 'results.json'}, {out / 'wallclock.png'}")
    return (
        0
        if all(m["seconds"] is not None or m["note"].startswith("n/a") for m in result["measurements"])
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
