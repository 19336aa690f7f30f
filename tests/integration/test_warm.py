"""Warm mode: `orchestrate up` keeps a Ray head that `run` joins; `down` ends exactly it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_results, run_orchestrate, write_suite

SUITE = {
    "test_warm.py": """
        import os

        class TestA:
            def test_agent_is_set(self):
                assert os.environ["ORCHESTRATE_AGENT"] in {"0", "1"}

        def test_plain():
            pass
    """
}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.ray
def test_up_run_down(tmp_path: Path) -> None:
    write_suite(tmp_path, SUITE)
    up = run_orchestrate(["up", "--agents", "2"], tmp_path, timeout=120)
    assert up.returncode == 0, up.stderr
    assert "with 2 warm agents (2 new)" in up.stdout
    state = json.loads((tmp_path / ".orchestrate" / "warm.json").read_text())
    try:
        assert state["address"].startswith("127.0.0.1:")
        again = run_orchestrate(["up", "--agents", "2"], tmp_path)
        assert "already running" in again.stdout and "(0 new)" in again.stdout

        for _ in range(2):
            run = run_orchestrate(["run", "--agents", "2", "--results", "r.json"], tmp_path)
            assert run.returncode == 0, run.stdout + run.stderr
            assert f"joining the warm Ray instance at {state['address']}" in run.stdout
            assert load_results(tmp_path / "r.json") == {
                "test_warm.py::TestA::test_agent_is_set": "passed",
                "test_warm.py::test_plain": "passed",
            }
        assert _alive(state["pid"]), "a run must not stop the warm instance"
    finally:
        down = run_orchestrate(["down"], tmp_path)
    assert down.returncode == 0, down.stderr
    assert "stopped the warm Ray instance" in down.stdout
    assert not (tmp_path / ".orchestrate" / "warm.json").exists()
    assert not _alive(state["pid"])  # (a zombie awaiting init counts as ended)
    nothing = run_orchestrate(["down"], tmp_path)
    assert "no warm Ray instance was running" in nothing.stdout
