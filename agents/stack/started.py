"""One stack's containers on the engine: its network, each service's container started, and
a started container as the stack reaches it (inspect, exec, still running or not).

Uses the Docker SDK (through agents/stack/_sdk.py) for agents/stack/docker.py's DockerStack,
which owns the list of StartedService that `start_services` returns. Every container is
created and started, never `run` (which would pull a missing image: no registry is used), on
the stack's own network under its service's name. Docker errors become StackFailed here,
naming the service and, where there are any, its last log lines. What needs no SDK (labels,
names, create options) is in agents/stack/containers.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from agents.stack._sdk import Container, docker
from agents.stack.compose import ServiceSpec
from agents.stack.containers import create_options, one_line, safe_name
from agents.stack.engine import container_logs
from agents.stack.readiness import HealthCheck, health_check_of
from agents.stack.reset import ExecResult
from orchestrator.protocol.errors import StackFailed

__all__ = ["StartedService", "check_running", "create_network", "start_services"]

# How long an exec'd health check that printed its last byte may take to report its exit code.
_EXIT_CODE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class StartedService:
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

    def execute(self, argv: Sequence[str], environment: Mapping[str, str]) -> ExecResult:
        """Run `argv` in the service's container (docker exec); docker errors become StackFailed."""
        name = self.service.name
        try:
            exit_code, output = self.container.exec_run(list(argv), environment=dict(environment))
        except docker.errors.NotFound as exc:
            raise StackFailed(f"service '{name}': its container was removed mid-run", service=name) from exc
        except (docker.errors.DockerException, OSError) as exc:
            message = f"service '{name}': cannot run {argv[0]!r} in its container: {one_line(exc)}"
            raise StackFailed(message, service=name) from exc
        text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else str(output)
        # The engine reports a command it cannot start as output, with exit code 126 or 127.
        return ExecResult(exit_code=exit_code if exit_code is not None else -1, output=text)


def create_network(client: docker.DockerClient, name: str, labels: Mapping[str, str], agent_id: str) -> None:
    """Create the stack's own bridge network `name`; raises StackFailed (with a hint when the
    engine has no address pool left)."""
    try:
        client.networks.create(name, driver="bridge", labels=dict(labels), check_duplicate=True)
    except docker.errors.APIError as exc:
        hint = ""
        if "address pool" in str(exc) or "non-overlapping" in str(exc):
            hint = (
                " (the engine ran out of network address pools: use fewer agents, remove leftovers "
                "with `orchestrate clean`, or widen default-address-pools in daemon.json)"
            )
        raise StackFailed(f"agent {agent_id}: cannot create network {name}: {one_line(exc)}{hint}") from exc


def start_services(
    client: docker.DockerClient,
    services: Sequence[ServiceSpec],
    network: str,
    labels_of: Callable[[str], Mapping[str, str]],
    images: Mapping[str, str],
    clock: Callable[[], float],
) -> list[StartedService]:
    """Create and start every service's container concurrently on `network` (from `images[name]`
    when given, else its own image); raises the first StackFailed once all have been tried."""
    with ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="stack-up") as pool:
        futures = [
            pool.submit(
                _start_one,
                client,
                service,
                images.get(service.name, service.image),
                network,
                labels_of(service.name),
                clock,
            )
            for service in services
        ]
        # Wait for all before raising, so `down()` sees every container that was made.
        outcomes = [(future.exception(), future) for future in futures]
    for error, _ in outcomes:
        if error is not None:
            raise error
    return [future.result() for _, future in outcomes]


def check_running(started: Sequence[StartedService], client: docker.DockerClient, agent_id: str) -> None:
    """Raise StackFailed for the first of `started` whose container is not running."""
    for item in started:
        try:
            attributes = client.api.inspect_container(item.container.id)
        except docker.errors.NotFound as exc:
            message = f"service '{item.service.name}': its container was removed mid-run"
            raise StackFailed(message, service=item.service.name) from exc
        except (docker.errors.DockerException, OSError) as exc:
            message = f"agent {agent_id}: the Docker engine stopped answering: {one_line(exc)}"
            raise StackFailed(message, service=item.service.name) from exc
        state = attributes.get("State") or {}
        if state.get("Status") != "running":
            what = f"stopped mid-run ({state.get('Status', 'unknown')}, exit code {state.get('ExitCode')})"
            raise item.failure(what, client)


def _start_one(
    client: docker.DockerClient,
    service: ServiceSpec,
    image: str,
    network: str,
    labels: Mapping[str, str],
    clock: Callable[[], float],
) -> StartedService:
    name = safe_name(f"{network}-{service.name}")
    options = create_options(
        service,
        name=name,
        labels=labels,
        network=network,
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
    return StartedService(
        service=service,
        container=container,
        client=client,
        started_at=clock(),
        health_check=health_check_of(service.healthcheck, image_check),
    )


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
