"""The frozen values passed between the stages of a run, and read by the report.

    units.py        outcomes, units of tests, estimates, shards, the plan, assignments
    results.py      attempts, each test's result, each agent's statistics, the run's report
    predictions.py  a plan's figures per agent count, fixed costs, recorded unit seconds, and
                    what `orchestrate bench` measured

collect -> estimate -> plan/schedule -> dispatch -> merge: each stage takes and returns these
values, so every stage can be tested alone, and orchestrator/report/ renders them without
importing any stage.

May import: nothing of ours. Invariant: immutable (frozen dataclasses); mutable state lives in
exactly one owner (the session for outcomes, the scheduler for queues), never in these objects.
"""

from orchestrator.model.predictions import (
    BenchResult,
    BenchRow,
    Measurement,
    Prediction,
    StartupPrediction,
    UnitDuration,
)
from orchestrator.model.results import (
    AgentStatistics,
    Attempt,
    OutputPaths,
    RunReport,
    StopRequest,
    TestResult,
    UnitSpan,
)
from orchestrator.model.units import (
    ALONE_BOUND,
    Assignment,
    Collection,
    GroupBy,
    JunitSettings,
    Outcome,
    Plan,
    Shard,
    TestUnit,
    UnitEstimate,
)

__all__ = [
    "ALONE_BOUND",
    "AgentStatistics",
    "Assignment",
    "Attempt",
    "BenchResult",
    "BenchRow",
    "Collection",
    "GroupBy",
    "JunitSettings",
    "Measurement",
    "Outcome",
    "OutputPaths",
    "Plan",
    "Prediction",
    "RunReport",
    "Shard",
    "StartupPrediction",
    "StopRequest",
    "TestResult",
    "TestUnit",
    "UnitDuration",
    "UnitEstimate",
    "UnitSpan",
]
