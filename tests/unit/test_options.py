"""The option table: one declaration per option, read by the CLI, by pytest and from pyproject.toml,
and the walk of a value from the command line to the RunConfig without a text form."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.front import option_table
from orchestrator.front.cli import _given, _session
from orchestrator.front.cli_parser import build_parser
from orchestrator.front.option_table import OPTIONS, RUN
from orchestrator.front.options import build_run_config
from orchestrator.front.worker_options import args_for_workers


def _run_args(*argv: str) -> tuple[list[str], dict[str, object]]:
    return _session(build_parser().parse_args(["run", *argv]), [])


def test_the_cli_hands_typed_values_and_no_orchestrate_option_as_text() -> None:
    pytest_args, given = _run_args("--timeout", "5", "--max-crashes", "3", "--exclude", "a", "--exclude", "b")

    assert given["timeout"] == 5.0 and isinstance(given["timeout"], float)
    assert given["max_crashes"] == 3 and given["exclude"] == ["a", "b"]
    assert not any(arg.startswith("--orchestrate") or arg.startswith("--agents") for arg in pytest_args)


def test_the_walk_of_timeout_from_the_command_line_to_the_run_config(tmp_path: Path) -> None:
    _, given = _run_args("--timeout", "5", "--agents", "3")

    config = build_run_config(given, tmp_path, environ={})

    assert (config.timeout, config.agents) == (5.0, 3)


def test_not_given_means_the_table_default(tmp_path: Path) -> None:
    _, given = _run_args()
    config = build_run_config(given, tmp_path, environ={})
    defaults = {spec.name: spec.default for spec in OPTIONS}

    assert config.agents is None  # auto
    assert config.max_crashes == defaults["max_crashes"] and config.reruns == defaults["reruns"]
    assert config.schedule == defaults["schedule"] and config.durations == defaults["durations"]
    assert config.backend == "local" and config.timeout is None and config.excludes == ()


def test_command_line_wins_over_environment_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.orchestrate]\nstack = "ci/stack.yml"\ntimeout = 7\nreruns = 2\nsplit = true\n'
    )
    config = build_run_config({"reruns": 1}, tmp_path, environ={"RAY_ADDRESS": "head:6379"})

    assert config.stack_file == str(tmp_path / "ci" / "stack.yml")  # relative to the rootdir
    assert (config.timeout, config.reruns, config.split) == (7.0, 1, True)
    assert config.address == "head:6379" and config.backend == "ray"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout = -1", "timeout: must be positive"),
        ('schedule = "random"', "schedule must be one of static, dynamic"),
        ('split = "yes"', "split must be true or false"),
        ("reruns = [1]", "reruns must be a string or a number"),
    ],
)
def test_a_bad_pyproject_value_is_one_usage_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.orchestrate]\n{text}\n")
    with pytest.raises(pytest.UsageError, match=message):
        build_run_config({}, tmp_path, environ={})


def test_every_run_option_of_the_table_is_on_the_cli_and_under_pytest() -> None:
    run_help = build_parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    parser = pytest.Parser()
    from orchestrator.front.options import add_options

    add_options(parser)
    pytest_flags = {name for option in parser.getgroup("orchestrate").options for name in option.names()}

    for spec in OPTIONS:
        assert spec.pytest_flag in pytest_flags
        if RUN in spec.commands:
            assert spec.cli_flag in run_help


def test_the_workers_get_none_of_orchestrates_options() -> None:
    args = ["tests", "--agents=4", "--orchestrate-timeout", "5", "--orchestrate-split", "-k", "db"]
    args += ["--orchestrate-merge=a.json", "--junitxml", "j.xml", "-x"]

    assert args_for_workers(args) == ["tests", "-k", "db", "-x"]


def test_merge_files_with_commas_in_their_names_stay_whole() -> None:
    args = build_parser().parse_args(["merge", "a,1.json", "b.json"])
    from orchestrator.front.cli import _merge

    assert _merge(args)[1]["merge"] == ("a,1.json", "b.json")


def test_only_what_was_given_is_handed_over() -> None:
    args = build_parser().parse_args(["run"])
    assert _given(args, RUN) == {}


def test_the_tables_written_out_choices_are_the_planners_backends_and_reports() -> None:
    """The table spells these out so that a pytest process need not import the planner for them."""
    from orchestrator.model import GroupBy
    from orchestrator.planning.scheduling import SCHEDULER_KINDS
    from orchestrator.report.status import DEFAULT_STATUS_INTERVAL
    from orchestrator.run.backends import BACKEND_KINDS

    assert option_table.SCHEDULES == SCHEDULER_KINDS
    assert tuple(g.value for g in GroupBy) == option_table.GROUP_BYS
    assert option_table.GROUP_BYS[0] == GroupBy.CLASS
    assert option_table.BACKENDS == BACKEND_KINDS
    assert option_table.DEFAULT_STATUS_INTERVAL == DEFAULT_STATUS_INTERVAL


def test_a_pytest_process_that_is_not_a_coordinator_imports_no_planner_and_no_messages() -> None:
    """What the plugin costs a worker (or any plain pytest run): the option table, not the
    model, the planner or the coordinator's messages (about 60 ms a process when it did)."""
    import subprocess
    import sys

    code = (
        "import sys, orchestrator.front.plugin, agents.plugin\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('orchestrator', 'agents')))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = (
        "orchestrator.model",
        "orchestrator.planning",
        "orchestrator.protocol.messages",
        "orchestrator.run",
    )
    assert [m for m in loaded if m.startswith(heavy)] == []
    assert "orchestrator.protocol.worker_hop" in loaded  # what a worker does need
