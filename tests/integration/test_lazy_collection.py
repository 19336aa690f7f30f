"""A worker collects only the files of the units it is handed (agents/collection.py), or falls back.

Real pytest workers through AgentRuntime (no stack, no backend), and one real `orchestrate run`.
Every generated module appends its name to imports.log when it is imported, and fixtures log
their set-up and teardown, so the tests see what the worker really imported and ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import run_orchestrate, write_suite
from test_agent_runtime import Collector, ended_phases

from agents.collection import collect_mode
from agents.runtime import AgentRuntime
from orchestrator.protocol import messages as pm

MODULE = """
    import pathlib

    import pytest

    pathlib.Path(__file__).with_name("imports.log").open("a").write("{name}\\n")
    LOG = pathlib.Path(__file__).with_name("fixtures.log")


    @pytest.fixture(scope="module", autouse=True)
    def module_fixture():
        LOG.open("a").write("module setup {name}\\n")
        yield
        LOG.open("a").write("module teardown {name}\\n")


    class TestA:
        @pytest.fixture(scope="class", autouse=True)
        def class_fixture(self):
            LOG.open("a").write("class setup {name}::TestA\\n")
            yield
            LOG.open("a").write("class teardown {name}::TestA\\n")

        def test_1(self):
            pass

        def test_2(self):
            pass


    class TestB:
        def test_1(self):
            pass


    @pytest.mark.parametrize("n", [0, 1])
    def test_param(n):
        pass
"""

MODIFYITEMS_CONFTEST = """
    def pytest_collection_modifyitems(items):
        items.sort(key=lambda item: item.nodeid)
"""
# A hook that takes part in making the collection (wrapping every collector's report).
MAKE_REPORT_CONFTEST = """
    import pytest

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(collector):
        return (yield)
