"""The values of planning: outcomes, units of tests, estimates, shards, the plan, assignments."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    """The one final outcome every collected test ends with."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    NOT_RUN = "not-run"

    @property
    def is_failure(self) -> bool:
        """True for outcomes that make pytest exit 1."""
        return self in _FAILURES


_FAILURES = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.CRASHED, Outcome.TIMEOUT})


# The key of `Plan.group_bounds` for the alone units (not a group name: those are identifiers).
ALONE_BOUND = "(alone)"


class GroupBy(enum.StrEnum):
    """How tests are grouped into units that always run together on one agent."""

    CLASS = "class"
    MODULE = "module"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class TestUnit:
    """Tests that run together, in collection order, on one agent (a class or a module)."""

    __test__ = False  # not a pytest test class, despite the name

    unit_id: str
    node_ids: tuple[str, ...]
    # Whether the unit may be cut into chunks that run on different agents (no class or
    # module scoped fixtures across the cut); decided at collection time.
    splittable: bool = False
    # What a node must have to run the unit: (resource, amount) pairs, sorted, from its tests'
    # `@pytest.mark.orchestrate(resources={...})` markers (the largest amount of each resource).
    resources: tuple[tuple[str, float], ...] = ()
    # The test groups the unit belongs to, as (name, limit) pairs sorted by name: never more
    # than `limit` slots of a group are held at once across all agents (orchestrator/planning/groups.py).
    groups: tuple[tuple[str, int], ...] = ()
    # Slots of each of its groups the unit holds while it runs (the most any of its tests needs).
    weight: int = 1
    # Runs while nothing else runs on any agent (`orchestrate_alone`, or an `alone` group).
    alone: bool = False
    # The class-, module- or package-scoped fixtures that keep it whole (sorted; empty when it is
    # splittable): what `--split` names when it leaves a long unit uncut.
    kept_whole_by: tuple[str, ...] = ()

    @property
    def constrained(self) -> bool:
        """True when the unit belongs to a group or must run alone."""
        return self.alone or bool(self.groups)

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.groups)

    def subset(self, node_ids: tuple[str, ...]) -> TestUnit:
        """The same unit restricted to `node_ids` (used to reschedule what is left of it)."""
        keep = set(node_ids)
        return dataclasses.replace(self, node_ids=tuple(n for n in self.node_ids if n in keep))

    def retry(self, unit_id: str, node_id: str) -> TestUnit:
        """A unit of its own that runs `node_id` again, with this unit's needs and groups."""
        return dataclasses.replace(self, unit_id=unit_id, node_ids=(node_id,), splittable=False)

    def needs_text(self) -> str:
        """The unit's requirement in words, e.g. 'GPU=1, special=2' (empty when it has none)."""
        return ", ".join(f"{name}={amount:g}" for name, amount in self.resources)

    def fits(self, node_resources: Mapping[str, float]) -> bool:
        """True when a node with `node_resources` (Ray's totals of that node) can run the unit."""
        return all(node_resources.get(name, 0.0) >= amount for name, amount in self.resources)


@dataclass(frozen=True, slots=True)
class JunitSettings:
    """The user's junit_* ini options, read at collection so our XML matches pytest's."""

    suite_name: str = "pytest"
    family: str = "xunit1"
    logging: str = "no"
    duration_report: str = "total"
    log_passing_tests: bool = True


@dataclass(frozen=True, slots=True)
class Collection:
    """What one real pytest collection found, grouped into units."""

    units: tuple[TestUnit, ...]
    rootdir: str
    # Options of the user's pytest configuration the coordinator has to honour itself.
    maxfail: int = 0
    junit: JunitSettings = field(default_factory=lambda: JunitSettings())

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(n for unit in self.units for n in unit.node_ids)


@dataclass(frozen=True, slots=True)
class UnitEstimate:
    """Predicted duration of one unit, how many of its tests had no history, and the share of a
    core it keeps busy as it runs (its tests' recorded CPU over their seconds, at most 1; 1 where
    none is recorded)."""

    unit: TestUnit
    seconds: float
    unseen_tests: int = 0
    busy: float = 1.0


@dataclass(frozen=True, slots=True)
class Shard:
    """The units planned for one agent and their predicted total duration."""

    agent_id: int
    units: tuple[UnitEstimate, ...]
    # Predicted seconds the agent waits, with work queued, for a test group's slot or for an
    # alone unit elsewhere to finish (0 without groups): it finishes at seconds + waits.
    waits: float = 0.0

    @property
    def seconds(self) -> float:
        return sum(u.seconds for u in self.units)

    @property
    def finish(self) -> float:
        return self.seconds + self.waits

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(n for u in self.units for n in u.unit.node_ids)


@dataclass(frozen=True, slots=True)
class Plan:
    """A packing of units into agents, with the figures `orchestrate plan` prints."""

    shards: tuple[Shard, ...]

    @property
    def agents(self) -> int:
        return len(self.shards)

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.shards)

    @property
    def longest_unit_seconds(self) -> float:
        return max((u.seconds for s in self.shards for u in s.units), default=0.0)

    @property
    def makespan(self) -> float:
        return max((s.finish for s in self.shards), default=0.0)

    @property
    def lower_bound(self) -> float:
        """No schedule finishes sooner: max(total/N, longest unit, each group's bound)."""
        if not self.shards:
            return 0.0
        return max(
            self.total_seconds / len(self.shards), self.longest_unit_seconds, *self.group_bounds().values()
        )

    def group_bounds(self) -> dict[str, float]:
        """The least time each test group needs: its slot-seconds over its limit (`alone`: the
        alone units one after another, plus the rest spread over every agent)."""
        load: dict[str, float] = {}
        limits: dict[str, int] = {}
        alone = 0.0
        for shard in self.shards:
            for estimate in shard.units:
                unit = estimate.unit
                if unit.alone:
                    alone += estimate.seconds
                for name, limit in unit.groups:
                    load[name] = load.get(name, 0.0) + estimate.seconds * unit.weight
                    limits[name] = limit
        bounds = {name: seconds / limits[name] for name, seconds in load.items()}
        if alone:
            bounds[ALONE_BOUND] = alone + (self.total_seconds - alone) / len(self.shards)
        return bounds

    def binding_group(self) -> str | None:
        """The group whose bound is the lower bound (ties with total/N included), when one is."""
        bounds = self.group_bounds()
        if not bounds:
            return None
        name = max(bounds, key=lambda n: (bounds[n], n))
        others = max(self.total_seconds / max(1, len(self.shards)), self.longest_unit_seconds)
        return name if bounds[name] >= others - 1e-9 else None

    @property
    def tests(self) -> int:
        return sum(len(u.unit.node_ids) for s in self.shards for u in s.units)

    @property
    def unseen_tests(self) -> int:
        return sum(u.unseen_tests for s in self.shards for u in s.units)

    def fingerprint(self) -> str:
        """A digest of which test goes to which agent; equal on every CI runner or none runs."""
        digest = hashlib.sha256()
        for shard in self.shards:
            digest.update(f"agent {shard.agent_id}\n".encode())
            for estimate in shard.units:
                digest.update(f"unit {estimate.unit.unit_id}\n".encode())
                for node_id in estimate.unit.node_ids:
                    digest.update(node_id.encode() + b"\n")
        return digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Assignment:
    """A scheduler's decision: run `unit` on agent `agent_id`. The session sends it."""

    agent_id: int
    unit: TestUnit
