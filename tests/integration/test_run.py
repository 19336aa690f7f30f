"""Acceptance tests of `orchestrate run`: the real command, real local Ray, real pytest workers.

Each test runs `orchestrate` as a subprocess on a suite generated in tmp_path and compares what
it reports with what plain `pytest` reports for the same paths and arguments. A Ray run costs
several seconds, so each run is checked for as much as it can prove.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import load_results, run_orchestrate, run_pytest, write_suite

# -- a suite with every kind of outcome pytest knows ------------------------------------------

RICH_SUITE = {
    "pytest.ini": """
        [pytest]
        markers =
            slowish: a registered marker, selected with -m
            fast: added by the conftest hook
        addopts = --strict-markers -p no:cacheprovider
        xfail_strict = false
    """,
    "conftest.py": """
        import os

        import pytest

        COUNTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "counts")


        def bump(name):
            # One file per (fixture, agent, process): lines count the set-ups.
            os.makedirs(COUNTS, exist_ok=True)
            agent = os.environ.get("ORCHESTRATE_AGENT", "serial")
            with open(os.path.join(COUNTS, f"{name}-{agent}-{os.getpid()}"), "a") as fh:
                fh.write("x\\n")


        @pytest.fixture
        def plugin_value():
            return 42


        def pytest_collection_modifyitems(items):
            for item in items:
                if "special" in item.nodeid:
                    item.add_marker(pytest.mark.fast)
    """,
    "test_basic.py": """
        import os

        import pytest

        from conftest import bump


        def test_pass():
            pass


        def test_fail():
            assert 1 == 2


        @pytest.fixture
        def bad_setup():
            raise RuntimeError("setup boom")


        def test_setup_error(bad_setup):
            pass


        @pytest.fixture
        def bad_teardown():
            yield
            raise RuntimeError("teardown boom")


        def test_teardown_error(bad_teardown):
            pass


        def test_skip():
            pytest.skip("nope")


        @pytest.mark.skipif(True, reason="conditional")
        def test_skipif():
            pass


        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert 0


        @pytest.mark.xfail(reason="maybe")
        def test_xpass():
            pass


        @pytest.mark.xfail(strict=True, reason="strict")
        def test_xpass_strict():
            pass


        @pytest.mark.parametrize("value", ["a/b", "\u00fc", "::", "[x]", "with space", "a::b[c]"])
        def test_odd_ids(value):
            assert value


        def test_plugin_fixture(plugin_value):
            assert plugin_value == 42


        def test_special_marked(request):
            assert request.node.get_closest_marker("fast") is not None


        def test_agent_env():
            bump("agent")
            assert os.environ.get("ORCHESTRATE_AGENT", "serial") in {"serial", "0", "1", "2"}
    """,
    "test_classes.py": """
        import unittest

        import pytest

        from conftest import bump


        @pytest.fixture(scope="module")
        def module_fixture():
            bump("module")
            return 1


        class TestWithClassFixture:
            @pytest.fixture(scope="class")
            @classmethod
            def class_fixture(cls):
                bump("class")
                return 2

            def test_a(self, class_fixture, module_fixture):
                assert class_fixture == 2

            def test_b(self, class_fixture):
                assert class_fixture == 2

            @pytest.mark.slowish
            def test_c(self, class_fixture):
                assert class_fixture == 2

            class TestNested:
                def test_inner(self):
                    pass

                def test_inner_fail(self):
                    assert False


        def test_module_level(module_fixture):
            assert module_fixture == 1


        class TestUnit(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                bump("setupclass")

            def test_one(self):
                self.assertTrue(True)

            def test_two(self):
                self.assertEqual(1, 2)

            @unittest.skip("unittest skip")
            def test_three(self):
                pass
    """,
    "sub/test_more.py": """
        import pytest


        class TestMore:
            @pytest.mark.slowish
            def test_one(self):
                pass

            def test_two(self):
                pytest.skip("skipped in a class")
    """,
}

# pytest's short-summary words, strongest first: a test listed twice (a passing call with a failed
# teardown is PASSED and ERROR) ends with the first of them, as orchestrate's one outcome does.
_SUMMARY_WORDS = {
    "FAILED": "failed",
    "ERROR": "error",
    "XFAIL": "xfailed",
    "XPASS": "xpassed",
    "PASSED": "passed",
}
_SUMMARY_LINE = re.compile(r"^(FAILED|ERROR|XFAIL|XPASS|PASSED) (.+?)(?: - .*)?$")


def pytest_outcomes(cwd: Path, args: list[str], junitxml: Path) -> tuple[list[str], dict[str, str], int, str]:
    """Plain pytest's node ids, one outcome per node id, exit code and closing counts for `args`.

    Node ids come from `--collect-only -q`; outcomes from the `-rA` short summary (SKIPPED lines
    there name a location, not a node id, so a collected test it does not list was skipped).
    """
    collected = run_pytest(["--collect-only", "-q", *args], cwd)
    node_ids = [
        line for line in collected.stdout.splitlines() if "::" in line and " " not in line.split("::")[0]
    ]
    ran = run_pytest(["-rA", f"--junitxml={junitxml}", *args], cwd)
    found: dict[str, str] = {}
    in_summary = False
    for line in ran.stdout.splitlines():
        if "short test summary info" in line:
            in_summary = True
            continue
        match = _SUMMARY_LINE.match(line) if in_summary else None
        if match is None:
            continue
        word, node_id = match.groups()
        current = found.get(node_id)
        order = list(_SUMMARY_WORDS)
        if current is None or order.index(word) < order.index(current):
            found[node_id] = word
    outcomes = {n: _SUMMARY_WORDS[found[n]] if n in found else "skipped" for n in node_ids}
    assert set(found) <= set(node_ids), sorted(set(found) - set(node_ids))
    return node_ids, outcomes, ran.returncode, closing_counts(ran.stdout)


def junit_testcases(path: Path) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """(classname, name) -> the result elements of that testcase, as (tag, type) pairs."""
    cases: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for testcase in ET.parse(path).getroot().iter("testcase"):
        key = (testcase.get("classname", ""), testcase.get("name", ""))
        assert key not in cases, f"two testcases for {key}"
        cases[key] = tuple(
            (child.tag, child.get("type", ""))
            for child in testcase
            if child.tag in ("failure", "error", "skipped")
        )
    return cases


def fixture_setups(counts: Path) -> dict[str, dict[str, int]]:
    """fixture name -> {agent: set-up count}, from the files the suite's `bump` writes."""
    setups: dict[str, dict[str, int]] = {}
    for path in counts.iterdir():
        name, agent, _pid = path.name.split("-")
        per_agent = setups.setdefault(name, {})
        per_agent[agent] = per_agent.get(agent, 0) + len(path.read_text().splitlines())
    return setups


def closing_counts(stdout: str) -> str:
    """pytest's closing counts line without its time: "4 failed, 18 passed, ..., 2 errors"."""
    last = [line for line in stdout.splitlines() if line.strip()][-1]
    match = re.fullmatch(r"=* ?(.+?) in [\d.]+s(?: \([\d:]+\))? ?=*", last)
    assert match, last
    return match.group(1)


def assert_clean_stderr(stderr: str) -> None:
    assert "Traceback (most recent call last)" not in stderr, stderr


def summary_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip()]


