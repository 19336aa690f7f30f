"""Acceptance tests of issue 9, "the coordinator is a pytest session": what plain pytest prints and
writes, orchestrate prints and writes too.

Each test generates a small suite in tmp_path and runs the real commands as subprocesses: plain
`pytest`, `orchestrate run --agents N [-- ARGS]` and `pytest --agents N`, on the default local
backend (no Ray). Where plain pytest's result does not depend on the order tests run in, the
two must agree exactly (the closing counts line without its time, JUnit testcases, `-rA`, `-v`
lines, pytest-html's test list); where it does (-x, --maxfail, pytest.exit), the run must stop
as pytest stops, and every test it did not run is `not-run` in the results file.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import load_results, run_orchestrate, run_pytest, write_suite

# -- the suites ---------------------------------------------------------------------------------

# Every outcome pytest knows, in two units (a class and a module's functions) and three files.
OUTCOMES_SUITE = {
    "pytest.ini": """
        [pytest]
        markers =
            slowish: a registered marker, selected with -m
    """,
    "conftest.py": """
        import json
        import os

        import pytest


        def pytest_configure(config):
            # Each agent's worker leaves its command line behind: what reporters did it get?
            agent = os.environ.get("ORCHESTRATE_AGENT")
            if agent is not None:
                path = os.path.join(str(config.rootpath), f"worker-args-{agent}-{os.getpid()}.json")
                with open(path, "w") as fh:
                    json.dump(list(config.invocation_params.args), fh)


        @pytest.fixture
        def bad_setup():
            raise RuntimeError("setup broke")


        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown broke")
    """,
    "test_outcomes.py": """
        import time
        import warnings

        import pytest


        def test_pass():
            pass


        def test_fail():
            assert 1 == 2


        def test_setup_error(bad_setup):
            pass


        def test_teardown_error(bad_teardown):
            pass


        def test_skip():
            pytest.skip("not today")


        @pytest.mark.skipif(True, reason="never")
        def test_skipif():
            pass


        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False


        @pytest.mark.xfail(reason="fixed?")
        def test_xpass():
            pass


        @pytest.mark.xfail(strict=True, reason="strict")
        def test_xpass_strict():
            pass


        @pytest.mark.xfail(strict=True, reason="strict")
        def test_xfail_strict():
            assert False


        def test_warns():
            warnings.warn("careful", UserWarning)


        def test_warns_twice():
            warnings.warn(DeprecationWarning("old api"))
            warnings.warn("again", UserWarning)


        def test_sleeps():
            time.sleep(0.2)


        @pytest.mark.slowish
        @pytest.mark.parametrize("value", ["a b", "x::y", "[br]", "\\u00fc", "", None, 1.5], ids=repr)
        def test_odd_ids(value):
            pass


        class TestGroup:
            def test_one(self):
                pass

            def test_two(self):
                assert False
    """,
    "test_module_skip.py": """
        import pytest

        pytest.skip("the whole module", allow_module_level=True)


        def test_never():
            pass
    """,
    "test_importorskip.py": """
        import pytest

        pytest.importorskip("no_such_module")


        def test_never():
            pass
    """,
}
OUTCOMES_COUNTS = "3 failed, 13 passed, 4 skipped, 2 xfailed, 1 xpassed, 3 warnings, 2 errors"

# Four failing tests first (the largest unit of a first run starts first), then slow classes.
# Each failure after the first takes 2 s, so the stop (-x, --maxfail=2) always comes while the
# next one is still running: pytest's counts line is then deterministic.
STOPPING_SUITE = {
    "pytest.ini": "[pytest]\n",
    "test_fails.py": """
        import time


        class TestFails:
            def test_1(self):
                assert False

            def test_2(self):
                time.sleep(2)
                assert False

            def test_3(self):
                time.sleep(2)
                assert False

            def test_4(self):
                time.sleep(2)
                assert False
    """,
    **{
        f"test_slow{index}.py": f"""
            import time


            class TestSlow{index}:
                def test_a(self):
                    time.sleep(1)

                def test_b(self):
                    time.sleep(1)

                def test_c(self):
                    time.sleep(1)
        """
        for index in range(3)
    },
}
STOPPING_TESTS = 13
STOP_SECONDS = 1.5


# -- helpers ------------------------------------------------------------------------------------

FRONT_DOORS = ("orchestrate-run", "pytest-agents")


def run_agents(
    front_door: str,
    cwd: Path,
    agents: int,
    pytest_args: Sequence[str] = (),
    results: str | None = None,
    schedule: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`orchestrate run --agents N [...] -- ARGS` or `pytest --agents N ARGS [...]`: the same session."""
    if front_door == "orchestrate-run":
        own = ["run", "--agents", str(agents)]
        if results:
            own += ["--results", results]
        if schedule:
            own += ["--schedule", schedule]
        return run_orchestrate([*own, "--", *pytest_args], cwd)
    extra = [f"--orchestrate-results={results}"] if results else []
    if schedule:
        extra.append(f"--orchestrate-schedule={schedule}")
    return run_pytest([f"--agents={agents}", *pytest_args, *extra], cwd)


