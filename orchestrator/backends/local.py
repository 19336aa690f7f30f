"""Agents in threads of the coordinator process: no Ray, same agents, same real pytest workers.

Used by `orchestrate shard` (a CI runner needs no cluster), by `--backend local`, and by tests
of the session. Each agent still runs its own pytest worker process and its own stack, so
nothing about the agent's behaviour differs from the Ray backend; only the transport does.
Events still cross as msgpack bytes, so the wire format is exercised here too.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence

from agents.agent import Agent, AgentConfig
from orchestrator import events as ev
from orchestrator.model import TestUnit


class LocalBackend:
    """Runs each agent in the coordinator process, its worker as a child process."""

    def __init__(self) -> None:
        self._agents: dict[int, Agent] = {}
        self._queue: queue.Queue[bytes] = queue.Queue()

    def start(self, configs: Sequence[AgentConfig]) -> None:
        for config in configs:
            agent = Agent(config, emit=lambda event: self._queue.put(ev.to_wire([event])))
            self._agents[config.agent_id] = agent
            agent.start()

    def assign(self, agent_id: int, units: Sequence[TestUnit]) -> None:
        self._agents[agent_id].assign(units)

    def flush(self, agent_id: int) -> None:
        self._agents[agent_id].flush()

    def finish(self, agent_id: int) -> None:
        self._agents[agent_id].finish()

    def abort(self, agent_id: int) -> None:
        self._agents[agent_id].abort()

    def wait_events(self, timeout: float) -> list[ev.Event]:
        try:
            batches = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [event for batch in batches for event in ev.from_wire(batch)]

    def shutdown(self) -> None:
        for agent in self._agents.values():
            agent.abort()
        for agent in self._agents.values():
            agent.wait_stopped(timeout=60)
