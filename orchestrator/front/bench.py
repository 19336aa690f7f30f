"""`orchestrate bench`: the user's own suite under orchestrate, serial pytest and pytest-xdist.

Called by commands.bench, which prints the table (report/tables.py) and writes the JSON and the
HTML page. Every method runs as a user would run it, as a subprocess whose whole wall-clock is
measured (start-up, collection, stacks, teardown included):

    orchestrate  python -m orchestrator run PATHS --agents N --results R --durations COPY [--stack F] -- ARGS
    serial       python -m pytest PATHS ARGS
    xdist        python -m pytest PATHS ARGS -n N --dist worksteal

Repetitions are interleaved: each repetition runs every (method, N) once, the order rotated per
repetition, so a slow spell of the machine hits every method alike. PYTHONDONTWRITEBYTECODE is
removed from every method's environment alike: with it set, every pytest process redoes the
assertion rewriting of every test module. Each orchestrate run plans from a fresh copy of the
duration store, so every repetition is planned from the same history and the user's store is
left as it was. Beside each measurement: the predicted makespan and the lower bound of the plan
for that N (whatif.py), which leave out start-up, hence measured minus predicted is the fixed cost.

(benchmarks/run.py is the project's own benchmark on a generated suite with more methods.)
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.model import BenchResult, BenchRow, GroupBy, Measurement
from orchestrator.planning.durations.estimate import estimate_units
from orchestrator.planning.durations.store import DurationStore
from orchestrator.planning.pipeline import collect_units
from orchestrator.planning.whatif import Prediction, predict

__all__ = ["METHODS", "BenchConfig", "BenchResult", "BenchRow", "Measurement", "failure_reason", "run_bench"]

ORCHESTRATE = "orchestrate"
SERIAL = "serial"
XDIST = "xdist"
# What `--against` may name; orchestrate itself always runs.
METHODS = (SERIAL, XDIST)
NOTE_BYTECODE = "PYTHONDONTWRITEBYTECODE is unset for every method alike"
NOTE_PREDICTED = (
    "predicted and lower bound: the plan's test time only; measured includes start-up and teardown"
)


@dataclass(frozen=True, slots=True)
class BenchSuite:
    """The suite `orchestrate bench` measures, and how orchestrate is to run it."""

    paths: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    durations_path: str = ".orchestrate/durations.msgpack"
    group_by: GroupBy = GroupBy.CLASS
    stack_file: str | None = None
    split: bool = False
    backend: str = "local"
    cwd: str = "."

    @property
    def collect_args(self) -> tuple[str, ...]:
        return (*self.paths, *self.pytest_args)


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What `orchestrate bench` was asked to measure. Built by the CLI."""

    run: BenchSuite
    agent_counts: tuple[int, ...]
    against: tuple[str, ...] = METHODS
    repetitions: int = 3
    timeout: float = 1800.0
    results: str | None = None
    html: str | None = None


def run_bench(config: BenchConfig, progress: Callable[[str], None]) -> BenchResult:
    """Collect and predict once, then time every (method, N) `config.repetitions` times.

    `progress` receives one line per finished measurement.
    """
    run = config.run
    store, _ = DurationStore.load(run.durations_path)
    units = collect_units(run.collect_args, run.group_by)
    counts = tuple(config.agent_counts)
    predictions = predict(estimate_units(units, store), (1, *counts))
    by_agents = {p.agents: p for p in predictions}
    jobs = [(ORCHESTRATE, n) for n in counts]
    if XDIST in config.against:
        jobs += [(XDIST, n) for n in counts]
    if SERIAL in config.against:
        jobs.insert(0, (SERIAL, 1))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-") as scratch:
        for repetition in range(config.repetitions):
            shift = repetition % len(jobs)
            for method, agents in jobs[shift:] + jobs[:shift]:
                command = _command(method, agents, run, scratch)
                stackless = bool(run.stack_file) and method != ORCHESTRATE
                measurement = _measure(
                    method, agents, repetition, command, env, run.cwd, config.timeout, scratch, stackless
                )
                measurements.append(measurement)
                seconds = "timed out" if measurement.seconds is None else f"{measurement.seconds:.2f} s"
                progress(
                    f"repetition {repetition + 1}/{config.repetitions}: {method} N={agents}: {seconds} "
                    f"(exit {measurement.exit_code})"
                )
    rows = tuple(
        _summarise(
            method, agents, [m for m in measurements if (m.method, m.agents) == (method, agents)], by_agents
        )
        for method, agents in sorted(jobs, key=lambda job: (job[1], job[0] != ORCHESTRATE, job[0]))
    )
    notes = [NOTE_BYTECODE, NOTE_PREDICTED]
    if run.stack_file and set(config.against):
        notes.append(
            "only orchestrate's agents get the stack: serial and xdist runs of a suite that needs it fail"
        )
    for method in dict.fromkeys(row.method for row in rows if row.failures):
        failed = [row for row in rows if row.method == method and row.failures]
        reason = next((m.reason for m in measurements if m.method == method and m.reason), "")
        notes.append(
            f"{method}: {sum(r.failures for r in failed)} of {sum(r.runs for r in failed)} run(s) on "
            f"N={','.join(str(r.agents) for r in failed)} failed, so those times are of failing runs, "
            f"not comparable; the first failure: {reason or 'timed out'}"
        )
    return BenchResult(
        rows, tuple(measurements), predictions, sum(len(u.node_ids) for u in units), tuple(notes)
    )


