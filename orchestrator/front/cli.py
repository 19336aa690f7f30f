"""The `orchestrate` command: argv -> frozen config -> pipeline. The only place reading argv and env.

    collect -> estimate durations -> plan/schedule -> dispatch to agents -> merge report
    -> update duration store

Every user mistake ends as one line on stderr and pytest's exit code for it (4 for usage
errors); a traceback means a bug in orchestrate.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestrator.front.cli_parser import PROG, build_parser
from orchestrator.front.option_table import AUTO, DEFAULT_DURATIONS_PATH
from orchestrator.model import GroupBy
from orchestrator.protocol.errors import (
    EXIT_INTERRUPTED,
    USER_ERRORS,
    UsageError,
)

if TYPE_CHECKING:
    from orchestrator.front.bench import BenchConfig


def _split_pytest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Everything after the first `--` goes to pytest unchanged."""
    argv = list(argv)
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    own, pytest_args = _split_pytest_args(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(own)
        return _dispatch(args, pytest_args)
    except USER_ERRORS as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 3))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace, pytest_args: list[str]) -> int:
    from orchestrator.front import commands

    if args.command in ("run", "plan", "shard"):
        return _pytest_session(*_session(args, pytest_args))
    if args.command == "bench":
        return commands.bench(_bench_config(args, pytest_args))
    if pytest_args:
        raise UsageError(f"`{args.command}` takes no pytest arguments after --")
    if args.command == "merge":
        return _pytest_session(*_merge(args))
    if args.command == "report":
        return commands.report(args.results_file, args.html)
    if args.command == "durations":
        if args.durations_command == "show":
            return commands.durations_show(args.durations, args.n)
        return commands.durations_import(args.files, args.durations)
    if args.command == "up":
        stack_file = args.stack or None
        return commands.up(args.agents or os.cpu_count() or 1, stack_file)
    if args.command == "down":
        return commands.down()
    if args.command == "clean":
        address = args.address or os.environ.get("RAY_ADDRESS") or None
        return commands.clean(
            all_owners=args.all, address=address, stale_after=args.stale_after, cache=args.cache
        )
    raise UsageError(f"unknown command {args.command!r}")


def _pytest_session(args: list[str], given: dict[str, Any]) -> int:
    """`orchestrate run/plan/shard/merge` is a pytest session with orchestrate's plugin driving it.

    What `pytest.main` does, with orchestrate's options handed over as typed values (a plugin
    object, orchestrator/front/options.py), and a usage error (pytest's, or ours raised inside the
    session) as orchestrate's one line instead of pytest's usage text.
    """
    import pytest
    from _pytest.config import _prepareconfig

    from orchestrator.front.options import GivenOptions

    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args = ["-p", "orchestrator.front.plugin", *args]
    os.environ["PYTEST_VERSION"] = pytest.__version__
    given_plugin = GivenOptions(given)
    try:
        config = _prepareconfig(args, [given_plugin])
    except pytest.UsageError as exc:
        raise UsageError(_usage_line(exc)) from None
    except Exception:
        # A conftest that fails to import, and the like: pytest words it best.
        return int(pytest.main(args, [given_plugin]))
    try:
        return int(config.hook.pytest_cmdline_main(config=config))
    except pytest.UsageError as exc:
        raise UsageError(_usage_line(exc)) from None
    finally:
        config._ensure_unconfigure()


def _usage_line(exc: Exception) -> str:
    """The one line of a pytest UsageError that says what is wrong (argparse's "error:" line)."""
    lines = [line.strip() for arg in exc.args for line in str(arg).splitlines() if line.strip()]
    for line in lines:
        if ": error: " in line:
            return "pytest: " + line.split(": error: ", 1)[1]
    return lines[0] if lines else "pytest refused its arguments"


