"""The stack's readiness without an engine: which health check runs, its semantics, the wait.

agents/stack/readiness.py is pure: the check is merged from the stack file and the image config,
`HealthProbe` is fed plain values on a made-up clock, and `wait_ready` drives fake containers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.stack.compose import HealthcheckSpec, ServiceSpec
from agents.stack.readiness import (
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    HealthCheck,
    HealthProbe,
    Readiness,
    health_check_of,
    running,
    wait_ready,
)
from orchestrator.protocol.errors import StackFailed

# orchestrate/postgres:15's HEALTHCHECK as `inspect_image` gives it
IMAGE_CHECK = {
    "Test": ["CMD-SHELL", "pg_isready --quiet --host=127.0.0.1 || exit 1"],
    "Interval": 500_000_000,
    "Timeout": 5_000_000_000,
    "Retries": 120,
}


class TestWhichCheck:
    def test_the_image_check_when_the_file_has_none(self) -> None:
        assert health_check_of(None, IMAGE_CHECK) == HealthCheck(
            argv=("/bin/sh", "-c", "pg_isready --quiet --host=127.0.0.1 || exit 1"),
            interval=0.5,
            timeout=5.0,
            retries=120,
            start_period=0.0,
        )

    def test_fields_the_file_leaves_out_come_from_the_image(self) -> None:
        declared = HealthcheckSpec(test=("CMD", "pg_isready", "-q"), interval=0.25)
        assert health_check_of(declared, IMAGE_CHECK) == HealthCheck(
            argv=("pg_isready", "-q"), interval=0.25, timeout=5.0, retries=120, start_period=0.0
        )

    def test_defaults_without_an_image_check(self) -> None:
        check = health_check_of(HealthcheckSpec(test=("CMD-SHELL", "true")), None)
        assert check == HealthCheck(argv=("/bin/sh", "-c", "true"))
        assert (check.interval, check.timeout, check.retries) == (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, None)

    @pytest.mark.parametrize(
        ("declared", "image"),
        [
            (HealthcheckSpec(test=("NONE",)), IMAGE_CHECK),  # disable: true beats the image's
            (None, None),
            (None, {"Test": ["NONE"]}),
            (None, {"Test": []}),
        ],
    )
    def test_no_check_means_the_protocol_probe(
        self, declared: HealthcheckSpec | None, image: Mapping[str, Any] | None
    ) -> None:
        assert health_check_of(declared, image) is None


class TestHealthProbe:
    def test_first_run_at_once_then_every_interval_after_a_run(self) -> None:
        probe = HealthProbe(HealthCheck(argv=("true",), interval=0.5), started_at=10.0)
        assert probe.due(10.0)
        assert probe.record(10.2, passed=False, output="") == Readiness(False, "health: starting")
        assert not probe.due(10.6) and probe.seconds_until_due(10.6) == pytest.approx(0.1)
        assert probe.due(10.7)
        assert probe.record(10.8, passed=True, output="") == Readiness(True, "healthy")

    def test_retries_consecutive_failures_mean_unhealthy(self) -> None:
        probe = HealthProbe(HealthCheck(argv=("x",), retries=2), started_at=0.0)
        first = probe.record(1.0, passed=False, output="disk\nfull")
        assert first == Readiness(False, "health: starting; last check said: disk full")
        second = probe.record(2.0, passed=False, output="disk full")
        assert second.failure == "health check failed (unhealthy); last check said: disk full"

    def test_failures_within_the_start_period_do_not_count(self) -> None:
        probe = HealthProbe(HealthCheck(argv=("x",), retries=1, start_period=5.0), started_at=0.0)
        for now in (1.0, 2.0, 4.9):
            assert probe.record(now, passed=False, output="").failure == ""
        assert probe.record(5.0, passed=False, output="").failure.startswith("health check failed")

    def test_without_retries_only_the_ready_timeout_ends_the_wait(self) -> None:
        probe = HealthProbe(HealthCheck(argv=("x",)), started_at=0.0)
        verdicts = [probe.record(float(now), passed=False, output="no") for now in range(1000)]
        assert all(not verdict.ready and not verdict.failure for verdict in verdicts)
        assert probe.waiting() == Readiness(False, "health: starting; last check said: no")


def test_running_reads_the_container_state() -> None:
    assert running({"State": {"Status": "running"}}) == Readiness(True, "running")
    assert running({"State": {"Status": "created"}}) == Readiness(False, "status: created")
    exited = running({"State": {"Status": "exited", "ExitCode": 3}})
    assert exited.failure == "container exited with code 3 while starting"


@dataclass
class FakeContainer:
    """A StartingService: its state and check results are scripted, its clock is made up."""

    name: str
    health_check: HealthCheck | None
    # exit codes (None: timed out) of successive runs; the last one repeats
    results: list[int | None] = field(default_factory=lambda: [0])
    status: str = "running"
    started_at: float = 0.0
    runs: list[float] = field(default_factory=list)

    @property
    def service(self) -> ServiceSpec:
        return ServiceSpec(name=self.name, image="fake")

    def inspect(self) -> Mapping[str, Any]:
        return {"State": {"Status": self.status, "ExitCode": 3}}

    def run_check(self, argv: Sequence[str], timeout: float) -> tuple[int | None, str]:
        self.runs.append(timeout)
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        return result, f"run {len(self.runs)}"

    def failure(self, what: str) -> StackFailed:
        return StackFailed(f"service '{self.name}': {what}", service=self.name)


class Clock:
    """Made-up time that moves on `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    yield Clock(step=1.0)


class TestWaitReady:
    def test_ready_once_the_check_passes_and_never_run_again(self, clock: Clock) -> None:
        db = FakeContainer("db", HealthCheck(argv=("x",), interval=0.5), results=[1, 1, 0])
        wait_ready([db], deadline=1000.0, ready_timeout=60, clock=clock)
        assert len(db.runs) == 3

    def test_never_ready_names_the_service_and_its_last_state(self, clock: Clock) -> None:
        stuck = FakeContainer("stuck", HealthCheck(argv=("x",), interval=0.5), results=[1])
        with pytest.raises(StackFailed, match=r"service 'stuck': not ready after 60 s \(health: starting"):
            wait_ready([stuck], deadline=20.0, ready_timeout=60, clock=clock)

    def test_a_container_that_exits_fails_at_once(self, clock: Clock) -> None:
        broken = FakeContainer("broken", HealthCheck(argv=("x",)), status="exited")
        with pytest.raises(StackFailed, match="container exited with code 3 while starting"):
            wait_ready([broken], deadline=1000.0, ready_timeout=60, clock=clock)
        assert broken.runs == []

    def test_a_run_past_its_timeout_is_a_failure(self, clock: Clock) -> None:
        hung = FakeContainer("hung", HealthCheck(argv=("x",), timeout=0.3, retries=1), results=[None])
        with pytest.raises(StackFailed, match="last check said: timed out after 0.3 s"):
            wait_ready([hung], deadline=1000.0, ready_timeout=60, clock=clock)
        assert hung.runs == [0.3]

    def test_a_run_cut_by_the_ready_timeout_gives_no_verdict(self) -> None:
        hung = FakeContainer("hung", HealthCheck(argv=("x",), timeout=30.0, retries=1), results=[None])
        with pytest.raises(StackFailed) as caught:
            wait_ready([hung], deadline=5.0, ready_timeout=5, clock=Clock(step=1.0))
        assert "not ready after 5 s (health: starting)" in str(caught.value)
        assert all(timeout < 30.0 for timeout in hung.runs)

    def test_the_first_failure_stops_the_other_waits(self) -> None:
        slow = FakeContainer("slow", HealthCheck(argv=("x",), interval=0.01), results=[1])
        sick = FakeContainer("sick", HealthCheck(argv=("x",), interval=0.01, retries=3), results=[1])
        started = time.monotonic()
        with pytest.raises(StackFailed, match="service 'sick': health check failed"):
            wait_ready([slow, sick], deadline=time.monotonic() + 60, ready_timeout=60, clock=time.monotonic)
        assert time.monotonic() - started < 5  # `slow` gave up with it, long before its deadline
