"""The public suites' benchmark helpers: stack files written, JUnit outcomes compared test for test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml


def _load_public():
    # benchmarks/ is not an installed package; load the module from its file.
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "public.py"
    spec = importlib.util.spec_from_file_location("benchmarks_public", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


public = _load_public()

_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1"><failure message="x">x</failure></testcase>
<testcase classname="tests.test_a.TestB" name="test_skip" time="0"><skipped message="no"/></testcase>
<testcase classname="tests.test_a.TestB" name="test_err" time="0"><error message="e">e</error></testcase>
</testsuite></testsuites>
"""


def test_junit_outcomes_and_their_comparison(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(_JUNIT, encoding="utf-8")
    outcomes = public.junit_outcomes(path)
    assert outcomes == {
        ("tests.test_a", "test_ok"): "passed",
        ("tests.test_a", "test_bad"): "failure",
        ("tests.test_a.TestB", "test_skip"): "skipped",
        ("tests.test_a.TestB", "test_err"): "error",
    }
    assert (
        public.compare_outcomes(outcomes, dict(outcomes)) == "equal (1 error, 1 failure, 1 passed, 1 skipped)"
    )
    other = dict(outcomes)
    del other[("tests.test_a", "test_ok")]
    other[("tests.test_a", "test_bad")] = "passed"
    other[("tests.test_a", "test_new")] = "passed"
    assert public.compare_outcomes(outcomes, other).startswith("DIFFERS: 1 missing, 1 extra, 1 other outcome")


def test_every_public_suite_writes_a_stack_file_orchestrate_accepts(tmp_path: Path) -> None:
    from agents.stack import load_stack_file

    for suite in public.PUBLIC_SUITES.values():
        cold, warm = public.write_stacks(suite, tmp_path / suite.name)
        for path in (cold, warm):
            load_stack_file(path)  # raises on anything orchestrate would refuse
        extension = yaml.safe_load(warm.read_text())["x-orchestrate"]
        assert "reset" in extension or "reset_commands" in extension  # warm stacks say how they reset
        assert extension["pytest_args"] and extension["collection_stack"] is True
        if suite.setup_script:
            assert (tmp_path / suite.name / "setup.py").read_text() == suite.setup_script
