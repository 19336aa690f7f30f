"""The README's main job, through the real command: every agent on its own Postgres and Redis.

Also: the stack named in pyproject.toml's [tool.orchestrate], and the `orchestrate_stack`
fixture a suite uses to find its agent's services.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_orchestrate, write_suite

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.docker
@pytest.mark.ray
@pytest.mark.slow
def test_example_suite_runs_isolated_on_three_agents(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run = run_orchestrate(
        [
            "run",
            "examples/integration",
            "--stack",
            "examples/integration/stack.yml",
            "--agents",
            "3",
            "--durations",
            str(tmp_path / "durations.msgpack"),
            "--results",
            str(results),
        ],
        REPO,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(results.read_text())
    outcomes = {t["node_id"]: t["outcome"] for t in document["tests"]}
    assert len(outcomes) >= 30 and set(outcomes.values()) == {"passed"}
    # The isolation claims passed on every agent that ran them: no stack was shared.
    assert any("test_isolation.py" in n for n in outcomes)
    agents = document["agents"]
    assert len(agents) == 3 and all(a["tests"] > 0 for a in agents)
    # The report does not wait for the stacks' teardown: each agent's "stopped" is when it began.
    assert all(a["stack_up_seconds"] > 0 and a["timeline"]["stopped"] is not None for a in agents)
    # `early_worker: true`: each worker started once its containers ran, before they were ready.
    for agent in agents:
        timeline = agent["timeline"]
        assert timeline["started"] <= timeline["worker_started"] < timeline["stack_ready"], timeline
    assert "34 passed" in run.stdout


STACK = """
services:
  cache:
    image: orchestrate/redis:7
    ports: ["6379"]
    healthcheck: {disable: true}
x-orchestrate:
  env:
    REDIS_URL: "redis://{cache.host}:{cache.port}/0"
"""

SUITE = {
    "pyproject.toml": """
        [tool.orchestrate]
        stack = "stack.yml"
    """,
    "stack.yml": STACK,
    "test_uses_stack.py": """
        import ipaddress
        import os

        import redis


        def test_fixture_and_env_name_the_same_redis(orchestrate_stack, orchestrate_agent):
            host, port = orchestrate_stack.endpoint("cache")
            # The container's own address where the agent reaches it (no docker-proxy), else 127.0.0.1.
            assert ipaddress.ip_address(host).version == 4 and port > 0
            assert os.environ["REDIS_URL"] == f"redis://{host}:{port}/0"
            assert orchestrate_stack.env["REDIS_URL"] == os.environ["REDIS_URL"]
            client = redis.Redis.from_url(os.environ["REDIS_URL"])
            assert client.incr("visits") == 1  # a fresh Redis: nobody else counted here
            assert orchestrate_agent == "0"
    """,
}


@pytest.mark.docker
def test_stack_from_pyproject_and_the_orchestrate_stack_fixture(tmp_path: Path) -> None:
    write_suite(tmp_path, SUITE)

    run = run_orchestrate(["run", "--agents", "1", "--backend", "local"], tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