def _given(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The table's options `command` was given, as the values argparse parsed."""
    from orchestrator.front.option_table import OPTIONS

    values = {spec.name: getattr(args, spec.name, None) for spec in OPTIONS if command in spec.commands}
    return {name: value for name, value in values.items() if value not in (None, False)}


def _pytest_own(args: argparse.Namespace) -> list[str]:
    """pytest's own options that `orchestrate` also takes, for pytest's command line."""
    own = ["-v"] if args.verbose else []
    # `--option=value`: pytest looks for its rootdir among the arguments it does not know yet.
    return own + ([f"--junitxml={args.junitxml}"] if args.junitxml else [])


def _session(args: argparse.Namespace, pytest_args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The pytest command line and orchestrate's given options for `run`, `plan` and `shard`."""
    for path in args.paths:
        # A path may also be a node id (file.py::Test) or, with --pyargs, a package name.
        file_part = path.split("::", 1)[0]
        if "--pyargs" not in pytest_args and not os.path.exists(file_part):
            raise UsageError(f"file or directory not found: {path}")
    session = [*args.paths, *pytest_args]
    given = _given(args, args.command)
    if args.command == "plan":
        counts = args.agents
        given |= {"agents": AUTO if counts == AUTO else counts[0], "plan": counts}
        return [*session, "-qq", "--no-header"], given
    given["agents"] = args.agents
    session += _pytest_own(args)
    if args.command == "shard":
        given |= {"shard": _shard_position(args.index, args.total, os.environ), "backend": "local"}
        return session, given
    address = given.get("address") or os.environ.get("RAY_ADDRESS") or None
    if address:
        from orchestrator.run.backends import check_reachable

        check_reachable(address)
    return session, given


def _merge(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    return _pytest_own(args), _given(args, "merge") | {"merge": tuple(args.artifacts)}


# Each CI's parallel-job variables: (index variable, its base, total variable).
_CI_SHARD_VARIABLES = (
    ("CI_NODE_INDEX", 1, "CI_NODE_TOTAL"),  # GitLab CI, `parallel: N`
    ("CIRCLE_NODE_INDEX", 0, "CIRCLE_NODE_TOTAL"),  # CircleCI, `parallelism: N`
    ("BUILDKITE_PARALLEL_JOB", 0, "BUILDKITE_PARALLEL_JOB_COUNT"),  # Buildkite, `parallelism: N`
)


def _shard_position(index: int | None, total: int | None, env: Mapping[str, str]) -> tuple[int, int]:
    """This runner's 1-based index and the runner count: the flags, else the first CI's variables.

    Both values missing from the flags come from one CI, the first whose index variable is set,
    so a stray variable of another CI is never mixed in.
    """
    source = "--index"
    for index_name, base, total_name in _CI_SHARD_VARIABLES:
        if index_name not in env:
            continue
        if index is None:
            index = _env_int(env, index_name) + 1 - base
            source = f"{index_name}={env[index_name]} ({base}-based)"
        if total is None and total_name in env:
            total = _env_int(env, total_name)
        break
    if index is None or total is None:
        raise UsageError(
            "shard needs --index and --total, or a CI's parallel-job variables "
            "(GitLab CI_NODE_INDEX, CircleCI CIRCLE_NODE_INDEX, Buildkite BUILDKITE_PARALLEL_JOB)"
        )
    if total < 1:
        raise UsageError(f"the runner count must be at least 1, got {total}")
    if not 1 <= index <= total:
        raise UsageError(f"runner {index} from {source} is not between 1 and {total}")
    return index, total


def _env_int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise UsageError(f"{name} is not a whole number: {env[name]!r}") from None


# --- the HTML report, `plan --agents LIST`, `report` and `bench` (issue 13) ---


def _bench_config(args: argparse.Namespace, pytest_args: list[str]) -> BenchConfig:
    from orchestrator.front.bench import METHODS, BenchConfig

    against = tuple(m.strip() for m in args.against.split(",") if m.strip())
    unknown = [m for m in against if m not in METHODS]
    if unknown:
        raise UsageError(
            f"unknown method(s) for --against: {', '.join(unknown)} (choose from {', '.join(METHODS)})"
        )
    from orchestrator.front.bench import BenchSuite

    return BenchConfig(
        run=BenchSuite(
            paths=tuple(args.paths),
            pytest_args=tuple(pytest_args),
            durations_path=args.durations or DEFAULT_DURATIONS_PATH,
            group_by=GroupBy(args.group_by or GroupBy.CLASS),
            stack_file=args.stack or _pyproject_stack(),
            split=bool(args.split),
            backend=args.backend,
            cwd=os.getcwd(),
        ),
        agent_counts=args.agents,
        against=against,
        repetitions=args.repetitions,
        timeout=args.timeout,
        results=args.results,
        html=args.html,
    )


def _pyproject_stack() -> str | None:
    """[tool.orchestrate] stack of ./pyproject.toml (`bench` starts no session of its own here)."""
    from pathlib import Path

    import pytest

    from orchestrator.front.options import read_pyproject

    try:
        value = read_pyproject(Path.cwd()).get("stack")
    except pytest.UsageError as exc:
        raise UsageError(str(exc)) from None
    return str(value) if value is not None else None


__all__ = ["build_parser", "main"]