"""


def _write_modules(root: Path, count: int = 10, conftest: str | None = None) -> None:
    files = {f"tests/test_m{i}.py": MODULE.replace("{name}", f"m{i}") for i in range(count)}
    if conftest is not None:
        files["tests/conftest.py"] = conftest
    write_suite(root, files)


def _runtime(root: Path, collector: Collector, collect: str | None = None) -> AgentRuntime:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATE_COLLECT"}
    if collect is not None:
        env["ORCHESTRATE_COLLECT"] = collect
    config = pm.AgentConfig(
        agent_id=0,
        run_id="r1",
        owner="test:0",
        cwd=str(root),
        python=sys.executable,
        pytest_args=("tests", "-p", "no:randomly", "-p", "no:cacheprovider"),
        env=env,
    )
    return AgentRuntime(config, collector)


def _unit(unit_id: str, *node_ids: str) -> pm.UnitWork:
    return pm.UnitWork(unit_id, tuple(f"tests/{n}" for n in node_ids))


def _imports(root: Path) -> list[str]:
    path = root / "tests" / "imports.log"
    return sorted(path.read_text().split()) if path.exists() else []


def _passed(events: list[pm.Event]) -> list[str]:
    return [n for n, when, outcome in ended_phases(events) if when == "call" and outcome == "passed"]


@pytest.mark.slow
def test_a_worker_imports_only_the_modules_of_its_units(tmp_path: Path) -> None:
    _write_modules(tmp_path)
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    ready = collector.wait_for(pm.AgentReady)
    assert isinstance(ready, pm.AgentReady)
    assert (ready.collected, ready.lazy_collection, ready.collection_fallback) == (0, True, "")
    assert _imports(tmp_path) == []  # ready, and nothing imported yet
    runtime.command(pm.Assign(units=(_unit("a", "test_m3.py::TestA::test_1", "test_m3.py::TestA::test_2"),)))
    runtime.command(pm.Assign(units=(_unit("p", "test_m7.py::test_param[1]"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert _imports(tmp_path) == ["m3", "m7"]
    assert _passed(events) == [
        "tests/test_m3.py::TestA::test_1",
        "tests/test_m3.py::TestA::test_2",
        "tests/test_m7.py::test_param[1]",
    ]
    assert not [e for e in events if isinstance(e, pm.NotCollected | pm.AgentFailed)]


@pytest.mark.slow
def test_units_of_one_module_in_separate_runs_share_its_module_and_class_fixtures(tmp_path: Path) -> None:
    _write_modules(tmp_path, count=1)
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    # Two halves of one class (as --split cuts them), then another class of the same module,
    # each in a `run` of its own, the later ones sent once the worker holds the one before.
    runtime.command(pm.Assign(units=(_unit("a1", "test_m0.py::TestA::test_1"),)))
    collector.wait_for(pm.WorkWanted)
    runtime.command(pm.Assign(units=(_unit("a2", "test_m0.py::TestA::test_2"),)))
    # test_1 ran with test_2 as its next item: the worker holds test_2, waiting for its successor.
    ended = collector.wait_for(pm.TestEnded)
    assert isinstance(ended, pm.TestEnded) and ended.node_id == "tests/test_m0.py::TestA::test_1"
    runtime.command(pm.Assign(units=(_unit("b", "test_m0.py::TestB::test_1"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert len(_passed(events)) == 3
    assert (tmp_path / "tests" / "fixtures.log").read_text().splitlines() == [
        "module setup m0",
        "class setup m0::TestA",
        "class teardown m0::TestA",
        "module teardown m0",
    ]
    assert _imports(tmp_path) == ["m0"]


@pytest.mark.slow
def test_a_class_under_a_path_with_brackets_is_collected_lazily(tmp_path: Path) -> None:
    write_suite(tmp_path, {"tests/sub[1]/test_m0.py": MODULE.replace("{name}", "m0")})
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    runtime.command(pm.Assign(units=(_unit("a", "sub[1]/test_m0.py::TestA::test_1"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert not [e for e in events if isinstance(e, pm.NotCollected | pm.AgentFailed)]
    assert _passed(events) == ["tests/sub[1]/test_m0.py::TestA::test_1"]


@pytest.mark.slow
def test_node_ids_a_lazy_worker_does_not_find_are_not_collected(tmp_path: Path) -> None:
    _write_modules(tmp_path, count=2)
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    runtime.command(
        pm.Assign(
            units=(
                _unit("x", "test_m0.py::TestA::test_1", "test_m0.py::TestA::test_nope"),
                _unit("p", "test_m1.py::test_param[7]"),
                _unit("gone", "test_gone.py::test_x"),
            )
        )
    )
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    [not_collected] = [e for e in events if isinstance(e, pm.NotCollected)]
    assert not_collected.node_ids == (
        "tests/test_m0.py::TestA::test_nope",
        "tests/test_m1.py::test_param[7]",
        "tests/test_gone.py::test_x",
    )
    # What the worker has instead, from the files it collected for this `run`.
    assert not_collected.similar == ("tests/test_m1.py::test_param[0]", "tests/test_m1.py::test_param[1]")
    assert _passed(events) == ["tests/test_m0.py::TestA::test_1"]
    assert sorted(e.unit_id for e in events if isinstance(e, pm.UnitFinished)) == ["gone", "p", "x"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("collect", "lazy"), [(None, False), ("lazy", True), ("full", False)], ids=["auto", "lazy", "full"]
)
def test_a_conftest_making_the_collection_makes_workers_collect_everything(
    tmp_path: Path, collect: str | None, lazy: bool
) -> None:
    _write_modules(tmp_path, count=3, conftest=MAKE_REPORT_CONFTEST)
    collector = Collector()
    runtime = _runtime(tmp_path, collector, collect)
    runtime.start()
    ready = collector.wait_for(pm.AgentReady)
    runtime.command(pm.Assign(units=(_unit("b", "test_m1.py::TestB::test_1"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert isinstance(ready, pm.AgentReady)
    assert ready.lazy_collection is lazy
    assert ready.collected == (0 if lazy else 15)
    fallback = "tests/conftest.py implements pytest_make_collect_report" if collect is None else ""
    assert ready.collection_fallback == fallback
    assert _imports(tmp_path) == (["m1"] if lazy else ["m0", "m1", "m2"])
    assert _passed(events) == ["tests/test_m1.py::TestB::test_1"]


@pytest.mark.slow
def test_a_conftest_that_only_sees_items_keeps_workers_lazy(tmp_path: Path) -> None:
    """modifyitems sees each run's new items; the coordinator's collection decides what runs."""
    _write_modules(tmp_path, count=3, conftest=MODIFYITEMS_CONFTEST)
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    ready = collector.wait_for(pm.AgentReady)
    runtime.command(pm.Assign(units=(_unit("b", "test_m1.py::TestB::test_1"),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert isinstance(ready, pm.AgentReady)
    assert (ready.lazy_collection, ready.collected, ready.collection_fallback) == (True, 0, "")
    assert _imports(tmp_path) == ["m1"]
    assert _passed(events) == ["tests/test_m1.py::TestB::test_1"]


# As SQLAlchemy's plugin does: a class marked for backends is replaced by one class per backend,
# made from its items in pytest_collection_modifyitems, named after the backend (the node ids a
# worker is given name a class that is no collector of the file's own walk).
PER_BACKEND_CONFTEST = """
    import sys

    import pytest

    def pytest_collection_modifyitems(session, config, items):
        made = {}
        for item in list(items):
            cls = item.getparent(pytest.Class)
            if cls is None or not getattr(cls.obj, "per_backend", False):
                continue
            if cls not in made:
                sub = type(cls.name + "_db_15", (cls.obj,), {"per_backend": False})
                setattr(sys.modules[cls.obj.__module__], sub.__name__, sub)
                new = pytest.Class.from_parent(cls.parent, name=sub.__name__, obj=sub)
                made[cls] = {i.name: i for i in new.collect()}
        items[:] = [made[i.getparent(pytest.Class)][i.name] if i.getparent(pytest.Class) in made else i
                    for i in items]
