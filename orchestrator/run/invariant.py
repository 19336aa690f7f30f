"""The end-of-run invariant: every collected test has exactly one final result, backed by evidence.

Called by the session when it builds the RunReport. The evidence is independent of the results:
the count, per test, of events that ended an attempt, kept as they arrived. A mismatch is an
InternalError (exit 3): a report that does not say what happened is never written silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from orchestrator.model import TestResult
from orchestrator.protocol.errors import InternalError

__all__ = ["check_results"]


def check_results(results: Sequence[TestResult], collected: Sequence[str], endings: Counter[str]) -> None:
    """Raise InternalError unless the results hold each collected test once, backed by evidence.

    `endings` counts, per node id, the events that ended an attempt (a teardown report, a
    crash, a timeout, not collected, not run): each result must have exactly that many
    attempts, and its outcome must be its last attempt's.
    """
    seen = Counter(r.node_id for r in results)
    collected_ids = set(collected)
    twice = [n for n, count in seen.items() if count > 1]
    missing = [n for n in collected if n not in seen]
    extra = [n for n in seen if n not in collected_ids]
    problems = []
    if twice:
        problems.append(f"tests reported more than once: {twice[:5]}")
    if missing:
        problems.append(f"collected tests without a result: {missing[:5]}")
    if extra:
        problems.append(f"results for tests that were not collected: {extra[:5]}")
    for result in results:
        if len(result.attempts) != endings.get(result.node_id, 0):
            problems.append(
                f"{result.node_id}: {len(result.attempts)} attempt(s) recorded, "
                f"{endings.get(result.node_id, 0)} received"
            )
        elif result.final is None or result.final.outcome is not result.outcome:
            problems.append(f"{result.node_id}: outcome {result.outcome} is not its last attempt's")
        if len(problems) > 5:
            break
    if problems:
        raise InternalError("the run's record is inconsistent: " + "; ".join(problems))