def closing_counts(stdout: str) -> str:
    """pytest's closing counts line without its time: "3 failed, 13 passed, ..., 2 errors"."""
    counts = counts_or_none(stdout)
    assert counts is not None, stdout[-2000:]
    return counts


def counts_or_none(stdout: str) -> str | None:
    """The closing counts line without its time, if there is one (`-qq` prints none)."""
    last = [line for line in stdout.splitlines() if line.strip()][-1]
    match = re.fullmatch(r"=* ?(.+?) in [\d.]+s(?: \([\d:]+\))? ?=*", last)
    return match.group(1) if match else None


def short_summary(stdout: str) -> list[str]:
    """The FAILED and ERROR lines of the short test summary, sorted (agents finish in any order)."""
    return sorted(re.findall(r"^(?:FAILED|ERROR) .*$", stdout, re.MULTILINE))


def junit(path: Path) -> tuple[dict[str, str], dict[tuple[str, str], tuple[tuple[str, str], ...]]]:
    """The testsuite's counts, and (classname, name) -> its result elements as (tag, type)."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    counts = {name: suite.get(name, "") for name in ("tests", "errors", "failures", "skipped")}
    cases: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for testcase in suite.iter("testcase"):
        key = (testcase.get("classname", ""), testcase.get("name", ""))
        assert key not in cases, f"two testcases for {key}"
        cases[key] = tuple(
            sorted(
                (child.tag, child.get("type", ""))
                for child in testcase
                if child.tag in ("failure", "error", "skipped")
            )
        )
    return counts, cases


def verbose_lines(stdout: str) -> list[str]:
    """pytest -v's one line per test phase, without the progress percentage, sorted."""
    found = re.findall(r"^(\S+::\S.*? (?:PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b.*?)\s*(?:\[\s*\d+%\])?$",
                       stdout, re.MULTILINE)  # fmt: skip
    return sorted(found)


def passed_lines(stdout: str) -> int:
    """How many PASSED lines `-rA` put in the short test summary."""
    return sum(1 for line in stdout.splitlines() if line.startswith("PASSED "))


def html_tests(path: Path) -> dict[str, tuple[str, ...]]:
    """pytest-html's tests: node id -> the results it shows (one per report it kept)."""
    blob = re.search(r'data-jsonblob="([^"]*)"', path.read_text(encoding="utf-8"))
    assert blob, "no data-jsonblob in the report"
    data = json.loads(html.unescape(blob.group(1)))
    return {node_id: tuple(row["result"] for row in rows) for node_id, rows in data["tests"].items()}