# -- 1. the same results as pytest ------------------------------------------------------------


@pytest.mark.ray
def test_same_results_and_junit_as_pytest(tmp_path: Path) -> None:
    write_suite(tmp_path, RICH_SUITE)
    node_ids, expected, pytest_code, pytest_counts = pytest_outcomes(tmp_path, [], tmp_path / "pytest.xml")
    assert len(node_ids) == 29 and pytest_code == 1
    counts = tmp_path / "counts"
    assert fixture_setups(counts)["class"] == {"serial": 1}
    for path in counts.iterdir():
        path.unlink()

    result = run_orchestrate(["run", "--agents", "3", "--results", "r.json", "--junitxml", "j.xml"], tmp_path)

    assert result.returncode == pytest_code, result.stdout + result.stderr
    assert_clean_stderr(result.stderr)
    data = json.loads((tmp_path / "r.json").read_text())
    ours = [t["node_id"] for t in data["tests"]]
    assert sorted(ours) == sorted(node_ids), "every collected test has exactly one result"
    assert load_results(tmp_path / "r.json") == expected
    # JUnit: pytest's own testcases, with the same kind of result element in each.
    assert junit_testcases(tmp_path / "j.xml") == junit_testcases(tmp_path / "pytest.xml")

    # Class- and module-scoped fixtures run once per unit on its agent, never per test.
    setups = fixture_setups(counts)
    assert sum(setups["class"].values()) == 1
    assert sum(setups["setupclass"].values()) == 1
    # module_fixture serves two units (the class and the module's functions): at most once each.
    assert 1 <= sum(setups["module"].values()) <= 2
    assert set(setups["agent"]) <= {"0", "1", "2"}, "tests see their agent in ORCHESTRATE_AGENT"
    assert {a["agent_id"] for a in data["agents"]} == {0, 1, 2}

    # The terminal: pytest's closing counts line, and one row per agent.
    lines = summary_lines(result.stdout)
    # pytest's own closing counts line, as plain pytest printed it (a passing test whose
    # teardown fails counts as passed and as an error there too).
    assert closing_counts(result.stdout) == pytest_counts
    assert any(re.match(r"=+ orchestrate: agents =+$", line) for line in lines)
    for agent_id in range(3):
        assert any(re.match(rf"\s+{agent_id}\s+\S+\s+\d+\s", line) for line in lines), result.stdout


