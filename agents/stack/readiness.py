"""When a stack's services are ready: each one's health check, run by orchestrate, or a probe.

Docker runs a container's health check at its interval for the container's whole life (20.10,
Debian's, has no `start_interval`): four idle Postgres containers checked every 250 ms kept 0.9
of 2 cores busy. So agents/stack/started.py creates every container with Docker's check off
(test ["NONE"], which also turns off the image's HEALTHCHECK), and `wait_ready` runs the check's
command itself with `docker exec` while `up()` waits, until it first passes; never afterwards.
A service without a check (or with `disable: true`) is ready when it runs and every listed port
answers the protocol probe (agents/stack/probes.py).

Pure: the engine is reached through `StartingService`, which started.py implements. The check is
the stack file's `healthcheck` merged field by field with the image's, as Docker merges them
(`health_check_of`), and runs with Docker's semantics, except where waiting only until ready
makes another choice sensible:

- the first run is at once (Docker waits one interval), the next `interval` after a run ends;
- `interval` defaults to 0.5 s, not 30 s: the check stops at its first pass, so a short interval
  costs a few execs at start and nothing later;
- `retries` consecutive failures after `start_period` fail the stack ("unhealthy"); with no
  `retries` (in neither the stack file nor the image) only `ready_timeout` ends the wait, as
  Docker's default of 3 failures at the short interval would fail a Postgres still initialising;
- a run that outlasts `timeout` (default 30 s, never past `ready_timeout`) is a failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

from agents.stack.compose import HealthcheckSpec, ServiceSpec
from agents.stack.containers import one_line
from agents.stack.probes import port_answers, published_ports
from orchestrator.protocol.errors import StackFailed

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "HealthCheck",
    "HealthProbe",
    "Readiness",
    "StartingService",
    "health_check_of",
    "probe_readiness",
    "running",
    "wait_ready",
]

DEFAULT_INTERVAL = 0.5
DEFAULT_TIMEOUT = 30.0
# How often a starting container's state is read (an exit shows within this).
POLL_SECONDS = 0.05
# Docker's own shell for a CMD-SHELL test on Linux.
_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether a starting container is ready, in a few words; `failure` if it never will be."""

    ready: bool
    state: str
    failure: str = ""


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A health check orchestrate runs: the command to exec and Docker's timing fields, in seconds."""

    argv: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    # consecutive failures after `start_period` that mean "unhealthy"; None: wait for ready_timeout
    retries: int | None = None
    start_period: float = 0.0


class StartingService(Protocol):
    """One service's started container as the wait sees it; agents/stack/started.py makes them."""

    @property
    def service(self) -> ServiceSpec: ...

    @property
    def started_at(self) -> float:
        """The stack's clock when the container started (where `start_period` begins)."""
        ...

    @property
    def health_check(self) -> HealthCheck | None:
        """What to run until it passes; None: the protocol probe."""
        ...

    def inspect(self) -> Mapping[str, Any]:
        """The container's `inspect_container` output; raises StackFailed if it is gone."""
        ...

    def run_check(self, argv: Sequence[str], timeout: float) -> tuple[int | None, str]:
        """Exec `argv` in the container: (its exit code, its output); (None, ...) past `timeout`."""
        ...

    def failure(self, what: str) -> StackFailed:
        """The StackFailed naming the service, saying `what`, with its last log lines."""
        ...


