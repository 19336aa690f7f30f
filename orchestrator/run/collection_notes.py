"""What the session says when an agent's pytest worker collected otherwise than the coordinator:
the run's summary lines and the not-collected tests' error message, in the run's own terms."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DEFAULT_COLLECTION_HINT",
    "FULL_COLLECTION",
    "full_collection_note",
    "not_collected_reason",
    "not_collected_summary",
]

# How the message starts that tells why workers collected the whole suite (agents/collection.py).
FULL_COLLECTION = "workers collected the whole suite at start-up"
DEFAULT_COLLECTION_HINT = "does a parametrization depend on the process: env vars, time, randomness?"
# How many node ids of each side of a collection difference are listed.
_SHOWN_DIFFERENCES = 5


def full_collection_note(fallback: str) -> str:
    """Why the workers collected the whole suite (said once: every agent's worker decides alike)."""
    return (
        f"{FULL_COLLECTION} because {fallback} "
        f"(ORCHESTRATE_COLLECT=lazy collects only each unit's files anyway)"
    )


def not_collected_summary(
    agent_id: int, node_ids: Sequence[str], agent_only: Sequence[str], hint: str
) -> str:
    """Both sides of a difference: what only the coordinator collected, what only the agent did."""
    return (
        f"{len(node_ids)} test(s) were not collected by agent {agent_id}'s pytest worker "
        f"(collection differs from the coordinator's; {hint}):\n"
        + _some("coordinator only", node_ids)
        + "\n"
        + _some(f"agent {agent_id} only", agent_only)
    )


def not_collected_reason(agent_id: int, hint: str) -> str:
    """The error of a test the agent's worker did not collect."""
    return f"not collected on agent {agent_id}: collection differs from the coordinator's ({hint})"


def _some(side: str, node_ids: Sequence[str]) -> str:
    """`side (N):` and the first few node ids, one a line."""
    shown = [f"    {n}" for n in node_ids[:_SHOWN_DIFFERENCES]]
    more = len(node_ids) - len(shown)
    if more:
        shown.append(f"    ... and {more} more")
    return f"  {side} ({len(node_ids)}):" + ("\n" + "\n".join(shown) if shown else " none")
