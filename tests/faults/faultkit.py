"""Helpers of the fault tier (imported by its test modules): check the "nothing lost" invariant on a run's three outputs.

Every collected test ends with exactly one final outcome, the same in the results file, the
JUnit file and the terminal's closing line. Each fault test runs the real `orchestrate`
command in a subprocess and hands its outputs to `assert_consistent`.
"""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from conftest import ORCHESTRATE

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "crashed", "timeout", "not-run")

# What JUnit element each outcome becomes (None: a bare <testcase>), as pytest writes the
# replayed reports: crashes and timeouts are failed calls, tests no agent was left to run are
# setup errors. Tests a stop left unrun (-x, pytest.exit, Ctrl-C) are not replayed: no testcase.
_JUNIT_KIND = {
    "passed": None,
    "xpassed": None,
    "failed": "failure",
    "crashed": "failure",
    "timeout": "failure",
    "error": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
    "not-run": "error",
}
# How pytest's closing line counts each outcome of the replayed reports.
_PYTEST_WORD = {"crashed": "failed", "timeout": "failed", "not-run": "error"}
_CLOSING = re.compile(r"=+ (?P<counts>.+?) in [\d.]+s.*=+\s*$")


def docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        images = {tag for image in client.images.list() for tag in image.tags}
        client.close()
    except Exception:
        return False
    return "orchestrate/redis:7" in images


needs_docker = pytest.mark.skipif(not docker_available(), reason="no Docker engine or no orchestrate/redis:7")


def leftovers(run_label: str = "orchestrate.run") -> list[str]:
    """Names of containers and networks carrying our run label."""
    import docker

    client = docker.from_env(timeout=10)
    try:
        for _ in range(5):
            try:
                containers = client.containers.list(all=True, filters={"label": run_label})
                networks = client.networks.list(filters={"label": run_label})
                return [c.name for c in containers] + [n.name for n in networks]
            except docker.errors.NotFound:
                continue  # one was removed while being listed: look again
        raise AssertionError("containers kept disappearing while being listed")
    finally:
        client.close()


def load(path: Path) -> dict[str, Any]:
    """node id -> the test's record in a results file (asserting each node id appears once)."""
    data = json.loads(path.read_text())
    ids = [t["node_id"] for t in data["tests"]]
    duplicates = [n for n, c in Counter(ids).items() if c > 1]
    assert not duplicates, f"tests reported more than once: {duplicates}"
    return {t["node_id"]: t for t in data["tests"]}


def _junit_key(node_id: str) -> tuple[str, str]:
    path, *names = node_id.split("::")
    module = path.removesuffix(".py").replace("/", ".")
    return ".".join([module, *names[:-1]]), names[-1]


def closing_counts(stdout: str) -> Counter[str]:
    """The terminal's closing line ("1 failed, 2 passed in 3.1s") as outcome -> count."""
    lines = [line for line in stdout.splitlines() if _CLOSING.match(line.strip())]
    assert lines, f"no closing line in:\n{stdout[-2000:]}"
    counts: Counter[str] = Counter()
    for part in _CLOSING.match(lines[-1].strip()).group("counts").split(", "):  # type: ignore[union-attr]
        number, word = part.split(" ", 1)
        if number == "no":  # "no tests ran"
            continue
        counts[{"errors": "error", "warnings": "warning"}.get(word, word)] = int(number)
    counts.pop("warning", None)
    counts.pop("deselected", None)
    return counts


def pytest_counts(tests: dict[str, Any], replayed_not_run: bool) -> Counter[str]:
    """What pytest's closing line says for these results: its words for our outcomes, tests a
    stop left unrun left out (unless they were replayed), earlier failed attempts (--reruns) as
    "rerun"; an earlier crash is orchestrate's, not in pytest's counts."""
    counts: Counter[str] = Counter()
    for test in tests.values():
        outcome = test["outcome"]
        if outcome == "not-run" and not replayed_not_run:
            continue
        counts[_PYTEST_WORD.get(outcome, outcome)] += 1
        counts["rerun"] += sum(1 for a in test["attempts"][:-1] if a["outcome"] in ("failed", "error"))
    return +counts


def assert_consistent(
    results: Path, junit: Path | None, stdout: str, collected: Iterable[str]
) -> dict[str, Any]:
    """Check the invariant on one run's outputs and return the results file's tests by node id."""
    tests = load(results)
    assert set(tests) == set(collected), (
        f"missing {sorted(set(collected) - set(tests))}, extra {sorted(set(tests) - set(collected))}"
    )
    for node_id, test in tests.items():
        assert test["outcome"] in OUTCOMES, (node_id, test["outcome"])
        assert test["attempts"], f"{node_id} has no attempt"
        assert test["attempts"][-1]["outcome"] == test["outcome"], node_id
    # Tests a stop left unrun are ours alone; those no agent was left to run are replayed.
    replayed_not_run = json.loads(results.read_text()).get("stop") is None
    counts = pytest_counts(tests, replayed_not_run)
    assert closing_counts(stdout) == counts, (closing_counts(stdout), counts)
    if junit is not None:
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None
        cases = suite.findall("testcase")
        keys = [(c.get("classname", ""), c.get("name", "")) for c in cases]
        in_junit = {n: t for n, t in tests.items() if replayed_not_run or t["outcome"] != "not-run"}
        assert len(keys) == len(set(keys)) == len(in_junit), f"JUnit testcases {len(keys)} != {len(in_junit)}"
        by_key = dict(zip(keys, cases, strict=True))
        for node_id, test in in_junit.items():
            case = by_key[_junit_key(node_id)]
            kinds = {child.tag for child in case} & {"failure", "error", "skipped"}
            expected = _JUNIT_KIND[test["outcome"]]
            assert kinds == ({expected} if expected else set()), (node_id, test["outcome"], kinds)
        assert int(suite.get("tests", -1)) == len(in_junit)
    return tests


def run_bg(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `orchestrate` in its own process group (as a shell would), output captured.

    With SIGINT at its default, as a shell starts its foreground job: tests run in the background
    by a shell without job control (`cmd &`) inherit SIGINT ignored, which exec keeps, and so
    would orchestrate, whose Ctrl-C these tests send.
    """
    import signal

    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return subprocess.Popen(
            [*ORCHESTRATE, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[str] | None = None) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"orchestrate exited ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
