"""A suite whose test ids depend on the database it is connected to, as real suites' do.

Like SQLAlchemy's test plugin, it takes the database from a pytest option (`--db-url`, which
appends: a second one adds a database) that defaults to an in-memory store, connects at
`pytest_configure`, and names every class marked `__backend__` after the server and its major
version (`TestQueries_postgresql_15`), so the ids a process collects depend on where it points.
Tests that need a capability (a server version) are skipped at collection when it is missing.
Its session's last word goes to the database too (`pytest_unconfigure`), as a test plugin that
disposes of its engines or drops what it created does.

    pytest examples/by_server --db-url postgresql://...      one database, plain pytest
    orchestrate run examples/by_server --stack examples/by_server/stack.yml --agents 2
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

SERVER_KEY = pytest.StashKey[tuple[str, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--db-url", action="append", default=[], help="database to test against (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_version(minimum): skipped unless on Postgres `minimum`+")
    urls = config.getoption("db_url")
    if not urls:
        config.stash[SERVER_KEY] = ("memory", 0)
        return
    with psycopg.connect(urls[0], connect_timeout=10) as connection:
        version = int(connection.info.server_version) // 10000
    config.stash[SERVER_KEY] = ("postgresql", version)


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> Any:
    """A `__backend__` class collected under a name holding the server and its version."""
    if isinstance(obj, type) and getattr(obj, "__backend__", False) and name.startswith("Test"):
        kind, version = collector.config.stash[SERVER_KEY]
        label = f"{kind}_{version}" if version else kind
        named = type(f"{name}_{label}", (obj,), {"__backend__": False})
        setattr(collector.obj, named.__name__, named)  # pytest finds a class by its name
        return pytest.Class.from_parent(collector, name=named.__name__, obj=named)
    return None


@pytest.fixture(scope="session")
def server(pytestconfig: pytest.Config) -> tuple[str, int]:
    return pytestconfig.stash[SERVER_KEY]


@pytest.fixture
def db(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A connection to the database (a dict for the in-memory store)."""
    urls = pytestconfig.getoption("db_url")
    if not urls:
        yield {}
        return
    with psycopg.connect(urls[0], connect_timeout=10, autocommit=True) as connection:
        yield connection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind, version = config.stash[SERVER_KEY]
    for item in items:
        for marker in item.iter_markers("needs_version"):
            if kind != "postgresql" or version < marker.args[0]:
                item.add_marker(
                    pytest.mark.skip(reason=f"needs Postgres {marker.args[0]}+, have {kind} {version}")
                )


def pytest_unconfigure(config: pytest.Config) -> None:
    """The end of the session, still on the database it started on (or it fails loudly)."""
    urls = config.getoption("db_url", default=[])
    if urls:
        with psycopg.connect(urls[0], connect_timeout=10) as connection:
            connection.execute("SELECT 1")
