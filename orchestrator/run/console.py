"""What the coordinator says to the user: its lines, and the status display while a run runs.

A line goes to pytest's terminal (below its output, as a plugin's would) or to stderr for a
warning; a coordinator made before pytest configured itself (collection_stack.py) holds its
lines until pytest no longer captures. While the agents run, the status shows as the live area
in a terminal (report/live.py) or as status lines in CI logs (report/status.py).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pytest

from orchestrator.report.status import StatusDisplay

__all__ = ["Console"]


class Console:
    """The coordinator's lines for the user, through pytest's terminal, and its status display."""

    def __init__(self, config: pytest.Config, early: bool = False) -> None:
        self.config = config
        # Lines held while pytest captures output (see `say`); None: said at once.
        self._early_output: list[tuple[str, bool]] | None = [] if early else None

    def print(self, text: str) -> None:
        """A line in pytest's terminal."""
        self.say(text, False)

    def say(self, text: str, to_stderr: bool) -> None:
        """A line for the user; held while pytest captures this process's output (a coordinator
        made from pytest_load_initial_conftests), until `flush_early_output`."""
        if self._early_output is not None:
            self._early_output.append((text, to_stderr))
            return
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        if to_stderr:
            print(text, file=sys.stderr)
        elif terminal is not None:
            terminal.write_line(text)
        else:
            print(text)

    def flush_early_output(self) -> None:
        """Say what was held: pytest no longer captures (pytest_configure)."""
        held, self._early_output = self._early_output or [], None
        for text, to_stderr in held:
            self.say(text, to_stderr)

    def status_display(self, live: str, status_interval: float) -> StatusDisplay | None:
        """The live area in a terminal (--live), else the CI lines (--status-interval, 0: only
        the notices of late services), or none.

        -q (and quieter) turns both off unless the live area is asked for by name, as it quiets
        pytest's own progress; with the live area on, the periodic lines are off.
        """
        from orchestrator.report.status import StatusLines

        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        writer = getattr(terminal, "_tw", None)
        quiet = self.config.option.verbose < 0
        if writer is not None and (live == "on" or (live == "auto" and not quiet and _is_terminal(writer))):
            from orchestrator.report.live import LiveArea

            return LiveArea(writer, time.monotonic())
        if not quiet:
            return StatusLines(self._print_status, status_interval, time.monotonic())
        return None

    def _print_status(self, text: str) -> None:
        """A status line on a line of its own, after the progress dots written so far."""
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        writer = getattr(terminal, "_tw", None)
        if writer is not None and writer.width_of_current_line:
            writer.line()  # the dots so far stay on their line; pytest's go on below
        self.print(text)


def _is_terminal(writer: Any) -> bool:
    """Whether pytest's terminal writer writes to a terminal that takes cursor movements."""
    isatty = getattr(getattr(writer, "_file", None), "isatty", None)
    return bool(isatty is not None and isatty()) and os.environ.get("TERM") != "dumb"
