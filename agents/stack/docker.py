"""DockerStack: one agent's private container stack on the local Docker engine.

One of the modules using the Docker SDK (imported once, in agents/stack/_sdk.py): this one is
one agent's stack and its lifecycle; agents/stack/engine.py holds the engine-wide operations
(the check, `sweep`, `remove_run`, re-exported here) and agents/stack/images.py the set-up state
cache. Made by `agents.stack.make_stack`; the agent calls `up()` before its pytest worker
starts, `watch()` once it is up, `snapshot()` once after it and `reset()` before every unit
when the stack file asks for resets, and `down()` once at the end. With `setup` and the cache
on, `up()` starts the services from the committed state of the stack's key, made by this agent
under the engine's setup lock when it is not there yet (agents/stack/setup_state.py).

Isolation: every stack has its own bridge network (`orch-<run>-<agent>`) on which services
reach each other by service name, and every container port is published on 127.0.0.1 at a
random host port, so any number of agents can run the same stack file on one machine. The
tests get a service's own IP on that network and its container port when this process reaches
it there (Linux, the agent on the Docker host), so that their connections skip docker-proxy;
else 127.0.0.1 and the published port.
Idle, a stack costs nothing: Docker's health checks are off and the check runs here only until
it first passes (agents/stack/readiness.py); `watch()` waits on the engine's events stream
(agents/stack/engine_events.py, read by agents/stack/watcher.py's thread) instead of polling.
Everything created carries the labels `orchestrate.run`, `orchestrate.agent` and
`orchestrate.owner=<hostname>:<coordinator pid>`; `down()` and `sweep()` find their targets by
label, never by name. Docker errors become StackFailed / DockerUnavailable: here for the engine
failing mid-way, in agents/stack/started.py for one service's container (its start, checks and
the execs of the reset strategies, agents/stack/reset/).
What needs no SDK is elsewhere: labels, names, create options, endpoints and deaths in
agents/stack/containers.py; readiness in agents/stack/readiness.py; snapshot, reset and the
stack's commands in agents/stack/snapshots.py.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from agents.stack._sdk import docker, engine_client
from agents.stack.cgroup_cpu import CgroupCpu, cgroup_cpu
from agents.stack.compose import StackSpec
from agents.stack.containers import (
    LABEL_AGENT,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_SERVICE,
    direct_targets,
    endpoint_of,
    one_line,
    safe_name,
    stack_labels,
)
from agents.stack.engine import (
    API_TIMEOUT,
    check_engine,
    clean_cache,
    remove_labelled,
    remove_run,
    stack_cache_key,
    sweep,
)
from agents.stack.engine_events import EngineEvents
from agents.stack.images import CachedStack
from agents.stack.probes import address_answers, address_reachable
from agents.stack.protocol import StackEndpoints, StackStep
from agents.stack.readiness import wait_ready
from agents.stack.reset import ServiceHandle
from agents.stack.setup_state import (
    SetUp,
    cached_or_set_up,
    in_memory_services,
    load_states,
    memory_state,
    state_key,
)
from agents.stack.snapshots import StackSnapshots, service_handle
from agents.stack.started import StartedService, check_running, create_network, start_services
from agents.stack.watcher import DeathWatcher
from orchestrator.protocol.errors import StackFailed

__all__ = [
    "LABEL_AGENT",
    "LABEL_OWNER",
    "LABEL_RUN",
    "LABEL_SERVICE",
    "DockerStack",
    "check_engine",
    "clean_cache",
    "remove_run",
    "stack_cache_key",
    "sweep",
]


class DockerStack:
    """The Docker implementation of the Stack protocol (agents/stack/protocol.py).

    Made by `agents.stack.make_stack` inside the agent process. `owner` is the coordinator's
    `<hostname>:<pid>` (see `agents.stack.current_owner`), so that `sweep` can tell leftovers of a
    dead coordinator from a live run. `cwd` is where setup commands run (default: the current
    directory when the stack is made, i.e. where the run was started).
    """

    def __init__(
        self,
        spec: StackSpec,
        run_id: str,
        agent_id: str,
        owner: str,
        *,
        cwd: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_step: Callable[[StackStep], None] | None = None,
    ) -> None:
        self.spec = spec
        self._on_step = on_step
        self.run_id = run_id
        self.agent_id = agent_id
        self.owner = owner
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.network_name = safe_name(f"orch-{run_id}-{agent_id}")
        self._clock = clock
        self._client: docker.DockerClient | None = None
        self._started: list[StartedService] = []
        # Set by `up()`: what setup and reset commands run with, and what strategies connect to.
        self._endpoints: StackEndpoints | None = None
        self._snapshots = StackSnapshots(spec, agent_id, self.cwd, clock)
        # The watchers `watch()` started; `down()` stops them before it removes anything.
        self._watch_lock = threading.Lock()
        self._watchers: list[DeathWatcher] = []
        self._down_started = False
        # The set-up state cache's key, once `up()` computed it (None: no setup, or no cache).
        self.cache_key: str | None = None

    # -- the Stack protocol --------------------------------------------------------------------

    def up(self, on_endpoints: Callable[[StackEndpoints], None] | None = None) -> StackEndpoints:
        """Create the network, start every service concurrently, wait until all are ready, run setup.

        With `setup` and the cache on (the default), setup runs once per cache key on this
        engine: the services then start from the committed state (agents/stack/images.py), here
        and in every other agent. `on_endpoints` gets the endpoints of the containers the tests
        use once they run, before they are ready. Raises StackFailed naming the service (with its last log lines)
        or the setup command (with its output). Whatever was created stays until `down()`, which
        the agent always calls.
        """
        started_at = self._clock()
        deadline = started_at + self.spec.ready_timeout
        client = self._connect()
        cache = ""
        setup_seconds = saved_seconds = 0.0
        try:
            create_network(client, self.network_name, self._labels(), self.agent_id)
            if self.spec.setup and self.spec.cache:
                cached, paid = self._cached_state(client, deadline)
                cache = "hit" if paid is None else "miss"
                setup_seconds = paid or 0.0
                saved_seconds = cached.setup_seconds if paid is None else 0.0
                services = self._start_ready(
                    client, self._clock() + self.spec.ready_timeout, cached.images, on_endpoints
                )
                self._endpoints = self._endpoints_with(services)
                load_states(self._started, cached.with_state, self._handle)
            else:
                self._endpoints = self._endpoints_with(
                    self._start_ready(client, deadline, None, on_endpoints)
                )
        except (docker.errors.DockerException, OSError) as exc:
            # What the specific translations (agents/stack/started.py, images.py) did not expect:
            # the engine failing mid-way (requests' connection errors and timeouts are OSErrors).
            message = f"agent {self.agent_id}: the Docker engine failed while starting the stack: "
            raise StackFailed(message + one_line(exc)) from exc
        if not cache:
            up_seconds = self._clock() - started_at
            if self.spec.setup:
                self._step("setup")
            setup_seconds = self._snapshots.run_commands(self.spec.setup, "setup command", self._endpoints)
        else:
            up_seconds = self._clock() - started_at - setup_seconds
        return dataclasses.replace(
            self._endpoints,
            up_seconds=up_seconds,
            setup_seconds=setup_seconds,
            cache=cache,
            cache_saved_seconds=saved_seconds,
        )

    def _cached_state(self, client: docker.DockerClient, deadline: float) -> tuple[CachedStack, float | None]:
        """The committed set-up state of this stack's key, and the setup seconds this agent paid.

        Found in the cache (None: no setup here), or made here under the engine-wide setup lock
        (agents/stack/setup_state.py): the services start from their images and setup runs.
        """
        self.cache_key = key = state_key(client, self.spec, self.cwd)

        def set_up() -> SetUp:
            self._endpoints = self._endpoints_with(self._start_ready(client, deadline))
            self._step("setup")
            setup_seconds = self._snapshots.run_commands(self.spec.setup, "setup command", self._endpoints)
            containers = {item.service.name: item.container for item in self._started}
            states = {name: memory_state(self._handle(name)) for name in in_memory_services(self.spec)}
            return SetUp(containers, setup_seconds, states)

        cached, paid = cached_or_set_up(
            client, self.spec, key, self._labels(), set_up, on_wait=lambda: self._step("setup")
        )
        if paid is not None:  # its containers were committed and removed
            self._started = []
        return cached, paid

    def _start_ready(
        self,
        client: docker.DockerClient,
        deadline: float,
        images: Mapping[str, str] | None = None,
        on_endpoints: Callable[[StackEndpoints], None] | None = None,
    ) -> dict[str, dict[str, object]]:
        """Start every service (from `images[name]` when given), wait until ready: the endpoints.

        With `on_endpoints`, they are worked out before the wait (and handed over), not after.
        """
        names = list(self.spec.services)
        ready: list[str] = []
        lock = threading.Lock()

        def one_ready(name: str) -> None:
            with lock:
                ready.append(name)
                self._step("services", tuple(ready), tuple(n for n in names if n not in ready))

        self._step("services", (), tuple(names))
        started = start_services(
            client,
            list(self.spec.services.values()),
            self.network_name,
            self._labels,
            images or {},
            self._clock,
        )
        self._started = started
        early = None
        if on_endpoints is not None:
            early = self._endpoints_of(client, started, before_ready=True)
            on_endpoints(self._endpoints_with(early))
        wait_ready(started, deadline, self.spec.ready_timeout, self._clock, on_ready=one_ready)
        return early if early is not None else self._endpoints_of(client, started)

    def _step(self, phase: str, ready: tuple[str, ...] = (), waiting: tuple[str, ...] = ()) -> None:
        """Tell `on_step` where `up()` is (the agent relays it to the coordinator's live status)."""
        if self._on_step is not None:
            self._on_step(StackStep(phase, ready, waiting))

    def _endpoints_with(self, services: dict[str, dict[str, object]]) -> StackEndpoints:
        env = self.spec.render_env(services)
        pytest_args = self.spec.render_pytest_args(services)
        return StackEndpoints(env=env, services=services, pytest_args=pytest_args)

    @property
    def resets(self) -> bool:
        """True when the stack file has `reset` or `reset_commands`: the agent then resets per unit."""
        return self._snapshots.resets

    def snapshot(self) -> float:
        """Record the state of every service in `x-orchestrate.reset`; returns seconds taken.

        Called once by the agent after `up()` and before any test (agents/stack/snapshots.py).
        """
        return self._snapshots.snapshot(self._handle)

    def reset(self) -> float:
        """Restore every snapshotted service, then run `reset_commands`; returns seconds taken.

        Called by the agent before every unit, reruns and requeued units too (agents/stack/snapshots.py).
        """
        return self._snapshots.reset(self._endpoints)

    def check(self) -> None:
        """Raise StackFailed, naming the service with its last log lines, if one stopped since `up()`.

        A poll, for callers that cannot take `watch()`'s events: a service that dies mid-run (OOM,
        a test stopping it) then fails this agent clearly, not its next tests.
        """
        check_running(self._started, self._connect(), self.agent_id)

    def watch(self, on_death: Callable[[str], None]) -> Callable[[], None]:
        """Call `on_death(message)` once, from a daemon thread, if a service dies before `down()`.

        The thread waits on the engine's events stream, filtered by this stack's labels: nothing
        polls. The message names the service with its last log lines, like `check()`'s StackFailed.
        Returns `stop()`, which ends the thread promptly and is safe to call twice; `down()` stops
        every watcher first, so its own removals are no death. Raises StackFailed when the engine
        gives no events stream.
        """
        with self._watch_lock:
            if self._down_started:
                return _nothing_to_stop
            source = EngineEvents.open(self.run_id, self.agent_id, lambda: self._started)
            watcher = DeathWatcher(source, on_death, name=f"orchestrate-stack-watch-{self.agent_id}")
            self._watchers.append(watcher)
        watcher.start()
        return watcher.stop

    def down(self) -> float:
        """Remove this stack's containers (with their volumes) and its network; returns seconds.

        Safe to call after a failed or partial `up()`, and twice: things already gone are fine.
        Raises StackFailed only when the engine refuses to remove something that still exists.
        """
        started_at = self._clock()
        with self._watch_lock:
            self._down_started = True
            watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.stop()
        client = self._client or self._connect()
        try:
            labels = {LABEL_RUN: self.run_id, LABEL_AGENT: self.agent_id}
            problems = remove_labelled(client, labels)
        finally:
            client.close()
            self._client = None
        if problems:
            raise StackFailed(f"agent {self.agent_id}: could not remove its stack: {'; '.join(problems)}")
        return self._clock() - started_at

    def cpu_meter(self) -> CgroupCpu | None:
        """A meter of the CPU this stack's containers spend (agents/stack/cgroup_cpu.py): their
        cgroups, found from their main processes; None where that cannot be read."""
        pids = []
        for item in self._started:
            try:
                pids.append(int(item.inspect().get("State", {}).get("Pid") or 0))
            except (StackFailed, TypeError, ValueError):
                return None
        return cgroup_cpu(pids) if pids and all(pid > 0 for pid in pids) else None

    # -- up, step by step ----------------------------------------------------------------------

    def _connect(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = engine_client(API_TIMEOUT)
                self._client.ping()
            except docker.errors.DockerException as exc:
                self._client = None
                message = f"agent {self.agent_id}: no Docker engine answers: {one_line(exc)}"
                raise StackFailed(message) from exc
        return self._client

    def _labels(self, service: str | None = None) -> dict[str, str]:
        return stack_labels(self.run_id, self.agent_id, self.owner, service)

    def _endpoints_of(
        self, client: docker.DockerClient, started: list[StartedService], before_ready: bool = False
    ) -> dict[str, dict[str, object]]:
        """Each ready service's endpoint: at its container's own address, or its published port.

        The container addresses when a TCP connect from this process reaches every service's
        (no docker-proxy on the way); one that fails decides for the whole stack.
        """
        attributes = {item.service.name: client.api.inspect_container(item.container.id) for item in started}
        targets = direct_targets([item.service for item in started], attributes, self.network_name)
        answers = address_reachable if before_ready else address_answers
        direct = targets is not None and all(answers(host, port) for host, port in targets)
        network = self.network_name if direct else None
        return {
            item.service.name: endpoint_of(item.service, attributes[item.service.name], network)
            for item in started
        }

    def _handle(self, name: str) -> ServiceHandle:
        """What a reset strategy gets for service `name`: its spec, its endpoint, its container's exec."""
        item = next((item for item in self._started if item.service.name == name), None)
        if item is None or self._endpoints is None:
            raise RuntimeError(f"agent {self.agent_id}: stack snapshot() called before up() succeeded")
        return service_handle(item.service, self._endpoints.services[name], item.execute)


def _nothing_to_stop() -> None:
    """The `stop()` of a watch that never started (asked for after `down()`)."""
