"""orchestrate's options: one table of specs, read once into a frozen RunConfig.

`OPTIONS` is the one place an option is declared (name, type, default, choices, help, the
orchestrate commands that take it, its pyproject.toml key and environment variable). Three
faces read it, and `build_run_config` turns what was given into one RunConfig:

    orchestrate run --timeout 5                  argparse, built from the table (cli_parser.py)
    pytest --agents 4 --orchestrate-timeout=5    pytest options, built from the table (add_options)
    [tool.orchestrate] timeout = 5               pyproject.toml in pytest's rootdir, read once

A value given on the command line wins over the environment variable, which wins over
pyproject.toml, which wins over the default. `orchestrate run` parses its own arguments into
typed values and hands them to the pytest session as a plugin object (`GivenOptions`): no option
is turned into text and parsed back. Every option but `--agents` carries the `orchestrate-`
prefix under pytest, so none clashes with another plugin's (pytest-timeout's `--timeout`,
pytest-rerunfailures' `--reruns`, pytest's own `--durations`).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backends import BACKEND_KINDS
from orchestrator.groups import GroupSpec, groups_of_table
from orchestrator.model import GroupBy, OutputPaths
from orchestrator.protocol.errors import UsageError
from orchestrator.report.status import DEFAULT_STATUS_INTERVAL
from orchestrator.scheduling import SCHEDULER_KINDS

__all__ = [
    "AUTO",
    "DEFAULT_DURATIONS_PATH",
    "LIVE_MODES",
    "DEFAULT_MAX_CRASHES",
    "OPTIONS",
    "GivenOptions",
    "OptionSpec",
    "RunConfig",
    "add_options",
    "args_for_workers",
    "build_run_config",
    "given_options",
    "read_pyproject",
]

AUTO = "auto"
# --live / --orchestrate-live: the live status area in a terminal (orchestrator/report/live.py).
LIVE_MODES = ("auto", "on", "off")
DEFAULT_DURATIONS_PATH = ".orchestrate/durations.msgpack"
DEFAULT_MAX_CRASHES = 2

# The orchestrate commands an option belongs to.
RUN, PLAN, SHARD, MERGE, BENCH = "run", "plan", "shard", "merge", "bench"


# --- value types: each turns the text of a command line or an environment variable into a value;
# argparse (the CLI's and pytest's) shows their ArgumentTypeError as a one-line usage error.


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {value}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def positive_seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _seconds_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


positive_int = _whole_number(1)
non_negative_int = _whole_number(0)


def agents_value(text: str) -> int | str:
    """A positive number of agents, or "auto"."""
    return AUTO if text.strip().lower() == AUTO else positive_int(text)


def agent_counts_value(text: str) -> tuple[int, ...] | str:
    """ "auto", one agent count, a list (1,2,4,8) or a range (1-16)."""
    if text.strip().lower() == AUTO:
        return AUTO
    from orchestrator.whatif import parse_agent_counts

    try:
        return parse_agent_counts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def shard_value(text: str) -> tuple[int, int]:
    """`I/N`: CI runner I (1-based) of N."""
    index, slash, total = text.partition("/")
    try:
        position = (int(index), int(total))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not I/N: {text!r}") from None
    if not slash or not 1 <= position[0] <= position[1]:
        raise argparse.ArgumentTypeError(f"not I/N with 1 <= I <= N: {text!r}")
    return position


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
        choices=SCHEDULER_KINDS,
        pyproject="schedule",
    ),
    OptionSpec(
        "group_by",
        "unit of scheduling: tests of one class (module-level functions: their module), or of one "
        "module/file, always run together on one agent",
        default=GroupBy.CLASS.value,
        choices=tuple(g.value for g in GroupBy),
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
        "backend",
        "local: agents on this machine, no Ray (the default without --address); ray: Ray actors (the "
        "default with --address, RAY_ADDRESS or a warm instance of `orchestrate up`)",
        choices=BACKEND_KINDS,
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
        parse=_seconds_or_zero,
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

_SPECS = {spec.name: spec for spec in OPTIONS}


@dataclass(frozen=True, slots=True)
class RunConfig:
    """orchestrate's options of one session, read once."""

    agents: int | None  # None: --agents auto (orchestrator/sizing.py chooses)
    stack_file: str | None
    timeout: float | None
    max_crashes: int
    reruns: int
    results: str | None
    durations: str
    schedule: str
    group_by: GroupBy
    split: bool
    backend: str
    address: str | None
    shard: tuple[int, int] | None
    planning: bool  # `orchestrate plan`: print the plan (for plan_counts, or auto if empty), run nothing
    plan_counts: tuple[int, ...]
    plot: str | None
    merge: tuple[str, ...]
    html: str | None
    excludes: tuple[str, ...]
    # Seconds between status lines (orchestrator/report/status.py); 0: none.
    status_interval: float = DEFAULT_STATUS_INTERVAL
    # The live status area: "on", "off", or "auto" (on when stdout is a terminal and not -q).
    live: str = AUTO
    # The test groups of [tool.orchestrate.groups] (orchestrator/groups.py).
    groups: tuple[GroupSpec, ...] = ()

    @property
    def outputs(self) -> OutputPaths:
        return OutputPaths(self.results, self.html, self.durations)


