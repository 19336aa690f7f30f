"""DockerStack: one agent's private container stack on the local Docker engine.

One of the three modules using the Docker SDK (imported once, in agents/stack/_sdk.py): this
one is one agent's stack; agents/stack/engine.py holds the engine-wide operations (the check,
`sweep`, `remove_run`, re-exported here) and agents/stack/images.py the set-up state cache.
Made by `agents.stack.make_stack`; the agent calls `up()` before its pytest worker starts,
`watch()` once it is up, `snapshot()` once after it and `reset()` before every unit when the
stack file asks for resets, and `down()` once at the end. With `setup` and the cache on, `up()`
starts the services from the committed state of the stack's key, made here under the engine's
setup lock when it is not there yet (agents/stack/images.py).

Isolation: every stack has its own bridge network (`orch-<run>-<agent>`) on which services
reach each other by service name, and every container port is published on 127.0.0.1 at a
random host port, so any number of agents can run the same stack file on one machine. The
tests get a service's own IP on that network and its container port when this process reaches
it there (Linux, the agent on the Docker host), so that their connections skip docker-proxy;
else 127.0.0.1 and the published port.
Idle, a stack costs nothing: Docker's health checks are off and the check runs here only until
it first passes (agents/stack/readiness.py); `watch()` waits on the engine's events stream
(agents/stack/watcher.py) instead of polling.
Everything created carries the labels `orchestrate.run`, `orchestrate.agent` and
`orchestrate.owner=<hostname>:<coordinator pid>`; `down()` and `sweep()` find their targets by
label, never by name. Docker errors are translated here into StackFailed / DockerUnavailable,
also for the reset strategies (agents/stack/reset/), which reach containers through `_exec`.
What needs no SDK is elsewhere: labels, names, create options, endpoints and deaths in
agents/stack/containers.py; readiness in agents/stack/readiness.py; the watchdog's thread in
agents/stack/watcher.py; snapshot, reset and the stack's commands in agents/stack/snapshots.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.stack._sdk import Container, docker
from agents.stack.cache import cache_key
from agents.stack.compose import ServiceSpec, StackSpec
from agents.stack.containers import (
    LABEL_AGENT,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_SERVICE,
    Death,
    create_options,
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
    container_logs,
    remove_labelled,
    remove_run,
    stack_cache_key,
    sweep,
)
from agents.stack.images import (
    CachedStack,
    commit_services,
    image_ids,
    prune_cache,
    read_state,
    release_lock,
    take_lock_or_wait,
)
from agents.stack.probes import address_answers, address_reachable
from agents.stack.protocol import StackEndpoints, StackStep
from agents.stack.readiness import HealthCheck, health_check_of, wait_ready
from agents.stack.reset import ExecResult, RedisReset, ServiceHandle
from agents.stack.snapshots import StackSnapshots, service_handle
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

# Container events that may end a service (a `kill` only names the signal of the `die` after it).
_DEATH_EVENTS = ("die", "oom", "kill", "destroy")
# How long an exec'd health check that printed its last byte may take to report its exit code.
_EXIT_CODE_SECONDS = 1.0
# How long an agent waits, beyond ready_timeout, for another agent's setup of the same key.
_SETUP_WAIT_SECONDS = 1800.0


@dataclass(frozen=True, slots=True)
class _Started:
    """A container `up` created and started for one service; a StartingService while `up` waits."""

    service: ServiceSpec
    container: Container
    client: docker.DockerClient
    # the stack's clock when the container started: where the health check's start_period begins
    started_at: float
    # what orchestrate runs until the service is ready; None: the protocol probe
    health_check: HealthCheck | None

    def inspect(self) -> Mapping[str, Any]:
        name = self.service.name
        try:
            attributes: Mapping[str, Any] = self.client.api.inspect_container(self.container.id)
        except docker.errors.NotFound as exc:
            raise StackFailed(
                f"service '{name}': container disappeared while starting", service=name
            ) from exc
        except docker.errors.APIError as exc:
            message = f"service '{name}': cannot inspect container: {one_line(exc)}"
            raise StackFailed(message, service=name) from exc
        return attributes

    def run_check(self, argv: Sequence[str], timeout: float) -> tuple[int | None, str]:
        """Exec a health check's command: (exit code, output); (None, output) cut off at `timeout`."""
        api = self.client.api
        try:
            exec_id = api.exec_create(self.container.id, list(argv))["Id"]
            output = api.exec_start(exec_id, stream=True)
        except docker.errors.APIError as exc:  # e.g. no longer running: the next inspect says why
            return -1, one_line(exc)
        timed_out = threading.Event()

        def cut() -> None:
            timed_out.set()
            output.close()

        # The SDK's read has no timeout; closing its CancellableStream ends it from this timer.
        timer = threading.Timer(timeout, cut)
        timer.daemon = True
        timer.start()
        try:
            text = b"".join(output).decode("utf-8", errors="replace")
        finally:
            timer.cancel()
            with contextlib.suppress(OSError):
                output.close()
        exit_code = _exec_exit_code(self.client, exec_id, wait=not timed_out.is_set())
        if exit_code is None and not timed_out.is_set():
            return -1, text or "the engine reported no exit code"
        return exit_code, text

    def failure(self, what: str, client: docker.DockerClient | None = None) -> StackFailed:
        """StackFailed naming the service, saying `what`, with its last log lines."""
        logs = container_logs(client or self.client, self.container.id)
        shown = f"; last log lines:\n{logs}" if logs else " (no log output)"
        name = self.service.name
        return StackFailed(f"service '{name}': {what}{shown}", service=name, logs=logs)


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
        self._started: list[_Started] = []
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
            self._create_network(client)
            if self.spec.setup and self.spec.cache:
                cached, paid = self._cached_state(client, deadline)
                cache = "hit" if paid is None else "miss"
                setup_seconds = paid or 0.0
                saved_seconds = cached.setup_seconds if paid is None else 0.0
                services = self._start_ready(
                    client, self._clock() + self.spec.ready_timeout, cached.images, on_endpoints
                )
                self._endpoints = self._endpoints_with(services)
                self._load_states(cached.with_state)
            else:
                self._endpoints = self._endpoints_with(
                    self._start_ready(client, deadline, None, on_endpoints)
                )
        except (docker.errors.DockerException, OSError) as exc:
            # What the specific translations below did not expect: the engine failing mid-way
            # (requests' connection errors and timeouts are OSErrors).
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

        Found in the cache (None: no setup here), or made here under the engine-wide setup lock: the services
        start from their images, setup runs, and each container is stopped and committed.
        """
        names = list(self.spec.services)
        bases = {name: service.image for name, service in self.spec.services.items()}
        key = cache_key(self.spec, image_ids(client, sorted(set(bases.values()))), self.cwd)
        self.cache_key = key
        waited_for = self.spec.ready_timeout + _SETUP_WAIT_SECONDS
        first_image = next(iter(bases.values()))
        cached = take_lock_or_wait(
            client, key, names, first_image, self._labels(), waited_for, on_wait=lambda: self._step("setup")
        )
        if cached is not None:
            return cached, None
        try:
            self._endpoints = self._endpoints_with(self._start_ready(client, deadline))
            self._step("setup")
            setup_seconds = self._snapshots.run_commands(self.spec.setup, "setup command", self._endpoints)
            containers = {item.service.name: item.container for item in self._started}
            states = {name: self._redis(name).state_bytes() for name in self._in_memory_services()}
            cached = commit_services(client, containers, key, setup_seconds, bases, states)
            for container in containers.values():
                container.remove(force=True, v=True)
            self._started = []
        finally:
            release_lock(client, key)
        prune_cache(client, self.spec.cache_max_mb * 1024 * 1024, keep=key)
        return cached, setup_seconds

    def _in_memory_services(self) -> list[str]:
        """The services whose state after setup is in memory, not on disk: Redis (`reset: redis`,
        or an image whose name says redis). A clone loads their keys once it is ready."""
        return [
            name
            for name, service in self.spec.services.items()
            if service.ports and (self.spec.reset.get(name) == "redis" or "redis" in service.image.lower())
        ]

    def _redis(self, name: str) -> RedisReset:
        """A snapshot of the Redis service `name`'s keys, taken now."""
        strategy = RedisReset(self._handle(name))
        strategy.snapshot()
        return strategy

    def _load_states(self, services: frozenset[str]) -> None:
        """Load each cloned service's kept state (agents/stack/images.py) into its running server."""
        for item in self._started:
            if item.service.name in services:
                RedisReset(self._handle(item.service.name)).load_state(read_state(item.container))

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
        started = self._start_all(client, images or {})
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
        self._check(self._connect())

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
            source = _EngineEvents.open(self)
            watcher = DeathWatcher(source, on_death, name=f"orchestrate-stack-watch-{self.agent_id}")
            self._watchers.append(watcher)
        watcher.start()
        return watcher.stop

    def _check(self, client: docker.DockerClient) -> None:
        """`check()` with `client`: raise StackFailed for the first service not running."""
        for item in self._started:
            try:
                attributes = client.api.inspect_container(item.container.id)
            except docker.errors.NotFound as exc:
                message = f"service '{item.service.name}': its container was removed mid-run"
                raise StackFailed(message, service=item.service.name) from exc
            except (docker.errors.DockerException, OSError) as exc:
                message = f"agent {self.agent_id}: the Docker engine stopped answering: {one_line(exc)}"
                raise StackFailed(message, service=item.service.name) from exc
            state = attributes.get("State") or {}
            if state.get("Status") != "running":
                what = (
                    f"stopped mid-run ({state.get('Status', 'unknown')}, exit code {state.get('ExitCode')})"
                )
                raise item.failure(what, client)

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

    # -- up, step by step ----------------------------------------------------------------------

    def _connect(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=API_TIMEOUT)
                self._client.ping()
            except docker.errors.DockerException as exc:
                self._client = None
                message = f"agent {self.agent_id}: no Docker engine answers: {one_line(exc)}"
                raise StackFailed(message) from exc
        return self._client

    def _labels(self, service: str | None = None) -> dict[str, str]:
        return stack_labels(self.run_id, self.agent_id, self.owner, service)

    def _create_network(self, client: docker.DockerClient) -> None:
        try:
            client.networks.create(
                self.network_name, driver="bridge", labels=self._labels(), check_duplicate=True
            )
        except docker.errors.APIError as exc:
            hint = ""
            if "address pool" in str(exc) or "non-overlapping" in str(exc):
                hint = (
                    " (the engine ran out of network address pools: use fewer agents, remove leftovers "
                    "with `orchestrate clean`, or widen default-address-pools in daemon.json)"
                )
            raise StackFailed(
                f"agent {self.agent_id}: cannot create network {self.network_name}: {one_line(exc)}{hint}"
            ) from exc

    def _start_all(self, client: docker.DockerClient, images: Mapping[str, str]) -> list[_Started]:
        services = list(self.spec.services.values())
        with ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="stack-up") as pool:
            futures = [
                pool.submit(self._start_one, client, service, images.get(service.name, service.image))
                for service in services
            ]
            # Wait for all before raising, so `down()` sees every container that was made.
            outcomes = [(future.exception(), future) for future in futures]
        for error, _ in outcomes:
            if error is not None:
                raise error
        return [future.result() for _, future in outcomes]

    def _start_one(self, client: docker.DockerClient, service: ServiceSpec, image: str) -> _Started:
        name = safe_name(f"{self.network_name}-{service.name}")
        options = create_options(
            service,
            name=name,
            labels=self._labels(service.name),
            network=self.network_name,
            endpoint_config=client.api.create_endpoint_config(aliases=[service.name]),
        )
        command = list(service.command) if service.command is not None else None
        try:
            image_check = None
            if service.healthcheck is None or service.healthcheck.test != ("NONE",):
                image_config = client.api.inspect_image(service.image).get("Config") or {}
                image_check = image_config.get("Healthcheck")
            # create + start, never `run`: `run` pulls a missing image, and we use no registry.
            container = client.containers.create(image, command, **options)
            container.start()
        except docker.errors.ImageNotFound as exc:
            raise StackFailed(
                f"service '{service.name}': image '{service.image}' not found locally "
                "(images are never pulled; build them with deploy/images/build.sh)",
                service=service.name,
            ) from exc
        except docker.errors.APIError as exc:
            logs = container_logs(client, name)
            raise StackFailed(
                f"service '{service.name}': cannot start container: {one_line(exc)}",
                service=service.name,
                logs=logs,
            ) from exc
        return _Started(
            service=service,
            container=container,
            client=client,
            started_at=self._clock(),
            health_check=health_check_of(service.healthcheck, image_check),
        )

    def _endpoints_of(
        self, client: docker.DockerClient, started: list[_Started], before_ready: bool = False
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
        """What a reset strategy gets for service `name`: its spec, its endpoint and `_exec`."""
        item = next((item for item in self._started if item.service.name == name), None)
        if item is None or self._endpoints is None:
            raise RuntimeError(f"agent {self.agent_id}: stack snapshot() called before up() succeeded")
        return service_handle(
            item.service,
            self._endpoints.services[name],
            lambda argv, environment: self._exec(item, argv, environment),
        )

    def _exec(self, item: _Started, argv: Sequence[str], environment: Mapping[str, str]) -> ExecResult:
        """Run `argv` in the service's container (docker exec); docker errors become StackFailed."""
        name = item.service.name
        try:
            exit_code, output = item.container.exec_run(list(argv), environment=dict(environment))
        except docker.errors.NotFound as exc:
            raise StackFailed(f"service '{name}': its container was removed mid-run", service=name) from exc
        except (docker.errors.DockerException, OSError) as exc:
            message = f"service '{name}': cannot run {argv[0]!r} in its container: {one_line(exc)}"
            raise StackFailed(message, service=name) from exc
        text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else str(output)
        # The engine reports a command it cannot start as output, with exit code 126 or 127.
        return ExecResult(exit_code=exit_code if exit_code is not None else -1, output=text)


class _EngineEvents:
    """The WatchSource of one DockerStack (agents/stack/watcher.py): its container events."""

    def __init__(self, stack: DockerStack, client: docker.DockerClient, stream: Any) -> None:
        self._stack = stack
        self._client = client
        self._stream = stream

    @classmethod
    def open(cls, stack: DockerStack) -> _EngineEvents:
        """Ask the engine for the stack's container events from now on; raises StackFailed."""
        labels = [f"{LABEL_RUN}={stack.run_id}", f"{LABEL_AGENT}={stack.agent_id}"]
        filters = {"type": "container", "label": labels, "event": list(_DEATH_EVENTS)}
        try:
            client = docker.from_env(timeout=API_TIMEOUT)
        except docker.errors.DockerException as exc:
            raise StackFailed(f"agent {stack.agent_id}: no Docker engine answers: {one_line(exc)}") from exc
        try:
            stream = client.events(decode=True, filters=filters)
        except (docker.errors.DockerException, OSError) as exc:
            client.close()
            message = f"agent {stack.agent_id}: cannot watch its stack's containers: {one_line(exc)}"
            raise StackFailed(message) from exc
        return cls(stack, client, stream)

    def events(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._stream)

    def close(self) -> None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            self._stream.close()

    def dead_already(self) -> str | None:
        try:
            self._stack._check(self._client)
        except StackFailed as exc:
            return str(exc)
        return None

    def describe(self, death: Death) -> str:
        item = next((item for item in self._stack._started if item.service.name == death.service), None)
        if item is None:
            return f"service '{death.service}': {death.what}"
        return str(item.failure(death.what, self._client))

    def lost(self) -> str:
        return (
            f"agent {self._stack.agent_id}: the Docker engine ended its events stream "
            "(did the engine stop?); the stack is no longer watched"
        )

    def release(self) -> None:
        self.close()
        self._client.close()


def _nothing_to_stop() -> None:
    """The `stop()` of a watch that never started (asked for after `down()`)."""


def _exec_exit_code(client: docker.DockerClient, exec_id: str, wait: bool) -> int | None:
    """The exit code of a finished exec; None if it still runs (after `_EXIT_CODE_SECONDS` if `wait`)."""
    deadline = time.monotonic() + (_EXIT_CODE_SECONDS if wait else 0.0)
    while True:
        details = client.api.exec_inspect(exec_id)
        if not details.get("Running") and details.get("ExitCode") is not None:
            return int(details["ExitCode"])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)