def results_data(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback (most recent call last)" not in stderr, stderr


# -- 1-3. what pytest prints and writes ----------------------------------------------------------


@pytest.mark.parametrize("front_door", FRONT_DOORS)
def test_closing_counts_line_as_plain_pytest(tmp_path: Path, front_door: str) -> None:
    """Passes, failures, setup and teardown errors, skips (module-level and importorskip too),
    xfail/xpass strict and not, warnings, odd parametrize ids: pytest's own counts line."""
    write_suite(tmp_path, OUTCOMES_SUITE)
    plain = run_pytest(["-p", "no:cacheprovider"], tmp_path)
    assert closing_counts(plain.stdout) == OUTCOMES_COUNTS, plain.stdout

    result = run_agents(front_door, tmp_path, 3, ["-p", "no:cacheprovider"])

    assert result.returncode == plain.returncode == 1, result.stdout + result.stderr
    assert closing_counts(result.stdout) == OUTCOMES_COUNTS, result.stdout
    assert re.search(r"^orchestrate: 22 tests in 2 units on 2 agents \(local\)", result.stdout, re.M)
    assert_clean_stderr(result.stderr)


@pytest.mark.parametrize(
    "junit_args",
    [
        pytest.param([], id="xunit1"),
        pytest.param(["-o", "junit_family=xunit2", "--junit-prefix=pre"], id="xunit2-prefix"),
    ],
)
def test_junit_testcases_as_plain_pytest(tmp_path: Path, junit_args: list[str]) -> None:
    """The same testcases, outcomes and suite counts; module-level skips are testcases too."""
    write_suite(tmp_path, OUTCOMES_SUITE)
    run_pytest(["-p", "no:cacheprovider", "--junitxml=plain.xml", *junit_args], tmp_path)

    result = run_orchestrate(["run", "--agents", "3", "--", "--junitxml=ours.xml", *junit_args], tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    plain_counts, plain_cases = junit(tmp_path / "plain.xml")
    counts, cases = junit(tmp_path / "ours.xml")
    assert cases == plain_cases
    assert counts == plain_counts == {"tests": "24", "errors": "2", "failures": "3", "skipped": "6"}
    classname = "pre" if junit_args else ""
    for module in ("test_module_skip", "test_importorskip"):
        assert cases[(classname, module)] == (("skipped", ""),), sorted(cases)
    # The workers wrote no JUnit file of their own over the coordinator's.
    for args_file in tmp_path.glob("worker-args-*.json"):
        args = json.loads(args_file.read_text())
        assert not [a for a in args if a.startswith("--junit")], args


def test_rA_durations_and_verbose_lines_as_plain_pytest(tmp_path: Path) -> None:
    write_suite(tmp_path, OUTCOMES_SUITE)
    args = ["-p", "no:cacheprovider", "-rA", "--durations=3", "-v"]
    plain = run_pytest(args, tmp_path)

    result = run_orchestrate(["run", "--agents", "3", "--", *args], tmp_path)

    assert result.returncode == plain.returncode == 1, result.stdout + result.stderr
    assert passed_lines(result.stdout) == passed_lines(plain.stdout) == 13
    for stdout in (plain.stdout, result.stdout):
        assert re.search(r"^=+ slowest 3 durations =+$", stdout, re.M), stdout
        assert re.search(r"^0\.2\ds call +test_outcomes\.py::test_sleeps$", stdout, re.M), stdout
    assert verbose_lines(result.stdout) == verbose_lines(plain.stdout)
    assert len(verbose_lines(result.stdout)) == 23  # a teardown error is a second line, as in pytest
    assert closing_counts(result.stdout) == closing_counts(plain.stdout)


def test_warnings_as_errors_suite_passes_as_under_plain_pytest(tmp_path: Path) -> None:
    """`filterwarnings = error` (pluggy's own suite) also covers the coordinator's process: a pipe
    of ours left to the garbage collector was an unraisable ResourceWarning, exit 1 after "passed"."""
    write_suite(
        tmp_path,
        {
            "pytest.ini": "[pytest]\nfilterwarnings =\n    error\n",
            "test_a.py": "def test_one():\n    pass\n",
            "test_b.py": "def test_two():\n    pass\n",
        },
    )

    result = run_orchestrate(["run", "--agents", "2"], tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert closing_counts(result.stdout) == "2 passed"
    assert_clean_stderr(result.stderr)


# -- 4-5. reporting plugins and the user's own hooks ----------------------------------------------


def test_pytest_html_report_written_by_the_coordinator_only(tmp_path: Path) -> None:
    write_suite(tmp_path, OUTCOMES_SUITE)
    html_args = ["--html=report.html", "--self-contained-html"]
    run_pytest(["-p", "no:cacheprovider", "--html=plain.html", "--self-contained-html"], tmp_path)

    result = run_orchestrate(["run", "--agents", "3", "--", *html_args], tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert (tmp_path / "report.html").is_file(), result.stdout
    tests = html_tests(tmp_path / "report.html")
    assert len(tests) == 22  # pytest-html lists tests that ran, not module-level skips
    assert tests == html_tests(tmp_path / "plain.html")
    assert tests["test_outcomes.py::test_teardown_error"] == ("Passed", "Error")
    worker_args = [json.loads(path.read_text()) for path in tmp_path.glob("worker-args-*.json")]
    # Agents start before the coordinator collects: each of the 3 starts its worker (the one
    # without a unit finishes at once).
    assert len(worker_args) == 3, "one worker per agent"
    for args in worker_args:
        assert not [a for a in args if a.startswith(("--html", "--self-contained-html"))], args
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["plain.html", "report.html"]


def test_users_terminal_summary_hook_prints_once(tmp_path: Path) -> None:
    write_suite(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": """
                def pytest_terminal_summary(terminalreporter, exitstatus, config):
                    terminalreporter.write_line(f"the user's summary: exit {exitstatus}")
            """,
            "test_a.py": "def test_one():\n    pass\n\ndef test_two():\n    assert False\n",
            "test_b.py": "def test_three():\n    pass\n",
        },
    )

    result = run_orchestrate(["run", "--agents", "2"], tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("the user's summary: exit 1") == 1, result.stdout
    assert closing_counts(result.stdout) == "1 failed, 2 passed"


# -- 6. --lf and the cache -----------------------------------------------------------------------

LAST_FAILED_SUITE = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
        import pytest


        @pytest.fixture
        def broken():
            raise RuntimeError("setup broke")
    """,
    "test_a.py": """
        import pytest


        class TestA:
            def test_passes(self):
                pass

            def test_fails(self):
                assert False


        @pytest.mark.parametrize("n", range(4))
        def test_odd_fail(n):
            assert n % 2 == 0
    """,
    "test_b.py": """
        def test_b_passes():
            pass


        def test_b_fails():
            assert False


        def test_b_setup_error(broken):
            pass
    """,
    "test_c.py": "def test_c_passes():\n    pass\n",
}


def test_last_failed_reruns_exactly_the_previous_failures(tmp_path: Path) -> None:
    write_suite(tmp_path, LAST_FAILED_SUITE)
    first = run_orchestrate(["run", "--agents", "3", "--results", "first.json"], tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    failures = {n for n, o in load_results(tmp_path / "first.json").items() if o in ("failed", "error")}
    assert failures == {
        "test_a.py::TestA::test_fails",
        "test_a.py::test_odd_fail[1]",
        "test_a.py::test_odd_fail[3]",
        "test_b.py::test_b_fails",
        "test_b.py::test_b_setup_error",
    }
    lastfailed = tmp_path / ".pytest_cache" / "v" / "cache" / "lastfailed"
    assert set(json.loads(lastfailed.read_text())) == failures
    # One failure fixed before the rerun.
    source = (tmp_path / "test_b.py").read_text()
    fixed = source.replace("def test_b_fails():\n    assert False", "def test_b_fails():\n    pass")
    assert fixed != source
    (tmp_path / "test_b.py").write_text(fixed)

    second = run_orchestrate(["run", "--agents", "3", "--results", "second.json", "--", "--lf"], tmp_path)

    assert second.returncode == 1, second.stdout + second.stderr
    assert set(load_results(tmp_path / "second.json")) == failures
    assert "run-last-failure: rerun previous 5 failures" in second.stdout
    # The coordinator's cache holds the merged outcomes of every agent: the fixed test is gone.
    assert set(json.loads(lastfailed.read_text())) == failures - {"test_b.py::test_b_fails"}
    plain = run_pytest(["--lf", "-q"], tmp_path)
    assert closing_counts(plain.stdout) == "3 failed, 1 deselected, 1 error"


# -- 7. pytest.exit and KeyboardInterrupt in a test -----------------------------------------------


def _stopping_suite(stop: str) -> dict[str, str]:
    return {
        "pytest.ini": "[pytest]\n",
        "test_stop.py": f"""
            import pytest


            class TestStops:
                def test_before(self):
                    pass

                def test_stops(self):
                    {stop}

                def test_after(self):
                    pass

                def test_after_too(self):
                    pass
        """,
        "test_other.py": """
            import time


            class TestOther:
                def test_1(self):
                    time.sleep(0.5)

                def test_2(self):
                    time.sleep(0.5)
        """,
    }


def test_pytest_exit_in_a_test_ends_the_run_with_its_code(tmp_path: Path) -> None:
    write_suite(tmp_path, _stopping_suite('pytest.exit("enough of this", returncode=3)'))
    assert run_pytest(["-p", "no:cacheprovider"], tmp_path).returncode == 3

    result = run_orchestrate(["run", "--agents", "2", "--results", "r.json"], tmp_path)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "Exit: enough of this" in result.stdout
    outcomes = load_results(tmp_path / "r.json")
    assert len(outcomes) == 6, "every collected test is in the results"
    assert outcomes["test_stop.py::TestStops::test_before"] == "passed"
    for name in ("test_stops", "test_after", "test_after_too"):
        assert outcomes[f"test_stop.py::TestStops::{name}"] == "not-run", outcomes
    assert set(outcomes.values()) <= {"passed", "not-run"}
    assert results_data(tmp_path / "r.json")["exit_code"] == 3
    assert_clean_stderr(result.stderr)


def test_keyboard_interrupt_in_a_test_exits_2(tmp_path: Path) -> None:
    write_suite(tmp_path, _stopping_suite("raise KeyboardInterrupt"))
    assert run_pytest(["-p", "no:cacheprovider"], tmp_path).returncode == 2

    result = run_orchestrate(["run", "--agents", "2", "--results", "r.json"], tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "KeyboardInterrupt" in result.stdout
    outcomes = load_results(tmp_path / "r.json")
    assert outcomes["test_stop.py::TestStops::test_stops"] == "not-run"
    assert outcomes["test_stop.py::TestStops::test_after"] == "not-run"
    assert results_data(tmp_path / "r.json")["interrupted"] is True


# -- 8. a suite that guards itself through the pytest cache --------------------------------------

CACHE_GUARD_SUITE = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
        import pytest

        KEY = "suite/running"


        def pytest_sessionstart(session):
            # A marker left set means a previous run died midway: refuse, as integration suites do.
            if session.config.cache.get(KEY, False):
                raise pytest.UsageError(f"a previous run did not finish: clear {KEY} in the cache")
            session.config.cache.set(KEY, True)


        def pytest_sessionfinish(session):
            session.config.cache.set(KEY, False)
    """,
    **{
        f"test_unit{index}.py": f"""
            class TestUnit{index}:
                def test_a(self):
                    pass

                def test_b(self):
                    pass
        """
        for index in range(8)
    },
}


@pytest.mark.parametrize("front_door", FRONT_DOORS)
def test_cache_guarded_suite_runs_on_every_agent(tmp_path: Path, front_door: str) -> None:
    """Each agent's worker has its own cache dir: none of them sees the coordinator's marker."""
    write_suite(tmp_path, CACHE_GUARD_SUITE)
    assert run_pytest(["-q"], tmp_path).returncode == 0

    result = run_agents(front_door, tmp_path, 4, results="r.json", schedule="static")

    assert result.returncode == 0, result.stdout + result.stderr
    assert closing_counts(result.stdout) == "16 passed"
    data = results_data(tmp_path / "r.json")
    assert {t["agent"] for t in data["tests"]} == {0, 1, 2, 3}, "every agent ran tests"
    marker = tmp_path / ".pytest_cache" / "v" / "suite" / "running"
    assert json.loads(marker.read_text()) is False, "the coordinator's session finished cleanly"
    # And the guard is real: a marker left set stops plain pytest.
    marker.write_text("true")
    refused = run_pytest(["-q"], tmp_path)
    assert refused.returncode == 4 and "a previous run did not finish" in refused.stderr


# -- 9. pytest-xdist installed beside orchestrate ----------------------------------------------------

XDIST_SUITE = {
    "test_xd.py": """
        import os


        class TestOne:
            def test_a(self):
                assert "PYTEST_XDIST_WORKER" not in os.environ

            def test_b(self):
                assert "PYTEST_XDIST_WORKER" not in os.environ


        class TestTwo:
            def test_c(self):
                assert "PYTEST_XDIST_WORKER" not in os.environ
    """,
}


def test_agents_and_xdist_n_together_is_a_usage_error(tmp_path: Path) -> None:
    """Both would own the run loop: one line, exit 4, from either front door."""
    write_suite(tmp_path, {"pytest.ini": "[pytest]\n", **XDIST_SUITE})

    by_pytest = run_pytest(["--agents=2", "-n", "2"], tmp_path)
    by_orchestrate = run_orchestrate(["run", "--agents", "2", "--", "-n2"], tmp_path)

    for result in (by_pytest, by_orchestrate):
        assert result.returncode == 4, result.stdout + result.stderr
        assert "--agents and pytest-xdist's -n/--dist/--tx both run the tests in parallel" in result.stderr
        assert_clean_stderr(result.stderr)
    assert len(by_orchestrate.stderr.strip().splitlines()) == 1, by_orchestrate.stderr


@pytest.mark.parametrize("front_door", FRONT_DOORS)
def test_ini_addopts_n_does_not_make_the_coordinator_an_xdist_controller(
    tmp_path: Path, front_door: str
) -> None:
    """`addopts = -n 2` is for plain pytest runs: orchestrate's session and workers stay single."""
    write_suite(tmp_path, {"pytest.ini": "[pytest]\naddopts = -n 2 --dist loadgroup\n", **XDIST_SUITE})
    plain = run_pytest([], tmp_path)
    assert plain.returncode == 1 and "created: 2/2 workers" in plain.stdout  # xdist is really on there

    result = run_agents(front_door, tmp_path, 2, results="r.json")

    assert result.returncode == 0, result.stdout + result.stderr
    assert closing_counts(result.stdout) == "3 passed"
    assert "created:" not in result.stdout and "xdist-3" in result.stdout  # installed, not running
    assert {t["agent"] for t in results_data(tmp_path / "r.json")["tests"]} <= {0, 1}


# -- 10. the user's flags after -- ---------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(["-k", "Group or odd or skip"], id="k"),
        pytest.param(["-m", "slowish"], id="m"),
        pytest.param(["-m", "not slowish", "-q"], id="m-q"),
        pytest.param(["-q", "-q"], id="qq"),
    ],
)
def test_selection_and_quiet_flags_as_plain_pytest(tmp_path: Path, flags: list[str]) -> None:
    write_suite(tmp_path, OUTCOMES_SUITE)
    plain = run_pytest(["-p", "no:cacheprovider", *flags], tmp_path)

    result = run_orchestrate(["run", "--agents", "2", "--", "-p", "no:cacheprovider", *flags], tmp_path)

    assert result.returncode == plain.returncode, result.stdout + result.stderr
    assert counts_or_none(result.stdout) == counts_or_none(plain.stdout)
    assert short_summary(result.stdout) == short_summary(plain.stdout)
    assert_clean_stderr(result.stderr)


def test_exitfirst_stops_every_agent_promptly(tmp_path: Path) -> None:
    write_suite(tmp_path, STOPPING_SUITE)

    result = run_orchestrate(["run", "--agents", "3", "--results", "r.json", "--", "-x"], tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "stopping after 1 failures" in result.stdout
    # Slow tests that passed on the other agents before the failure count; nothing after it.
    assert re.fullmatch(r"1 failed(, \d passed)?", closing_counts(result.stdout)), result.stdout
    data = results_data(tmp_path / "r.json")
    outcomes = load_results(tmp_path / "r.json")
    assert len(outcomes) == STOPPING_TESTS
    assert outcomes["test_fails.py::TestFails::test_2"] == "not-run", "killed in its sleep"
    assert list(outcomes.values()).count("failed") == 1
    assert list(outcomes.values()).count("not-run") >= STOPPING_TESTS - 1 - 6
    # Every agent stopped within STOP_SECONDS of the failure (a slow test runs for a second).
    (failure,) = [t for t in data["tests"] if t["outcome"] == "failed"]
    assert data["wall_seconds"] - failure["attempts"][-1]["finished"] < STOP_SECONDS, data["wall_seconds"]


def test_maxfail_stops_after_that_many_failures(tmp_path: Path) -> None:
    write_suite(tmp_path, STOPPING_SUITE)

    result = run_orchestrate(["run", "--agents", "3", "--results", "r.json", "--", "--maxfail=2"], tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "stopping after 2 failures" in result.stdout
    # The slow classes pass on the other agents meanwhile; no third failure is counted.
    assert re.fullmatch(r"2 failed(, \d passed)?", closing_counts(result.stdout)), result.stdout
    outcomes = load_results(tmp_path / "r.json")
    assert outcomes["test_fails.py::TestFails::test_1"] == "failed"
    assert outcomes["test_fails.py::TestFails::test_2"] == "failed"
    assert outcomes["test_fails.py::TestFails::test_3"] == "not-run", "killed in its sleep"
    assert outcomes["test_fails.py::TestFails::test_4"] == "not-run"
    assert len(outcomes) == STOPPING_TESTS and set(outcomes.values()) <= {"failed", "passed", "not-run"}


# Passing tests whose fixtures print in teardown, and a failing one whose teardown prints too: the
# failure's section shows its teardown's output (pytest reads it back from the passed teardown
# report, which the coordinator keeps for a failure only), `--durations=0 -vv` lists every phase.
TEARDOWN_OUTPUT_SUITE = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
        import pytest


        @pytest.fixture
        def noisy():
            print("set up noisily")
            yield
            print("torn down noisily")


        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line(f"blank reports kept: {len(terminalreporter.stats.get('', []))}")
    """,
    "test_noisy.py": """
        def test_fails(noisy):
            assert 1 == 2


        class TestPasses:
            def test_one(self, noisy):
                pass

            def test_two(self, noisy):
                pass


        def test_plain():
            pass
    """,
}


def _sections(stdout: str) -> list[str]:
    return re.findall(r"^-+ (Captured \w+ \w+) -+$|^(torn down noisily|set up noisily)$", stdout, re.M)


@pytest.mark.parametrize("flags", [[], ["--durations=0", "-vv"], ["-rP"]], ids=["default", "durations", "rP"])
def test_failure_sections_and_durations_as_plain_pytest(tmp_path: Path, flags: list[str]) -> None:
    write_suite(tmp_path, TEARDOWN_OUTPUT_SUITE)
    args = ["-p", "no:cacheprovider", *flags]
    plain = run_pytest(args, tmp_path)

    result = run_orchestrate(["run", "--agents", "2", "--", *args], tmp_path)

    assert result.returncode == plain.returncode == 1, result.stdout + result.stderr
    assert _sections(result.stdout) == _sections(plain.stdout), result.stdout
    assert "Captured stdout teardown" in result.stdout
    if "--durations=0" in flags:
        phases = sorted(re.findall(r"^\d+\.\d+s (setup|call|teardown) +(\S+)$", result.stdout, re.M))
        assert phases == sorted(re.findall(r"^\d+\.\d+s (setup|call|teardown) +(\S+)$", plain.stdout, re.M))
        assert len(phases) == 12, result.stdout
    assert closing_counts(result.stdout) == closing_counts(plain.stdout) == "1 failed, 3 passed"
    # What pytest would only scan is not kept: the passed tests' setup and teardown reports.
    assert "blank reports kept: 8" in plain.stdout
    kept = 2 if not flags else 8  # the failed test's own (its teardown's output is shown)
    assert f"blank reports kept: {kept}" in result.stdout, result.stdout


def test_in_this_process_the_failure_sections_are_plain_pytests_too(tmp_path: Path) -> None:
    """`--agents auto` in the coordinator's own process (pytest's run loop) keeps only what pytest
    reads back as well: the failed test's teardown output is shown, passed tests' phases dropped."""
    write_suite(tmp_path, TEARDOWN_OUTPUT_SUITE)
    plain = run_pytest(["-p", "no:cacheprovider"], tmp_path)
    run_orchestrate(["run", "--", "-p", "no:cacheprovider"], tmp_path)  # learns the durations

    result = run_orchestrate(["run", "--", "-p", "no:cacheprovider"], tmp_path)

    assert "orchestrate: --agents auto: in this process" in result.stdout, result.stdout
    assert result.returncode == plain.returncode == 1, result.stdout + result.stderr
    assert _sections(result.stdout) == _sections(plain.stdout), result.stdout
    assert closing_counts(result.stdout) == closing_counts(plain.stdout) == "1 failed, 3 passed"
    assert "blank reports kept: 2" in result.stdout, result.stdout
