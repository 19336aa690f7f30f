"""The fixed costs of a run's agents: what they cost before the first test and after the last.

Recorded in the duration store after every run (`StartupHistory.observe`, called through
`DurationStore.record_startup` at the coordinator's sessionfinish) and read by the planner
(`StartupHistory.predict`) to put start-up and teardown into the predicted wall-clock, and by
`--agents auto` (orchestrator/planning/sizing.py) to choose N. Pure: no I/O, no clock.

What is measured, per agent, from the run's AgentStatistics:

- `ready`: seconds from the start of the session to the agent asking for work (ready_at): its
  backend's start (an actor, a thread), its stack up with setup commands and snapshot, its
  pytest worker's start and collection;
- `stack_up` and `worker_start`, the two parts of it the agent times itself (shown, not used
  to predict: `ready` holds them and whatever the backend adds);
- `teardown`: its stack's teardown after the last test (stack_down_seconds);
- `per_test`: what each test cost the agent beyond its own duration, from its first test's
  start to its last test's end (not the wait for the coordinator's collection): (finished_at -
  first start - busy_seconds - reset_seconds) / tests, for agents that ran at least
  MIN_TESTS_FOR_PER_TEST tests. On a suite of fast tests this is most of the time
  (5,000 trivial tests: 0.1 ms of test, about 1 ms around it), and a plan of test durations
  alone predicted 0.3 s for a 4.7 s run; the plan adds it to every test (pipeline.prepare).

The model. The agents of a run start side by side and share the machine: on 2 cores, 24
stacks take several times as long as 2. A run of N agents on a machine (or cluster) of C cores
runs at a load of max(1, N / C), and every cost is taken to grow with it:

    startup(N)  = ready_cost    x max(1, N / C)
    teardown(N) = teardown_cost x max(1, N / C)

Each run's mean over its agents is divided by that run's load before it enters the moving
average (the same alpha as test durations), so one run at any N teaches the cost at every N.
The mean, not the slowest agent: with dynamic scheduling the work is shared by whoever is up,
so N agents ready at times r_i finish W seconds of tests near mean(r_i) + W / N.
Linear in the load, not in waves of C (ceil(N / C)): agents that start together share the
cores, they do not queue for them. It errs on the slow side (the issue's 12 agents on 2 cores
came up in 5 to 12 s, mean about 8.5 s, where 4 agents' 4 s predicts 12 s), which makes
`--agents auto` choose fewer agents rather than more; a fit of a + b x N needs runs at several
N, which a user who always runs `--agents auto` never makes.

History is kept per `startup_key`: the backend (local threads, a fresh Ray, a warm Ray, a Ray
cluster) and the stack file's content (a changed stack is a new cost; no stack is its own key).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.model import AgentStatistics, StartupPrediction

__all__ = [
    "NO_STACK",
    "StartupCosts",
    "StartupHistory",
    "StartupPrediction",
    "load_factor",
    "startup_key",
]

NO_STACK = "no stack"
MIN_TESTS_FOR_PER_TEST = 20
# Weight of the newest run: as for test durations (durations/store.py ALPHA).
_ALPHA = 0.5


def startup_key(backend: str, stack_text: str) -> str:
    """The history key of a run: its backend, and its stack file's content hash (or "no stack")."""
    stack = hashlib.sha256(stack_text.encode()).hexdigest()[:16] if stack_text else NO_STACK
    return f"{backend}/{stack}"


def load_factor(agents: int, capacity: int) -> float:
    """How much slower each agent starts when `agents` share `capacity` cores: max(1, N / C)."""
    return max(1.0, agents / max(1, capacity))