"""
PER_BACKEND_MODULE = """
    class TestPlain:
        def test_1(self):
            pass


    class TestQuery:
        per_backend = True

        def test_select(self):
            pass

        def test_insert(self):
            pass
"""


@pytest.mark.slow
def test_a_class_made_per_backend_by_a_modifyitems_hook_is_found(tmp_path: Path) -> None:
    """Its name is no collector of the file: the worker collects the file whole and finds it."""
    write_suite(
        tmp_path,
        {"tests/conftest.py": PER_BACKEND_CONFTEST, "tests/test_q.py": PER_BACKEND_MODULE},
    )
    collector = Collector()
    runtime = _runtime(tmp_path, collector)
    runtime.start()
    collector.wait_for(pm.AgentReady)
    made = ("test_q.py::TestQuery_db_15::test_select", "test_q.py::TestQuery_db_15::test_insert")
    runtime.command(pm.Assign(units=(_unit("q", *made),)))
    runtime.command(pm.Finish())
    events = collector.rest(runtime)
    assert not [e for e in events if isinstance(e, pm.NotCollected)]
    assert sorted(_passed(events)) == sorted(f"tests/{n}" for n in made)


@pytest.mark.slow
def test_orchestrate_says_once_why_workers_collected_everything(tmp_path: Path) -> None:
    _write_modules(tmp_path, count=4, conftest=MAKE_REPORT_CONFTEST)
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATE_COLLECT"}
    args = ["run", "--backend", "local", "--agents", "2", "--durations", "d.msgpack", "tests"]
    proc = run_orchestrate(args, tmp_path, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "20 passed" in proc.stdout
    message = (
        "workers collected the whole suite at start-up because tests/conftest.py implements "
        "pytest_make_collect_report (ORCHESTRATE_COLLECT=lazy collects only each unit's files anyway)"
    )
    assert proc.stdout.count(message) == 1, proc.stdout


def test_a_bad_collect_mode_is_a_usage_error() -> None:
    assert collect_mode({}) == "auto"
    assert collect_mode({"ORCHESTRATE_COLLECT": " Full "}) == "full"
    with pytest.raises(pytest.UsageError, match="ORCHESTRATE_COLLECT='sometimes'"):
        collect_mode({"ORCHESTRATE_COLLECT": "sometimes"})
