"""Wall-clock of orchestrate against serial pytest, pytest-xdist and pytest-split, side by side.

    python benchmarks/run.py                       # 60 s suite, N = 2 4 8, 3 repetitions
    python benchmarks/run.py --quick               # ~10 s suite, N = 2 4, 1 repetition (smoke test)
    python benchmarks/run.py --agents 8 --repetitions 1 --methods serial,xdist-load,orchestrate
    python benchmarks/run.py --planning            # planning time and merge memory at 100,000 tests

One suite is generated (benchmarks/generate.py) with stale recorded durations, then every
method runs it as a user would, as a subprocess whose whole wall-clock is measured: start-up,
collection, scheduling, teardown included. Repetitions are interleaved: each repetition runs
serial pytest once, then every (N, method) pair, the method order rotated per repetition, so a
slow spell of the machine hits every method alike. Medians are reported against the lower
bound max(true total / N, longest class), which no schedule can beat.

PYTHONDONTWRITEBYTECODE is removed from every benchmark subprocess's environment (all methods
alike): with it set, every pytest process redoes assertion rewriting of every test module.

Writes benchmarks/out/results.json and benchmarks/out/wallclock.png (copied to
benchmarks/wallclock.png for the README).
"""

from __future__ import annotations

import argparse
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

from benchmarks.generate import (  # noqa: E402
    ORCHESTRATE_DURATIONS,
    SPLIT_DURATIONS,
    Suite,
    make_suite,
    recorded_durations,
    write_durations,
    write_suite,
)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent

