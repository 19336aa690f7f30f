"""The stack's watchdog and container helpers without an engine: deaths from events, endpoints.

DeathWatcher runs its real thread on a fake WatchSource whose events come from a queue; nothing
sleeps, results are awaited on queues with timeouts.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from agents.stack.compose import ServiceSpec
from agents.stack.containers import Death, create_options, death_of, direct_targets, endpoint_of
from agents.stack.watcher import DeathWatcher

WAIT = 5.0  # seconds a test waits for the watcher's thread before it counts as a failure
_END = object()


def event(action: str, service: str = "db", container: str = "c1", **attributes: str) -> dict[str, Any]:
    """A container event as the engine's events stream gives it (decoded)."""
    return {
        "Type": "container",
        "Action": action,
        "Actor": {"ID": container, "Attributes": {"orchestrate.service": service, **attributes}},
    }


class FakeSource:
    """A WatchSource whose events are put on a queue by the test; `close()` ends the iteration."""

    def __init__(self, dead_already: str | None = None, fail_with: Exception | None = None) -> None:
        self.queue: queue.Queue[object] = queue.Queue()
        self.closed = 0
        self.released = threading.Event()
        self._dead_already = dead_already
        self._fail_with = fail_with

    def events(self) -> Iterator[Mapping[str, Any]]:
        if self._fail_with is not None:
            raise self._fail_with
        while (item := self.queue.get()) is not _END:
            assert isinstance(item, dict)
            yield item

    def close(self) -> None:
        self.closed += 1
        self.queue.put(_END)

    def dead_already(self) -> str | None:
        return self._dead_already

    def describe(self, death: Death) -> str:
        return f"service '{death.service}': {death.what}; last log lines: ..."

    def lost(self) -> str:
        return "the events stream ended"

    def release(self) -> None:
        self.released.set()


def watch(source: FakeSource) -> tuple[DeathWatcher, queue.Queue[str]]:
    deaths: queue.Queue[str] = queue.Queue()
    watcher = DeathWatcher(source, deaths.put, name="test-watcher")
    watcher.start()
    return watcher, deaths


class TestDeathWatcher:
    def test_the_first_death_is_reported_once(self) -> None:
        source = FakeSource()
        watcher, deaths = watch(source)
        source.queue.put(event("kill", signal="9"))
        source.queue.put(event("die", exitCode="137"))
        source.queue.put(event("die", service="cache", container="c2", exitCode="1"))
        assert deaths.get(timeout=WAIT) == (
            "service 'db': died mid-run (exit code 137, after signal 9 (SIGKILL)); last log lines: ..."
        )
        assert source.released.wait(WAIT)
        watcher.stop()
        assert deaths.empty()

    def test_stop_ends_the_thread_and_nothing_is_reported_after_it(self) -> None:
        source = FakeSource()
        watcher, deaths = watch(source)
        watcher.stop()
        assert not watcher.is_alive()
        assert source.released.is_set()
        watcher.stop()  # twice: fine
        assert source.closed == 1
        source.queue.put(event("die", exitCode="137"))
        assert deaths.empty()

    def test_a_kill_alone_is_no_death(self) -> None:
        source = FakeSource()
        watcher, deaths = watch(source)
        source.queue.put(event("kill", signal="1"))  # SIGHUP: the container lives on
        source.queue.put(event("oom"))
        assert (
            deaths.get(timeout=WAIT)
            == "service 'db': was killed mid-run: out of memory (OOM); last log lines: ..."
        )
        watcher.stop()

    def test_a_death_before_the_stream_opened_is_reported(self) -> None:
        watcher, deaths = watch(
            FakeSource(dead_already="service 'db': stopped mid-run (exited, exit code 1)")
        )
        assert deaths.get(timeout=WAIT) == "service 'db': stopped mid-run (exited, exit code 1)"
        watcher.stop()

    def test_a_stream_that_ends_by_itself_is_reported(self) -> None:
        source = FakeSource()
        watcher, deaths = watch(source)
        source.queue.put(_END)
        assert deaths.get(timeout=WAIT) == "the events stream ended"
        watcher.stop()

    def test_an_error_of_the_thread_becomes_the_message(self) -> None:
        watcher, deaths = watch(FakeSource(fail_with=ConnectionError("engine gone")))
        assert deaths.get(timeout=WAIT) == "the stack's watchdog failed: ConnectionError('engine gone')"
        watcher.stop()

    def test_on_death_may_stop_its_own_watcher(self) -> None:
        source = FakeSource()
        stopped = threading.Event()
        watcher: DeathWatcher

        def on_death(message: str) -> None:
            watcher.stop()
            stopped.set()

        watcher = DeathWatcher(source, on_death, name="test-watcher")
        watcher.start()
        source.queue.put(event("destroy"))
        assert stopped.wait(WAIT)


class TestDeathOf:
    @pytest.mark.parametrize(
        ("action", "attributes", "what"),
        [
            ("die", {"exitCode": "0"}, "died mid-run (exit code 0)"),
            ("oom", {}, "was killed mid-run: out of memory (OOM)"),
            ("destroy", {}, "its container was removed mid-run"),
        ],
    )
    def test_events_that_end_a_service(self, action: str, attributes: dict[str, str], what: str) -> None:
        assert death_of(event(action, **attributes), {}) == Death("db", what)

    def test_other_events_are_none(self) -> None:
        signals: dict[str, str] = {}
        assert death_of(event("start"), signals) is None
        assert death_of(event("kill", signal="15"), signals) is None
        assert signals == {"c1": "15"}
        assert death_of(event("die", exitCode="143"), signals) == Death(
            "db", "died mid-run (exit code 143, after signal 15 (SIGTERM))"
        )


DB = ServiceSpec(name="db", image="orchestrate/postgres:15", ports=("5432/tcp",))
WORKER = ServiceSpec(name="worker", image="orchestrate/redis:7")
ATTRIBUTES = {
    "NetworkSettings": {
        "Ports": {"5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]},
        "Networks": {"orch-r-a0": {"IPAddress": "172.20.0.2"}},
    }
}


class TestEndpoints:
    def test_the_container_address_and_port_when_reached_directly(self) -> None:
        assert endpoint_of(DB, ATTRIBUTES, "orch-r-a0") == {
            "host": "172.20.0.2",
            "port": 5432,
            "ports": {"5432": 5432},
        }

    def test_else_the_published_port_on_localhost(self) -> None:
        assert endpoint_of(DB, ATTRIBUTES) == {"host": "127.0.0.1", "port": 49153, "ports": {"5432": 49153}}

    def test_direct_targets_are_the_services_with_ports(self) -> None:
        attributes = {"db": ATTRIBUTES, "worker": {}}
        assert direct_targets([DB, WORKER], attributes, "orch-r-a0") == [("172.20.0.2", 5432)]
        assert direct_targets([WORKER], attributes, "orch-r-a0") is None  # nothing to try
        assert direct_targets([DB], {"db": {}}, "orch-r-a0") is None  # no address yet


def test_docker_never_runs_a_health_check() -> None:
    options = create_options(DB, name="n", labels={}, network="orch-r-a0", endpoint_config=None)
    assert options["healthcheck"] == {"test": ["NONE"]}
