"""Public integration suites the benchmarks measure from a checkout you fetch (never bundled).

Called by benchmarks/run.py for the `sqlalchemy` and `redis-py` cases (`--public NAME=CHECKOUT`).
Each `PublicSuite` says which of the suite's files run, with which pytest and orchestrate
arguments, and the stack each agent brings up: a Postgres for SQLAlchemy (its plugin names the
backend's test classes after the server in `pytest_collection_modifyitems`, so the coordinator
collects against a stack of its own), a Redis for redis-py (its `pytest_sessionstart` asks the
server's version). Plain pytest runs against one copy of the same stack, up before its clock,
with the stack's `pytest_args` rendered for it. `write_stacks` writes the stack files (cold, and
warm for `orchestrate up --stack`) into the case's scratch directory.

`junit_outcomes` and `compare_outcomes` check a run test for test against plain pytest's:
(classname, name, outcome) of every test case of the JUnit XML.
"""

from __future__ import annotations

import sys
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PUBLIC_SUITES", "PublicSuite", "compare_outcomes", "junit_outcomes", "write_stacks"]


@dataclass(frozen=True, slots=True)
class PublicSuite:
    """A public suite's files and arguments, and the stack its tests need."""

    name: str
    fetch: str  # where it comes from, and the commit these figures were taken at
    marker: str  # a file of the checkout that says it is this suite
    paths: tuple[str, ...]
    pytest_args: tuple[str, ...]
    orchestrate_args: tuple[str, ...]
    stack: str  # the stack file; {python} and {setup} are filled in by write_stacks
    warm_reset: str  # x-orchestrate lines added for the warm stack file (how a unit is reset)
    setup_script: str = ""  # written beside the stack files as `setup.py` when the stack runs one
    ok_exit_codes: tuple[int, ...] = (0,)  # (0, 1): some tests fail under plain pytest too


_SQLALCHEMY_STACK = textwrap.dedent(
    """\
    # Written by benchmarks/public.py: a Postgres per agent for SQLAlchemy's own tests.
    services:
      db:
        image: orchestrate/postgres:15
        ports: ["5432"]
    x-orchestrate:
      env:
        DATABASE_URL: "postgresql://postgres:postgres@{{db.host}}:{{db.port}}/postgres"
      # the schemas and extensions SQLAlchemy's README.unittests asks of a test database
      setup: ["{python} {setup}"]
      ready_timeout: 60
      # the plugin names each backend's classes after the server at collection: so does the coordinator
      pytest_args: ["--dburi", "postgresql+psycopg://postgres:postgres@{{db.host}}:{{db.port}}/postgres"]
      collection_stack: true
    """
)

_SQLALCHEMY_SETUP = textwrap.dedent(
    '''\
    """Written by benchmarks/public.py: what SQLAlchemy's tests expect of a Postgres database."""

    import os

    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        for schema in ("test_schema", "test_schema_2"):
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for extension in ("hstore", "btree_gist"):
            connection.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    '''
)

_REDIS_STACK = textwrap.dedent(
    """\
    # Written by benchmarks/public.py: a Redis per agent for redis-py's own tests.
    services:
      redis:
        image: orchestrate/redis:7
        ports: ["6379"]
        tmpfs: ["/data"]
        healthcheck: {{disable: true}}
    x-orchestrate:
      ready_timeout: 60
      # the suite's pytest_sessionstart asks the server its version: so does the coordinator's session
      pytest_args: ["--redis-url", "redis://{{redis.host}}:{{redis.ports[6379]}}/9"]
      collection_stack: true
    """
)

PUBLIC_SUITES: dict[str, PublicSuite] = {
    suite.name: suite
    for suite in (
        PublicSuite(
            name="sqlalchemy",
            fetch="https://github.com/sqlalchemy/sqlalchemy at f35da7e2b9 (main, 2026-12)",
            marker="lib/sqlalchemy/__init__.py",
            paths=(
                "test/sql/test_types.py",
                "test/sql/test_query.py",
                "test/dialect/postgresql/test_query.py",
            ),
            pytest_args=("-p", "no:cacheprovider"),
            # its classes share a class-scoped fixture that only sets up methods: --split may cut them
            orchestrate_args=("--split", "--split-fixture", "setup_class_methods"),
            stack=_SQLALCHEMY_STACK,
            # The suite cleans up after itself; a Postgres reset would end its pooled session
            # connection (249 tests erred with AdminShutdown when tried).
            warm_reset='  reset_commands: ["true"]\n',
            setup_script=_SQLALCHEMY_SETUP,
        ),
        PublicSuite(
            name="redis-py",
            fetch="https://github.com/redis/redis-py at 34817ce2",
            marker="redis/__init__.py",
            paths=("tests/test_commands.py", "tests/test_pipeline.py", "tests/test_lock.py"),
            pytest_args=(
                "-m",
                "not onlycluster and not redismod and not ssl and not replica",
                "-o",
                "addopts=",
                "-p",
                "no:cacheprovider",
            ),
            orchestrate_args=("--split",),
            stack=_REDIS_STACK,
            warm_reset="  reset: {redis: redis}\n",
            # 3 tests fail under plain pytest too against this Redis build (ACL and XGROUP details)
            ok_exit_codes=(0, 1),
        ),
    )
}


def write_stacks(suite: PublicSuite, directory: Path) -> tuple[Path, Path]:
    """Write the suite's stack file, its warm variant and its setup script; return both stacks."""
    directory.mkdir(parents=True, exist_ok=True)
    setup = directory / "setup.py"
    if suite.setup_script:
        setup.write_text(suite.setup_script, encoding="utf-8")
    text = suite.stack.format(python=sys.executable, setup=setup)
    cold, warm = directory / "stack.yml", directory / "stack-warm.yml"
    cold.write_text(text, encoding="utf-8")
    warm.write_text(text + suite.warm_reset, encoding="utf-8")
    return cold, warm


Outcomes = dict[tuple[str, str], str]


def junit_outcomes(path: Path) -> Outcomes:
    """{(classname, name): outcome} of every test case of a JUnit XML file."""
    outcomes: Outcomes = {}
    for case in ET.parse(path).iter("testcase"):
        children = {child.tag for child in case}
        outcome = next(
            (tag for tag in ("failure", "error", "skipped") if tag in children),
            "passed",
        )
        outcomes[(case.get("classname", ""), case.get("name", ""))] = outcome
    return outcomes


def compare_outcomes(reference: Outcomes, other: Outcomes) -> str:
    """'equal (N passed, ...)' or what differs, in one line."""
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(Counter(reference.values()).items()))
    if other == reference:
        return f"equal ({counts})"
    missing = len(reference.keys() - other.keys())
    extra = len(other.keys() - reference.keys())
    changed = sum(1 for key in reference.keys() & other.keys() if reference[key] != other[key])
    return f"DIFFERS: {missing} missing, {extra} extra, {changed} other outcome (plain: {counts})"
