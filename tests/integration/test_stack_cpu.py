"""A test's CPU counts what the agent's own database spent on it (agents/stack/cgroup_cpu.py).

A real agent with a real Postgres: the test that makes the database work for a while ends with
CPU-seconds the worker alone did not spend, so a duration learnt under load is corrected for the
database's share too (orchestrator/run/host_load.py).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_agent_runtime import Collector, _runtime

from orchestrator.protocol import messages as pm

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# No health check: the service is ready once its port answers Postgres's protocol.
STACK = """
    services: {db: {image: "orchestrate/postgres:15", ports: ["5432"]}}
    x-orchestrate:
      env: {DATABASE_URL: "postgresql://postgres:postgres@{db.host}:{db.port}/postgres"}
"""

SUITE = """
    import os

    import psycopg


    def test_database_works():
        with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
            connection.execute("SELECT count(*) FROM generate_series(1, 4000000)").fetchone()


    def test_nothing():
        pass
"""


def test_what_the_database_spent_is_in_the_test_s_cpu(tmp_path: Path) -> None:
    (tmp_path / "test_db.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "stack.yml").write_text(textwrap.dedent(STACK))
    collector = Collector()
    runtime = _runtime(
        tmp_path,
        collector,
        pytest_args=("test_db.py", "-p", "no:randomly", "-p", "no:cacheprovider"),
        stack_text=(tmp_path / "stack.yml").read_text(),
        stack_path=str(tmp_path / "stack.yml"),
    )
    runtime.start()
    try:
        runtime.command(pm.Assign(units=(pm.UnitWork("m", ("test_db.py::test_database_works",)),)))
        runtime.command(pm.Flush())  # no successor: the worker ends the test's teardown now
        collector.wait_for(pm.UnitFinished, timeout=180)
        runtime.command(pm.Assign(units=(pm.UnitWork("n", ("test_db.py::test_nothing",)),)))
        runtime.command(pm.Finish())
    except BaseException:
        runtime.command(pm.Abort())  # the stack comes down whatever failed
        runtime.wait_stopped(120)
        raise AssertionError(f"the agent said: {collector.seen}") from None
    events = collector.rest(runtime)
    ended = {e.node_id.split("::")[-1]: e for e in events if isinstance(e, pm.TestEnded)}
    assert not [e for e in events if isinstance(e, pm.AgentFailed)], events
    worked, idle = ended["test_database_works"], ended["test_nothing"]
    # The query keeps Postgres busy (0.2-0.5 s here) while the worker waits on its socket: the
    # test's CPU is mostly the database's, most of its duration.
    assert worked.cpu_seconds > 0.1 and worked.cpu_seconds > 0.5 * worked.seconds, worked
    assert idle.cpu_seconds < 0.05, idle