class GivenOptions:
    """What `orchestrate run/plan/shard/merge` was given, as typed values, handed to its pytest
    session as a plugin object (pytest registers it before it parses its command line)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        unknown = set(values) - set(_SPECS)
        if unknown:
            raise ValueError(f"not orchestrate options: {sorted(unknown)}")
        self.values = dict(values)


def add_options(parser: pytest.Parser) -> None:
    """Register the table's options as pytest options; called by the plugin's pytest_addoption."""
    group = parser.getgroup("orchestrate", "orchestrate: run on N agents, each with its own stack")
    for spec in OPTIONS:
        kwargs: dict[str, Any] = {"help": spec.help_text(), "dest": spec.pytest_dest}
        if spec.flag:
            kwargs.update(action="store_true", default=None)
        else:
            kwargs.update(default=None, metavar=spec.metavar)
            if spec.repeat:
                kwargs["action"] = "append"
            if spec.parse is not None:
                kwargs["type"] = spec.parse
            if spec.choices:
                kwargs["choices"] = list(spec.choices)
        group.addoption(spec.pytest_flag, **kwargs)


def given_options(config: pytest.Config, early: bool = False) -> dict[str, Any]:
    """The options this session was given: `orchestrate`'s values, else pytest's parsed options
    (`early`: pytest's first parse, before pytest_configure). Not given: absent."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, GivenOptions):
            return dict(plugin.values)
    namespace = config.known_args_namespace if early else config.option
    values = {spec.name: getattr(namespace, spec.pytest_dest, None) for spec in OPTIONS}
    return {name: value for name, value in values.items() if value is not None}


def is_coordinator(given: Mapping[str, Any]) -> bool:
    """A session given --agents, a plan or results files to merge drives orchestrate's run."""
    return any(given.get(name) for name in ("agents", "plan", "merge"))


def build_run_config(
    given: Mapping[str, Any], rootpath: Path, environ: Mapping[str, str] | None = None
) -> RunConfig:
    """One RunConfig from what was given, the environment, pyproject.toml and the defaults."""
    environ = os.environ if environ is None else environ
    settings = read_pyproject(rootpath)

    def value(name: str) -> Any:
        spec = _SPECS[name]
        if given.get(name) not in (None, ()):
            return tuple(given[name]) if spec.repeat else given[name]
        if spec.env and environ.get(spec.env):
            return _from_text(spec, environ[spec.env], spec.env)
        if spec.pyproject and spec.pyproject in settings:
            return _from_pyproject(spec, settings[spec.pyproject], rootpath)
        return spec.default

    agents, plan = value("agents"), value("plan")
    address = value("address") or None
    return RunConfig(
        agents=None if agents in (None, AUTO) else int(agents),
        stack_file=value("stack"),
        timeout=value("timeout"),
        max_crashes=value("max_crashes"),
        reruns=value("reruns"),
        results=value("results"),
        durations=value("durations"),
        schedule=value("schedule"),
        group_by=GroupBy(value("group_by")),
        split=bool(value("split")),
        backend=value("backend") or _default_backend(address),
        address=address,
        shard=value("shard"),
        planning=plan is not None,
        plan_counts=() if plan in (None, AUTO) else tuple(plan),
        plot=value("plot"),
        merge=tuple(value("merge")),
        html=value("html"),
        excludes=tuple(value("exclude")),
        status_interval=float(value("status_interval")),
        live=value("live"),
        groups=_groups(settings, rootpath),
    )


def _groups(settings: Mapping[str, Any], rootpath: Path) -> tuple[GroupSpec, ...]:
    """[tool.orchestrate.groups]: the test groups, checked (a mistake is one line, exit 4)."""
    try:
        return groups_of_table(settings.get("groups", {}), f"{rootpath / 'pyproject.toml'}")
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _from_text(spec: OptionSpec, text: str, source: str) -> Any:
    if spec.parse is None:
        return text
    try:
        return spec.parse(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None


def _from_pyproject(spec: OptionSpec, raw: Any, rootpath: Path) -> Any:
    """A [tool.orchestrate] value, checked against the spec as its text form would be."""
    where = f"{rootpath / 'pyproject.toml'}: [tool.orchestrate] {spec.pyproject}"
    if spec.flag:
        if not isinstance(raw, bool):
            raise pytest.UsageError(f"{where} must be true or false")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise pytest.UsageError(f"{where} must be a string or a number")
    text = str(raw)
    if spec.choices and text not in spec.choices:
        raise pytest.UsageError(f"{where} must be one of {', '.join(spec.choices)}, not {text!r}")
    if spec.path:
        return str(rootpath / text)
    return _from_text(spec, text, where)


def read_pyproject(rootpath: Path) -> dict[str, Any]:
    """[tool.orchestrate] of pyproject.toml in `rootpath` (empty without one)."""
    path = rootpath / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: {exc}") from exc
    settings = data.get("tool", {}).get("orchestrate", {})
    if not isinstance(settings, dict):
        raise pytest.UsageError(f"{path}: [tool.orchestrate] must be a table")
    return settings


def _default_backend(address: str | None) -> str:
    """Ray for a named cluster or a running warm instance (`orchestrate up`); else local agents."""
    from orchestrator import warm

    return "ray" if address or warm.current() is not None else "local"


# Options of reporting plugins that only the coordinator may act on: a worker given them would
# write its own partial file over the user's. (name, takes a value)
_COORDINATOR_ONLY_OPTIONS = (
    ("--junitxml", True),
    ("--junit-xml", True),
    ("--junitprefix", True),
    ("--junit-prefix", True),
    ("--html", True),
    ("--css", True),
    ("--self-contained-html", False),
    ("--json-report", False),
    ("--json-report-file", True),
    ("--json-report-summary", False),
    ("--json-report-omit", True),
    ("--json-report-indent", True),
    ("--json-report-verbosity", True),
    ("--alluredir", True),
    ("--clean-alluredir", False),
    ("--report-log", True),
    ("--resultlog", True),
    ("--result-log", True),
    ("--lf", False),
    ("--last-failed", False),
    ("--ff", False),
    ("--failed-first", False),
    ("--nf", False),
    ("--new-first", False),
    ("--lfnf", True),
    ("--last-failed-no-failures", True),
    ("--cache-clear", False),
    ("--durations", True),
    ("--durations-min", True),
)


def args_for_workers(args: Sequence[str]) -> list[str]:
    """The coordinator's pytest arguments less orchestrate's own and the reporters' options.

    Workers get the user's paths, selection and plugin options, so they collect what the
    coordinator collected; they never get options that write the run's report files.
    """
    ours = {spec.pytest_flag: not spec.flag for spec in OPTIONS}
    dropped = dict(_COORDINATOR_ONLY_OPTIONS) | ours
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name in dropped:
            skip_next = dropped[name] and not eq
            continue
        kept.append(arg)
    return kept
