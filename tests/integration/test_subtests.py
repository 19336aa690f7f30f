"""Subtests (unittest's subTest, pytest 9's `subtests` fixture) travel and count like pytest's."""

from __future__ import annotations

from pathlib import Path

from conftest import load_results, run_orchestrate, write_suite

SUITE = {
    "test_sub.py": """
        import unittest

        class T(unittest.TestCase):
            def test_one_subtest_fails(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 1)

            def test_all_subtests_pass(self):
                for i in range(2):
                    with self.subTest(i=i):
                        pass

        def test_fixture_subtests(subtests):
            for i in range(2):
                with subtests.test(i=i):
                    assert i == 0
    """
}


def test_a_failed_subtest_fails_its_test_once(tmp_path: Path) -> None:
    write_suite(tmp_path, SUITE)

    run = run_orchestrate(["run", "--agents", "2", "--backend", "local", "--results", "r.json"], tmp_path)

    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert load_results(tmp_path / "r.json") == {
        "test_sub.py::T::test_one_subtest_fails": "failed",
        "test_sub.py::T::test_all_subtests_pass": "passed",
        "test_sub.py::test_fixture_subtests": "failed",
    }
