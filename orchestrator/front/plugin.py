"""The coordinator is a pytest session: this plugin replaces its run loop with orchestrate's.

Loaded in every pytest process through the `pytest11` entry point, and inert unless `--agents`
is given (`pytest --agents 4`, or `orchestrate run`, which is a front door to the same). Then,
in the user's own pytest session (their ini file, conftests and plugins loaded, their `-k`,
`-m`, `--lf` applied by pytest's collection):

    pytest collects -> pipeline: units, estimates, plan -> Session on the agents
    -> every result replayed through pytest's hooks (report/replay.py) -> pytest reports

so pytest's terminal, `--junitxml`, cache and every reporting plugin do what they always do;
orchestrate adds its own sections through `pytest_terminal_summary`, writes `--results`, and
updates the duration store at `pytest_sessionfinish`. Each mode of the session is a plugin of
its own that replaces pytest's run loop: run (orchestrator/run/run_mode.py), shard
(orchestrator/ci/shard_mode.py), plan (orchestrator/run/plan_mode.py), and merge, which
replays artifacts instead of running (orchestrator/ci/merging.py).
"""

from __future__ import annotations

import atexit
import gc
import os
from typing import Any

import pytest

from agents.fixtures import MARKER_LINES
from orchestrator.front.options import RunConfig, add_options, build_run_config, given_options, is_coordinator


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Before conftests load and options are parsed: a coordinator whose stack file gives each
    agent its own pytest_args or env collects with them, on a stack of its own."""
    if os.environ.get("ORCHESTRATE_WORKER_FDS") or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from orchestrator.run.collection_stack import serve_collection

    serve_collection(early_config, args)


def pytest_cmdline_main(config: pytest.Config) -> None:
    """Before pytest_configure, after xdist's own (tryfirst): xdist must not take the coordinator's run."""
    if os.environ.get("ORCHESTRATE_WORKER_FDS") or hasattr(config, "workerinput"):
        return
    if is_coordinator(given_options(config)) and not config.getoption("collectonly"):
        from orchestrator.front._xdist import keep_xdist_out

        keep_xdist_out(config)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Also here: with plugin autoload off, agents.fixtures (which registers it too) is not loaded.
    for line in MARKER_LINES:
        config.addinivalue_line("markers", line)
    if os.environ.get("ORCHESTRATE_WORKER_FDS") or hasattr(config, "workerinput"):
        return  # one of our agents' workers, or an xdist worker: never a coordinator
    given = given_options(config)
    if not is_coordinator(given) or config.getoption("collectonly"):
        return
    from orchestrator.protocol.errors import USER_ERRORS

    try:
        options = build_run_config(given, config.rootpath)
        if options.merge:
            from orchestrator.ci.merging import MergeReplay

            config.pluginmanager.register(MergeReplay(config, options), "orchestrate-merge")
            return
        plugins = _mode_plugins(config, options)
    except USER_ERRORS as exc:
        raise pytest.UsageError(str(exc)) from exc
    for name, plugin in plugins.items():
        config.pluginmanager.register(plugin, name)
    coordinator = plugins.get("orchestrate-coordinator")
    if coordinator is not None:
        coordinator.flush_early_output()  # what it said while pytest captured (made early)
        # At exit, freeze the heap (the session's items and reports) before the interpreter's
        # final collection walks it: 0.2-0.4 s of every command's end at 5,000 tests. Objects are
        # still freed by reference count; a program that calls pytest.main() is not affected
        # until it exits.
        atexit.register(gc.freeze)
    terminal = config.pluginmanager.getplugin("terminalreporter")
    if terminal is not None:
        # Results of different files interleave: dots in one stream, as pytest-xdist prints them.
        terminal.showfspath = False


def _mode_plugins(config: pytest.Config, options: RunConfig) -> dict[str, Any]:
    """The plugins of a session that plans or runs, by name: its mode (plan, shard or run: each
    replaces pytest's run loop) and, to run, the coordinator that runs on agents and reports."""
    if options.planning:
        from orchestrator.run.plan_mode import PlanMode

        return {"orchestrate-plan": PlanMode(config, options)}
    if options.agents is not None and options.agents < 1:
        raise pytest.UsageError(f"--agents must be at least 1, got {options.agents}")
    from orchestrator.run.collection_stack import EARLY_COORDINATOR
    from orchestrator.run.coordinator import Coordinator

    coordinator = config.stash.get(EARLY_COORDINATOR, None) or Coordinator(config, options)
    coordinator.check_engine()  # before any agent starts (done already by one made early)
    if options.shard is not None:
        from orchestrator.ci.shard_mode import ShardMode

        return {
            "orchestrate-coordinator": coordinator,
            "orchestrate-shard": ShardMode(coordinator, options.shard),
        }
    from orchestrator.run.run_mode import RunMode

    return {"orchestrate-coordinator": coordinator, "orchestrate-run": RunMode(coordinator)}


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    """An attempt that is run again: counted as "rerun", as pytest-rerunfailures does."""
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
    return None
