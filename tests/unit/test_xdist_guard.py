"""Which command lines ask pytest-xdist to distribute (refused together with --agents)."""

from __future__ import annotations

import pytest

from orchestrator.front._xdist import named_on_command_line


@pytest.mark.parametrize(
    "args",
    [
        ["-n", "2"],
        ["-n2"],
        ["-nauto"],
        ["--numprocesses", "4"],
        ["--numprocesses=4"],
        ["--dist", "loadscope"],
        ["--dist=loadgroup"],
        ["--tx", "2*popen"],
        ["-d"],
        ["tests", "--agents=2", "-k", "db", "-n", "1"],
    ],
)
def test_xdist_options_on_the_command_line(args: list[str]) -> None:
    assert named_on_command_line(args)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["tests", "--agents=2", "-k", "db", "--nf"],
        ["--maxprocesses=2", "--max-worker-restart=1"],
        ["--", "-n", "2"],
    ],
)
def test_other_command_lines(args: list[str]) -> None:
    assert not named_on_command_line(args)
