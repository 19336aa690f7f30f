"""The `orchestrate` command line: its argparse tree. Called by orchestrator/cli.py only.

Every user mistake in the arguments is a UsageError (one line, exit 4), never argparse's usage
text on stderr and exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from orchestrator.backends import BACKEND_KINDS
from orchestrator.errors import UsageError
from orchestrator.model import GroupBy
from orchestrator.options import AUTO, DEFAULT_DURATIONS_PATH, DEFAULT_MAX_CRASHES
from orchestrator.scheduling import SCHEDULER_KINDS

PROG = "orchestrate"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is pytest's exit code 4, as one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


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


def _agents_or_auto(text: str) -> int | str:
    """An argparse type: a positive number of agents, or "auto"."""
    return AUTO if text.strip().lower() == AUTO else _positive_int(text)


def _add_run_options(parser: argparse.ArgumentParser, default_agents: int | str) -> None:
    parser.add_argument(
        "--agents",
        type=_agents_or_auto,
        default=default_agents,
        metavar="N|auto",
        help="number of agents, each with its own pytest worker and stack; auto: the number with the "
        "shortest predicted wall-clock, start-up included, up to the CPU count "
        f"(default: {default_agents})",
    )
    parser.add_argument("--junitxml", metavar="PATH", help="write one JUnit XML report for the whole run")
    parser.add_argument("--results", metavar="PATH", help="write the machine-readable results (JSON)")
    _add_html_option(parser)
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
        "--status-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a status line (tests done, failures so far, each agent's phase, ETA) every SECONDS "
        "(default 30; 0: none; none with -q)",
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
        choices=list(SCHEDULER_KINDS),
        default="dynamic",
        help="dynamic: hand out units as agents free up, stealing queued units (default); static: the plan as is",
    )
    _add_split_option(parser)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="pytest's -v: one line per test",
    )


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
    _add_selection_options(run)
    _add_run_options(run, default_agents=AUTO)
    run.add_argument(
        "--address",
        metavar="ADDR",
        help="a Ray cluster to run the agents on (host:port, or ray://host:10001); default: RAY_ADDRESS if set",
    )
    run.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="on a cluster: leave files matching PATTERN (gitignore syntax) out of the code Ray ships "
        "to the agents; .gitignore is honoured, .git, .venv and .orchestrate never go",
    )
    run.add_argument(
        "--backend",
        choices=list(BACKEND_KINDS),
        default=None,
        help="local: agents on this machine, no Ray (default without --address); ray: Ray actors "
        "(default with --address, RAY_ADDRESS or a warm instance of `orchestrate up`)",
    )

    plan = sub.add_parser("plan", help="print the plan without running anything")
    _add_selection_options(plan)
    _add_split_option(plan)
    plan.add_argument(
        "--agents",
        type=_agent_counts_or_auto,
        default=AUTO,
        metavar="N|LIST|auto",
        help="number of agents (default: auto, as `run` chooses it); a list (1,2,4,8) or a range (1-16) "
        "prints the predicted makespan, lower bound, efficiency and, with start-up history, the "
        "wall-clock for each",
    )
    plan.add_argument(
        "--stack",
        metavar="FILE",
        help="the stack file runs use: its start-up history predicts the wall-clock "
        "(default: [tool.orchestrate] stack in pyproject.toml)",
    )
    plan.add_argument(
        "--plot", metavar="PATH", help="also draw the predicted makespan against N as an SVG picture"
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
    _add_html_option(merge)
    _add_report_and_bench_parsers(sub)

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
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="a lease not renewed for this long is a dead run's (default 30)",
    )
    return parser


def _add_html_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html",
        metavar="PATH",
        help="write a self-contained HTML report (outcomes, timeline per agent, predicted against actual)",
    )


def _agent_counts_or_auto(text: str) -> tuple[int, ...] | str:
    """An argparse type: "auto", or what `_agent_counts` takes."""
    return AUTO if text.strip().lower() == AUTO else _agent_counts(text)


def _agent_counts(text: str) -> tuple[int, ...]:
    """An argparse type: one agent count, a list (1,2,4,8) or a range (1-16)."""
    from orchestrator.whatif import parse_agent_counts

    try:
        return parse_agent_counts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    _add_selection_options(bench)
    _add_split_option(bench)
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
        "--repetitions", type=_positive_int, default=3, metavar="R", help="runs of each method (default: 3)"
    )
    bench.add_argument(
        "--backend",
        choices=list(BACKEND_KINDS),
        default="local",
        help="orchestrate's backend (default: local)",
    )
    bench.add_argument("--stack", metavar="FILE", help="stack file for orchestrate's agents")
    bench.add_argument("--timeout", type=_positive_float, default=1800, metavar="SECONDS",
                       help="give up on one run after this long (default: 1800)")  # fmt: skip
    bench.add_argument("--results", metavar="PATH", help="write the measurements as JSON")
    _add_html_option(bench)
