"""The coordinator's own stack, so that its collection sees what every agent's worker sees.

A stack file may give each agent's worker its own pytest arguments or environment, rendered
for that agent's services (`x-orchestrate: pytest_args: ["--db-url", "...{db.port}..."]`,
`env: {DATABASE_URL: ...}`). A suite whose collection depends on them (test classes named
after the connected server and its version, parametrizations or skips by server capability)
collects differently without them, and every test would end as "not collected". So when a
stack file gives per-agent `pytest_args` or `env`, the coordinator gets a stack of its own:

    pytest_load_initial_conftests (before conftests are imported and the options parsed)
      -> the agents start (an explicit --agents N), their stacks come up
      -> a collection agent starts too: a stack of the coordinator's, no worker (in parallel)
      -> its StackReady: the pytest_args and env rendered for that stack
      -> the coordinator's arguments get those pytest_args (replacing the same options given
         after --, as a worker's do) and its environment that env
    pytest parses, configures (conftests' pytest_configure see the option), collects
      ... the run ...
    pytest_unconfigure -> the collection stack comes down

The coordinator's session hooks (pytest_configure, pytest_sessionstart, collection and
pytest_sessionfinish) therefore talk to services nobody else uses, up from before the options
are parsed until after pytest's session ended, exactly as under plain pytest with one
database. It costs one more stack on the machine while it runs; its start overlaps the
agents'. With warm stacks of `orchestrate up --stack` for this stack file, it borrows the slot
the keeper keeps for it (COLLECTOR_ID) and resets it to its snapshot, as an agent does.
`pytest --collect-only` through orchestrate brings up only this stack and prints what the
workers will run. On a cluster (`--address`) the coordinator cannot reach the agents'
services and collects without them, as before (the collection-difference message names the
per-agent options). A stack file can turn it off with `x-orchestrate: collection_stack: false`.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any

import pytest

from orchestrator.front.options import build_run_config, given_options, is_coordinator
from orchestrator.front.worker_options import args_for_workers
from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import USER_ERRORS
from orchestrator.protocol.values import COLLECTOR_ID

__all__ = ["COLLECTOR_ID", "CollectionStack", "serve_collection"]

# The collection agent reports its stack ready or failed; this only bounds a hung engine.
READY_TIMEOUT_SECONDS = 900.0
STOP_TIMEOUT_SECONDS = 120.0

# The early-started coordinator, for orchestrator/front/plugin.py's pytest_configure to adopt.
EARLY_COORDINATOR = pytest.StashKey[Any]()


class CollectionStack:
    """A collection agent on the local backend: a stack up for the coordinator, no worker."""

    def __init__(self, config: p.AgentConfig) -> None:
        from orchestrator.run.backends import make_backend

        self.config = config
        self.ready: p.StackReady | None = None
        self.up_seconds = 0.0
        self._backend = make_backend("local")
        self._stopped = False
        self._finish_sent = False
        self._started_at = time.monotonic()
        self._backend.start([config])
        atexit.register(self.stop)

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> p.StackReady | str:
        """Its StackReady, or why the stack did not come up (one line)."""
        deadline = time.monotonic() + timeout
        failed = ""
        while (left := deadline - time.monotonic()) > 0:
            for event in self._backend.wait_events(left):
                if isinstance(event, p.StackReady):
                    self.ready = event
                    self.up_seconds = time.monotonic() - self._started_at
                    return event
                if isinstance(event, p.AgentFailed):
                    failed = failed or (event.message.splitlines() or ["it failed"])[0]
                if isinstance(event, p.AgentStopped):
                    self._stopped = True
                    self._backend.shutdown()
                    return failed or "it stopped before its stack was up"
        return f"its stack was not up after {timeout:.0f}s"

    def begin_stop(self) -> None:
        """Ask for the stack's teardown without waiting for it (idempotent)."""
        if not self._finish_sent and not self._stopped:
            self._finish_sent = True
            self._backend.send(self.config.agent_id, p.Finish())

    def stop(self) -> None:
        """Take the stack down and wait for it (idempotent: also run at exit)."""
        if self._stopped:
            return
        self.begin_stop()
        self._stopped = True
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            if any(isinstance(e, p.AgentStopped) for e in self._backend.wait_events(left)):
                break
        self._backend.shutdown()


class _CollectionStackOwner:
    """The pytest plugin holding the collection stack: says it is used, takes it down at the end."""

    def __init__(self, stack: CollectionStack, config: pytest.Config) -> None:
        self.stack = stack
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        ready = self.stack.ready
        if ready is None:
            return
        given = [a for a in ready.stack_args if a.startswith("-")] + [f"env {k}" for k in ready.stack_env]
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        how = "a warm stack of `orchestrate up`, reset" if ready.stack_warm == "borrowed" else "up"
        line = (
            f"orchestrate: collecting with the stack file's {', '.join(given)} rendered for a stack of "
            f"the coordinator's own ({how} in {self.stack.up_seconds:.1f}s)"
        )
        if terminal is not None:
            terminal.write_line(line)

    def stop(self) -> None:
        """Wait for the stack's teardown: called by the coordinator's pytest_unconfigure, once
        the agents' stacks are down (this one came down beside theirs)."""
        self.stack.stop()

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        # Trylast, registered before the coordinator: called after every other plugin's and
        # conftest's (which may still use the stack), just before the coordinator's. With a
        # coordinator, only begin: it waits for the agents' stacks, then for this one.
        if self.config.pluginmanager.get_plugin("orchestrate-coordinator") is not None:
            self.stack.begin_stop()
        else:
            self.stack.stop()


