"""The methods the benchmarks compare: the command each runs, and how one run of it is timed.

Called by benchmarks/run.py for every (method, N, repetition) of a case. Each method runs as a
user would type it, as subprocesses of the suite's directory, and the whole command is timed
with `time.perf_counter()`: start-up, collection, scheduling and teardown included. When the
suite records when its tests start ($BENCH_TEST_STARTS, see generate.py), the time from the
command's start to its first test is kept too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generate import STARTS_ENV

__all__ = ["EXTRA_METHODS", "METHODS", "SERIAL", "Context", "Measurement", "benchmark_env", "measure"]

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
    "orchestrate-warm",  # `orchestrate up --agents N` first (untimed); the run joins its Ray
    "orchestrate-first",  # a fresh, empty duration store: the suite's first run
    "orchestrate-second",  # the store a previous orchestrate run left: the run after it
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
    stale_store: Path | None = None  # orchestrate's store of the generated suite's stale durations
    split_durations: Path | None = None  # pytest-split's .test_durations
    history_store: Path | None = None  # for orchestrate-second: written by an earlier run
    record_starts: bool = False


def pytest_command(context: Context, *args: str) -> list[str]:
    return [str(BIN / "python"), "-m", "pytest", "-q", *args, *context.paths, *context.pytest_args]


def _orchestrate(context: Context, agents: int, store: Path | None, *extra: str) -> list[str]:
    """`orchestrate run` planning from a fresh copy of `store` (None: an empty store)."""
    copy = context.scratch / "durations.msgpack"
    copy.unlink(missing_ok=True)
    if store is not None:
        shutil.copyfile(store, copy)
    command = [
        str(BIN / "orchestrate"),
        "run",
        *context.paths,
        "--agents",
        str(agents),
        "--durations",
        str(copy),
    ]
    command += extra
    return command + (["--", *context.pytest_args] if context.pytest_args else [])


def commands(method: str, agents: int, context: Context) -> list[list[str]]:
    """The command(s) a method runs concurrently for `agents`."""
    if method == SERIAL:
        return [pytest_command(context)]
    if method.startswith("xdist-"):
        return [pytest_command(context, "-n", str(agents), "--dist", method.removeprefix("xdist-"))]
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
        # Joins the Ray instance `orchestrate up` keeps (run.py starts it, untimed).
        "orchestrate-warm": (),
        "orchestrate-first": (),
        "orchestrate-second": (),
    }
    if method not in extra:
        raise ValueError(f"unknown method {method!r}")
    if method == "orchestrate-first":
        store = None
    elif method == "orchestrate-second":
        if context.history_store is None:
            raise ValueError("orchestrate-second needs a store from a previous run")
        store = context.history_store
    else:
        store = context.stale_store
    return [_orchestrate(context, agents, store, *extra[method])]


def warm_available() -> bool:
    """Whether this orchestrate has `orchestrate up` (a Ray instance kept between runs)."""
    done = subprocess.run([str(BIN / "orchestrate"), "up", "--help"], capture_output=True)
    return done.returncode == 0


def _time_commands(
    command_list: list[list[str]], context: Context, log: Path, env: dict[str, str]
) -> tuple[float, int, float]:
    """Start every command at once: seconds until the last ends, the worst exit code, the start's wall time."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as stream:
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
    return seconds, max(codes, key=abs), wall_start


def _first_start(path: Path, wall_start: float) -> float | None:
    try:
        starts = [float(line) for line in path.read_text().split()]
    except (OSError, ValueError):
        return None
    return min(starts) - wall_start if starts else None


def measure(method: str, agents: int, repetition: int, context: Context) -> Measurement:
    """Run `method` on `agents` once and time it; a failure is a Measurement with a note."""
    command_list = commands(method, agents, context)
    warm = method == "orchestrate-warm"
    if warm:
        up = subprocess.run(
            [str(BIN / "orchestrate"), "up", "--agents", str(agents)],
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
    env = dict(context.env)
    starts = context.scratch / f"starts-{method}-n{agents}-r{repetition}.txt"
    if context.record_starts:
        starts.unlink(missing_ok=True)
        env[STARTS_ENV] = str(starts)
    try:
        seconds, code, wall_start = _time_commands(command_list, context, log, env)
    except subprocess.TimeoutExpired:
        return Measurement(method, agents, repetition, None, None, f"timed out after {context.timeout:.0f}s")
    finally:
        if warm:
            subprocess.run([str(BIN / "orchestrate"), "down"], cwd=context.suite_dir, env=context.env)
    if code != 0:
        return Measurement(method, agents, repetition, None, code, f"exit code {code}, see {log}")
    first = _first_start(starts, wall_start) if context.record_starts else None
    return Measurement(method, agents, repetition, seconds, code, first_test_seconds=first)


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
