"""What of the coordinator's command line a worker gets: not orchestrate's options, not the
options of reporting plugins that only the coordinator may act on."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.front.option_table import OPTIONS

__all__ = ["args_for_workers"]

# Options of reporting plugins that only the coordinator may act on: a worker given them would
# write its own partial file over the user's. (name, takes a value)
_COORDINATOR_ONLY_OPTIONS = (
    ("--junitxml", True),
    ("--junit-xml", True),
    ("--junitprefix", True),
    ("--junit-prefix", True),
    ("--html", True),
    ("--css", True),
    ("--self-contained-html", False),
    ("--json-report", False),
    ("--json-report-file", True),
    ("--json-report-summary", False),
    ("--json-report-omit", True),
    ("--json-report-indent", True),
    ("--json-report-verbosity", True),
    ("--alluredir", True),
    ("--clean-alluredir", False),
    ("--report-log", True),
    ("--resultlog", True),
    ("--result-log", True),
    ("--lf", False),
    ("--last-failed", False),
    ("--ff", False),
    ("--failed-first", False),
    ("--nf", False),
    ("--new-first", False),
    ("--lfnf", True),
    ("--last-failed-no-failures", True),
    ("--cache-clear", False),
    ("--durations", True),
    ("--durations-min", True),
)


def args_for_workers(args: Sequence[str]) -> list[str]:
    """The coordinator's pytest arguments less orchestrate's own and the reporters' options.

    Workers get the user's paths, selection and plugin options, so they collect what the
    coordinator collected; they never get options that write the run's report files.
    """
    ours = {spec.pytest_flag: not spec.flag for spec in OPTIONS}
    dropped = dict(_COORDINATOR_ONLY_OPTIONS) | ours
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name in dropped:
            skip_next = dropped[name] and not eq
            continue
        kept.append(arg)
    return kept