SERIAL = "serial"
METHODS = (
    SERIAL,
    "xdist-load",
    "xdist-loadscope",
    "xdist-worksteal",
    "pytest-split",
    "orchestrate",
    "orchestrate-warm",
)
# Not run unless asked for: they explain orchestrate's figures rather than compete.
EXTRA_METHODS = ("orchestrate-static", "orchestrate-local")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed command: which method, on how many agents, which repetition, how it went."""

    method: str
    agents: int  # 1 for serial
    repetition: int
    seconds: float | None  # None: not available or failed
    exit_code: int | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Context:
    suite_dir: Path
    scratch: Path
    logs: Path
    env: dict[str, str]
    timeout: float
    warm_available: bool


# -- the commands --------------------------------------------------------------------------


def _pytest(*args: str) -> list[str]:
    return [str(BIN / "python"), "-m", "pytest", "-q", *args]


def _orchestrate(context: _Context, agents: int, *extra: str) -> list[str]:
    # Each run plans from the same stale history: orchestrate updates its store after a run.
    store = context.scratch / "durations.msgpack"
    shutil.copyfile(context.suite_dir / ORCHESTRATE_DURATIONS, store)
    return [str(BIN / "orchestrate"), "run", ".", "--agents", str(agents), "--durations", str(store), *extra]


def _commands(method: str, agents: int, context: _Context) -> list[list[str]] | None:
    """The command(s) a method runs concurrently for `agents`, or None if it is unavailable."""
    split_durations = str(context.suite_dir / SPLIT_DURATIONS)
    if method == SERIAL:
        return [_pytest()]
    if method.startswith("xdist-"):
        return [_pytest("-n", str(agents), "--dist", method.removeprefix("xdist-"))]
    if method == "pytest-split":
        return [
            _pytest(
                "--splits",
                str(agents),
                "--group",
                str(group),
                "--splitting-algorithm",
                "least_duration",
                "--durations-path",
                split_durations,
            )
            for group in range(1, agents + 1)
        ]
    if method == "orchestrate":
        return [_orchestrate(context, agents)]
    if method == "orchestrate-static":
        return [_orchestrate(context, agents, "--schedule", "static")]
    if method == "orchestrate-local":
        return [_orchestrate(context, agents, "--backend", "local")]
    if method == "orchestrate-warm":
        if not context.warm_available:
            return None
        # The Ray instance and agent actors kept up by `orchestrate up --agents N`, which `run`
        # joins by itself; only the run is timed (pytest workers and stacks start per run).
        return [_orchestrate(context, agents)]
    raise ValueError(f"unknown method {method!r}")


def _warm_available() -> bool:
    """Whether this orchestrate has `orchestrate up` (a Ray instance kept between runs)."""
    done = subprocess.run([str(BIN / "orchestrate"), "up", "--help"], capture_output=True)
    return done.returncode == 0


def _time_commands(commands: list[list[str]], context: _Context, log: Path) -> tuple[float, int]:
    """Start every command at once; the wall-clock until the last one ends, and the worst exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as stream:
        start = time.perf_counter()
        processes = [
            subprocess.Popen(
                command,
                cwd=context.suite_dir,
                env=context.env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
            for command in commands
        ]
        deadline = start + context.timeout
        codes = []
        for process in processes:
            try:
                codes.append(process.wait(timeout=max(0.0, deadline - time.perf_counter())))
            except subprocess.TimeoutExpired:
                for other in processes:
                    other.kill()
                    other.wait()
                raise
        seconds = time.perf_counter() - start
    return seconds, max(codes, key=abs)


def _measure(method: str, agents: int, repetition: int, context: _Context) -> Measurement:
    commands = _commands(method, agents, context)
    if commands is None:
        return Measurement(method, agents, repetition, None, None, "n/a: no `orchestrate up`")
    warm = method == "orchestrate-warm"
    if warm:
        subprocess.run(
            [str(BIN / "orchestrate"), "up", "--agents", str(agents)],
            cwd=context.suite_dir,
            env=context.env,
            check=True,
            capture_output=True,
        )
    log = context.logs / f"{method}-n{agents}-r{repetition}.log"
    try:
        seconds, code = _time_commands(commands, context, log)
    except subprocess.TimeoutExpired:
        return Measurement(method, agents, repetition, None, None, f"timed out after {context.timeout:.0f}s")
    finally:
        if warm:
            subprocess.run([str(BIN / "orchestrate"), "down"], cwd=context.suite_dir, env=context.env)
    if code != 0:
        return Measurement(method, agents, repetition, None, code, f"exit code {code}, see {log}")
    return Measurement(method, agents, repetition, seconds, code)


def _benchmark_env() -> dict[str, str]:
    env = dict(os.environ)
    # Set in this environment; with it every pytest process (every xdist worker, every split
    # group, every orchestrate worker) would redo assertion rewriting of every test module.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_AUTO_NUM_WORKERS", None)
    return env


# -- the run -------------------------------------------------------------------------------


def run_all(
    suite: Suite,
    agents_list: Sequence[int],
    methods: Sequence[str],
    repetitions: int,
    context: _Context,
    progress: Callable[[Measurement], None],
) -> list[Measurement]:
    """Every repetition: serial once, then each (N, method), the method order rotated."""
    parallel = [m for m in methods if m != SERIAL]
    measurements = []
    for repetition in range(repetitions):
        if SERIAL in methods:
            measurements.append(_measure(SERIAL, 1, repetition, context))
            progress(measurements[-1])
        shift = repetition % len(parallel) if parallel else 0
        order = parallel[shift:] + parallel[:shift]
        for agents in agents_list:
            for method in order:
                measurements.append(_measure(method, agents, repetition, context))
                progress(measurements[-1])
    return measurements


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise(
    suite: Suite, measurements: Sequence[Measurement], agents_list: Sequence[int], methods: Sequence[str]
) -> dict[str, dict[str, dict[str, float | None | str]]]:
    """{method: {N: {"median": s, "ratio": s / lower bound, "runs": k}}}."""
    summary: dict[str, dict[str, dict[str, float | None | str]]] = {}
    for method in methods:
        summary[method] = {}
        for agents in agents_list:
            on = 1 if method == SERIAL else agents
            runs = [m for m in measurements if m.method == method and m.agents == on]
            median = _median([m.seconds for m in runs if m.seconds is not None])
            notes = sorted({m.note for m in runs if m.note})
            summary[method][str(agents)] = {
                "median": median,
                "ratio": None if median is None else median / suite.lower_bound(agents),
                "runs": len([m for m in runs if m.seconds is not None]),
                "note": "; ".join(notes),
            }
    return summary


def format_table(
    suite: Suite,
    summary: dict[str, dict[str, dict[str, float | None | str]]],
    agents_list: Sequence[int],
    serial_median: float | None,
) -> str:
    """The table run.py prints and the README shows: median seconds (x lower bound) per N."""
    header = ["method"] + [f"N={n}" for n in agents_list]
    rows = [["lower bound max(total/N, longest)"] + [f"{suite.lower_bound(n):.1f}s" for n in agents_list]]
    if serial_median is not None:
        rows.append(
            ["serial measured / N"]
            + [
                f"{serial_median / n:.1f}s ({serial_median / n / suite.lower_bound(n):.2f}x)"
                for n in agents_list
            ]
        )
    for method, by_agents in summary.items():
        cells = []
        for n in agents_list:
            cell = by_agents[str(n)]
            median, ratio = cell["median"], cell["ratio"]
            if isinstance(median, float) and isinstance(ratio, float):
                cells.append(f"{median:.1f}s ({ratio:.2f}x)")
            else:
                cells.append("n/a" if "n/a" in str(cell["note"]) else "failed")
        rows.append([method] + cells)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def plot(
    suite: Suite,
    summary: dict[str, dict[str, dict[str, float | None | str]]],
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark orchestrate against serial pytest, pytest-xdist and pytest-split."
    )
    parser.add_argument("--total-seconds", type=float, default=60.0, help="true serial time of the suite")
    parser.add_argument("--classes", type=int, default=60, help="test classes (orchestrate's units)")
    parser.add_argument("--agents", type=_parse_agents, default=[2, 4, 8], help="N values, e.g. 2,4,8")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--drift", type=float, default=0.5, help="recorded durations off by up to this factor"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--methods",
        type=_parse_methods,
        default=list(METHODS),
        help=f"comma-separated, from {', '.join(METHODS + EXTRA_METHODS)} (default: {','.join(METHODS)})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: ~10 s suite, 1 repetition, N=2,4")
    parser.add_argument("--planning", action="store_true", help="only the planning/merge micro-benchmark")
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (default: benchmarks/out)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.planning:
        from benchmarks.planning import format_planning, measure_planning

        figures = measure_planning()
        print(format_planning(figures))
        (out / "planning.json").write_text(json.dumps({**figures, "machine": _machine()}, indent=1) + "\n")
        print(f"written: {out / 'planning.json'}")
        return 0
    if args.quick:
        args.total_seconds, args.repetitions, args.agents = 10.0, 1, [2, 4]
    suite = make_suite(args.classes, args.total_seconds, seed=args.seed)
    suite_dir = out / "suite"
    shutil.rmtree(suite_dir, ignore_errors=True)
    write_suite(suite, suite_dir)
    write_durations(recorded_durations(suite, args.drift), suite_dir)
    scratch = out / "scratch"
    scratch.mkdir(exist_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    context = _Context(
        suite_dir=suite_dir,
        scratch=scratch,
        logs=out / "logs",
        env=_benchmark_env(),
        timeout=max(300.0, 5 * args.total_seconds + 120),
        warm_available=_warm_available(),
    )
    machine = _machine()
    print(
        f"suite: {suite.tests} tests in {len(suite.classes)} classes, {suite.total_seconds:.1f}s serial "
        f"(longest class {suite.longest_unit_seconds:.1f}s), recorded durations off by up to {args.drift:.0%}; "
        f"N = {' '.join(map(str, args.agents))}, {args.repetitions} repetition(s); "
        f"{machine['cpus']} CPUs, {machine['date']}"
    )
    print("note: PYTHONDONTWRITEBYTECODE is unset in every benchmark subprocess (all methods alike)")
    if "orchestrate-warm" in args.methods and not context.warm_available:
        print("note: orchestrate-warm is n/a: this orchestrate has no `orchestrate up`")
    # Unmeasured: compile the suite's modules (and their rewritten asserts) into __pycache__
    # once, so the first measured method does not pay for what later ones reuse.
    subprocess.run(_pytest("--collect-only"), cwd=suite_dir, env=context.env, capture_output=True, check=True)

    def progress(m: Measurement) -> None:
        took = f"{m.seconds:7.2f}s" if m.seconds is not None else f"   {m.note}"
        print(f"  rep {m.repetition + 1} N={m.agents:<2} {m.method:<20}{took}", flush=True)

    measurements = run_all(suite, args.agents, args.methods, args.repetitions, context, progress)
    summary = summarise(suite, measurements, args.agents, args.methods)
    serial_median = _median([m.seconds for m in measurements if m.method == SERIAL and m.seconds is not None])
    table = format_table(suite, summary, args.agents, serial_median)
    print()
    print(table)

    command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    document = {
        "command": command.strip(),
        "machine": machine,
        "suite": {
            "tests": suite.tests,
            "classes": len(suite.classes),
            "total_seconds": suite.total_seconds,
            "longest_unit_seconds": suite.longest_unit_seconds,
            "drift": args.drift,
            "seed": args.seed,
        },
        "agents": args.agents,
        "repetitions": args.repetitions,
        "lower_bound": {str(n): suite.lower_bound(n) for n in args.agents},
        "serial_median": serial_median,
        "summary": summary,
        "measurements": [asdict(m) for m in measurements],
        "table": table,
        "notes": ["PYTHONDONTWRITEBYTECODE unset in every benchmark subprocess"],
    }
    (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    title = (
        f"{suite.tests} tests, {len(suite.classes)} classes, {suite.total_seconds:.0f}s serial, drift "
        f"{args.drift:.0%}; {machine['cpus']} CPUs, {args.repetitions} rep(s), {machine['date']}"
    )
    plot(suite, summary, args.agents, out / "wallclock.png", title)
    if out == HERE / "out":
        shutil.copyfile(out / "wallclock.png", HERE / "wallclock.png")
    print(f"\nwritten: {out / 'results.json'}, {out / 'wallclock.png'}")
    return 0 if all(m.seconds is not None or m.note.startswith("n/a") for m in measurements) else 1


if __name__ == "__main__":
    raise SystemExit(main())
