"""orchestrate's pytest options, read once into a frozen Options; what workers are not given.

Registered by the coordinator plugin (orchestrator/plugin.py, through its `pytest_addoption`);
`orchestrate run` (orchestrator/cli.py) writes them as `--orchestrate-NAME=VALUE`. Every option
but `--agents` carries the `orchestrate-` prefix, so none can clash with another plugin's
(pytest-timeout's `--timeout`, pytest-rerunfailures' `--reruns`, pytest's own `--durations`).
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from orchestrator.backends import BACKEND_KINDS
from orchestrator.model import GroupBy
from orchestrator.report.status import DEFAULT_STATUS_INTERVAL
from orchestrator.scheduling import SCHEDULER_KINDS

AUTO = "auto"
# --live / --orchestrate-live: the live status area in a terminal (orchestrator/report/live.py).
LIVE_MODES = ("auto", "on", "off")
DEFAULT_DURATIONS_PATH = ".orchestrate/durations.msgpack"
DEFAULT_MAX_CRASHES = 2

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


@dataclass(frozen=True, slots=True)
class OutputPaths:
    """Where a session's own outputs go (none: not written)."""

    results: str | None = None
    html: str | None = None
    durations: str | None = None


@dataclass(frozen=True, slots=True)
class Options:
    """orchestrate's options of one session, read once from pytest's config."""

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

    @property
    def outputs(self) -> OutputPaths:
        return OutputPaths(self.results, self.html, self.durations)


def add_options(parser: pytest.Parser) -> None:
    """Register orchestrate's options; called by the plugin's pytest_addoption."""
    group = parser.getgroup("orchestrate", "orchestrate: run on N agents, each with its own stack")
    group.addoption(
        "--agents",
        type=agents_value,
        default=None,
        metavar="N|auto",
        help="run the suite on N orchestrate agents (each: one pytest worker, one container stack); "
        "auto: the N with the shortest predicted wall-clock, start-up included",
    )
    add = group.addoption
    add("--orchestrate-stack", metavar="FILE", help="stack file: every agent brings up its own copy")
    add(
        "--orchestrate-timeout", type=float, metavar="SECONDS", help="per-test timeout, enforced from outside"
    )
    add("--orchestrate-max-crashes", type=int, default=DEFAULT_MAX_CRASHES, metavar="N")
    add("--orchestrate-reruns", type=int, default=0, metavar="N", help="rerun failed tests up to N times")
    add("--orchestrate-results", metavar="PATH", help="write the machine-readable results (JSON)")
    add("--orchestrate-durations", default=DEFAULT_DURATIONS_PATH, metavar="PATH", help="duration store")
    add("--orchestrate-schedule", choices=list(SCHEDULER_KINDS), default="dynamic")
    add("--orchestrate-group-by", choices=[g.value for g in GroupBy], default=GroupBy.CLASS.value)
    add("--orchestrate-split", action="store_true", default=False)
    add("--orchestrate-backend", choices=list(BACKEND_KINDS), default=None)
    add("--orchestrate-address", metavar="ADDR", default=None, help="a Ray cluster to run agents on")
    add("--orchestrate-shard", metavar="I/N", default=None, help="run CI runner I of N's part only")
    add(
        "--orchestrate-plan",
        metavar="N,...|auto",
        default=None,
        help="print the plan for these agent counts (auto: for the count --agents auto chooses), run nothing",
    )
    add(
        "--orchestrate-plot",
        metavar="PATH",
        default=None,
        help="with --orchestrate-plan: draw makespan against N (SVG)",
    )
    add(
        "--orchestrate-merge",
        metavar="FILES",
        default=None,
        help="merge these results files (comma-separated)",
    )
    add("--orchestrate-html", metavar="PATH", default=None, help="write the HTML report")
    add(
        "--orchestrate-status-interval",
        type=float,
        default=DEFAULT_STATUS_INTERVAL,
        metavar="SECONDS",
        help=f"a status line (tests done, failures, ETA) every SECONDS (default {DEFAULT_STATUS_INTERVAL:g}; 0: none; "
        "none with -q or with the live view)",
    )
    add(
        "--orchestrate-live",
        choices=list(LIVE_MODES),
        default=AUTO,
        help="a live status area below pytest's output (agents' phases, tests done, failures, ETA); "
        "auto: when stdout is a terminal and not -q",
    )
    add(
        "--orchestrate-exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="on a cluster: leave files matching PATTERN out of the code shipped to the agents (.gitignore is honoured)",
    )


