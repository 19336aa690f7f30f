"""Agents in threads of the coordinator process: no Ray, same agents, same real pytest workers.

Used by `orchestrate shard` (a CI runner needs no cluster), by `--backend local`, and by tests
of the session. Each agent still runs its own pytest worker process and its own stack, so
nothing about the agent's behaviour differs from the Ray backend; only the transport does.
Configs, commands and events still cross as msgpack bytes, so the encoding is exercised here too.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence

from agents.runtime import AgentRuntime
from orchestrator.protocol.messages import (
    Abort,
    AgentConfig,
    Command,
    Event,
    decode,
    decode_config,
    encode,
    encode_config,
)


class LocalBackend:
    """Runs each agent in the coordinator process, its worker as a child process."""

    def __init__(self) -> None:
        self._agents: dict[int, AgentRuntime] = {}
        self._queue: queue.Queue[bytes] = queue.Queue()

    def start(self, configs: Sequence[AgentConfig]) -> None:
        for config in configs:
            agent = AgentRuntime(decode_config(encode_config(config)), emit=self._put)
            self._agents[config.agent_id] = agent
            agent.start()

    def _put(self, event: Event) -> None:
        self._queue.put(encode([event]))

    def send(self, agent_id: int, command: Command) -> None:
        for decoded in decode(encode([command])):
            assert isinstance(decoded, Command)
            self._agents[agent_id].command(decoded)

    def wait_events(self, timeout: float) -> list[Event]:
        try:
            batches = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                break
        events: list[Event] = []
        for batch in batches:
            for message in decode(batch):
                assert isinstance(message, Event)
                events.append(message)
        return events

    def shutdown(self) -> None:
        for agent in self._agents.values():
            agent.command(Abort())
        for agent in self._agents.values():
            agent.wait_stopped(timeout=60)
