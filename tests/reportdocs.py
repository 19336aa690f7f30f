"""Results documents for the HTML report's tests, with the keys the coordinator fills in.

Used by tests/unit/test_html.py and the browser test: `make_document` builds a document of the
shape orchestrator/report/results.py writes ("plan", per-agent "timeline" and "units", the
attempts' "started"/"finished", "runner" after a merge), so the renderer can be tested without
running anything. test_html.py also renders a document made from a RunReport by results.py.
"""

from __future__ import annotations

from typing import Any

ODD_NODE_ID = "tests/test_odd.py::test_x[<script>alert(1)</script>&\"']"


def _report(
    node_id: str, when: str, outcome: str, longrepr: Any = None, sections: Any = ()
) -> dict[str, Any]:
    """A pytest TestReport as `pytest_report_to_serializable` writes it (JSON-read: lists)."""
    return {
        "$report_type": "TestReport",
        "nodeid": node_id,
        "location": [node_id.split("::")[0], 1, node_id.split("::")[-1]],
        "keywords": {},
        "outcome": outcome,
        "longrepr": longrepr,
        "when": when,
        "user_properties": [],
        "sections": [list(s) for s in sections],
        "duration": 0.1,
        "start": 0.0,
        "stop": 0.1,
    }


def _test(node_id: str, outcome: str, agent: int, started: float, seconds: float) -> dict[str, Any]:
    attempts: list[dict[str, Any]] = []
    if outcome == "flaky":
        attempts.append(
            {"agent": agent, "outcome": "failed", "duration": seconds, "message": "", "reports": [],
             "started": started, "finished": started + seconds}
        )  # fmt: skip
        outcome = "passed"
    reports = [_report(node_id, "setup", "passed")]
    if outcome == "failed":
        reports.append(
            _report(node_id, "call", "failed", "def test():\n>   assert 1 == 2\nE   assert 1 == 2",
                    [("Captured stdout call", "printed <b>before</b> failing\n")])
        )  # fmt: skip
    elif outcome in ("passed", "error"):
        reports.append(_report(node_id, "call", "passed"))
    if outcome == "error":
        reports.append(_report(node_id, "teardown", "failed", "RuntimeError: teardown exploded"))
    message = "last worker output: Segmentation fault" if outcome in ("crashed", "timeout") else ""
    attempts.append(
        {"agent": agent, "outcome": outcome, "duration": seconds, "message": message, "reports": reports,
         "started": started, "finished": started + seconds}
    )  # fmt: skip
    return {
        "node_id": node_id,
        "outcome": outcome,
        "duration": seconds,
        "agent": agent,
        "flaky": len(attempts) > 1 and outcome == "passed",
        "attempts": attempts,
    }


_WORST = ("failed", "error", "crashed", "timeout", "not-run", "xpassed", "xfailed", "skipped", "passed")
_OUTCOMES = (
    "passed",
    "passed",
    "failed",
    "passed",
    "skipped",
    "flaky",
    "error",
    "crashed",
    "timeout",
    "xfailed",
)


def make_document(
    agents: int = 3, units_per_agent: int = 3, tests_per_unit: int = 4, runners: int = 0
) -> dict[str, Any]:
    """A results document: `agents` agents (per runner, when `runners`), units with timelines, and
    one odd node id with HTML in it. Every outcome occurs; times are plausible and overlap-free."""
    agent_rows: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    counter = 0
    for runner in range(1, runners + 1) if runners else [None]:
        for local in range(agents):
            agent_id = len(agent_rows)
            clock = 1.0 + 0.3 * local
            stack_ready = clock
            worker_ready = clock + 0.7
            clock = worker_ready + 0.1
            units = []
            for u in range(units_per_agent):
                unit_id = f"tests/test_m{agent_id}.py::TestUnit{u}"
                unit_start = clock
                outcomes = []
                for t in range(tests_per_unit):
                    outcome = _OUTCOMES[counter % len(_OUTCOMES)]
                    counter += 1
                    node_id = f"{unit_id}::test_{t}"
                    if agent_id == 0 and u == 0 and t == 0:
                        node_id = ODD_NODE_ID
                    seconds = 0.2 + 0.1 * ((counter * 7) % 5)
                    test = _test(node_id, outcome, agent_id, clock, seconds)
                    tests.append(test)
                    outcomes.append(test["outcome"])
                    clock += seconds
                units.append(
                    {"unit_id": unit_id, "started": unit_start, "finished": clock,
                     "predicted_seconds": round((clock - unit_start) * 0.9, 3), "tests": tests_per_unit,
                     "outcome": min(outcomes, key=_WORST.index)}
                )  # fmt: skip
                clock += 0.05 if u else 0.4  # an idle gap
            busy = sum(u["finished"] - u["started"] for u in units)
            row: dict[str, Any] = {
                "agent_id": agent_id, "host": f"host-{agent_id}", "tests": units_per_agent * tests_per_unit,
                "busy_seconds": busy, "idle_seconds": 0.5, "predicted_seconds": busy * 0.9,
                "wall_seconds": clock - worker_ready, "stack_up_seconds": stack_ready, "stack_down_seconds": 0.4,
                "worker_restarts": 0, "error": "",
                "node": {"node_id": f"ab{agent_id:02d}", "address": f"10.0.0.{agent_id}", "hostname": f"node{agent_id}"},
                "timeline": {"started": 0.0, "stack_ready": stack_ready, "worker_ready": worker_ready,
                             "ready": worker_ready, "finished": clock, "stopped": None},
                "units": units,
            }  # fmt: skip
            if runner is not None:
                row["runner"] = runner
            agent_rows.append(row)
    # As in a real run, every agent stops at the end of the run: its stack's teardown is the last
    # `stack_down_seconds` before "stopped"; an agent that ran out of work first idles until then.
    wall = max(a["timeline"]["finished"] for a in agent_rows) + 0.5
    for row in agent_rows:
        row["timeline"]["stopped"] = wall
    counts: dict[str, int] = {}
    for test in tests:
        counts[test["outcome"]] = counts.get(test["outcome"], 0) + 1
    total = sum(a["busy_seconds"] for a in agent_rows)
    longest = max(u["finished"] - u["started"] for a in agent_rows for u in a["units"])
    return {
        "format": 1,
        "kind": "orchestrate-results",
        "wall_seconds": wall,
        "exit_code": 1,
        "plan_fingerprint": "3f2a000000000000",
        "interrupted": False,
        "messages": [],
        "counts": counts,
        "plan": {
            "agents": len(agent_rows),
            "predicted_makespan": total / len(agent_rows) * 1.05,
            "lower_bound": max(total / len(agent_rows), longest),
            "total_seconds": total,
            "longest_unit_seconds": longest,
        },  # fmt: skip
        "agents": agent_rows,
        "tests": tests,
        "extra": {"merged": [f"runner-{r}.json" for r in range(1, runners + 1)], "runners": runners}
        if runners
        else {},
    }