def serve_collection(early_config: pytest.Config, args: list[str]) -> None:
    """In pytest_load_initial_conftests: when the stack file gives per-agent pytest_args or env,
    start the agents (an explicit --agents N) and a collection stack, and give this process's
    arguments and environment what a worker gets on that stack (see the module docstring)."""
    given = given_options(early_config, early=True)
    if not is_coordinator(given) or given.get("merge") or given.get("plan"):
        return  # not a run; `plan` starts nothing
    namespace = early_config.known_args_namespace
    collect_only = bool(getattr(namespace, "collectonly", False))
    # An explicit --agents N starts them now, with or without a stack, unless nothing will run.
    start_now = not (
        collect_only or getattr(namespace, "help", False) or getattr(namespace, "version", False)
    )
    try:
        options = build_run_config(given, early_config.rootpath)
        if options.address:
            return
        start_now = start_now and options.agents is not None and options.agents >= 1
        if not options.stack_file:
            if start_now:
                _start_agents(early_config, options)
            return
        from agents.stack import load_stack_file

        spec = load_stack_file(options.stack_file)
    except USER_ERRORS:
        return  # pytest_configure reports it, with the usual exit code
    except pytest.UsageError:
        return
    if not spec.collects_on_own_stack or (options.agents is not None and options.agents < 1):
        if start_now:
            _start_agents(early_config, options)
        return
    coordinator: Any = None
    try:
        if collect_only:
            from agents.stack import check_engine

            check_engine()
            run_id, owner = _new_run()
        else:
            from orchestrator.run.coordinator import Coordinator

            coordinator = Coordinator(early_config, options, early=True)
            early_config.stash[EARLY_COORDINATOR] = coordinator
            if options.agents is not None:
                coordinator.start_agents_early()
            # A run id of its own: the run's clean-up of dead agents' containers (at the end of
            # the run loop, before pytest_sessionfinish) must leave this stack up.
            run_id, owner = f"{coordinator.run_id}c", coordinator.owner
    except USER_ERRORS:
        return  # pytest_configure meets the same error and reports it
    # With warm stacks of `orchestrate up` for this stack file, their collection slot.
    warm = coordinator.agents.warm_stacks() if coordinator is not None else None
    from orchestrator.run.agent_start import warm_field

    stack = CollectionStack(
        p.AgentConfig(
            agent_id=COLLECTOR_ID,
            run_id=run_id,
            owner=owner,
            cwd=str(early_config.invocation_params.dir),
            pytest_args=tuple(args_for_workers(early_config.invocation_params.args)),
            stack_text=spec_text(options.stack_file),
            stack_path=options.stack_file,
            python=sys.executable,
            env=dict(os.environ),
            collector=True,
            warm_id=warm_field(warm, COLLECTOR_ID, "warm_id"),
            warm_owner=warm_field(warm, COLLECTOR_ID, "warm_owner"),
            warm_dir=warm_field(warm, COLLECTOR_ID, "warm_dir"),
            swept=coordinator is not None and coordinator.agents.swept,
        )
    )
    owner_plugin = _CollectionStackOwner(stack, early_config)
    early_config.pluginmanager.register(owner_plugin, "orchestrate-collection-stack")
    if coordinator is not None:
        try:
            coordinator.check_engine()  # beside the agents' and this stack's start
        except USER_ERRORS:
            _stop_early(early_config, coordinator)
            stack.stop()
            early_config.pluginmanager.unregister(owner_plugin)
            return  # pytest_configure meets the same error and reports it
    ready = stack.wait_ready()
    if isinstance(ready, str):
        print(
            f"orchestrate: warning: the coordinator's collection stack did not come up ({ready}); "
            "it collects without the stack file's per-agent pytest_args and env",
            file=sys.stderr,
        )
        return
    from agents.worker import without_stack_options

    kept, _ = without_stack_options(args, ready.stack_args)
    args[:] = [*kept, *ready.stack_args]
    os.environ.update(ready.stack_env)
    if coordinator is not None:
        coordinator.collection_served = True


def _start_agents(early_config: pytest.Config, options: Any) -> None:
    """An explicit --agents N: start the agents now, before conftests load, so that their stacks
    and workers come up while this process imports, configures and collects (xdist's workers
    start later, at its session's start; ours would otherwise wait for pytest_collection)."""
    agents = None
    if not options.stack_file and options.backend == "local":
        # Started before the coordinator is imported (60-85 ms here), so that the workers' own
        # start overlaps that import; with a stack file, the coordinator checks it first.
        from orchestrator.run.agent_start import AgentStart

        agents = AgentStart(early_config, options, "", _said_nothing)
        agents.start_early()
    from orchestrator.run.coordinator import Coordinator

    try:
        coordinator = Coordinator(early_config, options, early=True, agents=agents)
    except USER_ERRORS:
        if agents is not None:
            agents.stop([])
        return  # pytest_configure meets the same error and reports it
    early_config.stash[EARLY_COORDINATOR] = coordinator
    coordinator.start_agents_early()
    try:
        coordinator.check_engine()  # with a stack file: beside the agents' start
    except USER_ERRORS:
        _stop_early(early_config, coordinator)
        # pytest_configure meets the same error and reports it


def _stop_early(early_config: pytest.Config, coordinator: Any) -> None:
    """The engine check failed after the agents started: stop them; pytest_configure's
    coordinator, made anew, meets the same error and reports it."""
    coordinator.agents.stop([])
    del early_config.stash[EARLY_COORDINATOR]


def _said_nothing(line: str) -> None:
    """The say of agents started before their coordinator: local agents without a stack say
    nothing as they start; the coordinator gives them its console as soon as it is made."""
    raise AssertionError(f"said before the coordinator was made: {line}")


def spec_text(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def _new_run() -> tuple[str, str]:
    import uuid

    from agents.stack import current_owner

    return uuid.uuid4().hex[:10], current_owner()