def _command(method: str, agents: int, run: BenchSuite, scratch: str) -> list[str]:
    """The command line of one measurement (a fresh duration store copy for orchestrate)."""
    if method == SERIAL:
        return [sys.executable, "-m", "pytest", *run.paths, *run.pytest_args]
    if method == XDIST:
        return [
            sys.executable,
            "-m",
            "pytest",
            *run.paths,
            *run.pytest_args,
            "-n",
            str(agents),
            "--dist",
            "worksteal",
        ]
    durations = os.path.join(scratch, f"durations-{agents}.msgpack")
    source = os.path.join(run.cwd, run.durations_path)
    if os.path.exists(source):
        shutil.copyfile(source, durations)
    elif os.path.exists(durations):
        os.unlink(durations)
    command = [
        sys.executable, "-m", "orchestrator", "run", *run.paths, "--agents", str(agents),
        "--backend", run.backend, "--durations", durations, "--group-by", run.group_by.value,
        "--results", os.path.join(scratch, f"results-{agents}.json"),
    ]  # fmt: skip
    if run.stack_file:
        command += ["--stack", run.stack_file]
    if run.split:
        command.append("--split")
    return [*command, "--", *run.pytest_args] if run.pytest_args else command


def _measure(
    method: str,
    agents: int,
    repetition: int,
    command: Sequence[str],
    env: dict[str, str],
    cwd: str,
    timeout: float,
    scratch: str,
    stackless: bool = False,
) -> Measurement:
    """Run `command` once, its output to a log in `scratch`; its wall-clock and exit code.

    A failed run prints, and records, why (`failure_reason`); `stackless`: a method that ran
    without the stack file the orchestrate runs got, which the reason then says first.
    """
    log = os.path.join(scratch, f"{method}-{agents}-{repetition}.log")
    with open(log, "wb") as output:
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return Measurement(method, agents, repetition, None, None)
    seconds = time.perf_counter() - started
    reason = ""
    if completed.returncode != 0:
        with open(log, encoding="utf-8", errors="replace") as stream:
            reason = failure_reason(stream.read())
        if stackless:
            reason = f"run without the stack (only orchestrate's agents get --stack): {reason}"
        print(f"orchestrate bench: {method} N={agents} exited {completed.returncode}: {reason}")
    return Measurement(method, agents, repetition, seconds, completed.returncode, reason)


_SECTION = re.compile(r"^_{3,} .+ _{3,}$|^_+ (ERROR|FAILED|test)\b")
_COUNTS = re.compile(r"^=+ (.*\d+ (passed|failed|errors?|skipped|deselected).*) =+$")


def failure_reason(output: str) -> str:
    """One line on why a pytest or orchestrate run failed, from its output.

    The first message of each failure or error section (pytest's `E   ` line, else the first line
    of the section, which is where `pytest.fail(..., pytrace=False)` and setup errors put it),
    the most common one with how many tests gave it, and pytest's counts line; else the last lines.
    """
    lines = output.strip().splitlines()
    messages: list[str] = []
    section: list[str] | None = None
    for line in [*lines, "_____ end _____"]:
        if _SECTION.match(line) or line.startswith("====="):
            if section:
                errors = [entry[1:].strip() for entry in section if entry.startswith("E ")]
                plain = [entry for entry in section if entry.strip() and not entry.startswith("[gw")]
                messages.append((errors or plain)[0].strip())
            section = [] if _SECTION.match(line) else None
        elif section is not None:
            section.append(line)
    counts = next((m.group(1) for line in reversed(lines) if (m := _COUNTS.match(line))), "")
    if not messages:
        return " | ".join([line for line in lines if line.strip()][-3:])
    message, times = Counter(messages).most_common(1)[0]
    return f"{counts + '; ' if counts else ''}most common error ({times} test{'s' if times != 1 else ''}): {message[:300]}"


def _summarise(
    method: str, agents: int, runs: list[Measurement], predictions: dict[int, Prediction]
) -> BenchRow:
    times = [m.seconds for m in runs if m.seconds is not None]
    failures = sum(1 for m in runs if m.seconds is None or m.exit_code != 0)
    prediction = predictions.get(agents)
    return BenchRow(
        method=method,
        agents=agents,
        median=statistics.median(times) if times else None,
        min=min(times, default=None),
        max=max(times, default=None),
        runs=len(runs),
        failures=failures,
        predicted=prediction.makespan if prediction else None,
        lower_bound=prediction.lower_bound if prediction else None,
    )
