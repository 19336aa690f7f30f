"""The methods the benchmarks compare: the command each runs, and how one run of it is timed.

Called by benchmarks/run.py for every (method, N, repetition) of a case. Each method runs as a
user would type it, as subprocesses of the suite's directory, and the whole command is timed
with `time.perf_counter()`: start-up, collection, scheduling and teardown included. When the
suite records when its tests start ($BENCH_TEST_STARTS, see generate.py), the time from the
command's start to its first test is kept too. Every run also records the CPU-seconds the whole
machine was busy meanwhile (/proc/stat: the command, the containers it talks to, and whatever
else runs), those of the command's own processes (getrusage of the children it waited for) and
those of every container of the local Docker engine (its cgroup, where readable): on a machine
shared with other work, own + containers comes closer to what the run itself cost (other users'
containers on the same engine aside).

With a stack file (the integration case), every orchestrate agent brings up its own copy inside
the timed command; the other methods get one copy, brought up before the clock starts and
removed after it stops (benchmarks/integration.py's `one_stack`), its env added to theirs.
`orchestrate-warm` is the like-for-like comparison with them: `orchestrate up --stack FILE
--agents N` brings up the agents' copies (and the coordinator's collection stack) before the
clock starts, the run borrows them, `orchestrate down` removes them after the clock stops.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.generate import STARTS_ENV

__all__ = [
    "EXTRA_METHODS",
    "METHODS",
    "SERIAL",
    "Context",
    "Measurement",
    "benchmark_env",
    "machine_busy_seconds",
    "measure",
    "orchestrate_command",
    "plan_figures",
]

BIN = Path(sys.executable).parent

SERIAL = "serial"
METHODS = (
    SERIAL,
    "xdist-load",
    "xdist-loadscope",
    "xdist-worksteal",
    "pytest-split",
    "orchestrate",
)
# Not in the default set of a single-suite run; the cases of --all pick what they compare.
EXTRA_METHODS = (
    "orchestrate-ray",  # --backend ray: a fresh local Ray instance every run
    "orchestrate-split",  # --split: long classes without class fixtures cut between agents
    "orchestrate-static",  # --schedule static: the plan as is, no work stealing
    # `orchestrate up --agents N` first (untimed): the run joins its Ray; with a stack file,
    # `orchestrate up --stack FILE --agents N`: the run borrows its warm stacks
    "orchestrate-warm",
    "orchestrate-first",  # a fresh, empty duration store: the suite's first run
    "orchestrate-second",  # the store a previous orchestrate run left: the run after it
    # --agents auto (whatever N says), from the store of an earlier run where the case keeps one
    "orchestrate-auto",
    "xdist-loadgroup",  # --dist loadgroup: each xdist_group on one worker (the test-groups case)
)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed command: which method, on how many agents, which repetition, how it went."""

    method: str
    agents: int  # 1 for serial
    repetition: int
    seconds: float | None  # None: not available or failed
    exit_code: int | None
    note: str = ""
    first_test_seconds: float | None = None  # command start to the first test's setup
    cpu_seconds: float | None = None  # the whole machine's busy CPU-seconds during the command
    process_cpu_seconds: float | None = None  # the command's own processes (not containers, not Ray's)
    container_cpu_seconds: float | None = None  # every container of the local Docker engine
    stack_seconds: float | None = None  # a non-orchestrate method's one stack: up and setup, untimed
    # orchestrate's own plan line and wall line, read from its output: the makespan its plan
    # predicted, and the test phase it measured (from the first agent ready to the last result)
    predicted_seconds: float | None = None
    test_phase_seconds: float | None = None
    reestimated_seconds: float | None = None  # a first run's makespan re-estimated at half of the tests
    junit: str | None = None  # the run's JUnit XML, where the case keeps one per run


