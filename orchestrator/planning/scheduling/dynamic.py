"""Work stealing from an LPT plan: the plan is the starting point, actual speed decides the rest.

`DynamicScheduler` starts every agent on its planned shard but hands it out one unit per
request, so an agent that runs ahead of its predictions takes work that was planned for a
slower one. Stale durations, a slow machine, or an agent that never came up then cost little:
nobody idles while a unit is still queued anywhere.

An agent asks for work when its worker starts the last-but-one test it holds, so with units of
one or two tests it asks again while a unit it was given ahead has not started. Once what it
holds beyond its running unit is predicted at AHEAD_SECONDS or more, it is served only when the
running unit finishes: a unit given further ahead would wait behind the running one while idle
agents had nothing left to take (the 60 s suite cut by --split at 8 agents: one agent ran two
such units 1.3 s after the others had finished). Shorter units are still given further ahead, so
that a worker running many tiny units never waits a round trip for its next one. And once fewer
units are queued than agents are live, nothing is given ahead at all: each of the last units goes
to an agent that is idle, the first to go idle taking the largest, as LPT would. Given ahead, the
last units had waited behind running ones while agents that finished sooner found nothing (the
same suite: agents ran the last 3-8 short tests given ahead 0.5-1.1 s after two others had
finished). The cost is a round trip and a Flush for each of the last N-1 units.

Nor is a unit given ahead to an agent whose running unit is predicted to run for longer than the
queued work would keep the other live agents busy (and longer than AHEAD_SECONDS): the unit
would wait behind it while the others drain the queue and go idle. The session says, with each request,
how long the running unit is predicted to run on (its prediction less the time it has run).
redis-py cut by --split at 4 agents: an agent was given a unit ahead as it began the last test
of its chunk, a 4 s test; the three others drained the queue and stood idle 1.8 s while that
unit waited (1.3 s of a 7.3 s run). The agent is flushed instead and served once its unit ends.

The rules, in the order an agent that wants work is served:

1. requeued units (from an agent that died) wait in one shared queue, longest first: they
   are late already;
2. the agent's own planned queue, longest first (LPT order);
3. otherwise it steals one whole unit: from the agent with the most queued predicted seconds
   (ties: lowest agent id), that agent's largest queued unit. Largest, because the thief is
   idle now and the largest piece evens the loads out most, as LPT does; the victim keeps
   its smaller units. Queues of agents that never came up or were removed are robbed the
   same way, which is how their planned work gets done.

Where every agent shares one machine of `cores` cores, rules 2 and 3 fill its CPU: among the
first FILL_CANDIDATES units of the queue served from that are at least FILL_SHARE as long as its
first, the agent takes the one whose share of a core (UnitEstimate.busy, from the tests'
recorded CPU) brings what the other agents' running units keep busy closest to the cores; the
earliest on a tie, so a suite with no CPU recorded keeps the plan's order, and a plan with test
groups keeps its start order (scheduling/grouped.py). Not near the end of the run: once the
queued work would keep each live agent busy for less than twice the first unit's length, the
first is taken, as LPT would (passed over then, it could start too late and hold up the end).
redis-py cut by --split at 4 agents on 2 cores: its eight 1-second tests that only wait on a
blocking pop were among its longest units, so agents began with them together and the machine
idled, 100-150% busy of 200%.

Each rule only considers units the agent's node can run (TestUnit.resources against the
resources it reported): the rest waits for an agent that can, or, once none is left, is
taken back by the session through `take_unrunnable`.

Test groups (scheduling/_slots.py): each rule also skips a unit whose group has no free slot
now; it waits, and is handed out once a unit of its group finishes. Before rule 2, an agent
that holds a slot of a group takes that group's next queued unit, so a group whose units run
one after another never leaves its slot idle between them. While an alone unit is queued
nothing else is handed out, so the agents drain and it can start.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from orchestrator.model import Assignment, Plan, TestUnit
from orchestrator.planning.scheduling._agents import AgentBook
from orchestrator.planning.scheduling._queue import PlannedQueue
from orchestrator.planning.scheduling._slots import GroupSlots
from orchestrator.planning.scheduling.lpt import PlannedSeconds
from orchestrator.planning.scheduling.protocol import SchedulerStatistics

# Predicted work held beyond the running unit that is enough ahead (see the module docstring):
# far above a round trip to an agent, below most units worth stealing.
AHEAD_SECONDS = 0.25
# Filling the CPU (see the module docstring): how many of a queue's first units are weighed, and
# how much shorter than its first one may be taken before it (LPT's order otherwise).
FILL_CANDIDATES = 8
FILL_SHARE = 0.5


class DynamicScheduler:
    """Per-agent queues from the plan, one unit per request, stealing when a queue runs dry.

    Implements the Scheduler protocol; owned by the session.
    """

    def __init__(self, plan: Plan, cores: int | None = None) -> None:
        """`cores`: the cores of the one machine every agent runs on (None: several machines, or
        unknown; the CPU is then not filled)."""
        self.plan = plan
        self._seconds = PlannedSeconds(plan)
        self._cores = cores
        self._busy = {e.unit.unit_id: e.busy for s in plan.shards for e in s.units}
        self._queued_by_agent: dict[int, PlannedQueue] = {}
        # A plan with test groups lists each shard in start order (scheduling/grouped.py): kept,
        # and not reordered to fill the CPU.
        grouped = any(e.unit.constrained for s in plan.shards for e in s.units)
        if grouped:
            self._cores = None
        for shard in plan.shards:
            ordered = (
                list(shard.units)
                if grouped
                else sorted(shard.units, key=lambda e: (-e.seconds, e.unit.unit_id))
            )
            self._queued_by_agent[shard.agent_id] = PlannedQueue(
                [e.unit for e in ordered], sum(e.seconds for e in ordered)
            )
        self._queued_units = sum(q.count for q in self._queued_by_agent.values())
        # Requeued units: a heap of (-seconds, unit_id, arrival, unit), longest first.
        self._shared_queue: list[tuple[float, str, int, TestUnit]] = []
        self._arrivals = 0
        self._agents = AgentBook()
        self._slots = GroupSlots()
        # Queued alone units: while there are any, nothing else is handed out.
        self._alone_queued = sum(1 for s in plan.shards for e in s.units if e.unit.alone)
        # Only a unit that needs resources can be unrunnable while an agent lives (requeued
        # units come from the plan too): without any, take_unrunnable scans nothing.
        self._needs_resources = any(e.unit.resources for s in plan.shards for e in s.units)
        self._stolen_units = 0
        self._handed_out = 0
        # Agents that were removed (gone for good): their queues are robbed like a live agent's.
        self._gone: set[int] = set()
        # What the running unit of each agent that asked is predicted to run on (request_work).
        self._running_left: dict[int, float] = {}

    def add_agent(self, agent_id: int, resources: Mapping[str, float] | None = None) -> None:
        """An agent is ready and wants its first unit. Called by the session on AgentReady."""
        self._agents.add(agent_id, resources)

    def request_work(self, agent_id: int, running_left: float = 0.0) -> None:
        """The agent is running dry and wants its next unit; `running_left`: the predicted
        seconds its running unit has still to run (0: none, or unknown)."""
        self._agents.request(agent_id)
        self._running_left[agent_id] = running_left

    def schedule(self) -> list[Assignment]:
        """One unit for each agent that wants work, in the order they asked."""
        assignments: list[Assignment] = []
        # Nodes for which an agent holding nothing found nothing: the next such agent will not
        # either (while a group is full, most agents wait; each would scan every queue).
        unserved_nodes: set[tuple[tuple[str, float], ...]] = set()
        for agent_id in self._agents.wanting():
            if not self.has_queued_work():
                break  # nothing is queued anywhere, so nobody else can be served either
            if self._ahead_enough(agent_id) or self._last_units_wait(agent_id) or self._runs_long(agent_id):
                continue  # served once its running unit finishes
            idle = not self._slots.holds_anything(agent_id)
            node = self._agents.node_key(agent_id)
            if idle and node in unserved_nodes:
                continue
            unit = self._next_unit(agent_id)
            if unit is None:
                if idle:
                    unserved_nodes.add(node)
                continue  # nothing queued that its node can run now; another agent's may
            self._agents.served(agent_id)
            self._slots.hold(agent_id, unit)
            self._alone_queued -= unit.alone
            self._handed_out += 1
            assignments.append(Assignment(agent_id, unit))
        return assignments

    def unit_finished(self, agent_id: int, unit_id: str) -> None:
        """The agent finished the unit: its test groups' slots are free."""
        self._slots.finished(agent_id, unit_id)

    def remove_agent(self, agent_id: int) -> None:
        """Forget the agent; its queue stays where it is, to be stolen by the others."""
        self._gone.add(agent_id)
        self._agents.remove(agent_id)
        self._slots.release(agent_id)

    def requeue(self, units: Sequence[TestUnit]) -> None:
        """Put units in the shared queue, served before anything else (empty ones are dropped)."""
        for unit in units:
            if unit.node_ids:
                heapq.heappush(
                    self._shared_queue, (-self._seconds.of(unit), unit.unit_id, self._arrivals, unit)
                )
                self._arrivals += 1
                self._alone_queued += unit.alone

    def take_unrunnable(self) -> list[TestUnit]:
        """Remove and return the queued units no live agent can run (the session ends them)."""
        if self._agents.live and not self._needs_resources:
            return []
        taken = [entry[-1] for entry in self._shared_queue if not self._agents.runnable_anywhere(entry[-1])]
        self._alone_queued -= sum(u.alone for u in taken)
        if taken:
            self._shared_queue = [e for e in self._shared_queue if self._agents.runnable_anywhere(e[-1])]
            heapq.heapify(self._shared_queue)
        for agent_id, queue in self._queued_by_agent.items():
            for unit in [u for u in queue if not self._agents.runnable_anywhere(u)]:
                self._remove_queued(agent_id, unit)
                self._alone_queued -= unit.alone
                taken.append(unit)
        return taken

    def has_queued_work(self) -> bool:
        return bool(self._shared_queue or self._queued_units)

    def wants_work(self, agent_id: int) -> bool:
        """It asked, and nothing queued can be given to it now: it may run dry (Flush)."""
        if not self._agents.wants(agent_id) or self._ahead_enough(agent_id):
            return False
        if self._last_units_wait(agent_id) or self._runs_long(agent_id):
            return True  # nothing until its running unit ends, which the Flush lets happen
        if any(self._may_take(agent_id, entry[-1]) for entry in self._shared_queue):
            return False
        own = [agent_id] if agent_id in self._queued_by_agent else []
        return all(self._first_runnable(agent_id, a) is None for a in [*own, *self._robbable(agent_id)])

    def _ahead_enough(self, agent_id: int) -> bool:
        """It holds units beyond the running one (the first it was given) predicted at
        AHEAD_SECONDS or more: what it asks for next waits until the running unit finishes."""
        ahead = self._slots.held(agent_id)[1:]
        return bool(ahead) and sum(self._seconds.of(u) for u in ahead) >= AHEAD_SECONDS

    def _last_units_wait(self, agent_id: int) -> bool:
        """It asks ahead (it holds a unit) while fewer units are queued than agents are live:
        the last units go to agents as they go idle."""
        queued = self._queued_units + len(self._shared_queue)
        return queued < len(self._agents.live) and self._slots.holds_anything(agent_id)

    def _runs_long(self, agent_id: int) -> bool:
        """It asks ahead while its running unit is predicted to run on for longer than the
        queued work would keep the other live agents busy: a unit given now would wait behind
        it while they stand idle (with no other agent, nobody else could take it)."""
        left = self._running_left.get(agent_id, 0.0)
        others = len(self._agents.live) - 1
        if left <= AHEAD_SECONDS or others < 1 or not self._slots.holds_anything(agent_id):
            return False
        return left > self._queued_seconds() / others

    def _robbable(self, agent_id: int) -> list[int]:
        """The agents whose queues `agent_id` may steal from now. An agent still running a unit
        asks ahead; it leaves alone the queue of an agent that has not come up yet, which may
        any moment and would start that work at once (a failing test planned there would
        otherwise wait behind the thief's unit, and -x with it), and of one waiting to be served
        now that can take its own. Once idle, it takes from anyone: that is how the work of an
        agent that never comes up gets done."""
        asking_ahead = self._slots.holds_anything(agent_id)
        return [
            a
            for a in self._queued_by_agent
            if a != agent_id
            and (
                not asking_ahead or a in self._gone or (a in self._agents.live and not self._takes_its_own(a))
            )
        ]

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            queued_units=self._queued_units + len(self._shared_queue),
            handed_out_units=self._handed_out,
            stolen_units=self._stolen_units,
            agents=len(self._agents.live),
        )

    def _next_unit(self, agent_id: int) -> TestUnit | None:
        """The rules of the module docstring, among the units the agent may take now."""
        for entry in sorted(self._shared_queue):
            if self._may_take(agent_id, entry[-1]):
                self._shared_queue.remove(entry)
                heapq.heapify(self._shared_queue)
                return entry[-1]
        following = self._holding_next(agent_id)
        if following is not None:
            return following
        own = self._filling(agent_id, agent_id)
        if own is not None:
            self._remove_queued(agent_id, own)
            return own
        victims = [a for a in self._robbable(agent_id) if self._first_runnable(agent_id, a) is not None]
        if not victims:
            return None
        victim = max(victims, key=lambda a: (self._queued_by_agent[a].seconds, -a))
        unit = self._filling(agent_id, victim)
        assert unit is not None
        self._stolen_units += 1
        self._remove_queued(victim, unit)
        return unit

    def _holding_next(self, agent_id: int) -> TestUnit | None:
        """The next queued unit of a group whose slot the agent holds (its own queue first), taken
        off its queue: the slot goes on to it with no gap."""
        held = self._slots.held_groups(agent_id)
        if not held:
            return None
        for queue_of in [agent_id, *(a for a in self._queued_by_agent if a != agent_id)]:
            queue = self._queued_by_agent.get(queue_of)
            unit = (
                queue.first(lambda u: bool(held.intersection(u.group_names)) and self._may_take(agent_id, u))
                if queue is not None
                else None
            )
            if unit is not None:
                self._stolen_units += queue_of != agent_id
                self._remove_queued(queue_of, unit)
                return unit
        return None

    def _takes_its_own(self, agent_id: int) -> bool:
        """It waits to be served and has a unit of its own it may take now."""
        return self._agents.wants(agent_id) and self._first_runnable(agent_id, agent_id) is not None

    def _may_take(self, agent_id: int, unit: TestUnit) -> bool:
        """Its node can run the unit, and its groups' limits (and any alone unit) allow it now."""
        if self._alone_queued and not unit.alone:
            return False
        return self._agents.can_run(agent_id, unit) and self._slots.allows(agent_id, unit)

    def _first_runnable(self, agent_id: int, queue_of: int) -> TestUnit | None:
        """The first unit queued for `queue_of` that `agent_id` may take now (queues are in plan
        order: longest first, or start order with test groups)."""
        queue = self._queued_by_agent.get(queue_of)
        return queue.first(lambda u: self._may_take(agent_id, u)) if queue is not None else None

    def _filling(self, agent_id: int, queue_of: int) -> TestUnit | None:
        """The unit of `queue_of`'s queue `agent_id` takes: its first runnable, or, on one
        machine, the one that fills its CPU best (see the module docstring)."""
        first, cores = self._first_runnable(agent_id, queue_of), self._cores
        if first is None or cores is None or self._near_the_end(self._seconds.of(first)):
            return first
        least = FILL_SHARE * self._seconds.of(first)
        candidates = [
            unit
            for unit in self._queued_by_agent[queue_of].leading(
                lambda u: self._may_take(agent_id, u), FILL_CANDIDATES
            )
            if self._seconds.of(unit) >= least
        ]
        if len(candidates) < 2:
            return first
        running = sum(
            self._busy.get(held[0].unit_id, 1.0)
            for other in self._agents.live
            if other != agent_id and (held := self._slots.held(other))
        )
        return min(candidates, key=lambda u: abs(running + self._busy.get(u.unit_id, 1.0) - cores))

    def _near_the_end(self, seconds: float) -> bool:
        """The work queued would keep each live agent busy for less than twice `seconds`: a unit
        that long passed over now could start too late, and hold up the end."""
        return self._queued_seconds() < 2 * seconds * max(1, len(self._agents.live))

    def _queued_seconds(self) -> float:
        """The predicted seconds queued anywhere: planned queues and requeued units."""
        planned = sum(q.seconds for q in self._queued_by_agent.values())
        return planned - sum(entry[0] for entry in self._shared_queue)  # (-seconds, ...) entries

    def _remove_queued(self, agent_id: int, unit: TestUnit) -> None:
        queue = self._queued_by_agent[agent_id]
        queue.remove(unit)
        queue.seconds -= self._seconds.of(unit)
        self._queued_units -= 1