@pytest.mark.ray
def test_selection_with_k_and_m_matches_pytest(tmp_path: Path) -> None:
    write_suite(tmp_path, RICH_SUITE)
    args = ["-k", "odd or Unit or More or special", "-m", "not slowish"]
    node_ids, expected, pytest_code, _ = pytest_outcomes(tmp_path, args, tmp_path / "pytest.xml")
    assert 0 < len(node_ids) < 29

    result = run_orchestrate(
        ["run", "--agents", "2", "--results", "r.json", "--junitxml", "j.xml", "--", *args], tmp_path
    )

    assert result.returncode == pytest_code, result.stdout + result.stderr
    assert_clean_stderr(result.stderr)
    assert load_results(tmp_path / "r.json") == expected
    assert junit_testcases(tmp_path / "j.xml") == junit_testcases(tmp_path / "pytest.xml")


# -- 2. exit codes as pytest's --------------------------------------------------------------

PASSING_SUITE = {
    "test_ok.py": """
        def test_one():
            pass

        def test_two():
            pass
    """,
}


@pytest.mark.ray
def test_collection_error_exits_2_with_pytests_output(tmp_path: Path) -> None:
    write_suite(tmp_path, {**PASSING_SUITE, "test_broken.py": "raise ImportError('broken at import')\n"})
    assert run_pytest([], tmp_path).returncode == 2

    result = run_orchestrate(["run", "--agents", "2"], tmp_path)

    # pytest itself reports it, where and as plain pytest does: the coordinator is its session.
    assert result.returncode == 2
    assert "ERROR collecting test_broken.py" in result.stdout
    assert "ImportError: broken at import" in result.stdout
    assert "Interrupted: 1 error during collection" in result.stdout
    assert_clean_stderr(result.stderr)


