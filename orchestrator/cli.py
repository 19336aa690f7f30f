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
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from orchestrator.config import DEFAULT_DURATIONS_PATH, DEFAULT_MAX_CRASHES, RunConfig
from orchestrator.errors import (
    EXIT_INTERRUPTED,
    CollectionFailed,
    OrchestrateError,
    UsageError,
)
from orchestrator.model import GroupBy

PROG = "orchestrate"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is pytest's exit code 4, as one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _split_pytest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Everything after the first `--` goes to pytest unchanged."""
    argv = list(argv)
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, []


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _add_selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", help="test paths (as given to pytest); default: pytest's testpaths or ."
    )
    parser.add_argument(
        "--durations",
        default=DEFAULT_DURATIONS_PATH,
        metavar="PATH",
        help=f"duration store (msgpack) read for planning and updated after the run (default: {DEFAULT_DURATIONS_PATH})",
    )
    parser.add_argument(
        "--group-by",
        choices=[g.value for g in GroupBy],
        default=GroupBy.CLASS.value,
        help="unit of scheduling: tests of one class (module-level functions: their module), "
        "or of one module/file, always run together on one agent (default: class)",
    )


def _add_split_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split",
        action="store_true",
        help="cut units longer than total/N into chunks run on several agents, where none of their tests "
        "uses a class- or module-scoped fixture (off by default: tests of a class may depend on each other)",
    )


