"""DockerStack against the real local engine: isolation, readiness, failures, clean-up and sweep.

Needs a Docker engine and the images of deploy/images/build.sh. Every stack made here is taken
down in a fixture finalizer, and the module checks at the end that nothing labelled with one of
its run ids is left behind.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import psycopg
import pytest
import redis
from docker.models.containers import Container

from agents.stack import (
    check_engine,
    clean_cache,
    current_owner,
    load_stack_file,
    make_stack,
    stack_env_json,
    sweep,
)
from agents.stack.compose import StackSpec, parse_stack
from agents.stack.docker import LABEL_AGENT, LABEL_OWNER, LABEL_RUN, DockerStack
from agents.stack.probes import address_answers
from orchestrator.protocol.errors import DockerUnavailable, StackFailed

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "integration"
RUN_PREFIX = "t" + uuid.uuid4().hex[:6]

PG_AND_REDIS = """
services:
  db:
    image: orchestrate/postgres:15
    ports: ["5432"]
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"
    REDIS_URL: "redis://{cache.host}:{cache.ports[6379]}/0"
  ready_timeout: 30
"""

MakeStack = Callable[..., DockerStack]


def spec_of(text: str) -> StackSpec:
    return parse_stack(textwrap.dedent(text), path=Path("test-stack.yml"))


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    check_engine()  # a clear DockerUnavailable instead of a wall of connection errors
    client = docker.from_env()
    yield client
    leftovers = client.containers.list(all=True, filters={"label": LABEL_RUN})
    ours = [c.name for c in leftovers if c.labels.get(LABEL_RUN, "").startswith(RUN_PREFIX)]
    networks = [
        n.name
        for n in client.networks.list(filters={"label": LABEL_RUN})
        if (n.attrs.get("Labels") or {}).get(LABEL_RUN, "").startswith(RUN_PREFIX)
    ]
    client.close()
    assert ours == [] and networks == [], "stacks left behind"


@pytest.fixture
def make(engine: docker.DockerClient) -> Iterator[MakeStack]:
    """Make DockerStacks with fresh run ids; every one is taken down when the test ends."""
    made: list[DockerStack] = []

    def factory(
        spec: StackSpec, agent_id: str = "a0", owner: str | None = None, cwd: Path | None = None
    ) -> DockerStack:
        run_id = f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}"
        stack = DockerStack(spec, run_id, agent_id, owner or current_owner(), cwd=cwd)
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        stack.down()
        if stack.cache_key is not None:  # the set-up state it committed: not left behind
            clean_cache(stack.cache_key)


def container_of(engine: docker.DockerClient, stack: DockerStack, service: str) -> Container:
    (container,) = engine.containers.list(
        all=True, filters={"label": [f"{LABEL_RUN}={stack.run_id}", f"orchestrate.service={service}"]}
    )
    return container


def container_ip(engine: docker.DockerClient, stack: DockerStack, service: str) -> str:
    networks = container_of(engine, stack, service).attrs["NetworkSettings"]["Networks"]
    return str(networks[stack.network_name]["IPAddress"])


def watcher_threads(agent_id: str) -> int:
    """How many of `agent_id`'s stack watchers still run."""
    name = f"orchestrate-stack-watch-{agent_id}"
    return sum(1 for thread in threading.enumerate() if thread.name == name and thread.is_alive())


def labelled(engine: docker.DockerClient, stack: DockerStack) -> tuple[list[str], list[str]]:
    filters = {"label": [f"{LABEL_RUN}={stack.run_id}", f"{LABEL_AGENT}={stack.agent_id}"]}
    containers = [c.name for c in engine.containers.list(all=True, filters=filters)]
    networks = [n.name for n in engine.networks.list(filters=filters)]
    return containers, networks