@dataclass(frozen=True, slots=True)
class Context:
    """Where and how a case's commands run; made once per case by run.py."""

    suite_dir: Path
    scratch: Path
    logs: Path
    env: dict[str, str]
    timeout: float
    paths: tuple[str, ...] = ()  # test paths given to every method (the real suite's package)
    pytest_args: tuple[str, ...] = ()  # after `--`: to pytest in every method
    # the store `orchestrate` plans from (a fresh copy every run): a generated suite's stale
    # durations, or what the integration case's unmeasured first run left
    stale_store: Path | None = None
    split_durations: Path | None = None  # pytest-split's .test_durations
    history_store: Path | None = None  # for orchestrate-second: written by an earlier run
    record_starts: bool = False
    stack_file: Path | None = None  # relative to suite_dir: orchestrate's --stack, one copy for the others
    warm_stack_file: Path | None = None  # relative to suite_dir: orchestrate-warm's, kept by `orchestrate up`
    orchestrate_args: tuple[str, ...] = ()  # before `--`: to every orchestrate run (e.g. --split)
    ok_exit_codes: tuple[int, ...] = (0,)  # a public suite whose plain run fails tests too: (0, 1)
    junit: bool = False  # a JUnit XML per run, for the case's test-for-test comparison with serial


def pytest_command(context: Context, *args: str) -> list[str]:
    return [str(BIN / "python"), "-m", "pytest", "-q", *args, *context.paths, *context.pytest_args]


def orchestrate_command(
    context: Context, agents: int | str, durations: Path, *extra: str, pytest_extra: Sequence[str] = ()
) -> list[str]:
    """`orchestrate run` of the case's paths on `agents`, with `durations` as its store."""
    command = [
        str(BIN / "orchestrate"),
        "run",
        *context.paths,
        "--agents",
        str(agents),
        "--durations",
        str(durations),
    ]
    if context.stack_file is not None:
        command += ["--stack", str(context.stack_file)]
    command += [*context.orchestrate_args, *extra]
    after = [*context.pytest_args, *pytest_extra]
    return command + (["--", *after] if after else [])


def _orchestrate(
    context: Context, agents: int | str, store: Path | None, *extra: str, pytest_extra: Sequence[str] = ()
) -> list[str]:
    """`orchestrate run` planning from a fresh copy of `store` (None: an empty store)."""
    copy = context.scratch / "durations.msgpack"
    copy.unlink(missing_ok=True)
    if store is not None:
        shutil.copyfile(store, copy)
    return orchestrate_command(context, agents, copy, *extra, pytest_extra=pytest_extra)


def commands(
    method: str, agents: int, context: Context, junit: Path | None = None, stack_args: Sequence[str] = ()
) -> list[list[str]]:
    """The command(s) a method runs concurrently for `agents`, with `junit` as their JUnit XML.

    `stack_args` are the stack's pytest_args rendered for the one stack a method other than
    orchestrate's runs against (orchestrate renders them for each agent itself).
    """
    report = ["--junitxml", str(junit)] if junit is not None else []
    if method == SERIAL:
        return [pytest_command(context, *report, *stack_args)]
    if method.startswith("xdist-"):
        return [
            pytest_command(
                context, "-n", str(agents), "--dist", method.removeprefix("xdist-"), *report, *stack_args
            )
        ]
    if method == "pytest-split":
        if context.split_durations is None:
            raise ValueError("pytest-split needs recorded durations: only on generated suites")
        return [
            pytest_command(
                context,
                "--splits",
                str(agents),
                "--group",
                str(group),
                "--splitting-algorithm",
                "least_duration",
                "--durations-path",
                str(context.split_durations),
            )
            for group in range(1, agents + 1)
        ]
    extra = {
        "orchestrate": (),
        "orchestrate-ray": ("--backend", "ray"),
        "orchestrate-split": ("--split",),
        "orchestrate-static": ("--schedule", "static"),
        # Joins the Ray instance `orchestrate up` keeps, or borrows its warm stacks (untimed).
        "orchestrate-warm": (),
        "orchestrate-first": (),
        "orchestrate-second": (),
        "orchestrate-auto": (),
    }
    if method not in extra:
        raise ValueError(f"unknown method {method!r}")
    if method == "orchestrate-first":
        store = None
    elif method == "orchestrate-second":
        if context.history_store is None:
            raise ValueError("orchestrate-second needs a store from a previous run")
        store = context.history_store
    elif method == "orchestrate-auto":
        store = context.history_store or context.stale_store
    else:
        store = context.stale_store
    if method == "orchestrate-warm" and context.warm_stack_file is not None:
        context = replace(context, stack_file=context.warm_stack_file)
    count: int | str = "auto" if method == "orchestrate-auto" else agents
    return [_orchestrate(context, count, store, *extra[method], pytest_extra=report)]


