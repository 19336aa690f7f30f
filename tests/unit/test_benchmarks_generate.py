"""The benchmark suite generator: deterministic, totals as asked, drift bounded, files usable."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from orchestrator.planning.durations.store import DurationStore


def _load_generate():
    # benchmarks/ is not an installed package; load the module from its file.
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "generate.py"
    spec = importlib.util.spec_from_file_location("benchmarks_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


generate = _load_generate()


def test_same_seed_same_suite_and_durations() -> None:
    first = generate.make_suite(20, 12.0, seed=3)
    again = generate.make_suite(20, 12.0, seed=3)
    assert first == again
    assert generate.recorded_durations(first, 0.5) == generate.recorded_durations(again, 0.5)
    assert generate.make_suite(20, 12.0, seed=4) != first


@pytest.mark.parametrize(("classes", "total"), [(1, 0.5), (60, 60.0), (200, 7.0)])
def test_true_total_is_the_requested_serial_time(classes: int, total: float) -> None:
    suite = generate.make_suite(classes, total, seed=1)
    assert len(suite.classes) == classes
    assert suite.total_seconds == pytest.approx(total)
    assert sum(suite.test_seconds().values()) == pytest.approx(total)
    assert suite.lower_bound(4) == max(suite.total_seconds / 4, suite.longest_unit_seconds)


def test_shares_and_node_ids() -> None:
    suite = generate.make_suite(12, 10.0, seed=2, cpu_share=0.25, setup_share=0.1, classes_per_module=5)
    for bench_class in suite.classes:
        assert bench_class.setup_seconds == pytest.approx(0.1 * bench_class.seconds)
        for test in bench_class.tests:
            assert test.busy_seconds == pytest.approx(0.25 * test.seconds)
    assert suite.classes[0].node_ids()[0] == "test_bench_000.py::TestClass000::test_00"
    assert suite.classes[11].unit_id == "test_bench_002.py::TestClass011"


@pytest.mark.parametrize("drift", [0.0, 0.3, 0.9])
def test_recorded_durations_stay_within_the_drift(drift: float) -> None:
    suite = generate.make_suite(40, 20.0, seed=5)
    true = suite.test_seconds()
    recorded = generate.recorded_durations(suite, drift)
    assert recorded.keys() == true.keys()
    for node_id, seconds in recorded.items():
        assert (1 - drift) * true[node_id] - 1e-12 <= seconds <= (1 + drift) * true[node_id] + 1e-12
    for bench_class in suite.classes:  # one factor per class
        ratios = {round(recorded[n] / true[n], 9) for n in bench_class.node_ids()}
        assert len(ratios) == 1
    if drift:
        assert recorded != true


def test_written_suite_and_durations(tmp_path: Path) -> None:
    suite = generate.make_suite(7, 1.0, seed=1, classes_per_module=3)
    generate.write_suite(suite, tmp_path)
    recorded = generate.recorded_durations(suite, 0.5)
    store_path, split_path = generate.write_durations(recorded, tmp_path)

    assert sorted(p.name for p in tmp_path.glob("test_bench_*.py")) == [
        "test_bench_000.py",
        "test_bench_001.py",
        "test_bench_002.py",
    ]
    for module in tmp_path.glob("test_bench_*.py"):
        compile(module.read_text(), str(module), "exec")
    source = (tmp_path / "test_bench_002.py").read_text()
    assert "class TestClass006:" in source and 'scope="class"' in source
    assert json.loads(split_path.read_text()) == pytest.approx(recorded)
    store, warning = DurationStore.load(store_path)
    assert warning is None
    assert {node_id: store.get(node_id) for node_id in recorded} == pytest.approx(recorded)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        generate.make_suite(0, 10.0)
    with pytest.raises(ValueError):
        generate.make_suite(5, 0.0)
    with pytest.raises(ValueError):
        generate.recorded_durations(generate.make_suite(5, 1.0), 1.0)


def test_without_class_fixtures_classes_can_be_cut(tmp_path: Path) -> None:
    suite = generate.make_suite(6, 3.0, seed=1, setup_share=0.0, classes_per_module=3)
    assert all(c.setup_seconds == 0 for c in suite.classes)
    generate.write_suite(suite, tmp_path)
    assert not any('scope="class"' in m.read_text() for m in tmp_path.glob("test_bench_*.py"))
    longest_test = max(suite.test_seconds().values())
    assert suite.test_lower_bound(8) == max(suite.total_seconds / 8, longest_test)
    assert suite.test_lower_bound(8) <= suite.lower_bound(8)


def test_trivial_suite(tmp_path: Path) -> None:
    assert generate.write_trivial_suite(tmp_path, 103, modules=5, classes_per_module=2) == 103
    modules = sorted(tmp_path.glob("test_trivial_*.py"))
    assert len(modules) == 5
    sources = [m.read_text() for m in modules]
    for source, module in zip(sources, modules, strict=True):
        compile(source, str(module), "exec")
    assert sum(s.count("def test_") for s in sources) == 103
    assert "class TestTrivial1:" in sources[0] and "def test_0000():\n    pass" in sources[0]
    assert not (tmp_path / "conftest.py").exists()


def test_trivial_suite_records_when_tests_start(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate.write_trivial_suite(pytester.path, 6, modules=2, record_starts=True)
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv(generate.STARTS_ENV, str(starts))
    pytester.runpytest_subprocess().assert_outcomes(passed=6)
    assert len(starts.read_text().split()) == 6


def test_collection_suite_has_its_modules_helpers_and_logs(tmp_path: Path) -> None:
    root = generate.write_collection_suite(
        tmp_path, 5, helpers=2, tests_per_module=2, modules_per_directory=3
    )
    modules = sorted(p.relative_to(root).as_posix() for p in root.glob("tests/*/test_mod_*.py"))
    assert modules == [
        "tests/group_00/test_mod_0000.py",
        "tests/group_00/test_mod_0001.py",
        "tests/group_00/test_mod_0002.py",
        "tests/group_01/test_mod_0003.py",
        "tests/group_01/test_mod_0004.py",
    ]
    source = (root / "tests/group_01/test_mod_0003.py").read_text()
    assert "from helpers import h_001" in source and "class TestMod0003:" in source
    for path in [*root.glob("tests/*/*.py"), *root.glob("helpers/*.py")]:
        compile(path.read_text(), str(path), "exec")
    assert json.loads((root / "suite.json").read_text())["tests"] == 10


def _load_integration():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "integration.py"
    spec = importlib.util.spec_from_file_location("benchmarks_integration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


integration = _load_integration()


def test_integration_suite_is_deterministic_and_has_the_tests_asked_for() -> None:
    suite = integration.make_integration_suite(1234, seed=3, tests_per_module=(10, 90))
    assert suite == integration.make_integration_suite(1234, seed=3, tests_per_module=(10, 90))
    assert suite != integration.make_integration_suite(1234, seed=4, tests_per_module=(10, 90))
    assert suite.tests == 1234
    assert all(len(m.tests) <= 90 for m in suite.modules)
    assert all(len(m.tests) >= 10 for m in suite.modules[:-1])  # the last one takes what is left
    assert len({m.name for m in suite.modules}) == len(suite.modules)
    assert 0 < suite.slow_tests < 0.05 * suite.tests
    for test in (t for m in suite.modules for t in m.tests):
        assert 1 <= test.rows <= 4
        assert 0.5 * 2000 - 1 <= test.work / (4 if test.slow else 1) <= 1.5 * 2000 + 1


def test_integration_suite_refuses_bad_parameters() -> None:
    with pytest.raises(ValueError):
        integration.make_integration_suite(0)
    with pytest.raises(ValueError):
        integration.make_integration_suite(10, tests_per_module=(5, 4))
    with pytest.raises(ValueError):
        integration.make_integration_suite(10, slow_share=1.5)


def test_integration_suite_files_and_stack(tmp_path: Path) -> None:
    from agents.stack import load_stack_file

    suite = integration.make_integration_suite(40, seed=1, tests_per_module=(15, 15), slow_share=0.1)
    root = integration.write_integration_suite(suite, tmp_path)
    modules = sorted(p.name for p in root.glob("test_*.py"))
    assert modules == sorted(m.name for m in suite.modules) and len(modules) == 3
    for path in root.glob("*.py"):
        compile(path.read_text(), str(path), "exec")
    sources = "".join((root / name).read_text() for name in modules)
    assert "class " not in sources  # module-level functions only
    assert sources.count("(conn):") == 40 and sources.count("@pytest.mark.slow") == suite.slow_tests
    assert 'psycopg.connect(os.environ["DATABASE_URL"])' in (root / "conftest.py").read_text()
    spec = load_stack_file(root / integration.STACK_FILE)
    assert list(spec.services) == ["db"] and spec.services["db"].image == "orchestrate/postgres:15"
    assert spec.setup == ("python migrate.py",)
    url = spec.render_env({"db": {"host": "127.0.0.1", "port": 5999, "ports": {"5432": 5999}}})
    assert url == {"DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:5999/postgres"}
    assert json.loads((root / "suite.json").read_text())["tests"] == 40


def test_integration_conftest_marks_db_tests_and_runs_slow_ones_last(pytester: pytest.Pytester) -> None:
    suite = integration.make_integration_suite(30, seed=2, tests_per_module=(10, 10), slow_share=0.2)
    integration.write_integration_suite(suite, pytester.path)
    slow = {f"{m.name}::{t.name}" for m in suite.modules for t in m.tests if t.slow}
    assert slow
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-m", "db")
    collected = [line for line in result.outlines if "::" in line]
    assert len(collected) == 30  # every test is marked db; collecting needs no database
    assert set(collected[-len(slow) :]) == slow


def test_measured_bound_is_the_larger_of_cpu_over_cores_and_wall_over_n() -> None:
    bound = integration.measured_bound([30.0, 34.0, 32.0], [40.0, 44.0, 42.0], [2, 4], cores=2)
    assert bound == {"2": 21.0, "4": 16.0}
    assert integration.measured_bound([], [40.0], [2], cores=2) == {}


@pytest.mark.docker
def test_integration_suite_passes_against_one_stack(tmp_path: Path) -> None:
    import os
    import subprocess

    suite = integration.make_integration_suite(20, seed=1, tests_per_module=(10, 10), work=50)
    root = integration.write_integration_suite(suite, tmp_path)
    from agents.stack import clean_cache, load_stack_file, stack_cache_key

    try:
        with integration.one_stack(root / integration.STACK_FILE, root, f"unit-{os.getpid()}") as (
            endpoints,
            up,
        ):
            assert up > 0 and endpoints.env["DATABASE_URL"].startswith("postgresql://postgres:postgres@")
            env = {**os.environ, **endpoints.env}
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q"], cwd=root, env=env, capture_output=True, text=True
            )
    finally:  # the set-up state its stack committed is not left behind
        clean_cache(stack_cache_key(load_stack_file(root / integration.STACK_FILE), root))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "20 passed" in done.stdout


def test_group_suite_marks_one_limit_one_group_for_both_runners(tmp_path: Path) -> None:
    suite = generate.make_group_suite(60.0, 15.0, 10, 30, seed=3)
    assert suite.total_seconds == pytest.approx(60.0)
    assert suite.group_seconds() == {"payments": pytest.approx(15.0)}
    assert sum(1 for c in suite.classes if c.group) == 10
    assert suite.lower_bound(4) == pytest.approx(max(15.0, suite.longest_unit_seconds))
    assert all(t.busy_seconds == 0 for c in suite.classes for t in c.tests)  # sleep-bound
    root = generate.write_suite(suite, tmp_path)
    source = (root / "test_group_000.py").read_text()
    assert "@pytest.mark.xdist_group('payments')" in source
    assert "@pytest.mark.orchestrate_group('payments', limit=1)" in source
