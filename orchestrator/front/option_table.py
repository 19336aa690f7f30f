"""The option table: every option of orchestrate declared once (name, type, default, choices,
help, the `orchestrate` commands that take it, its pyproject.toml key and environment
variable). orchestrator/front/options.py builds pytest's options and the RunConfig from it,
orchestrator/front/cli_parser.py the `orchestrate` parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.front.option_types import (
    AUTO,
    agent_counts_value,
    agents_value,
    non_negative_int,
    positive_int,
    positive_seconds,
    seconds_or_zero,
    shard_value,
)

__all__ = [
    "AUTO",
    "BACKENDS",
    "BENCH",
    "DEFAULT_DURATIONS_PATH",
    "DEFAULT_MAX_CRASHES",
    "DEFAULT_STATUS_INTERVAL",
    "GROUP_BYS",
    "LIVE_MODES",
    "MERGE",
    "OPTIONS",
    "PLAN",
    "RUN",
    "SCHEDULES",
    "SHARD",
    "OptionSpec",
]

# --live / --orchestrate-live: the live status area in a terminal (orchestrator/report/live.py).
LIVE_MODES = ("auto", "on", "off")
DEFAULT_DURATIONS_PATH = ".orchestrate/durations.msgpack"
DEFAULT_MAX_CRASHES = 2
# Written out here, not imported from the planner, the model, the backends and the report: every
# pytest process loads this table through the plugin (agents' workers and pytest-xdist's too),
# and importing those packages for these names cost about 40 ms a process.
# tests/unit/test_options.py keeps them equal to SCHEDULER_KINDS, GroupBy, BACKEND_KINDS and
# orchestrator/report/status.py's interval.
SCHEDULES = ("static", "dynamic")
GROUP_BYS = ("class", "module", "file")
BACKENDS = ("local", "ray")
DEFAULT_STATUS_INTERVAL = 30.0

# The orchestrate commands an option belongs to.
RUN, PLAN, SHARD, MERGE, BENCH = "run", "plan", "shard", "merge", "bench"


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option of orchestrate, as every face declares and reads it.

    `name` is the RunConfig field and the CLI's `--name` (underscores as dashes); under pytest it
    is `--orchestrate-name` (`--agents` is the one without the prefix). `parse` turns text into
    the value (None: a string); `flag` takes no value; `repeat` collects every use in a tuple.
    """

    name: str
    help: str
    parse: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    flag: bool = False
    repeat: bool = False
    commands: frozenset[str] = frozenset({RUN, SHARD})
    pyproject: str | None = None
    env: str | None = None
    path: bool = False  # a path: from pyproject.toml, relative to the rootdir

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def pytest_flag(self) -> str:
        return "--agents" if self.name == "agents" else "--orchestrate-" + self.name.replace("_", "-")

    @property
    def pytest_dest(self) -> str:
        return self.pytest_flag.lstrip("-").replace("-", "_")

    def help_text(self) -> str:
        if self.default in (None, False, ()):
            return self.help
        return f"{self.help} (default: {self.default})"


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "agents",
        "run the suite on N orchestrate agents (each: one pytest worker, one container stack); auto: the N "
        "with the shortest predicted wall-clock, start-up included, up to the CPU count",
        parse=agents_value,
        metavar="N|auto",
        commands=frozenset(),  # each command declares its own --agents (a count, a list, a default)
    ),
    OptionSpec(
        "stack",
        "compose-format stack file: every agent brings up its own copy",
        metavar="FILE",
        commands=frozenset({RUN, SHARD, PLAN, BENCH}),
        pyproject="stack",
        path=True,
    ),
    OptionSpec(
        "timeout",
        "per-test timeout, enforced from outside: the worker is killed and replaced, the test is 'timeout'",
        parse=positive_seconds,
        metavar="SECONDS",
        pyproject="timeout",
    ),
    OptionSpec(
        "max_crashes",
        "a test that kills its worker is tried at most N times, then it is 'crashed'",
        parse=positive_int,
        default=DEFAULT_MAX_CRASHES,
        metavar="N",
        pyproject="max_crashes",
    ),
    OptionSpec(
        "reruns",
        "rerun a failed test up to N times; one that then passes is reported as passed (flaky)",
        parse=non_negative_int,
        default=0,
        metavar="N",
        pyproject="reruns",
    ),
    OptionSpec(
        "results",
        "write the machine-readable results (JSON)",
        metavar="PATH",
        commands=frozenset({RUN, SHARD, MERGE}),
    ),
    OptionSpec(
        "html",
        "write a self-contained HTML report (outcomes, timeline per agent, predicted against actual)",
        metavar="PATH",
        commands=frozenset({RUN, SHARD, MERGE}),
    ),
    OptionSpec(
        "durations",
        "duration store (msgpack) read for planning and updated after the run",
        default=DEFAULT_DURATIONS_PATH,
        metavar="PATH",
        commands=frozenset({RUN, SHARD, PLAN, MERGE, BENCH}),
        pyproject="durations",
    ),
    OptionSpec(
        "schedule",
        "dynamic: hand out units as agents free up, stealing queued units; static: the plan as is",
        default="dynamic",
        choices=SCHEDULES,
        pyproject="schedule",
    ),
    OptionSpec(
        "group_by",
        "unit of scheduling: tests of one class (module-level functions: their module), or of one "
        "module/file, always run together on one agent",
        default=GROUP_BYS[0],
        choices=GROUP_BYS,
        commands=frozenset({RUN, SHARD, PLAN, BENCH}),
        pyproject="group_by",
    ),
    OptionSpec(
        "split",
        "cut units longer than total/N into chunks run on several agents, where none of their tests uses "
        "a class- or module-scoped fixture (off by default: tests of a class may depend on each other)",
        flag=True,
        default=False,
        commands=frozenset({RUN, SHARD, PLAN, BENCH}),
        pyproject="split",
    ),
    OptionSpec(
        "split_fixture",
        "with --split: a class-, module- or package-scoped fixture that does not keep its units whole, "
        "because it may run once per chunk on each agent (a per-process set-up, such as SQLAlchemy's "
        "setup_class_methods); repeatable",
        metavar="NAME",
        repeat=True,
        default=(),
        commands=frozenset({RUN, SHARD, PLAN}),
        pyproject="split_fixtures",
    ),
    OptionSpec(
        "backend",
        "local: agents on this machine, no Ray (the default without --address); ray: Ray actors (the "
        "default with --address, RAY_ADDRESS or a warm instance of `orchestrate up`)",
        choices=BACKENDS,
        commands=frozenset({RUN}),
        pyproject="backend",
    ),
    OptionSpec(
        "address",
        "a Ray cluster to run the agents on (host:port, or ray://host:10001)",
        metavar="ADDR",
        commands=frozenset({RUN}),
        env="RAY_ADDRESS",
    ),
    OptionSpec(
        "exclude",
        "on a cluster: leave files matching PATTERN (gitignore syntax) out of the code Ray ships to the "
        "agents; .gitignore is honoured, .git, .venv and .orchestrate never go",
        metavar="PATTERN",
        repeat=True,
        default=(),
        commands=frozenset({RUN}),
    ),
    OptionSpec(
        "status_interval",
        "a status line (tests done, failures so far, each agent's phase, ETA) every SECONDS; 0: none; "
        "none with -q or with the live view",
        parse=seconds_or_zero,
        default=DEFAULT_STATUS_INTERVAL,
        metavar="SECONDS",
        pyproject="status_interval",
    ),
    OptionSpec(
        "live",
        "a live status area below pytest's output (each agent's phase, tests done, failures, ETA); "
        "auto: when stdout is a terminal and not -q",
        default=AUTO,
        choices=LIVE_MODES,
        pyproject="live",
    ),
    # The modes of a session: the `orchestrate` commands give them as values of their own.
    OptionSpec(
        "shard", "run CI runner I of N's part only", parse=shard_value, metavar="I/N", commands=frozenset()
    ),
    OptionSpec(
        "plan",
        "print the plan for these agent counts (auto: for the count --agents auto chooses), run nothing",
        parse=agent_counts_value,
        metavar="N,...|auto",
        commands=frozenset(),
    ),
    OptionSpec(
        "plot",
        "with the plan of several counts: draw the predicted makespan against N (SVG)",
        metavar="PATH",
        commands=frozenset({PLAN}),
    ),
    OptionSpec(
        "merge",
        "merge this results file (repeat for each)",
        metavar="FILE",
        repeat=True,
        default=(),
        commands=frozenset(),
    ),
)