def warm_available() -> bool:
    """Whether this orchestrate has `orchestrate up` (a Ray instance kept between runs)."""
    done = subprocess.run([str(BIN / "orchestrate"), "up", "--help"], capture_output=True)
    return done.returncode == 0


@dataclass(frozen=True, slots=True)
class _Timed:
    """What one timed run of a method's commands gave."""

    seconds: float
    exit_code: int
    wall_start: float  # time.time() at the start, for the first test's offset
    cpu_seconds: float | None
    process_cpu_seconds: float
    container_cpu_seconds: float | None


def _time_commands(command_list: list[list[str]], context: Context, log: Path, env: dict[str, str]) -> _Timed:
    """Start every command at once; time them until the last ends, with the CPU-seconds meanwhile."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as stream:
        busy_before = machine_busy_seconds()
        children_before = _children_cpu_seconds()
        containers_before = _containers_cpu_seconds()
        wall_start = time.time()
        start = time.perf_counter()
        processes = [
            subprocess.Popen(
                command,
                cwd=context.suite_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
            for command in command_list
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
        busy_after = machine_busy_seconds()
        containers_after = _containers_cpu_seconds()
    busy = None if busy_before is None or busy_after is None else busy_after - busy_before
    children = _children_cpu_seconds() - children_before
    containers = (
        None
        if containers_before is None or containers_after is None
        else containers_after - containers_before
    )
    return _Timed(seconds, max(codes, key=abs), wall_start, busy, children, containers)


def machine_busy_seconds() -> float | None:
    """CPU-seconds every core of this machine has been busy since boot (/proc/stat); None elsewhere.

    Busy is user + nice + system + irq + softirq + steal: all but idle and iowait (guest time is
    already inside user).
    """
    try:
        with open("/proc/stat", encoding="ascii") as stream:
            fields = stream.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# The parent cgroup of Docker's containers with the cgroupfs driver (v1, then v2). Its usage
# keeps what removed containers used, so it also counts stacks that came and went meanwhile.
_DOCKER_CGROUP_USAGE = (
    (Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage"), 1e-9),  # nanoseconds
    (Path("/sys/fs/cgroup/docker/cpu.stat"), 1e-6),  # usage_usec
)


def _containers_cpu_seconds() -> float | None:
    """CPU-seconds every container of the local Docker engine has used; None where unreadable."""
    for path, unit in _DOCKER_CGROUP_USAGE:
        try:
            text = path.read_text(encoding="ascii")
        except OSError:
            continue
        if path.name == "cpu.stat":
            usage = dict(line.split() for line in text.splitlines() if line.strip())
            text = usage.get("usage_usec", "")
        try:
            return int(text) * unit
        except ValueError:
            continue
    return None


def _first_start(path: Path, wall_start: float) -> float | None:
    try:
        starts = [float(line) for line in path.read_text().split()]
    except (OSError, ValueError):
        return None
    return min(starts) - wall_start if starts else None


def measure(method: str, agents: int, repetition: int, context: Context) -> Measurement:
    """Run `method` on `agents` once and time it; a failure is a Measurement with a note.

    With a stack file, a method other than orchestrate's runs against one copy of the stack,
    brought up before the clock starts and removed after it stops.
    """
    if context.stack_file is None or method.startswith("orchestrate"):
        return _measure(method, agents, repetition, context)
    from benchmarks.integration import one_stack
    from orchestrator.protocol.errors import StackError

    run_id = f"bench-{os.getpid()}-{method}-n{agents}-r{repetition}"
    try:
        with one_stack(context.suite_dir / context.stack_file, context.suite_dir, run_id) as (endpoints, up):
            return _measure(method, agents, repetition, context, endpoints.env, endpoints.pytest_args, up)
    except StackError as exc:
        return Measurement(method, agents, repetition, None, None, f"its stack failed: {exc}")


def _measure(
    method: str,
    agents: int,
    repetition: int,
    context: Context,
    stack_env: dict[str, str] | None = None,
    stack_args: Sequence[str] = (),
    stack_seconds: float | None = None,
) -> Measurement:
    junit = context.logs / f"{method}-n{agents}-r{repetition}.xml" if context.junit else None
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.unlink(missing_ok=True)
    command_list = commands(method, agents, context, junit, stack_args)
    warm = method == "orchestrate-warm"
    if warm:
        warm_stack = context.warm_stack_file or context.stack_file
        stack = ["--stack", str(warm_stack)] if warm_stack is not None else []
        up = subprocess.run(
            [str(BIN / "orchestrate"), "up", "--agents", str(agents), *stack],
            cwd=context.suite_dir,
            env=context.env,
            capture_output=True,
            text=True,
        )
        if up.returncode != 0:
            return Measurement(
                method, agents, repetition, None, up.returncode, "n/a: `orchestrate up` failed"
            )
    log = context.logs / f"{method}-n{agents}-r{repetition}.log"
    env = {**context.env, **(stack_env or {})}
    starts = context.scratch / f"starts-{method}-n{agents}-r{repetition}.txt"
    if context.record_starts:
        starts.unlink(missing_ok=True)
        env[STARTS_ENV] = str(starts)
    try:
        timed = _time_commands(command_list, context, log, env)
    except subprocess.TimeoutExpired:
        return Measurement(method, agents, repetition, None, None, f"timed out after {context.timeout:.0f}s")
    finally:
        if warm:
            subprocess.run([str(BIN / "orchestrate"), "down"], cwd=context.suite_dir, env=context.env)
    ok = timed.exit_code in context.ok_exit_codes
    output = log.read_text(errors="replace") if method.startswith("orchestrate") else ""
    predicted, test_phase = plan_figures(output)
    reestimated = re.search(r"re-estimated ([\d.]+)s at half of the tests", output)
    return Measurement(
        method,
        agents,
        repetition,
        timed.seconds if ok else None,
        timed.exit_code,
        "" if ok else f"exit code {timed.exit_code}, see {log}",
        first_test_seconds=_first_start(starts, timed.wall_start) if ok and context.record_starts else None,
        cpu_seconds=timed.cpu_seconds,
        process_cpu_seconds=timed.process_cpu_seconds,
        container_cpu_seconds=timed.container_cpu_seconds,
        stack_seconds=stack_seconds,
        predicted_seconds=predicted,
        test_phase_seconds=test_phase,
        reestimated_seconds=float(reestimated.group(1)) if reestimated else None,
        junit=str(junit) if junit is not None and junit.exists() else None,
    )


def plan_figures(output: str) -> tuple[float | None, float | None]:
    """(the makespan orchestrate's plan predicted, the test phase it measured) from its output.

    The plan line says `predicted 12.3s`; the wall line of orchestrate's summary section starts
    with `wall 12.3s`. A run in this process (`--agents auto: in this process: predicted 4.3s`)
    has no wall line: its test phase is pytest's session, the time on its last line. Either is
    None when the output has none.
    """
    predicted = re.search(r"predicted ([\d.]+)s", output)
    test_phase = re.search(r"^wall ([\d.]+)s", output, re.M)
    if test_phase is None and "--agents auto: in this process" in output:
        # no agents, no wall line: the test phase is pytest's own session, its last line's time
        predicted = re.search(r"in this process: predicted ([\d.]+)s", output)
        session = (re.findall(r"^=* ?\d+ \w+.* in ([\d.]+)s\b", output, re.M) or [None])[-1]
        return (float(predicted.group(1)) if predicted else None, float(session) if session else None)
    return (
        float(predicted.group(1)) if predicted else None,
        float(test_phase.group(1)) if test_phase else None,
    )


def benchmark_env() -> dict[str, str]:
    """This environment without what would treat the methods unequally."""
    env = dict(os.environ)
    # Set in this environment; with it every pytest process (every xdist worker, every split
    # group, every orchestrate worker) would redo assertion rewriting of every test module.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_AUTO_NUM_WORKERS", None)
    env.pop("RAY_ADDRESS", None)  # orchestrate's default is local agents; -ray starts its own
    env.pop(STARTS_ENV, None)
    return env
