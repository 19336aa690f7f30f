"""The worker's terminal reporter, quiet per test: the coordinator's pytest reports every test.

A worker's stdout goes to a pipe its agent keeps the last lines of, for a crash's diagnosis;
nobody reads a dot per test there. pytest's TerminalReporter still pays for each: the
`pytest_report_teststatus` hook, a write and a flush (one system call per test, and a wake-up
of the agent reading the pipe) and every report kept in its `stats` for the whole life of a
long-lived worker. `quieten` swaps it for a subclass whose per-test hooks do nothing; all else
(the header, collection errors, INTERNALERROR tracebacks, the session's end) is pytest's own,
so a worker that crashes still explains itself.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

__all__ = ["quieten"]

NAME = "terminalreporter"


# pytest marks TerminalReporter final (for typing only): this subclass overrides nothing but three
# hooks, whose signatures are pytest's hook specifications, and stays one for isinstance checks.
class QuietReporter(TerminalReporter):  # type: ignore[misc]
    """pytest's TerminalReporter without its per-test output and bookkeeping."""

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        pass

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._tests_ran = True

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        pass


def quieten(config: pytest.Config) -> None:
    """Replace the registered terminal reporter (if any, and not already quiet) by a quiet one.

    Called from the worker plugin's pytest_configure, after pytest's terminal plugin made its
    reporter; a plugin that kept a reference to the first one (log_cli's handler) still writes
    through it, to the same stdout.
    """
    manager = config.pluginmanager
    current = manager.get_plugin(NAME)
    if current is None or isinstance(current, QuietReporter) or type(current) is not TerminalReporter:
        return  # no terminal (-p no:terminal) or a plugin's own reporter: left as it is
    manager.unregister(current, NAME)
    manager.register(QuietReporter(config, sys.stdout), NAME)  # as pytest's terminal plugin makes it
