"""The values of predictions: a plan's figures for an agent count, its fixed costs, a unit's
recorded seconds, and what `orchestrate bench` measured (rendered by orchestrator/report/)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StartupPrediction:
    """Predicted fixed costs of a run of `agents` agents: start-up before, teardown after the tests."""

    agents: int
    startup_seconds: float
    teardown_seconds: float

    @property
    def seconds(self) -> float:
        return self.startup_seconds + self.teardown_seconds


@dataclass(frozen=True, slots=True)
class Prediction:
    """The plan's figures for one agent count."""

    agents: int
    makespan: float
    lower_bound: float
    total_seconds: float
    longest_unit_seconds: float
    # Fixed costs for this count; None when there is no start-up history for the run's key.
    fixed: StartupPrediction | None = None
    # The test group whose limit is the lower bound at this count (Plan.binding_group), if any.
    bound_by: str | None = None

    @property
    def startup_seconds(self) -> float:
        return self.fixed.startup_seconds if self.fixed else 0.0

    @property
    def teardown_seconds(self) -> float:
        return self.fixed.teardown_seconds if self.fixed else 0.0

    @property
    def wall_seconds(self) -> float:
        """The predicted wall-clock: start-up, then the plan's makespan, then teardown."""
        return self.startup_seconds + self.makespan + self.teardown_seconds

    @property
    def efficiency(self) -> float:
        """Share of the agents' time spent on tests under the plan: total / (N x makespan)."""
        return self.total_seconds / (self.agents * self.makespan) if self.makespan else 1.0

    @property
    def speedup(self) -> float:
        """How much faster than one agent the plan predicts: total / makespan."""
        return self.total_seconds / self.makespan if self.makespan else 1.0


@dataclass(frozen=True, slots=True)
class UnitDuration:
    """One line of `orchestrate durations show`: a unit's summed history."""

    unit_id: str
    seconds: float
    tests: int


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed run of one method on `agents` (1 for serial)."""

    method: str
    agents: int
    repetition: int
    seconds: float | None  # None: timed out
    exit_code: int | None
    # Why a run failed, from its output: the error most of its tests gave, and pytest's counts.
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BenchRow:
    """The repetitions of one (method, N): median and range, next to the plan's prediction."""

    method: str
    agents: int
    median: float | None
    min: float | None
    max: float | None
    runs: int
    failures: int  # runs that timed out or did not exit 0
    predicted: float | None
    lower_bound: float | None


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Everything `orchestrate bench` found, as written to its JSON and its HTML page."""

    rows: tuple[BenchRow, ...]
    measurements: tuple[Measurement, ...]
    predictions: tuple[Prediction, ...]
    tests: int
    notes: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return any(row.failures for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        """The document of `--results` and the `bench` argument of html.write_html."""
        return {
            "kind": "orchestrate-bench",
            "tests": self.tests,
            "rows": [asdict(row) for row in self.rows],
            "measurements": [asdict(m) for m in self.measurements],
            "predictions": [
                {**asdict(p), "efficiency": p.efficiency, "speedup": p.speedup} for p in self.predictions
            ],
            "notes": list(self.notes),
        }