def _add_run_options(parser: argparse.ArgumentParser, default_agents: int | None) -> None:
    parser.add_argument(
        "--agents",
        type=_positive_int,
        default=default_agents,
        metavar="N",
        help=f"number of agents, each with its own pytest worker and stack (default: {default_agents or 'CPU count'})",
    )
    parser.add_argument("--junitxml", metavar="PATH", help="write one JUnit XML report for the whole run")
    parser.add_argument("--results", metavar="PATH", help="write the machine-readable results (JSON)")
    parser.add_argument(
        "--stack",
        metavar="FILE",
        help="compose-format stack file: every agent brings up its own copy (default: [tool.orchestrate] stack "
        "in pyproject.toml, else none)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="per-test timeout, enforced from outside: the worker is killed and replaced, the test is 'timeout'",
    )
    parser.add_argument(
        "--max-crashes",
        type=_positive_int,
        default=DEFAULT_MAX_CRASHES,
        metavar="N",
        help=f"a test that kills its worker is tried at most N times, then it is 'crashed' (default: {DEFAULT_MAX_CRASHES})",
    )
    parser.add_argument(
        "--reruns",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="rerun a failed test up to N times; one that then passes is reported as passed (flaky)",
    )
    parser.add_argument(
        "--schedule",
        choices=["dynamic", "static"],
        default="dynamic",
        help="dynamic: hand out units as agents free up, stealing queued units (default); static: the plan as is",
    )
    _add_split_option(parser)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also list skipped, xfailed and xpassed tests in the summary",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run a pytest suite in parallel on agents (Ray actors), each with its own container stack, "
        "planned from past durations, merged into one report. Arguments after `--` go to pytest unchanged.",
        epilog="Exit codes are pytest's: 0 all passed, 1 tests failed, 2 interrupted or collection error, "
        "3 internal error, 4 usage error, 5 no tests collected.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="collect, plan, run on agents, merge one report",
        description="Collect the suite, plan it by past durations, run it on N agents, and merge one report. "
        "Everything after `--` is handed to pytest in every agent (-k, -m, -x, --maxfail, -p, --pyargs, ...).",
    )
    _add_selection_options(run)
    _add_run_options(run, default_agents=None)
    run.add_argument(
        "--address",
        metavar="ADDR",
        default=os.environ.get("RAY_ADDRESS") or None,
        help="an existing Ray cluster: host:port of its head (GCS), ray://host:10001 (Ray Client), or 'auto'; "
        "the suite's directory is shipped to its nodes; default: $RAY_ADDRESS, else start a local Ray instance",
    )
    run.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="with --address: keep PATTERN (gitignore syntax) out of the code shipped to the cluster; "
        ".gitignore'd files, .git and .venv are never shipped (repeatable)",
    )
    run.add_argument(
        "--backend",
        choices=["ray", "local"],
        default="ray",
        help="ray: agents are Ray actors (default); local: agents are threads of this process (no Ray)",
    )

    plan = sub.add_parser("plan", help="print the plan without running anything")
    _add_selection_options(plan)
    _add_split_option(plan)
    plan.add_argument(
        "--agents",
        type=_positive_int,
        default=None,
        metavar="N",
        help="number of agents (default: CPU count)",
    )

    shard = sub.add_parser(
        "shard",
        help="run one CI runner's part of the plan (no Ray)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Run this CI runner's part of the duration-based plan, here, without Ray, and write its
artifact with --results for `orchestrate merge`. Every runner must see the same checkout,
paths, pytest arguments and durations file, so that all compute the same plan (its
fingerprint is printed and recorded; merge refuses artifacts of different plans).

--index is 1-based, like pytest-split's --group. Without --index/--total they come from
the CI's parallel-job variables:
  GitLab CI  (parallel: N)     CI_NODE_INDEX (1-based)              / CI_NODE_TOTAL
  CircleCI   (parallelism: N)  CIRCLE_NODE_INDEX (0-based, +1)      / CIRCLE_NODE_TOTAL
  Buildkite  (parallelism: N)  BUILDKITE_PARALLEL_JOB (0-based, +1) / BUILDKITE_PARALLEL_JOB_COUNT
  GitHub Actions has none: use a matrix (index: [1, 2, 3]) and pass
    --index ${{ matrix.index }} --total ${{ strategy.job-total }}
An explicit flag wins over the variables.""",
    )
    _add_selection_options(shard)
    _add_run_options(shard, default_agents=1)
    shard.add_argument("--index", type=_positive_int, metavar="I", help="this runner's part, 1..N")
    shard.add_argument("--total", type=_positive_int, metavar="N", help="number of runners")

    merge = sub.add_parser("merge", help="merge the results artifacts of all CI runners into one report")
    merge.add_argument("artifacts", nargs="+", help="results files written by `orchestrate shard --results`")
    merge.add_argument("--junitxml", metavar="PATH", help="write one JUnit XML report")
    merge.add_argument("--results", metavar="PATH", help="write the merged results (JSON)")
    merge.add_argument(
        "--durations", default=DEFAULT_DURATIONS_PATH, metavar="PATH", help="duration store to update"
    )
    merge.add_argument("-v", "--verbose", action="store_true")

    durations = sub.add_parser("durations", help="inspect or import the duration store")
    dsub = durations.add_subparsers(
        dest="durations_command", required=True, parser_class=_Parser, metavar="ACTION"
    )
    show = dsub.add_parser("show", help="list the slowest units")
    show.add_argument("--durations", default=DEFAULT_DURATIONS_PATH, metavar="PATH")
    show.add_argument("-n", type=_positive_int, default=20, metavar="N", help="how many units (default 20)")
    imp = dsub.add_parser("import", help="import pytest-split .test_durations JSON or JUnit XML files")
    imp.add_argument("files", nargs="+")
    imp.add_argument("--durations", default=DEFAULT_DURATIONS_PATH, metavar="PATH")

    up = sub.add_parser(
        "up",
        help="start a warm local Ray instance and agents that later runs here join (faster start-up)",
        description="Start a local Ray instance on 127.0.0.1 with N agent actors and keep them running; "
        "`orchestrate run` without --address joins them instead of starting its own. Every run still "
        "starts fresh pytest workers and fresh stacks.",
    )
    up.add_argument(
        "--agents",
        type=_positive_int,
        default=None,
        metavar="N",
        help="warm agents to keep (default: CPU count)",
    )
    sub.add_parser("down", help="stop the warm Ray instance started by `orchestrate up`")

    clean = sub.add_parser("clean", help="remove containers and networks left by dead runs")
    clean.add_argument("--all", action="store_true", help="also those of runs that are still alive")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    own, pytest_args = _split_pytest_args(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(own)
        return _dispatch(args, pytest_args)
    except CollectionFailed as exc:
        if exc.output:
            print(exc.output, file=sys.stderr)
        err.print(f"{PROG}: error: {exc}", markup=False)
        return exc.exit_code
    except OrchestrateError as exc:
        err.print(f"{PROG}: error: {exc}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print(f"{PROG}: interrupted", markup=False)
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace, pytest_args: list[str]) -> int:
    from orchestrator import commands

    if args.command == "run":
        return commands.run(_run_config(args, pytest_args))
    if args.command == "plan":
        return commands.plan(_run_config(args, pytest_args))
    if args.command == "shard":
        index, total = _shard_position(args.index, args.total, os.environ)
        return commands.shard(_run_config(args, pytest_args), index, total)
    if pytest_args:
        raise UsageError(f"`{args.command}` takes no pytest arguments after --")
    if args.command == "merge":
        return commands.merge(args.artifacts, args.junitxml, args.results, args.durations, args.verbose)
    if args.command == "durations":
        if args.durations_command == "show":
            return commands.durations_show(args.durations, args.n)
        return commands.durations_import(args.files, args.durations)
    if args.command == "up":
        return commands.up(args.agents or os.cpu_count() or 1)
    if args.command == "down":
        return commands.down()
    if args.command == "clean":
        return commands.clean(all_owners=args.all)
    raise UsageError(f"unknown command {args.command!r}")


def _run_config(args: argparse.Namespace, pytest_args: list[str]) -> RunConfig:
    for path in args.paths:
        # A path may also be a node id (file.py::Test) or, with --pyargs, a package name.
        file_part = path.split("::", 1)[0]
        if "--pyargs" not in pytest_args and not os.path.exists(file_part):
            raise UsageError(f"file or directory not found: {path}")
    stack_file = getattr(args, "stack", None) or _pyproject_setting("stack")
    return RunConfig(
        paths=tuple(args.paths),
        pytest_args=tuple(pytest_args),
        agents=args.agents or os.cpu_count() or 1,
        address=getattr(args, "address", None),
        excludes=tuple(getattr(args, "exclude", ())),
        backend=getattr(args, "backend", "local"),
        durations_path=args.durations,
        junitxml=getattr(args, "junitxml", None),
        results=getattr(args, "results", None),
        group_by=GroupBy(args.group_by),
        schedule=getattr(args, "schedule", "dynamic"),
        stack_file=stack_file,
        timeout=getattr(args, "timeout", None),
        max_crashes=getattr(args, "max_crashes", DEFAULT_MAX_CRASHES),
        reruns=getattr(args, "reruns", 0),
        cwd=os.getcwd(),
        verbose=getattr(args, "verbose", False),
        split=args.split,
    )


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


def _pyproject_setting(key: str) -> str | None:
    """A value from [tool.orchestrate] in ./pyproject.toml, if there is one."""
    import tomllib

    try:
        with open("pyproject.toml", "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"pyproject.toml: {exc}") from exc
    value = data.get("tool", {}).get("orchestrate", {}).get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"pyproject.toml: [tool.orchestrate] {key} must be a string")
    return value


__all__ = ["build_parser", "main"]
