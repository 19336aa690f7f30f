"""Subtests (unittest's subTest, pytest 9's `subtests` fixture) travel and count like pytest's."""

from __future__ import annotations

import re
import subprocess
import sys
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


def _counts(stdout: str) -> str:
    """The counts line, less its time."""
    return re.sub(r" in [0-9.]+s.*", "", stdout.strip().splitlines()[-1]).strip("= ")


def _failures(junit: Path) -> list[str]:
    return re.findall(r'<failure message="([^"]*)"', junit.read_text())


def test_counts_and_junit_are_plain_pytests(tmp_path: Path) -> None:
    """pytest fails a passed test that contains failed subtests in pytest_report_teststatus, which
    its terminal reporter calls; the worker's quiet reporter does not, so the worker asks it."""
    write_suite(tmp_path, SUITE)
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", "plain.xml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    run = run_orchestrate(
        ["run", "--agents", "2", "--junitxml", "orch.xml", "--", "-q", "-p", "no:cacheprovider"], tmp_path
    )
    assert _counts(plain.stdout) == "3 failed, 2 passed, 5 subtests passed", plain.stdout
    assert _counts(run.stdout) == _counts(plain.stdout), run.stdout
    assert "FAILED test_sub.py::test_fixture_subtests - contains 1 failed subtest" in run.stdout
    assert sorted(_failures(tmp_path / "orch.xml")) == sorted(_failures(tmp_path / "plain.xml"))