def test_exit_codes_without_ray(tmp_path: Path) -> None:
    """All pass 0, a failure 1, nothing selected 5, --pyargs: the session is the same on any backend."""
    write_suite(
        tmp_path,
        {
            **PASSING_SUITE,
            "mypkg/__init__.py": "",
            "mypkg/test_in_package.py": "def test_in_package():\n    pass\n",
        },
    )
    local = ["run", "--backend", "local", "--agents", "2"]

    passed = run_orchestrate([*local, "test_ok.py"], tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.fullmatch(r"=+ 2 passed in [\d.]+s =+", summary_lines(passed.stdout)[-1])

    nothing = run_orchestrate([*local, "--", "-k", "nomatch"], tmp_path)
    assert nothing.returncode == run_pytest(["-k", "nomatch"], tmp_path).returncode == 5
    assert "deselected" in summary_lines(nothing.stdout)[-1], nothing.stdout  # pytest's own words

    pyargs = run_orchestrate([*local, "--results", "r.json", "mypkg", "--", "--pyargs"], tmp_path)
    assert pyargs.returncode == 0, pyargs.stdout + pyargs.stderr
    assert load_results(tmp_path / "r.json") == {"mypkg/test_in_package.py::test_in_package": "passed"}

    (tmp_path / "test_ok.py").write_text("def test_one():\n    assert False\n")
    failed = run_orchestrate([*local, "test_ok.py"], tmp_path)
    assert failed.returncode == 1
    for run in (passed, nothing, pyargs, failed):
        assert_clean_stderr(run.stderr)


# -- 3. -x stops the whole run ------------------------------------------------------------------

SLOW_UNITS = 6
SLOW_TESTS_PER_UNIT = 3
SLOW_SECONDS = 1.0


@pytest.mark.ray
def test_exitfirst_stops_every_agent_promptly(tmp_path: Path) -> None:
    files = {
        # Four tests make this the largest unit of a first run, so the plan starts it first.
        "test_first.py": """
            class TestFirst:
                def test_a_fails(self):
                    assert False

                def test_b(self):
                    pass

                def test_c(self):
                    pass

                def test_d(self):
                    pass
        """,
    }
    for unit in range(SLOW_UNITS):
        body = "".join(
            f"    def test_{i}(self):\n        time.sleep({SLOW_SECONDS})\n\n"
            for i in range(SLOW_TESTS_PER_UNIT)
        )
        files[f"test_slow{unit}.py"] = f"import time\n\n\nclass TestSlow{unit}:\n{body}"
    write_suite(tmp_path, files)
    serial_seconds = SLOW_UNITS * SLOW_TESTS_PER_UNIT * SLOW_SECONDS

    result = run_orchestrate(["run", "--agents", "2", "--results", "r.json", "--", "-x"], tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert_clean_stderr(result.stderr)
    data = json.loads((tmp_path / "r.json").read_text())
    outcomes = load_results(tmp_path / "r.json")
    assert len(data["tests"]) == len(outcomes) == 4 + SLOW_UNITS * SLOW_TESTS_PER_UNIT
    assert outcomes["test_first.py::TestFirst::test_a_fails"] == "failed"
    assert set(outcomes.values()) <= {"failed", "passed", "not-run"}
    assert list(outcomes.values()).count("failed") == 1
    not_run = [n for n, o in outcomes.items() if o == "not-run"]
    assert len(not_run) >= SLOW_UNITS * SLOW_TESTS_PER_UNIT - 2, outcomes
    # Two agents run the slow tests in half the serial time; a prompt stop is far below even that.
    assert data["wall_seconds"] < serial_seconds / 4, data["wall_seconds"]
    assert any("-x/--maxfail" in m for m in data["messages"])
    assert "NOT-RUN" in result.stdout


# -- 4. the duration store ----------------------------------------------------------------------

TIMED_SUITE = {
    "test_timed.py": """
        import time


        class TestSlow:
            def test_one(self):
                time.sleep(0.6)

            def test_two(self):
                time.sleep(0.6)


        class TestQuick:
            def test_one(self):
                time.sleep(0.2)

            def test_two(self):
                time.sleep(0.1)


        def test_function():
            time.sleep(0.4)
    """,
}


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.ray
def test_durations_are_recorded_and_plan_the_next_run(tmp_path: Path) -> None:
    write_suite(tmp_path, TIMED_SUITE)
    store = tmp_path / ".orchestrate" / "durations.msgpack"

    first = run_orchestrate(["run", "--agents", "2", "--results", "r.json"], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert store.is_file()
    durations = {t["node_id"]: t["duration"] for t in json.loads((tmp_path / "r.json").read_text())["tests"]}

    plan = run_orchestrate(["plan", "--agents", "2"], tmp_path)
    assert plan.returncode == 0, plan.stderr
    text = _words(plan.stdout)
    assert "0 of 5 tests (0%) have no recorded duration" in text, plan.stdout
    # The plan predicts what the run observed: its total, and its longest unit.
    total = re.search(r"total ([\d.]+)s", text)
    assert total and float(total.group(1)) == pytest.approx(sum(durations.values()), abs=0.05), text
    slow = sum(s for n, s in durations.items() if "TestSlow" in n)
    longest = re.search(r"test_timed\.py::TestSlow \(([\d.]+)s\)", text)
    assert longest and float(longest.group(1)) == pytest.approx(slow, abs=0.05), text

    shown = run_orchestrate(["durations", "show"], tmp_path)
    assert shown.returncode == 0
    for unit in ("test_timed.py::TestSlow", "test_timed.py::TestQuick", "test_timed.py"):
        assert unit in shown.stdout

    # A corrupt store: one warning line, the run still passes, and the store is written anew.
    store.write_bytes(b"\x93not msgpack at all")
    again = run_orchestrate(["run", "--backend", "local", "--agents", "2"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    warnings = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("orchestrate: warning:"), again.stderr
    assert str(store.relative_to(tmp_path)) in warnings[0]
    assert "0 of 5 tests (0%)" in _words(run_orchestrate(["plan", "--agents", "2"], tmp_path).stdout)


def test_durations_import_pytest_split_and_junit(tmp_path: Path) -> None:
    write_suite(tmp_path, TIMED_SUITE)
    (tmp_path / ".test_durations").write_text(
        json.dumps({"test_timed.py::TestSlow::test_one": 7.5, "test_timed.py::test_function": 2.5})
    )
    imported = run_orchestrate(["durations", "import", ".test_durations"], tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2 durations" in imported.stdout
    shown = run_orchestrate(["durations", "show"], tmp_path)
    assert re.search(r"7\.50\s+│\s+1\s+│\s+test_timed\.py::TestSlow", shown.stdout), shown.stdout

    assert run_pytest(["-p", "no:cacheprovider", "--junitxml=plain.xml"], tmp_path).returncode == 0
    from_junit = run_orchestrate(["durations", "import", "plain.xml", "--durations", "j.msgpack"], tmp_path)
    assert from_junit.returncode == 0, from_junit.stderr
    assert "imported 5 durations" in from_junit.stdout
    plan = run_orchestrate(["plan", "--agents", "2", "--durations", "j.msgpack"], tmp_path)
    assert "0 of 5 tests (0%)" in _words(plan.stdout), plan.stdout
    for run in (imported, shown, from_junit, plan):
        assert_clean_stderr(run.stderr)


# -- 5. an existing Ray cluster (--address) ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ray_head() -> Iterator[str]:
    """A separate Ray head on 127.0.0.1, ended by its own process group (not `ray stop`, which
    would stop every Ray instance on the machine)."""
    port = _free_port()
    ray = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert head.poll() is None, "ray start --head exited"
                assert time.monotonic() < deadline, "the Ray head did not come up"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        # Everything the head started shares its process group: end exactly those.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(30)


@pytest.mark.ray
def test_run_on_an_existing_cluster(tmp_path: Path, ray_head: str) -> None:
    write_suite(tmp_path, PASSING_SUITE)

    result = run_orchestrate(["run", "--agents", "2", "--address", ray_head, "--results", "r.json"], tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean_stderr(result.stderr)
    assert load_results(tmp_path / "r.json") == {
        "test_ok.py::test_one": "passed",
        "test_ok.py::test_two": "passed",
    }


def test_unreachable_address_is_one_line_exit_4(tmp_path: Path) -> None:
    write_suite(tmp_path, PASSING_SUITE)
    started = time.monotonic()

    result = run_orchestrate(["run", "--address", f"127.0.0.1:{_free_port()}"], tmp_path, timeout=60)

    assert time.monotonic() - started < 10
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orchestrate: error: no Ray cluster answers"), (
        result.stderr
    )


CRASH_ONCE_SUITE = {
    "test_crash.py": """
import ctypes
import os
from pathlib import Path


def test_before():
    pass


def test_crashes_once(tmp_path_factory):
    marker = Path(os.environ["CRASH_MARKER"])
    if not marker.exists():
        marker.write_text("crashed")
        ctypes.string_at(0)  # a segfault: faulthandler prints its traceback on the worker's stderr


def test_after():
    pass
""",
}


def test_a_crash_that_passes_on_retry_explains_itself_and_leaves_pytests_counts(tmp_path: Path) -> None:
    """The worker's last lines are shown under the retried test; pytest's line is plain pytest's."""
    write_suite(tmp_path, CRASH_ONCE_SUITE)
    env = {**os.environ, "CRASH_MARKER": str(tmp_path / "crashed")}

    result = run_orchestrate(["run", "--agents", "1", "--backend", "local"], tmp_path, env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert closing_counts(result.stdout) == "3 passed"  # no "1 rerun": the crash is orchestrate's
    lines = result.stdout.splitlines()
    flaky = next(i for i, line in enumerate(lines) if "test_crash.py::test_crashes_once: crashed" in line)
    shown = "\n".join(lines[flaky + 1 : flaky + 17])
    assert "worker killed by signal 11" in shown, result.stdout
    assert "Fatal Python error: Segmentation fault" in shown, result.stdout