class TestIsolationAndReadiness:
    def test_two_stacks_at_once_are_isolated(self, make: MakeStack) -> None:
        spec = spec_of(PG_AND_REDIS)
        first, second = make(spec, "a0"), make(spec, "a1")
        with ThreadPoolExecutor(max_workers=2) as pool:
            one, two = pool.map(lambda stack: stack.up(), [first, second])
        for service in ("db", "cache"):
            first_at = (one.services[service]["host"], one.services[service]["port"])
            assert first_at != (two.services[service]["host"], two.services[service]["port"])
        for endpoints, label in ((one, "first"), (two, "second")):
            # Readiness is real: the very first query after up() succeeds.
            with psycopg.connect(endpoints.env["DATABASE_URL"], autocommit=True) as db:
                db.execute("CREATE TABLE marker (label text)")
                db.execute("INSERT INTO marker VALUES (%s)", (label,))
            cache = redis.Redis.from_url(endpoints.env["REDIS_URL"], decode_responses=True)
            cache.set("marker", label)
            cache.close()
        for endpoints, label in ((one, "first"), (two, "second")):
            with psycopg.connect(endpoints.env["DATABASE_URL"]) as db:
                assert db.execute("SELECT label FROM marker").fetchall() == [(label,)]
            cache = redis.Redis.from_url(endpoints.env["REDIS_URL"], decode_responses=True)
            assert cache.get("marker") == label
            cache.close()

    def test_endpoints_env_and_timings(self, make: MakeStack, engine: docker.DockerClient) -> None:
        # Where this process reaches a container's own address on the stack network (Linux, on
        # the Docker host), the tests get it and the container port: no docker-proxy in between.
        stack = make(spec_of(PG_AND_REDIS))
        endpoints = stack.up()
        db = endpoints.services["db"]
        address = container_ip(engine, stack, "db")
        if not address_answers(address, 5432):
            pytest.skip(f"this process does not reach containers at their own address ({address})")
        assert db == {"host": address, "port": 5432, "ports": {"5432": 5432}}
        assert endpoints.services["cache"]["host"] == container_ip(engine, stack, "cache")
        assert endpoints.env["DATABASE_URL"] == f"postgresql://postgres:postgres@{address}:5432/postgres"
        assert endpoints.env["REDIS_URL"] == f"redis://{container_ip(engine, stack, 'cache')}:6379/0"
        assert 0 < endpoints.up_seconds < 30
        assert endpoints.setup_seconds == 0.0
        assert f'"host": "{address}"' in stack_env_json(endpoints)
        with psycopg.connect(endpoints.env["DATABASE_URL"]) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)

    def test_endpoints_fall_back_to_the_published_ports(
        self, make: MakeStack, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Where the container's address does not answer (Docker Desktop's VM, an agent in a
        # container of its own), the tests go through the ports published on 127.0.0.1.
        tried: list[tuple[str, int]] = []

        def unreachable(host: str, port: int) -> bool:
            tried.append((host, port))
            return False

        monkeypatch.setattr("agents.stack.docker.address_answers", unreachable)
        endpoints = make(spec_of(PG_AND_REDIS)).up()
        assert len(tried) == 1 and tried[0][1] in (5432, 6379)  # one failed connect decides
        db = endpoints.services["db"]
        assert db["host"] == "127.0.0.1"
        assert db["ports"] == {"5432": db["port"]} and db["port"] != 5432
        assert (
            endpoints.env["DATABASE_URL"] == f"postgresql://postgres:postgres@127.0.0.1:{db['port']}/postgres"
        )
        with psycopg.connect(endpoints.env["DATABASE_URL"]) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        cache = redis.Redis.from_url(endpoints.env["REDIS_URL"])
        assert cache.ping() is True
        cache.close()

    def test_labels_network_and_localhost_only_publishing(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        stack = make(spec_of(PG_AND_REDIS), "a7", owner="somehost:4242")
        stack.up()
        containers = engine.containers.list(all=True, filters={"label": f"{LABEL_RUN}={stack.run_id}"})
        assert sorted(c.labels["orchestrate.service"] for c in containers) == ["cache", "db"]
        for container in containers:
            assert container.labels[LABEL_AGENT] == "a7"
            assert container.labels[LABEL_OWNER] == "somehost:4242"
            bindings = container.attrs["HostConfig"]["PortBindings"]
            published = container.attrs["NetworkSettings"]["Ports"]
            assert all(b["HostIp"] == "127.0.0.1" for spec in bindings.values() for b in spec)
            assert all(b["HostIp"] == "127.0.0.1" for spec in published.values() for b in spec or [])
            networks = container.attrs["NetworkSettings"]["Networks"]
            assert list(networks) == [f"orch-{stack.run_id}-a7"]
            assert container.labels["orchestrate.service"] in networks[stack.network_name]["Aliases"]
        network = engine.networks.get(stack.network_name)
        assert network.attrs["Labels"][LABEL_OWNER] == "somehost:4242"
        assert network.attrs["Labels"][LABEL_RUN] == stack.run_id

    def test_services_reach_each_other_by_name(self, make: MakeStack, engine: docker.DockerClient) -> None:
        stack = make(spec_of(PG_AND_REDIS))
        stack.up()
        (cache,) = engine.containers.list(
            filters={"label": [f"{LABEL_RUN}={stack.run_id}", "orchestrate.service=cache"]}
        )
        exit_code, output = cache.exec_run(["getent", "hosts", "db"])
        assert exit_code == 0, output

    def test_port_probe_waits_for_a_listener_when_there_is_no_healthcheck(self, make: MakeStack) -> None:
        # docker-proxy accepts on the published port at once; the probe must see through that.
        spec = spec_of(
            """
            services:
              slow:
                image: orchestrate/redis:7
                command: ["sh", "-c", "sleep 1.5; exec redis-server --bind 0.0.0.0 --protected-mode no"]
                ports: ["6379"]
                healthcheck: {disable: true}
            """
        )
        started = time.monotonic()
        endpoints = make(spec).up()
        assert time.monotonic() - started >= 1.5
        slow = endpoints.services["slow"]
        client = redis.Redis(host=str(slow["host"]), port=int(str(slow["port"])))
        assert client.ping() is True
        client.close()


class TestFailures:
    def test_missing_image_names_service_and_image(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        spec = spec_of(
            """
            services:
              db: {image: orchestrate/postgres:15, ports: ["5432"]}
              ghost: {image: "orchestrate/does-not-exist:1"}
            """
        )
        stack = make(spec)
        with pytest.raises(StackFailed) as caught:
            stack.up()
        assert caught.value.service == "ghost"
        assert "service 'ghost'" in str(caught.value)
        assert "orchestrate/does-not-exist:1" in str(caught.value)
        assert "deploy/images/build.sh" in str(caught.value)
        stack.down()
        assert labelled(engine, stack) == ([], [])

    def test_container_that_exits_at_start_fails_with_its_logs(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              broken:
                image: orchestrate/redis:7
                command: ["sh", "-c", "echo starting; echo 'fatal: no config' >&2; exit 3"]
            """
        )
        started = time.monotonic()
        with pytest.raises(StackFailed) as caught:
            make(spec).up()
        assert time.monotonic() - started < 10
        assert caught.value.service == "broken"
        assert "exited with code 3" in str(caught.value)
        assert "fatal: no config" in caught.value.logs
        assert "fatal: no config" in str(caught.value)

    def test_bad_command_fails(self, make: MakeStack) -> None:
        spec = spec_of("services:\n  typo:\n    image: orchestrate/redis:7\n    command: [redis-servr]\n")
        with pytest.raises(StackFailed) as caught:
            make(spec).up()
        assert caught.value.service == "typo"
        assert "redis-servr" in str(caught.value)

    def test_never_healthy_service_times_out(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              stuck:
                image: orchestrate/redis:7
                healthcheck: {test: ["CMD", "false"], interval: 200ms, retries: 1000}
            x-orchestrate:
              ready_timeout: 2
            """
        )
        started = time.monotonic()
        with pytest.raises(StackFailed) as caught:
            make(spec).up()
        elapsed = time.monotonic() - started
        assert 2 <= elapsed < 8
        assert caught.value.service == "stuck"
        assert "not ready after 2 s (health: starting)" in str(caught.value)
        assert "Ready to accept connections" in caught.value.logs

    def test_unhealthy_service_fails_before_the_timeout(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              sick:
                image: orchestrate/redis:7
                healthcheck: {test: "echo disk full; exit 1", interval: 100ms, retries: 2}
            """
        )
        started = time.monotonic()
        with pytest.raises(StackFailed, match="health check failed.*disk full"):
            make(spec).up()
        assert time.monotonic() - started < 10

    def test_failing_setup_command_reports_its_output(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              cache: {image: orchestrate/redis:7, ports: ["6379"]}
            x-orchestrate:
              setup:
                - "true"
                - "echo migrating; echo 'relation users already exists' >&2; exit 7"
            """
        )
        with pytest.raises(StackFailed) as caught:
            make(spec).up()
        assert "exit code 7" in str(caught.value)
        assert "migrating" in caught.value.logs
        assert "relation users already exists" in caught.value.logs

    def test_setup_runs_in_cwd_with_the_stack_env_and_our_python(
        self, make: MakeStack, tmp_path: Path
    ) -> None:
        spec = spec_of(
            """
            services:
              cache: {image: orchestrate/redis:7, ports: ["6379"]}
            x-orchestrate:
              env: {REDIS_URL: "redis://{cache.host}:{cache.port}/0"}
              setup:
                - python -c "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL']).set('seeded', 1)"
                - echo "$REDIS_URL" > seen.txt
            """
        )
        endpoints = make(spec, cwd=tmp_path).up()
        assert (tmp_path / "seen.txt").read_text().strip() == endpoints.env["REDIS_URL"]
        client = redis.Redis.from_url(endpoints.env["REDIS_URL"])
        assert client.get("seeded") == b"1"
        client.close()
        assert endpoints.setup_seconds > 0


class TestReadinessOnlyUntilReady:
    """Docker's health checks are off; orchestrate runs the check until it passes, then never."""

    def test_no_health_check_runs_once_the_stack_is_ready(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        spec = spec_of(
            """
            services:
              db:
                image: orchestrate/postgres:15
                ports: ["5432"]
                healthcheck: {test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"], interval: 100ms, retries: 300}
              cache:
                image: orchestrate/redis:7    # no healthcheck here: the image's, run by orchestrate
                ports: ["6379"]
            """
        )
        stack = make(spec)
        before_up = time.time()
        stack.up()
        ready_at = time.time()
        for service in ("db", "cache"):
            attributes = container_of(engine, stack, service).attrs
            assert attributes["Config"]["Healthcheck"]["Test"] == ["NONE"]
            assert "Health" not in attributes["State"]
        time.sleep(1.5)  # 15 intervals of the db's check, 3 of the image's
        checks = [
            (event["Actor"]["Attributes"]["orchestrate.service"], event["timeNano"] > ready_at * 1e9)
            for event in engine.events(
                since=int(before_up),
                until=int(time.time()) + 1,
                decode=True,
                filters={"type": "container", "label": f"{LABEL_RUN}={stack.run_id}"},
            )
            if str(event.get("Action", "")).startswith("exec_start")
        ]
        assert {service for service, _ in checks} == {"db", "cache"}  # both checked while starting
        assert [check for check in checks if check[1]] == []  # and never again

    def test_the_image_health_check_decides_when_the_file_has_none(self, make: MakeStack) -> None:
        # No ports, so the protocol probe would call it ready at once: the image's redis-cli ping waits.
        spec = spec_of(
            """
            services:
              late:
                image: orchestrate/redis:7
                command: ["sh", "-c", "sleep 1.5; exec redis-server"]
            """
        )
        started = time.monotonic()
        make(spec).up()
        assert time.monotonic() - started >= 1.5

    def test_failures_in_the_start_period_do_not_count(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              warming:
                image: orchestrate/redis:7
                command: ["sh", "-c", "sleep 1; touch /tmp/warm; exec redis-server"]
                healthcheck: {test: "test -e /tmp/warm", interval: 100ms, retries: 1, start_period: 10s}
            """
        )
        started = time.monotonic()
        make(spec).up()  # with retries 1 and no start_period, the first run would fail the stack
        assert 1 <= time.monotonic() - started < 10

    def test_a_check_that_hangs_is_cut_at_its_timeout(self, make: MakeStack) -> None:
        spec = spec_of(
            """
            services:
              hung:
                image: orchestrate/redis:7
                healthcheck: {test: "sleep 30", interval: 100ms, timeout: 300ms, retries: 2}
            """
        )
        started = time.monotonic()
        with pytest.raises(StackFailed) as caught:
            make(spec).up()
        assert time.monotonic() - started < 8
        assert "health check failed (unhealthy); last check said: timed out after 0.3 s" in str(caught.value)
        assert caught.value.service == "hung"


class TestWatch:
    """`watch()` reports a service's death from the engine's events, once, and never after stop."""

    def test_a_killed_service_is_reported_once_within_seconds(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        stack = make(spec_of(PG_AND_REDIS), "w1")
        stack.up()
        deaths: queue.Queue[str] = queue.Queue()
        stop = stack.watch(deaths.put)
        try:
            killed_at = time.monotonic()
            container_of(engine, stack, "db").kill()
            message = deaths.get(timeout=5)
            assert time.monotonic() - killed_at < 5
            assert message.startswith("service 'db': died mid-run (exit code 137, after signal 9 (SIGKILL))")
            assert "last log lines:" in message and "ready to accept connections" in message
            container_of(engine, stack, "cache").kill()
            with pytest.raises(queue.Empty):
                deaths.get(timeout=1.0)  # once
        finally:
            stop()

    def test_stop_ends_the_watcher_and_nothing_is_reported_after_it(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        stack = make(spec_of(PG_AND_REDIS), "w2")
        stack.up()
        deaths: queue.Queue[str] = queue.Queue()
        stop = stack.watch(deaths.put)
        assert watcher_threads("w2") == 1
        started = time.monotonic()
        stop()
        assert time.monotonic() - started < 1
        assert watcher_threads("w2") == 0
        stop()  # twice: fine
        container_of(engine, stack, "cache").kill()
        with pytest.raises(queue.Empty):
            deaths.get(timeout=1.5)

    def test_down_stops_its_watchers_before_removing(self, make: MakeStack) -> None:
        stack = make(spec_of(PG_AND_REDIS), "w3")
        stack.up()
        deaths: queue.Queue[str] = queue.Queue()
        stop = stack.watch(deaths.put)
        stack.down()
        assert watcher_threads("w3") == 0
        with pytest.raises(queue.Empty):
            deaths.get(timeout=1.5)
        stop()  # after down: fine

    def test_a_service_that_died_before_watch_is_reported(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        stack = make(spec_of(PG_AND_REDIS), "w4")
        stack.up()
        cache = container_of(engine, stack, "cache")
        cache.kill()
        cache.wait(timeout=10)
        deaths: queue.Queue[str] = queue.Queue()
        stop = stack.watch(deaths.put)
        try:
            message = deaths.get(timeout=5)
        finally:
            stop()
        assert message.startswith("service 'cache': stopped mid-run (exited, exit code 137)")


class TestCleanUp:
    def test_down_leaves_nothing_and_is_idempotent(
        self, make: MakeStack, engine: docker.DockerClient
    ) -> None:
        stack = make(spec_of(PG_AND_REDIS))
        stack.up()
        containers, networks = labelled(engine, stack)
        assert len(containers) == 2 and networks == [stack.network_name]
        seconds = stack.down()
        assert 0 <= seconds < 30
        assert labelled(engine, stack) == ([], [])
        assert stack.down() >= 0  # already gone: fine

    def test_down_without_up(self, make: MakeStack) -> None:
        assert make(spec_of(PG_AND_REDIS)).down() >= 0

    def test_sweep_removes_dead_owners_and_keeps_live_ones(self, engine: docker.DockerClient) -> None:
        dead_pid = _dead_pid()
        host = socket.gethostname()
        owners = {
            "dead": f"{host}:{dead_pid}",
            "live": f"{host}:{os.getpid()}",
            "elsewhere": f"another-host-{uuid.uuid4().hex[:6]}:{dead_pid}",
        }
        run_id = f"{RUN_PREFIX}-sweep"
        created = {}
        networks = {}
        try:
            for kind, owner in owners.items():
                labels = {LABEL_RUN: run_id, LABEL_AGENT: kind, LABEL_OWNER: owner}
                created[kind] = engine.containers.create(
                    "orchestrate/redis:7", labels=labels, name=f"orch-{run_id}-{kind}"
                )
                networks[kind] = engine.networks.create(f"orch-{run_id}-{kind}", labels=labels)
            removed_containers, removed_networks = sweep()
            assert removed_containers >= 1 and removed_networks >= 1
            remaining = {
                c.labels[LABEL_AGENT]
                for c in engine.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
            }
            remaining_networks = {
                n.attrs["Labels"][LABEL_AGENT]
                for n in engine.networks.list(filters={"label": f"{LABEL_RUN}={run_id}"})
            }
            assert remaining == {"live", "elsewhere"}
            assert remaining_networks == {"live", "elsewhere"}
        finally:
            for container in engine.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}):
                container.remove(force=True)
            for network in engine.networks.list(filters={"label": f"{LABEL_RUN}={run_id}"}):
                network.remove()


class TestEngine:
    def test_check_engine_answers(self) -> None:
        assert check_engine()

    def test_no_engine_is_one_clear_line(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
        started = time.monotonic()
        with pytest.raises(DockerUnavailable) as caught:
            check_engine()
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"no Docker engine answers at unix://{tmp_path}/no.sock")

    def test_make_stack_without_spec_is_a_null_stack(self) -> None:
        stack = make_stack(None, "r", "a", current_owner())
        endpoints = stack.up()
        assert endpoints.env == {} and endpoints.services == {}
        stop = stack.watch(lambda message: pytest.fail(message))
        stop()
        stop()
        assert stack.down() == 0.0


class TestExampleSuite:
    """The example suite passes on a stack of its own and fails when two processes share one."""

    def _pytest(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", str(EXAMPLE), "-p", "no:cacheprovider", "-q", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def _stack_env(self, make: MakeStack) -> dict[str, str]:
        endpoints = make(load_stack_file(EXAMPLE / "stack.yml"), cwd=REPO).up()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATE_", "PYTEST_"))}
        return {**clean, **endpoints.env, "ORCHESTRATE_STACK": stack_env_json(endpoints)}

    def test_xdist_against_one_shared_stack_fails(self, make: MakeStack) -> None:
        result = self._pytest(self._stack_env(make), "-n", "2")
        assert result.returncode == 1, result.stdout[-3000:]
        assert "this stack is shared" in result.stdout

    @pytest.mark.slow
    def test_suite_passes_on_its_own_stack(self, make: MakeStack) -> None:
        result = self._pytest(self._stack_env(make))
        assert result.returncode == 0, result.stdout[-3000:]
        assert " passed" in result.stdout and "failed" not in result.stdout

    def test_suite_without_a_stack_fails_clearly(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        result = self._pytest(env, "-x")
        assert result.returncode == 1
        assert "DATABASE_URL is not set" in result.stdout


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
