"""The coordinator is a pytest session: this plugin replaces its run loop with orchestrate's.

Loaded in every pytest process through the `pytest11` entry point, and inert unless `--agents`
is given (`pytest --agents 4`, or `orchestrate run`, which is a front door to the same). Then,
in the user's own pytest session (their ini file, conftests and plugins loaded, their `-k`,
`-m`, `--lf` applied by pytest's collection):

    pytest collects -> pipeline: units, estimates, plan -> Session on the agents
    -> every result replayed through pytest's hooks (report/replay.py) -> pytest reports

so pytest's terminal, `--junitxml`, cache and every reporting plugin do what they always do;
orchestrate adds its own sections through `pytest_terminal_summary`, writes `--results`, and
updates the duration store at `pytest_sessionfinish`. `orchestrate shard` and `plan` are the
same session with another ending; `orchestrate merge` replays artifacts instead of running.
"""

from __future__ import annotations

import os
import sys
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator import protocol as p
from orchestrator.durations.store import DurationStore
from orchestrator.errors import USER_ERRORS
from orchestrator.model import GroupBy, JunitSettings, RunReport, TestUnit
from orchestrator.pipeline import Prepared, prepare, shard_of, units_of
from orchestrator.protocol.versions import runtime_versions

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
class Options:
    """orchestrate's options of one session, read once from pytest's config."""

    agents: int
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
    plan_counts: tuple[int, ...]
    plot: str | None
    merge: tuple[str, ...]
    html: str | None
    excludes: tuple[str, ...]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("orchestrate", "orchestrate: run on N agents, each with its own stack")
    group.addoption(
        "--agents",
        type=int,
        default=None,
        metavar="N",
        help="run the suite on N orchestrate agents (each: one pytest worker, one container stack)",
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
    add("--orchestrate-schedule", choices=["dynamic", "static"], default="dynamic")
    add("--orchestrate-group-by", choices=[g.value for g in GroupBy], default=GroupBy.CLASS.value)
    add("--orchestrate-split", action="store_true", default=False)
    add("--orchestrate-backend", choices=["local", "ray"], default=None)
    add("--orchestrate-address", metavar="ADDR", default=None, help="a Ray cluster to run agents on")
    add("--orchestrate-shard", metavar="I/N", default=None, help="run CI runner I of N's part only")
    add(
        "--orchestrate-plan",
        metavar="N,...",
        default=None,
        help="print the plan for these agent counts, run nothing",
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
        "--orchestrate-exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="on a cluster: leave files matching PATTERN out of the code shipped to the agents (.gitignore is honoured)",
    )


def _options(config: pytest.Config) -> Options:
    shard = None
    if config.getoption("orchestrate_shard"):
        index, _, total = str(config.getoption("orchestrate_shard")).partition("/")
        shard = (int(index), int(total))
    merge = config.getoption("orchestrate_merge")
    return Options(
        agents=int(config.getoption("agents") or 0),
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
        plan_counts=_plan_counts(config.getoption("orchestrate_plan")),
        plot=config.getoption("orchestrate_plot"),
        merge=tuple(merge.split(",")) if merge else (),
        html=config.getoption("orchestrate_html"),
        excludes=tuple(config.getoption("orchestrate_exclude") or ()),
    )


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


def _pyproject_stack(config: pytest.Config) -> str | None:
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


def pytest_cmdline_main(config: pytest.Config) -> None:
    """Before pytest_configure, after xdist's own (tryfirst): xdist must not take the coordinator's run."""
    if os.environ.get("ORCHESTRATE_WORKER_FDS") or hasattr(config, "workerinput"):
        return
    wants = (
        config.getoption("agents")
        or config.getoption("orchestrate_merge")
        or config.getoption("orchestrate_plan")
    )
    if wants and not config.getoption("collectonly"):
        from orchestrator._xdist import keep_xdist_out

        keep_xdist_out(config)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("ORCHESTRATE_WORKER_FDS") or hasattr(config, "workerinput"):
        return  # one of our agents' workers, or an xdist worker: never a coordinator
    wants = (
        config.getoption("agents")
        or config.getoption("orchestrate_merge")
        or config.getoption("orchestrate_plan")
    )
    if not wants or config.getoption("collectonly"):
        return
    try:
        options = _options(config)
        if options.merge:
            from orchestrator.merging import MergeReplay

            config.pluginmanager.register(MergeReplay(config, options), "orchestrate-merge")
            return
        if options.agents < 1 and not bool(options.plan_counts):
            raise pytest.UsageError(f"--agents must be at least 1, got {options.agents}")
        coordinator = Coordinator(config, options)
    except USER_ERRORS as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.pluginmanager.register(coordinator, "orchestrate-coordinator")
    terminal = config.pluginmanager.getplugin("terminalreporter")
    if terminal is not None:
        # Results of different files interleave: dots in one stream, as pytest-xdist prints them.
        terminal.showfspath = False


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    """An attempt that is run again: counted as "rerun", as pytest-rerunfailures does."""
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
    return None


class Coordinator:
    """The coordinator's side of one pytest session: plans, runs the Session, reports."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self.report: RunReport | None = None
        self.prepared: Prepared | None = None
        self.extra: dict[str, Any] = {}
        self._backend: Any = None
        self._stack_text = ""
        self._warnings: list[str] = []
        store, warning = DurationStore.load(options.durations)
        self.store = store
        if warning:
            _warn(warning)
        if options.stack_file and not bool(options.plan_counts):
            self._stack_text = _load_stack(options.stack_file)

    # -- the run loop -----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(
                f"{session.testsfailed} error{'s' if session.testsfailed != 1 else ''} during collection"
            )
        if not session.items:
            return True  # pytest says "no tests ran" and exits 5, as it always does
        units = units_of(session.items, self.options.group_by)
        if self.options.shard is not None:
            index, total = self.options.shard
            whole, units = shard_of(units, self.store, total, index, self.options.split)
            from orchestrator.sharding import EXTRA_KEY, ShardRecord

            self.extra = {EXTRA_KEY: ShardRecord.of_plan(whole, index, JunitSettings()).to_json()}
            self._fingerprint = whole.fingerprint()
            self._print(
                f"orchestrate: runner {index} of {total}, plan fingerprint {whole.fingerprint()}: "
                f"{sum(len(u.node_ids) for u in units)} of {whole.tests} tests in {len(units)} units, "
                f"predicted {whole.shards[index - 1].seconds:.1f}s (slowest runner {whole.makespan:.1f}s)"
            )
            if not units:
                self._print("orchestrate: nothing to run here (more runners than units)")
                self.report = RunReport((), (), 0.0, 0, plan_fingerprint=whole.fingerprint())
                return True
            split = False
        else:
            split = self.options.split
        if self.options.plan_counts:
            self._print_plans(units, split)
            return True
        prepared = prepare(units, self.store, max(1, self.options.agents), split)
        self.prepared = prepared
        plan = prepared.plan
        self._print(
            f"orchestrate: {plan.tests} tests in {len(prepared.units)} units on {plan.agents} agents "
            f"({self.options.backend}); predicted {plan.makespan:.1f}s (lower bound {plan.lower_bound:.1f}s)"
        )
        self.report = self._run(session, prepared)
        if self.options.shard is not None:
            # Every runner's artifact names the whole plan, so merge can tell they belong together.
            self.report = replace(self.report, plan_fingerprint=self._fingerprint)
        self._raise_stop(session, self.report)
        return True

    def _run(self, session: pytest.Session, prepared: Prepared) -> RunReport:
        from orchestrator.backends import make_backend
        from orchestrator.report.replay import PytestReplay
        from orchestrator.scheduling import make_scheduler
        from orchestrator.session import Session

        run_id = uuid.uuid4().hex[:10]
        local = not self.options.address
        configs = [
            p.AgentConfig(
                agent_id=shard.agent_id,
                run_id=run_id,
                owner=_current_owner(),
                cwd=str(self.config.invocation_params.dir),
                pytest_args=tuple(worker_args(self.config.invocation_params.args)),
                stack_text=self._stack_text,
                stack_path=self.options.stack_file or "",
                timeout=self.options.timeout,
                python=sys.executable,
                env=dict(os.environ) if local else None,
                basetemp=str(self.config.option.basetemp) if self.config.option.basetemp else None,
            )
            for shard in prepared.plan.shards
        ]
        if self.options.backend == "ray" and not self.options.address:
            from orchestrator import warm

            instance = warm.current()
            if instance is not None:
                self._print(
                    f"orchestrate: joining the warm Ray instance at {instance.address} (orchestrate down stops it)"
                )
        self._backend = make_backend(
            self.options.backend,
            self.options.address,
            working_dir=str(self.config.invocation_params.dir),
            excludes=self.options.excludes,
        )
        session_loop = Session(
            prepared.units,
            make_scheduler(self.options.schedule, prepared.plan),
            self._backend,
            configs,
            PytestReplay(session),
            reruns=self.options.reruns,
            max_crashes=self.options.max_crashes,
            versions=runtime_versions(),
        )
        try:
            report = session_loop.run()
            if session_loop.fatal is not None:
                raise pytest.UsageError(str(session_loop.fatal))
            return report
        finally:
            if self._stack_text and local:
                _remove_leftovers(run_id, self._warnings)

    def _print_plans(self, units: Sequence[TestUnit], split: bool) -> None:
        """`orchestrate plan`: one plan in detail, or the predicted makespan for each agent count."""
        from orchestrator.report.tables import plan_text, predictions_text

        counts = self.options.plan_counts
        if len(counts) == 1 and not self.options.plot:
            self._print(plan_text(prepare(units, self.store, counts[0], split).plan, len(self.store)))
            return
        from orchestrator.durations.estimate import estimate_units
        from orchestrator.whatif import predict

        if split:
            units = prepare(units, self.store, max(counts), split).units
        estimates = estimate_units(units, self.store)
        predictions = predict(estimates, counts)
        unseen = sum(e.unseen_tests for e in estimates)
        self._print(predictions_text(predictions, sum(len(u.node_ids) for u in units), len(units), unseen))
        if self.options.plot:
            from orchestrator.report.charts import predictions_svg

            try:
                Path(self.options.plot).write_text(predictions_svg(predictions), encoding="utf-8")
            except OSError as exc:
                raise pytest.UsageError(
                    f"could not write {self.options.plot}: {exc.strerror or exc}"
                ) from exc
            self._print(f"orchestrate: wrote {self.options.plot}")

    @staticmethod
    def _raise_stop(session: pytest.Session, report: RunReport) -> None:
        """End the session as pytest would have ended it for the same reason."""
        stop = report.stop
        if stop is None:
            return
        if stop.kind == "exit":
            pytest.exit(stop.message, returncode=stop.returncode)
        if stop.kind == "interrupt":
            raise KeyboardInterrupt(stop.message)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)

    # -- the ending -------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from orchestrator.report.sections import write_sections

        if self.report is not None:
            write_sections(terminalreporter, self.report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """After pytest's own plugins wrote their files: ours, and the duration store."""
        from orchestrator.report.outputs import finish_outputs

        for warning in self._warnings:
            _warn(warning)
        if self.report is None:
            return
        self.report = replace(self.report, exit_code=int(exitstatus))
        finish_outputs(
            self.report,
            results=self.options.results,
            html=self.options.html,
            junitxml=self.config.option.xmlpath,
            durations=self.options.durations,
            store=self.store,
            extra=self.extra,
            warn=_warn,
        )

    def pytest_unconfigure(self) -> None:
        if self._backend is not None:
            # After the summary: agents and stacks are down already; stopping Ray takes a second.
            self._backend.shutdown()
            self._backend = None

    def _print(self, text: str) -> None:
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(text)
        else:
            print(text)


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
)
_FLAG_OPTIONS = ("split",)


def _load_stack(path: str) -> str:
    """Validate the stack file and the Docker engine before anything starts; the file's text."""
    from agents.stack import check_engine, load_stack_file, sweep

    load_stack_file(path)
    check_engine()
    removed = sweep(all_owners=False)
    if any(removed):
        print(
            f"orchestrate: warning: removed {removed[0]} container(s) and {removed[1]} network(s) left by dead runs",
            file=sys.stderr,
        )
    return Path(path).read_text(encoding="utf-8")


def _remove_leftovers(run_id: str, warnings: list[str]) -> None:
    """Remove what agents that died without taking their stack down left (a killed actor)."""
    from agents.stack import remove_run

    try:
        removed = remove_run(run_id)
    except USER_ERRORS as exc:
        warnings.append(f"could not remove the containers of this run's dead agents: {exc}")
        return
    if removed:
        warnings.append(f"removed {removed} container(s) that agents which died left behind")


def _current_owner() -> str:
    from agents.stack import current_owner

    return current_owner()


def _warn(message: str) -> None:
    print(f"orchestrate: warning: {message}", file=sys.stderr)
