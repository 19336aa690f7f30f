"""The final results as they end, on disk: so the coordinator keeps no pytest report it no longer needs.

Created by the coordinator plugin (orchestrator/front/plugin.py) for a run that writes a results file
or an HTML page, and handed to the Session, which adds every final TestResult right after the
sink replayed it, then keeps only a light copy (`lighten`: a passed attempt's reports are
dropped; those of anything else stay, for the JUnit rerun elements and the HTML details). At
the end, `write_results` and `report_to_document` (report/results.py) take each test's line
from here, in collection order, so the results file says exactly what it said when every
report stayed in memory. At 100,000 tests that is most of the coordinator's memory
(benchmarks/planning.py): three serialised reports per test, about 3.5 KB.

One JSON line per result, in a temporary file that disappears when closed; an index of
node id -> (offset, length) finds it again.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from typing import IO

from orchestrator.model import Outcome, TestResult

__all__ = ["ResultSpool", "lighten"]


class ResultSpool:
    """Final results as JSON lines on disk, read back by node id. Owned by the coordinator plugin."""

    def __init__(self) -> None:
        # Closed by close(), at the end of the session; gone with the process anyway.
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="orchestrate-results-")  # noqa: SIM115
        self._index: dict[str, tuple[int, int]] = {}

    def add(self, result: TestResult) -> None:
        """Keep `result` as its results-file line (a later line for the same test replaces it)."""
        from orchestrator.report.results import result_line

        data = result_line(result).encode("utf-8")
        self._file.seek(0, 2)
        self._index[result.node_id] = (self._file.tell(), len(data))
        self._file.write(data)

    def line(self, node_id: str) -> str | None:
        """The results-file line of `node_id`, or None if it was never added."""
        where = self._index.get(node_id)
        if where is None:
            return None
        self._file.seek(where[0])
        return self._file.read(where[1]).decode("utf-8")

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()


def lighten(result: TestResult) -> TestResult:
    """`result` without the reports of its passed attempts (nothing reads them after the replay)."""
    if not any(a.reports and a.outcome is Outcome.PASSED for a in result.attempts):
        return result
    return replace(
        result,
        attempts=tuple(replace(a, reports=()) if a.outcome is Outcome.PASSED else a for a in result.attempts),
    )
