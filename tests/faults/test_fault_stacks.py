"""Stack faults (scenario 6): a service dies mid-run, or never becomes healthy.

Either way the error names the service with its last log lines, the agent's tests are
rescheduled (or, when no agent is left, not run), other agents go on, and nothing is left.
"""

from __future__ import annotations

import os

import pytest
from conftest import run_orchestrate, write_suite
from faultkit import assert_consistent, leftovers, needs_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow, needs_docker]

STACK = """
services:
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    tmpfs: ["/data"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    REDIS_URL: "redis://{cache.host}:{cache.port}/0"
  ready_timeout: 30
"""

BAD_HEALTHCHECK = """
services:
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    healthcheck:
      test: ["CMD", "sh", "-c", "echo probe-says-no; exit 1"]
      interval: 200ms
      retries: 1000
x-orchestrate:
  ready_timeout: 3
"""

SUITE = {
    "stack.yml": STACK,
    "bad.yml": BAD_HEALTHCHECK,
    "test_stack.py": """
        import os
        import pathlib
        import socket
        import time

        import docker

        MARKS = pathlib.Path(os.environ["FAULT_MARKS"])


        def redis_answers():
            address = os.environ["REDIS_URL"].split("//")[1].split("/")[0]
            host, _, port = address.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=2) as connection:
                connection.sendall(b"PING\\r\\n")
                return connection.recv(16).startswith(b"+PONG")


        class TestStopsItsRedis:
            def test_before(self):
                assert redis_answers()

            def test_stop_redis(self):
                marker = MARKS / "stopped"
                if marker.exists():
                    return
                marker.write_text(os.environ["ORCHESTRATE_AGENT"])
                client = docker.from_env()
                labels = [
                    f"orchestrate.run={os.environ['ORCHESTRATE_RUN_ID']}",
                    f"orchestrate.agent={os.environ['ORCHESTRATE_AGENT']}",
                ]
                for container in client.containers.list(filters={"label": labels}):
                    container.stop(timeout=1)
                # Still running when the agent's stack watchdog notices.
                time.sleep(10)

            def test_after(self):
                assert redis_answers()


        class TestOther:
            def test_1(self):
                time.sleep(0.5)
                assert redis_answers()

            def test_2(self):
                time.sleep(0.5)
                assert redis_answers()
        """,
}

COLLECTED = [
    *(f"test_stack.py::TestStopsItsRedis::{n}" for n in ("test_before", "test_stop_redis", "test_after")),
    "test_stack.py::TestOther::test_1",
    "test_stack.py::TestOther::test_2",
]


@pytest.mark.ray
def test_a_service_dying_mid_run_fails_its_agent_and_its_tests_move(tmp_path):
    root = write_suite(tmp_path, SUITE)
    (root / "marks").mkdir()
    env = dict(os.environ, FAULT_MARKS=str(root / "marks"))
    args = ["run", "--agents", "2", "--stack", "stack.yml", "--durations", "d.msgpack"]
    args += ["--results", "results.json", "--junitxml", "junit.xml", "test_stack.py"]
    proc = run_orchestrate(args, root, env=env, timeout=180)
    assert "Traceback" not in proc.stderr
    tests = assert_consistent(root / "results.json", root / "junit.xml", proc.stdout, COLLECTED)
    victim = (root / "marks" / "stopped").read_text()
    assert f"agent {victim}: stack failed mid-run" in proc.stdout
    assert "service 'cache': died mid-run" in proc.stdout  # Docker's die event
    assert "Redis is now ready to exit" in proc.stdout  # its last log lines
    # Its tests went to the other agent and passed there; no test ran against the dead Redis.
    assert {t["outcome"] for t in tests.values()} == {"passed"}, proc.stdout[-3000:]
    stopper = tests["test_stack.py::TestStopsItsRedis::test_stop_redis"]
    assert [a["outcome"] for a in stopper["attempts"]] == ["crashed", "passed"]
    assert tests["test_stack.py::TestStopsItsRedis::test_after"]["agent"] != int(victim)
    assert proc.returncode == 0
    assert leftovers() == []


def test_a_service_never_healthy_names_it_with_its_logs(tmp_path):
    root = write_suite(tmp_path, SUITE)
    (root / "marks").mkdir()
    env = dict(os.environ, FAULT_MARKS=str(root / "marks"))
    args = ["run", "--backend", "local", "--agents", "2", "--stack", "bad.yml", "--durations", "d.msgpack"]
    args += ["--results", "results.json", "--junitxml", "junit.xml", "test_stack.py"]
    proc = run_orchestrate(args, root, env=env, timeout=120)
    assert "Traceback" not in proc.stderr
    tests = assert_consistent(root / "results.json", root / "junit.xml", proc.stdout, COLLECTED)
    assert proc.returncode == 1
    assert (
        "service 'cache': not ready after 3 s (health: starting; last check said: probe-says-no)"
        in proc.stdout
    )
    assert "Ready to accept connections" in proc.stdout  # the service's last log lines
    assert {t["outcome"] for t in tests.values()} == {"not-run"}
    assert leftovers() == []
