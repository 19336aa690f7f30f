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
from typing import TYPE_CHECKING

from orchestrator.cli_parser import PROG, build_parser
from orchestrator.errors import (
    EXIT_INTERRUPTED,
    USER_ERRORS,
    UsageError,
)
from orchestrator.model import GroupBy

if TYPE_CHECKING:
    from orchestrator.bench import BenchConfig


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
    from orchestrator import commands

    if args.command in ("run", "plan", "shard"):
        return _pytest_session(_session_args(args, pytest_args))
    if args.command == "bench":
        return commands.bench(_bench_config(args, pytest_args))
    if pytest_args:
        raise UsageError(f"`{args.command}` takes no pytest arguments after --")
    if args.command == "merge":
        return _pytest_session(_merge_args(args))
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


def _pytest_session(args: list[str]) -> int:
    """`orchestrate run/plan/shard/merge` is a pytest session with orchestrate's plugin driving it.

    What `pytest.main` does, but a usage error (pytest's, or ours raised inside the session)
    becomes orchestrate's one line instead of pytest's usage text.
    """
    import pytest
    from _pytest.config import _prepareconfig

    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args = ["-p", "orchestrator.plugin", *args]
    os.environ["PYTEST_VERSION"] = pytest.__version__
    try:
        config = _prepareconfig(args, None)
    except pytest.UsageError as exc:
        raise UsageError(_usage_line(exc)) from None
    except Exception:
        # A conftest that fails to import, and the like: pytest words it best.
        return int(pytest.main(args))
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


def _session_args(args: argparse.Namespace, pytest_args: list[str]) -> list[str]:
    """The pytest command line for `run`, `plan` and `shard`: the user's, then orchestrate's options.

    Always `--option=value`: pytest looks for its rootdir among the arguments it does not know yet
    (plugins' options are not registered then), and a bare path value would count as one.
    """
    for path in args.paths:
        # A path may also be a node id (file.py::Test) or, with --pyargs, a package name.
        file_part = path.split("::", 1)[0]
        if "--pyargs" not in pytest_args and not os.path.exists(file_part):
            raise UsageError(f"file or directory not found: {path}")
    session = [*args.paths, *pytest_args]
    # An int, "auto", or (plan) a tuple of counts.
    counts = args.agents if isinstance(args.agents, tuple) else (args.agents,)
    session.append(f"--agents={counts[0]}")
    session += [f"--orchestrate-durations={args.durations}", f"--orchestrate-group-by={args.group_by}"]
    if args.split:
        session.append("--orchestrate-split")
    stack_file = getattr(args, "stack", None) or _pyproject_setting("stack")
    if args.command == "plan":
        session += [f"--orchestrate-plan={','.join(map(str, counts))}", "-qq", "--no-header"]
        if args.plot:
            session.append(f"--orchestrate-plot={args.plot}")
        if stack_file:
            # Not checked: `plan` starts nothing; the file only names its start-up history.
            session.append(f"--orchestrate-stack={stack_file}")
        return session
    if stack_file:
        # Checked by the coordinator plugin as the session starts (file, then engine unless the
        # stacks run on a cluster's nodes); its usage error comes back here as one line.
        session.append(f"--orchestrate-stack={stack_file}")
    for flag, value in (
        ("--orchestrate-timeout", args.timeout),
        ("--orchestrate-status-interval", getattr(args, "status_interval", None)),
        ("--orchestrate-results", args.results),
        ("--orchestrate-html", getattr(args, "html", None)),
        ("--junitxml", args.junitxml),
    ):
        if value is not None:
            session.append(f"{flag}={value}")
    session += [f"--orchestrate-max-crashes={args.max_crashes}", f"--orchestrate-reruns={args.reruns}"]
    session.append(f"--orchestrate-schedule={args.schedule}")
    if args.verbose:
        session.append("-v")
    if args.command == "shard":
        index, total = _shard_position(args.index, args.total, os.environ)
        return [*session, f"--orchestrate-shard={index}/{total}", "--orchestrate-backend=local"]
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        from orchestrator.backends import check_reachable

        check_reachable(address)
        session.append(f"--orchestrate-address={address}")
    if args.backend:
        session.append(f"--orchestrate-backend={args.backend}")
    session += [f"--orchestrate-exclude={pattern}" for pattern in args.exclude]
    return session


def _merge_args(args: argparse.Namespace) -> list[str]:
    for path in args.artifacts:
        if "," in path:
            raise UsageError(f"a results file name may not contain a comma: {path}")
    session = [f"--orchestrate-merge={','.join(args.artifacts)}", f"--orchestrate-durations={args.durations}"]
    for flag, value in (
        ("--orchestrate-results", args.results),
        ("--orchestrate-html", getattr(args, "html", None)),
        ("--junitxml", args.junitxml),
    ):
        if value is not None:
            session.append(f"{flag}={value}")
    if args.verbose:
        session.append("-v")
    return session


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


# --- the HTML report, `plan --agents LIST`, `report` and `bench` (issue 13) ---


def _bench_config(args: argparse.Namespace, pytest_args: list[str]) -> BenchConfig:
    from orchestrator.bench import METHODS, BenchConfig

    against = tuple(m.strip() for m in args.against.split(",") if m.strip())
    unknown = [m for m in against if m not in METHODS]
    if unknown:
        raise UsageError(
            f"unknown method(s) for --against: {', '.join(unknown)} (choose from {', '.join(METHODS)})"
        )
    from orchestrator.bench import BenchSuite

    return BenchConfig(
        run=BenchSuite(
            paths=tuple(args.paths),
            pytest_args=tuple(pytest_args),
            durations_path=args.durations,
            group_by=GroupBy(args.group_by),
            stack_file=args.stack or _pyproject_setting("stack"),
            split=args.split,
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


__all__ = ["build_parser", "main"]