def wait_ready(
    services: Sequence[StartingService],
    deadline: float,
    ready_timeout: float,
    clock: Callable[[], float],
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Wait for every service at once (a thread each); the first that cannot be ready raises.

    Its StackFailed names the service and its last log lines; the other waits then stop.
    `on_ready(name)` is called (from that service's thread) as each one becomes ready.
    """
    give_up = threading.Event()
    first_error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="stack-ready") as pool:
        futures = [
            pool.submit(_wait_one, item, deadline, ready_timeout, clock, give_up, on_ready)
            for item in services
        ]
        for future in as_completed(futures):
            error = future.exception()
            if error is not None and first_error is None:
                first_error = error
                give_up.set()
    if first_error is not None:
        raise first_error


def _wait_one(
    item: StartingService,
    deadline: float,
    ready_timeout: float,
    clock: Callable[[], float],
    give_up: threading.Event,
    on_ready: Callable[[str], None] | None,
) -> None:
    check = item.health_check
    probe = HealthProbe(check, item.started_at) if check is not None else None
    while not give_up.is_set():
        verdict = _readiness_now(item, probe, deadline, clock)
        if verdict.failure:
            raise item.failure(verdict.failure)
        if verdict.ready:
            if on_ready is not None:
                on_ready(item.service.name)
            return
        now = clock()
        if now >= deadline:
            raise item.failure(f"not ready after {ready_timeout:g} s ({verdict.state})")
        give_up.wait(POLL_SECONDS if probe is None else min(POLL_SECONDS, probe.seconds_until_due(now)))


def _readiness_now(
    item: StartingService, probe: HealthProbe | None, deadline: float, clock: Callable[[], float]
) -> Readiness:
    """How ready `item` is now: its health check if one is due (run now), else the last verdict."""
    attributes = item.inspect()
    if probe is None:
        return probe_readiness(attributes, item.service.ports)
    state = running(attributes)
    if not state.ready:
        return state
    now = clock()
    if not probe.due(now):
        return probe.waiting()
    timeout = min(probe.check.timeout, deadline - now)
    exit_code, output = item.run_check(probe.check.argv, max(POLL_SECONDS, timeout))
    if exit_code is None:
        if timeout < probe.check.timeout:  # cut by ready_timeout, not by its own: no verdict
            return probe.waiting()
        output = f"timed out after {probe.check.timeout:g} s"
    return probe.record(clock(), exit_code == 0, output)


def running(attributes: Mapping[str, Any]) -> Readiness:
    """Whether a starting container runs, from its `inspect_container` output; exiting is a failure."""
    state = attributes.get("State") or {}
    status = state.get("Status", "unknown")
    if status in ("exited", "dead"):
        exit_code = state.get("ExitCode")
        return Readiness(False, status, f"container exited with code {exit_code} while starting")
    if status != "running":
        return Readiness(False, f"status: {status}")
    return Readiness(True, "running")


def probe_readiness(attributes: Mapping[str, Any], ports: Sequence[str]) -> Readiness:
    """How ready a container without a health check is: running, and every listed port answering.

    From its `inspect_container` output and the service's listed `ports`.
    """
    verdict = running(attributes)
    if not verdict.ready:
        return verdict
    published = published_ports(attributes)
    if any(port not in published for port in ports):
        return Readiness(False, "ports not published yet")
    for host_port in published.values():
        if not port_answers(host_port):
            return Readiness(False, f"port {host_port} not answering yet")
    return Readiness(True, "running")


def health_check_of(
    declared: HealthcheckSpec | None, image_check: Mapping[str, Any] | None
) -> HealthCheck | None:
    """The check to run for a service, or None for the protocol probe.

    `declared` is the stack file's `healthcheck` (None when it has none); `image_check` is the
    image's `Config.Healthcheck` as `inspect_image` gives it (durations in nanoseconds). Like
    Docker, a field the stack file leaves out comes from the image's check.
    """
    image = dict(image_check or {})
    argv = _argv_of(tuple(image.get("Test") or ()) if declared is None else declared.test)
    if argv is None:
        return None

    def seconds(own: float | None, key: str, default: float) -> float:
        if own is not None:
            return own
        nanoseconds = image.get(key) or 0
        return nanoseconds / 1e9 if nanoseconds > 0 else default

    own_retries = declared.retries if declared is not None else None
    return HealthCheck(
        argv=argv,
        interval=seconds(declared.interval if declared else None, "Interval", DEFAULT_INTERVAL),
        timeout=seconds(declared.timeout if declared else None, "Timeout", DEFAULT_TIMEOUT),
        retries=own_retries if own_retries is not None else (image.get("Retries") or None),
        start_period=seconds(declared.start_period if declared else None, "StartPeriod", 0.0),
    )


def _argv_of(test: tuple[str, ...]) -> tuple[str, ...] | None:
    """What to exec for a test in Docker's form; None when there is no check (absent or NONE)."""
    if len(test) < 2:  # (), ("NONE",), or a malformed image config: no check
        return None
    kind, rest = test[0], test[1:]
    if kind == "CMD":
        return rest
    if kind == "CMD-SHELL":
        return (*_SHELL, " ".join(rest))
    return None


class HealthProbe:
    """One service's health check until it first passes: when it is due, and what each run says.

    Fed by `wait_ready`: `due(now)`, then `record(now, passed, output)` after each run, on the
    stack's clock; `started_at` is when the container started.
    """

    def __init__(self, check: HealthCheck, started_at: float) -> None:
        self.check = check
        self._started_at = started_at
        self._next_at = started_at
        self._failures = 0
        self._last_output = ""

    def due(self, now: float) -> bool:
        """True when the check should run now."""
        return now >= self._next_at

    def seconds_until_due(self, now: float) -> float:
        return max(0.0, self._next_at - now)

    def record(self, now: float, passed: bool, output: str) -> Readiness:
        """What one run ending at `now` means: ready, still starting, or unhealthy (a failure)."""
        self._last_output = one_line(output)
        self._next_at = now + self.check.interval
        if passed:
            return Readiness(True, "healthy")
        if now - self._started_at >= self.check.start_period:
            self._failures += 1
        if self.check.retries is not None and self._failures >= self.check.retries:
            return Readiness(False, "health: unhealthy", f"health check failed (unhealthy){self._detail()}")
        return self.waiting()

    def waiting(self) -> Readiness:
        """The state between runs, for the message of a service that is never ready."""
        return Readiness(False, f"health: starting{self._detail()}")

    def _detail(self) -> str:
        return f"; last check said: {self._last_output}" if self._last_output else ""