@dataclass(frozen=True, slots=True)
class StartupCosts:
    """One agent's fixed costs at load 1 (seconds), as moving averages over `runs` runs."""

    ready: float
    stack_up: float
    worker_start: float
    teardown: float
    runs: int = 1
    per_test: float = 0.0

    def as_list(self) -> list[float | int]:
        """The store's on-disk form (durations/store.py)."""
        return [self.ready, self.stack_up, self.worker_start, self.teardown, self.runs, self.per_test]

    @classmethod
    def from_list(cls, entry: Sequence[object]) -> StartupCosts:
        """Read `as_list`'s form (or the older one, without `per_test`); ValueError if neither."""
        if len(entry) not in (5, 6):
            raise ValueError(f"malformed start-up entry {list(entry)!r:.100}")
        seconds = [*entry[:4], *entry[5:]]
        runs = entry[4]
        if not all(_valid_seconds(s) for s in seconds):
            raise ValueError(f"malformed start-up entry {list(entry)!r:.100}")
        if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
            raise ValueError(f"malformed start-up entry {list(entry)!r:.100}")
        ready, stack_up, worker_start, teardown, *per_test = (float(s) for s in seconds)  # type: ignore[arg-type]
        return cls(ready, stack_up, worker_start, teardown, runs, per_test[0] if per_test else 0.0)


class StartupHistory:
    """Start-up costs by key; mutable, owned by the DurationStore that loaded it."""

    def __init__(self, costs: dict[str, StartupCosts] | None = None) -> None:
        self._costs: dict[str, StartupCosts] = dict(costs or {})

    def __len__(self) -> int:
        return len(self._costs)

    def items(self) -> Iterable[tuple[str, StartupCosts]]:
        return self._costs.items()

    def get(self, key: str) -> StartupCosts | None:
        return self._costs.get(key)

    def predict(self, key: str, agents: int, capacity: int) -> StartupPrediction | None:
        """startup(N) and teardown(N) for `agents` on `capacity` cores; None without history."""
        costs = self._costs.get(key)
        if costs is None:
            return None
        load = load_factor(agents, capacity)
        return StartupPrediction(agents, costs.ready * load, costs.teardown * load)

    def observe(self, key: str, agents: Sequence[AgentStatistics], capacity: int) -> StartupCosts | None:
        """Fold one run's agents into the history of `key`; return the new costs (None: nothing to learn).

        Only agents that became ready count (one that failed at its stack says nothing about
        how long a stack takes); the load is that of every agent the run started.
        """
        ready = [a for a in agents if a.ready_at is not None and not a.error]
        if not ready:
            return None
        timed = [a for a in ready if a.tests >= MIN_TESTS_FOR_PER_TEST]
        load = load_factor(len(agents), capacity)

        def mean(values: Iterable[float]) -> float:
            numbers = [v for v in values if _valid_seconds(v)]
            return sum(numbers) / len(numbers) / load if numbers else 0.0

        run = StartupCosts(
            ready=mean(a.ready_at or 0.0 for a in ready),
            stack_up=mean(a.stack_up_seconds for a in ready),
            worker_start=mean(a.worker_start_seconds for a in ready),
            teardown=mean(a.stack_down_seconds for a in ready),
            per_test=mean(_per_test(a) for a in timed),
        )
        old = self._costs.get(key)
        if old is not None:
            mean_ready, stack_up, worker_start, teardown, per_test = (
                _ALPHA * new + (1 - _ALPHA) * before
                for new, before in zip(_seconds(run), _seconds(old), strict=True)
            )
            if not timed:
                per_test = old.per_test  # a run of few tests says nothing about it
            run = StartupCosts(mean_ready, stack_up, worker_start, teardown, old.runs + 1, per_test)
        self._costs[key] = run
        return run

    def merge(self, other: StartupHistory) -> None:
        """Take in another history: for a key both know, the one with more runs wins."""
        for key, costs in other._costs.items():
            mine = self._costs.get(key)
            if mine is None or costs.runs > mine.runs:
                self._costs[key] = costs


def _seconds(costs: StartupCosts) -> tuple[float, float, float, float, float]:
    return costs.ready, costs.stack_up, costs.worker_start, costs.teardown, costs.per_test


def _per_test(agent: AgentStatistics) -> float:
    """Seconds each of the agent's tests cost it beyond the test's own duration (not negative)."""
    if not agent.units or agent.finished_at is None or not agent.tests:
        return -1.0  # not valid: left out of the mean
    first = min(span.started for span in agent.units)
    around = agent.finished_at - first - agent.busy_seconds - agent.reset_seconds
    return max(0.0, around) / agent.tests


def _valid_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )
