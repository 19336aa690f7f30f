"""The ReportSink protocol: where the session hands results as they happen.

Implemented by report/replay.py's PytestReplay (the coordinator's pytest session) and by the
unit tests' list sink.
"""

from __future__ import annotations

from typing import Protocol

from orchestrator.model import Attempt, TestResult

__all__ = ["ReportSink"]


class ReportSink(Protocol):
    """Where the session's results go as they happen: the plugin's pytest replay, or a test's list."""

    def test_started(self, agent_id: int, node_id: str) -> None: ...

    def test_finished(self, result: TestResult, replay: bool) -> None:
        """A test's final result; `replay` is False for tests pytest would not have listed."""
        ...

    def attempt_retried(self, node_id: str, attempt: Attempt) -> None:
        """A failed attempt the session runs again (a rerun or a crash retry)."""
        ...

    def warning(self, agent_id: int, warning: dict) -> None: ...

    def agent_state(self, agent_id: int, text: str) -> None: ...

    def stop_requested(self) -> str:
        """Why pytest wants to stop (-x/--maxfail reached through the replayed reports), else ""."""
        ...
