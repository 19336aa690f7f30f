"""Test groups with real agents: the real `orchestrate` command, local agent processes, real pytest.

The suites hold something every agent shares (a file in tmp_path, as a sandbox account or a
licence server would be): each test takes a non-blocking `fcntl` lock on it and fails when
another test holds it, then sleeps long enough that tests on different agents overlap. With
the group at limit 1 they pass; without it, on 3 agents, they collide. An `alone` test checks
that no other test is running anywhere while it runs (each test keeps a "running" file while
it runs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import load_results, run_orchestrate, write_suite

LOCKED_TEST = """
    import fcntl
    import os
    import time

    import pytest

    SHARED = os.environ["SHARED_DIR"]


    @pytest.fixture
    def account():
        # The shared account: only one holder at a time, or the provider refuses (the lock fails).
        with open(os.path.join(SHARED, "account.lock"), "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pytest.fail("another test holds the shared account")
            time.sleep(0.3)
            yield
            fcntl.flock(fh, fcntl.LOCK_UN)
"""


def _payments_suite(root: Path, marker: str) -> None:
    files = {
        "conftest.py": LOCKED_TEST,
        "pytest.ini": "[pytest]\naddopts = --strict-markers -p no:cacheprovider\n",
    }
    for i in range(6):
        files[f"test_pay_{i}.py"] = f"""
            import pytest

            {marker}
            class TestPay{i}:
                def test_charge(self, account): pass

                def test_refund(self, account): pass
        """
    write_suite(root, files)


def _run(root: Path, shared: Path, *args: str) -> tuple[int, str, Path]:
    results = root / "results.json"
    env = {**os.environ, "SHARED_DIR": str(shared)}
    backend = [] if "--backend" in args else ["--backend", "local"]
    completed = run_orchestrate(
        [
            "run",
            ".",
            *backend,
            "--results",
            str(results),
            "--durations",
            str(root / "d.msgpack"),
            *args,
        ],
        root,
        env=env,
    )
    return completed.returncode, completed.stdout + completed.stderr, results


def test_a_group_at_limit_one_never_shares_the_account(tmp_path: Path) -> None:
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    _payments_suite(suite, '@pytest.mark.orchestrate_group("payments", limit=1)')

    code, output, results = _run(suite, shared, "--agents", "3")

    assert code == 0, output
    assert set(load_results(results).values()) == {"passed"}
    data = json.loads(results.read_text())
    spans = [(a["agent_id"], u) for a in data["agents"] for u in a["units"]]
    assert len(spans) == 6 and all(u["groups"] == ["payments"] for _, u in spans)
    ordered = sorted((u["started"], u["finished"]) for _, u in spans)
    assert all(a[1] <= b[0] + 0.05 for a, b in zip(ordered, ordered[1:], strict=False))  # one at a time
    assert "payments x" in output  # the agents table's groups column


@pytest.mark.ray
def test_the_limit_holds_on_ray_agents_too(tmp_path: Path) -> None:
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    _payments_suite(suite, '@pytest.mark.orchestrate_group("payments", limit=1)')

    code, output, results = _run(suite, shared, "--agents", "3", "--backend", "ray")

    assert code == 0, output
    assert set(load_results(results).values()) == {"passed"}


def test_a_crash_retry_keeps_its_group(tmp_path: Path) -> None:
    # test_charge of TestPay0 kills its worker the first time; its retry is a unit of its own,
    # still in the group: it never runs beside another holder of the account.
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    _payments_suite(suite, '@pytest.mark.orchestrate_group("payments", limit=1)')
    path = suite / "test_pay_0.py"
    path.write_text(
        path.read_text()
        .replace(
            "def test_charge(self, account): pass",
            "def test_charge(self, account):\n"
            "        flag = os.path.join(os.environ['SHARED_DIR'], 'crashed')\n"
            "        if not os.path.exists(flag):\n"
            "            open(flag, 'w').close()\n"
            "            os._exit(3)",
        )
        .replace("import pytest", "import os\n\nimport pytest")
    )

    code, output, results = _run(suite, shared, "--agents", "3")

    assert code == 0, output
    assert set(load_results(results).values()) == {"passed"}
    data = json.loads(results.read_text())
    retried = [u for a in data["agents"] for u in a["units"] if "crash retry" in u["unit_id"]]
    assert retried and all(u["groups"] == ["payments"] for u in retried)


def test_without_the_group_the_same_tests_collide(tmp_path: Path) -> None:
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    _payments_suite(suite, "")

    code, output, results = _run(suite, shared, "--agents", "3")

    assert code == 1, output
    assert "error" in load_results(results).values()  # the fixture could not take the lock
    assert "another test holds the shared account" in output


def test_the_group_from_pyproject_alone(tmp_path: Path) -> None:
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    _payments_suite(suite, "")
    (suite / "pyproject.toml").write_text(
        '[tool.orchestrate.groups]\npayments = {limit = 1, tests = ["test_pay_*.py"]}\n'
    )

    code, output, _ = _run(suite, shared, "--agents", "3", "--schedule", "static")

    assert code == 0, output


ALONE_SUITE = {
    "conftest.py": """
        import os
        import time

        import pytest

        RUNNING = os.environ["SHARED_DIR"]


        @pytest.fixture(autouse=True)
        def running(request):
            # A file per running test: the alone test checks that it is the only one.
            mark = os.path.join(RUNNING, request.node.nodeid.replace("/", "_").replace(":", "_"))
            open(mark, "w").close()
            yield mark
            os.remove(mark)
    """,
    "test_machine.py": """
        import os
        import time

        import pytest

        RUNNING = os.environ["SHARED_DIR"]


        @pytest.mark.orchestrate_alone
        def test_changes_machine_wide_state(running):
            for _ in range(6):
                others = [m for m in os.listdir(RUNNING) if m != os.path.basename(running)]
                assert not others, f"running beside: {others}"
                time.sleep(0.1)
    """,
    **{
        f"test_busy_{i}.py": f"""
            import time

            class TestBusy{i}:
                def test_a(self): time.sleep(0.25)

                def test_b(self): time.sleep(0.25)
        """
        for i in range(6)
    },
}


def test_an_alone_test_sees_no_other_test_running(tmp_path: Path) -> None:
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    write_suite(suite, ALONE_SUITE)

    code, output, results = _run(suite, shared, "--agents", "3")

    assert code == 0, output
    assert set(load_results(results).values()) == {"passed"}
    data = json.loads(results.read_text())
    alone = [u for a in data["agents"] for u in a["units"] if u["alone"]]
    assert len(alone) == 1


def test_an_unknown_group_is_one_line_and_exit_4(tmp_path: Path) -> None:
    write_suite(
        tmp_path,
        {"test_x.py": "import pytest\n@pytest.mark.orchestrate_group('nowhere')\ndef test_x(): pass\n"},
    )
    completed = run_orchestrate(["run", ".", "--backend", "local", "--agents", "2"], tmp_path)
    assert completed.returncode == 4, completed.stdout + completed.stderr
    assert "unknown test group 'nowhere'" in completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr


def test_the_plan_names_the_group_as_the_bound(tmp_path: Path) -> None:
    suite, shared = tmp_path / "suite", tmp_path / "shared"
    shared.mkdir()
    _payments_suite(suite, '@pytest.mark.orchestrate_group("payments", limit=1)')
    env = {**os.environ, "SHARED_DIR": str(shared)}
    completed = run_orchestrate(["plan", ".", "--agents", "1,3,6"], suite, env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "bound by" in completed.stdout and "group payments" in completed.stdout
