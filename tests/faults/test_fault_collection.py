"""Collection differing between coordinator and agents (scenario 11), and exit codes (scenario 12)."""

from __future__ import annotations

import pytest
from conftest import run_orchestrate, write_suite
from faultkit import assert_consistent

LOCAL = ["run", "--backend", "local", "--durations", "d.msgpack"]


def test_a_collection_difference_is_shown_as_a_diff_and_becomes_errors(tmp_path):
    root = write_suite(
        tmp_path,
        {
            "test_differs.py": """
                import os

                import pytest

                # Absent in the coordinator's collection, set in every agent's worker.
                WHERE = os.environ.get("ORCHESTRATE_AGENT", "coordinator")


                @pytest.mark.parametrize("where", [WHERE])
                def test_where(where):
                    pass


                def test_plain():
                    pass
            """
        },
    )
    args = [*LOCAL, "--results", "results.json", "--junitxml", "junit.xml", "test_differs.py"]
    proc = run_orchestrate(args, root, timeout=120)
    tests = assert_consistent(
        root / "results.json",
        root / "junit.xml",
        proc.stdout,
        ["test_differs.py::test_where[coordinator]", "test_differs.py::test_plain"],
    )
    assert proc.returncode == 1
    assert tests["test_differs.py::test_where[coordinator]"]["outcome"] == "error"
    assert tests["test_differs.py::test_plain"]["outcome"] == "passed"
    assert "collection differs from the coordinator's" in proc.stdout
    lines = [line.strip() for line in proc.stdout.splitlines()]
    coordinator_only = lines.index("coordinator only (1):")
    assert lines[coordinator_only + 1] == "test_differs.py::test_where[coordinator]"
    assert lines[coordinator_only + 2] == "agent 0 only (1):"
    assert lines[coordinator_only + 3] == "test_differs.py::test_where[0]"
    assert "ERROR test_differs.py::test_where[coordinator] - not collected on agent 0" in proc.stdout


def test_classes_named_after_the_service_show_the_agents_names(tmp_path):
    """A class named after what its process is connected to: the agent's side is listed too."""
    root = write_suite(
        tmp_path,
        {
            "test_backend.py": """
                import os

                BACKEND = "agent" if "ORCHESTRATE_AGENT" in os.environ else "coordinator"


                def _make(name):
                    class Base:
                        def test_query(self):
                            pass

                        def test_insert(self):
                            pass

                    Base.__name__ = Base.__qualname__ = name
                    return Base


                globals()[f"TestQuery_{BACKEND}"] = _make(f"TestQuery_{BACKEND}")
            """
        },
    )
    proc = run_orchestrate([*LOCAL, "--agents", "1", "test_backend.py"], root, timeout=120)
    assert proc.returncode == 1, proc.stdout
    lines = [line.strip() for line in proc.stdout.splitlines()]
    agent_side = lines.index("agent 0 only (2):")
    assert set(lines[agent_side + 1 : agent_side + 3]) == {
        "test_backend.py::TestQuery_agent::test_query",
        "test_backend.py::TestQuery_agent::test_insert",
    }
    assert "coordinator only (2):" in lines


SUITE = {
    "test_codes.py": """
        class TestA:
            def test_fails(self):
                assert False

            def test_2(self):
                pass

        class TestB:
            def test_1(self):
                pass

            def test_2(self):
                pass
    """
}


@pytest.mark.parametrize(
    ("pytest_args", "code"),
    [(["-x"], 1), (["-k", "nomatch"], 5), (["--no-such-flag"], 4)],
    ids=["-x", "-k nomatch", "bad pytest flag"],
)
def test_exit_codes_are_pytests(tmp_path, pytest_args, code):
    """Scenario 12 (interrupted -> 2 is in test_fault_interrupt.py)."""
    root = write_suite(tmp_path, SUITE)
    proc = run_orchestrate([*LOCAL, "--agents", "1", "--results", "r.json", ".", "--", *pytest_args], root)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    if code == 1:
        tests = assert_consistent(
            root / "r.json",
            None,
            proc.stdout,
            [f"test_codes.py::TestA::{n}" for n in ("test_fails", "test_2")]
            + [f"test_codes.py::TestB::{n}" for n in ("test_1", "test_2")],
        )
        assert tests["test_codes.py::TestA::test_fails"]["outcome"] == "failed"
        assert "not-run" in {t["outcome"] for t in tests.values()}
    elif code == 4:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
