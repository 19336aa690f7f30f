"""Acceptance tests of the `orchestrate` command line: help, usage errors, pytest's exit codes.

Every user mistake must end as one line on stderr, pytest's exit code for it, and no traceback.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest
from conftest import run_orchestrate, run_pytest, write_suite

from orchestrator.front.cli import build_parser

SUITE = {"test_ok.py": "def test_one():\n    pass\n"}


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict) and name in choices:
            sub: argparse.ArgumentParser = choices[name]
            return sub
    raise AssertionError(f"no subcommand {name}")


def test_help_mentions_every_command_and_option(tmp_path: Path) -> None:
    top = run_orchestrate(["--help"], tmp_path)
    assert top.returncode == 0 and not top.stderr
    for command in ("run", "plan", "shard", "merge", "durations", "clean"):
        assert re.search(rf"^\s+{command}\s", top.stdout, re.MULTILINE), command

    run_help = run_orchestrate(["run", "--help"], tmp_path)
    assert run_help.returncode == 0 and not run_help.stderr
    options = _option_strings(_subparser("run"))
    assert {
        "--agents",
        "--address",
        "--backend",
        "--junitxml",
        "--results",
        "--durations",
        "--verbose",
    } <= options
    for option in options:
        assert option in run_help.stdout, option
    assert "PATHS" in run_help.stdout or "paths" in run_help.stdout


def _one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orchestrate: error:"), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--no-such-option"],
        ["run", "--agents", "0"],
        ["run", "--agents", "many"],
        ["nosuchcommand"],
        [],
        ["durations", "show", "--", "-x"],
    ],
)
def test_usage_errors_are_one_line_exit_4(tmp_path: Path, argv: list[str]) -> None:
    write_suite(tmp_path, SUITE)
    _one_line_error(run_orchestrate(argv, tmp_path), 4)


def test_missing_path_is_exit_4_like_pytest(tmp_path: Path) -> None:
    write_suite(tmp_path, SUITE)
    assert run_pytest(["no/such/dir"], tmp_path).returncode == 4
    line = _one_line_error(run_orchestrate(["run", "no/such/dir"], tmp_path), 4)
    assert "no/such/dir" in line


@pytest.mark.ray
def test_bad_pytest_flag_is_exit_4_like_pytest(tmp_path: Path) -> None:
    write_suite(tmp_path, SUITE)
    assert run_pytest(["--no-such-flag"], tmp_path).returncode == 4
    line = _one_line_error(run_orchestrate(["run", "--", "--no-such-flag"], tmp_path), 4)
    assert "--no-such-flag" in line
