"""The `orchestrate` command line: its argparse tree. Called by orchestrator/front/cli.py only.

Every user mistake in the arguments is a UsageError (one line, exit 4), never argparse's usage
text on stderr and exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from orchestrator.front.option_table import (
    AUTO,
    BACKENDS,
    BENCH,
    DEFAULT_DURATIONS_PATH,
    MERGE,
    OPTIONS,
    PLAN,
    RUN,
    SHARD,
)
from orchestrator.front.option_types import agent_counts_value, agents_value, positive_int, positive_seconds
from orchestrator.protocol.errors import UsageError

PROG = "orchestrate"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is pytest's exit code 4, as one line."""

    def error(self, message: str) -> NoReturn:
        # main() says "orchestrate: error: " before it; the command to ask for help names the parser.
        raise UsageError(f"{message} (see {self.prog} --help)")


def _add_table_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options of orchestrate's table (orchestrator/front/options.py) that `command` takes.

    Every default is None (not given): the session resolves it, with the environment and
    pyproject.toml, in one place (`build_run_config`).
    """
    for spec in OPTIONS:
        if command not in spec.commands:
            continue
        kwargs: dict[str, Any] = {"dest": spec.name, "default": None, "help": spec.help_text()}
        if spec.flag:
            kwargs["action"] = "store_true"
        else:
            kwargs["metavar"] = spec.metavar
            if spec.repeat:
                kwargs["action"] = "append"
            if spec.parse is not None:
                kwargs["type"] = spec.parse
            if spec.choices:
                kwargs["choices"] = list(spec.choices)
        if spec.env:
            kwargs["help"] += f"; default: {spec.env} if set"
        if spec.pyproject:
            kwargs["help"] += f"; pyproject.toml: [tool.orchestrate] {spec.pyproject}"
        parser.add_argument(spec.cli_flag, **kwargs)


def _add_session_options(parser: argparse.ArgumentParser, command: str, default_agents: int | str) -> None:
    parser.add_argument(
        "paths", nargs="*", help="test paths (as given to pytest); default: pytest's testpaths or ."
    )
    parser.add_argument(
        "--agents",
        type=agents_value,
        default=default_agents,
        metavar="N|auto",
        help="number of agents, each with its own pytest worker and stack; auto: the number with the "
        "shortest predicted wall-clock, start-up included, up to the CPU count "
        f"(default: {default_agents})",
    )
    parser.add_argument("--junitxml", metavar="PATH", help="write one JUnit XML report for the whole run")
    _add_table_options(parser, command)
    parser.add_argument("-v", "--verbose", action="store_true", help="pytest's -v: one line per test")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run a pytest suite in parallel on agents (local processes, or Ray actors on a cluster), "
        "each with its own container stack, planned from past durations; the coordinator is a pytest "
        "session, so the report is pytest's. Arguments after `--` go to pytest unchanged.",
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
    _add_session_options(run, RUN, default_agents=AUTO)

    plan = sub.add_parser("plan", help="print the plan without running anything")
    plan.add_argument(
        "paths", nargs="*", help="test paths (as given to pytest); default: pytest's testpaths or ."
    )
    plan.add_argument(
        "--agents",
        type=agent_counts_value,
        default=AUTO,
        metavar="N|LIST|auto",
        help="number of agents (default: auto, as `run` chooses it); a list (1,2,4,8) or a range (1-16) "
        "prints the predicted makespan, lower bound, efficiency and, with start-up history, the "
        "wall-clock for each",
    )
    _add_table_options(plan, PLAN)

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
    _add_session_options(shard, SHARD, default_agents=1)
    shard.add_argument("--index", type=positive_int, metavar="I", help="this runner's part, 1..N")
    shard.add_argument("--total", type=positive_int, metavar="N", help="number of runners")

    merge = sub.add_parser("merge", help="merge the results artifacts of all CI runners into one report")
    merge.add_argument("artifacts", nargs="+", help="results files written by `orchestrate shard --results`")
    merge.add_argument("--junitxml", metavar="PATH", help="write one JUnit XML report")
    _add_table_options(merge, MERGE)
    merge.add_argument("-v", "--verbose", action="store_true")
    _add_report_and_bench_parsers(sub)

    durations = sub.add_parser("durations", help="inspect or import the duration store")
    dsub = durations.add_subparsers(
        dest="durations_command", required=True, parser_class=_Parser, metavar="ACTION"
    )
    show = dsub.add_parser("show", help="list the slowest units")
    show.add_argument("--durations", default=DEFAULT_DURATIONS_PATH, metavar="PATH")
    show.add_argument("-n", type=positive_int, default=20, metavar="N", help="how many units (default 20)")
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
        type=positive_int,
        default=None,
        metavar="N",
        help="warm agents (with --stack: warm stacks) to keep (default: CPU count)",
    )
    up.add_argument(
        "--stack",
        metavar="FILE",
        help="keep N agents' stacks of FILE up instead (no Ray): each later run here with that stack file "
        "borrows them, reset to their snapshot, and replaces one whose cache key changed",
    )
    sub.add_parser(
        "down", help="remove the warm stacks and stop the warm Ray instance started by `orchestrate up`"
    )

    clean = sub.add_parser(
        "clean",
        help="remove containers and networks left by dead runs",
        description="Remove the stacks of dead runs: here, those of coordinators of this machine that "
        "no longer run; with --address, on every node of a Ray cluster, those whose agent's lease on "
        "the node was not renewed for --stale-after seconds (their coordinator was killed).",
    )
    clean.add_argument("--all", action="store_true", help="also those of runs that are still alive")
    clean.add_argument(
        "--cache",
        action="store_true",
        help="also remove the cached set-up state of stacks (images labelled orchestrate.cache)",
    )
    clean.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="sweep every alive node of this Ray cluster (default: RAY_ADDRESS if set, else only here)",
    )
    clean.add_argument(
        "--stale-after",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="a lease not renewed for this long is a dead run's (default 30)",
    )
    return parser


def _agent_counts(text: str) -> tuple[int, ...]:
    """An argparse type: one agent count, a list (1,2,4,8) or a range (1-16)."""
    counts = agent_counts_value(text)
    if isinstance(counts, str):
        raise argparse.ArgumentTypeError("a count, a list (1,2,4) or a range (1-8), not auto")
    return counts


def _add_report_and_bench_parsers(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report",
        help="make the HTML report of a results file",
        description="Write the HTML report of a run from its results file (`--results`), e.g. from a CI artifact.",
    )
    report.add_argument("results_file", metavar="RESULTS", help="a results file written with --results")
    report.add_argument("--html", metavar="PATH", required=True, help="where to write the page")

    bench = sub.add_parser(
        "bench",
        help="benchmark this suite: orchestrate on N agents against serial pytest and pytest-xdist",
        description="Run the suite with each method and agent count as subprocesses, repetitions interleaved "
        "(each repetition runs every method once, in rotated order), and print the median wall-clock "
        "(min-max) beside the predicted makespan and the lower bound. PYTHONDONTWRITEBYTECODE is unset for "
        "every method alike (with it, every pytest process redoes assertion rewriting). Methods: "
        "`orchestrate run ... --results`, `pytest` (serial), `pytest -n N --dist worksteal` (xdist). "
        "orchestrate runs plan from a fresh copy of the duration store each time, which they do not change.",
    )
    bench.add_argument(
        "paths", nargs="*", help="test paths (as given to pytest); default: pytest's testpaths or ."
    )
    _add_table_options(bench, BENCH)
    bench.add_argument(
        "--agents", type=_agent_counts, default=(2, 4), metavar="LIST", help="agent counts (default: 2,4)"
    )
    bench.add_argument(
        "--against",
        default="serial,xdist",
        metavar="METHODS",
        help="what orchestrate is compared with: serial, xdist, or both (default: serial,xdist); none: ''",
    )
    bench.add_argument(
        "--repetitions", type=positive_int, default=3, metavar="R", help="runs of each method (default: 3)"
    )
    bench.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default="local",
        help="orchestrate's backend (default: local)",
    )
    bench.add_argument("--timeout", type=positive_seconds, default=1800, metavar="SECONDS",
                       help="give up on one run after this long (default: 1800)")  # fmt: skip
    bench.add_argument("--results", metavar="PATH", help="write the measurements as JSON")
    bench.add_argument(
        "--html",
        metavar="PATH",
        help="write a self-contained HTML report (outcomes, timeline per agent, predicted against actual)",
    )