class KnownArgs:
    """The options pytest's early parse has, before it parsed them into `config.option`
    (for pytest_load_initial_conftests): read_options reads either."""

    def __init__(self, config: pytest.Config) -> None:
        self.rootpath = config.rootpath
        self._namespace = config.known_args_namespace

    def getoption(self, name: str) -> Any:
        return getattr(self._namespace, name, None)


def read_options(config: pytest.Config | KnownArgs) -> Options:
    """orchestrate's options of this session; raises pytest.UsageError for a bad value."""
    shard = None
    if config.getoption("orchestrate_shard"):
        index, _, total = str(config.getoption("orchestrate_shard")).partition("/")
        shard = (int(index), int(total))
    merge = config.getoption("orchestrate_merge")
    agents = config.getoption("agents")
    plan = config.getoption("orchestrate_plan")
    return Options(
        agents=None if agents == AUTO else int(agents or 0),
        stack_file=config.getoption("orchestrate_stack") or _pyproject_stack(config),
        timeout=config.getoption("orchestrate_timeout"),
        max_crashes=config.getoption("orchestrate_max_crashes"),
        reruns=config.getoption("orchestrate_reruns"),
        results=config.getoption("orchestrate_results"),
        durations=config.getoption("orchestrate_durations"),
        schedule=config.getoption("orchestrate_schedule"),
        group_by=GroupBy(config.getoption("orchestrate_group_by")),
        split=bool(config.getoption("orchestrate_split")),
        backend=config.getoption("orchestrate_backend")
        or _default_backend(config.getoption("orchestrate_address")),
        address=config.getoption("orchestrate_address"),
        shard=shard,
        planning=bool(plan),
        plan_counts=() if plan == AUTO else _plan_counts(plan),
        plot=config.getoption("orchestrate_plot"),
        merge=tuple(merge.split(",")) if merge else (),
        html=config.getoption("orchestrate_html"),
        excludes=tuple(config.getoption("orchestrate_exclude") or ()),
        status_interval=max(0.0, float(config.getoption("orchestrate_status_interval") or 0.0)),
        live=config.getoption("orchestrate_live") or AUTO,
    )


def agents_value(text: str) -> int | str:
    """An option type: a whole number of agents, or "auto". Used by pytest's and the CLI's parsers."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number or 'auto': {text!r}") from None


def _plan_counts(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    from orchestrator.whatif import parse_agent_counts

    try:
        return parse_agent_counts(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--orchestrate-plan: {exc}") from exc


def _default_backend(address: str | None) -> str:
    """Ray for a named cluster or a running warm instance (`orchestrate up`); else local agents."""
    from orchestrator import warm

    return "ray" if address or warm.current() is not None else "local"


def _pyproject_stack(config: pytest.Config | KnownArgs) -> str | None:
    """[tool.orchestrate] stack from the rootdir's pyproject.toml, relative to the rootdir."""
    path = config.rootpath / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: {exc}") from exc
    value = data.get("tool", {}).get("orchestrate", {}).get("stack")
    if value is None:
        return None
    if not isinstance(value, str):
        raise pytest.UsageError(f"{path}: [tool.orchestrate] stack must be a string")
    return str(config.rootpath / value)


def worker_args(args: Sequence[str]) -> list[str]:
    """The coordinator's pytest arguments less orchestrate's own and the reporters' options.

    Workers get the user's paths, selection and plugin options, so they collect what the
    coordinator collected; they never get options that write the run's report files.
    """
    ours = ("--agents", True), *((f"--orchestrate-{name}", True) for name in _VALUE_OPTIONS)
    flags = {f"--orchestrate-{name}" for name in _FLAG_OPTIONS}
    dropped = dict(_COORDINATOR_ONLY_OPTIONS) | dict(ours) | dict.fromkeys(flags, False)
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


_VALUE_OPTIONS = (
    "stack",
    "timeout",
    "max-crashes",
    "reruns",
    "results",
    "durations",
    "schedule",
    "group-by",
    "backend",
    "address",
    "shard",
    "merge",
    "html",
    "plan",
    "plot",
    "exclude",
    "status-interval",
    "live",
)
_FLAG_OPTIONS = ("split",)
