"""`--split` through the real command: only a class without shared fixtures is cut, unless the
user names its fixture with `--split-fixture` (or `split_fixtures` in pyproject.toml)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_orchestrate, write_suite

SUITE = {
    "test_big.py": """
        import pytest

        class TestFree:
            @pytest.mark.parametrize("n", range(8))
            def test_n(self, n):
                pass

        class TestShared:
            @pytest.fixture(scope="class")
            def resource(self):
                return object()

            @pytest.mark.parametrize("n", range(8))
            def test_n(self, resource, n):
                pass

        def test_small():
            pass
    """
}


def _suite_with_history(tmp_path: Path, free: float, shared: float) -> None:
    """The suite, and a store where each test of TestFree took `free` s, of TestShared `shared` s
    and test_small 1 s (imported as pytest-split's file)."""
    write_suite(tmp_path, SUITE)
    history = {f"test_big.py::TestFree::test_n[{n}]": free for n in range(8)}
    history |= {f"test_big.py::TestShared::test_n[{n}]": shared for n in range(8)}
    history["test_big.py::test_small"] = 1.0
    (tmp_path / ".test_durations").write_text(json.dumps(history))
    assert run_orchestrate(["durations", "import", ".test_durations"], tmp_path).returncode == 0


def test_split_cuts_only_the_class_without_shared_fixtures(tmp_path: Path) -> None:
    _suite_with_history(tmp_path, free=1.0, shared=1.0)

    whole = run_orchestrate(["plan", "--agents", "4"], tmp_path)
    cut = run_orchestrate(["plan", "--agents", "4", "--split"], tmp_path)

    assert whole.returncode == cut.returncode == 0, whole.stderr + cut.stderr
    # 17 s on 4 agents: a quarter of a fair share is 1.06 s. TestFree (8 s) is cut into 8 chunks
    # of one test; TestShared (8 s, a class-scoped fixture) stays whole, so it still sets the
    # makespan.
    assert "17 tests, 3 units, 3 agents" in " ".join(whole.stdout.split())  # no idle 4th agent
    assert "17 tests, 10 units, 4 agents" in " ".join(cut.stdout.split())
    assert "predicted makespan 8.00s" in " ".join(cut.stdout.split())
    # The plan says which long unit stayed whole, and for which fixture.
    assert (
        "--split kept 1 unit longer than an agent's share whole, for the class-, module- or "
        "package-scoped fixtures used: test_big.py::TestShared (8.0s; resource)"
    ) in " ".join(cut.stdout.split())

    # Named as a fixture that may run once per chunk, it no longer keeps TestShared whole.
    named = run_orchestrate(["plan", "--agents", "4", "--split", "--split-fixture", "resource"], tmp_path)
    assert named.returncode == 0, named.stderr
    assert "17 tests, 17 units, 4 agents" in " ".join(named.stdout.split())
    assert "kept" not in named.stdout
    (tmp_path / "pyproject.toml").write_text('[tool.orchestrate]\nsplit_fixtures = ["resource"]\n')
    configured = run_orchestrate(["plan", "--agents", "4", "--split"], tmp_path)
    assert configured.returncode == 0, configured.stderr
    assert "17 tests, 17 units, 4 agents" in " ".join(configured.stdout.split())
    (tmp_path / "pyproject.toml").write_text('[tool.orchestrate]\nsplit_fixtures = "resource"\n')
    wrong = run_orchestrate(["plan", "--agents", "4", "--split"], tmp_path)
    assert wrong.returncode == 4
    assert "[tool.orchestrate] split_fixtures must be a list of strings" in wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stdout + wrong.stderr


def test_a_run_without_split_names_the_unit_that_holds_it_up(tmp_path: Path) -> None:
    _suite_with_history(tmp_path, free=0.5, shared=1.5)

    store = tmp_path / ".orchestrate" / "durations.msgpack"
    # Nothing is said when no unit is that long (one test of each class and the function: 3 s).
    (tmp_path / "copy.msgpack").write_bytes(store.read_bytes())
    fair = run_orchestrate(
        ["run", "--agents", "2", "--durations", "copy.msgpack", "--", "-k", "small or test_n[0]"], tmp_path
    )
    assert fair.returncode == 0, fair.stdout + fair.stderr
    assert "3 passed" in fair.stdout and "holds the run up" not in fair.stdout

    # 17 s on 3 agents: a share is 5.7 s; TestShared (12 s) holds the run up, and only its
    # class-scoped fixture keeps --split from cutting it.
    run = run_orchestrate(["run", "--agents", "3", "--durations", str(store)], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (
        "orchestrate: test_big.py::TestShared (12.0s) is longer than an agent's share (5.7s) and holds "
        "the run up; --split with --split-fixture resource would cut it"
    ) in " ".join(run.stdout.split())
