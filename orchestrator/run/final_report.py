"""The RunReport at a session's end: the tests left unfinished ended as not run (saying why),
the results checked against the endings received, each agent's statistics, the plan's figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from orchestrator.model import Plan, RunReport, StopRequest
from orchestrator.run.agent_record import AgentRecord
from orchestrator.run.attempts import AttemptLedger
from orchestrator.run.invariant import check_results

__all__ = ["final_report"]

# Why the tests a stop left unrun did not run, in the words of the results file and the summary.
_NOT_RUN_BECAUSE = {
    "interrupt": lambda stop: "interrupted",
    "maxfail": lambda stop: f"{stop.message} (-x/--maxfail)",
    "exit": lambda stop: f"pytest.exit: {stop.message}",
}


def final_report(
    ledger: AttemptLedger,
    endings: Counter[str],
    agents: Sequence[AgentRecord],
    plan: Plan,
    *,
    stop: StopRequest | None,
    messages: Sequence[str],
    reestimates: Mapping[str, float],
    wall_seconds: float,
) -> RunReport:
    """End what is unfinished as not run, check the results (InternalError if a bookkeeping bug
    shows) and make the run's report; `agents` in the order of the run's configs."""
    reason = _NOT_RUN_BECAUSE[stop.kind](stop) if stop else "no agent was left to run it"
    # Tests pytest would not have listed (after -x, pytest.exit, Ctrl-C) are only in our
    # results; those lost because no agent was left are replayed, so the run fails.
    replay_not_run = stop is None
    for node_id in ledger.unfinished():
        endings[node_id] += 1
        ledger.end_not_run(node_id, reason, replay=replay_not_run)
    results = ledger.results()
    check_results(results, ledger.node_ids, endings)
    ends = [a.finished_at for a in agents if a.finished_at is not None]
    run_end = max(ends) if ends else None
    return RunReport(
        results=tuple(results),
        agents=tuple(a.statistics(run_end) for a in agents),
        wall_seconds=wall_seconds,
        exit_code=0,
        plan_fingerprint=plan.fingerprint(),
        interrupted=stop is not None and stop.kind == "interrupt",
        messages=tuple(messages),
        stop=stop,
        plan={
            "agents": float(plan.agents),
            "predicted_makespan": plan.makespan,
            "lower_bound": plan.lower_bound,
            "total_seconds": plan.total_seconds,
            "longest_unit_seconds": plan.longest_unit_seconds,
            **reestimates,
        },
    )
