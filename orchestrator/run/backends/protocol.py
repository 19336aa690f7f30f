"""The AgentBackend protocol: where agents live and how commands and events cross to them.

Driven only by the session's loop (orchestrator/run/loop.py). `start` creates the agents without waiting for them
(each reports AgentReady or AgentFailed when its stack and worker are up); `send` is
fire-and-forget; `wait_events` returns whatever events arrived, in arrival order per agent,
across all agents. Everything crosses as the bytes of orchestrator.protocol's encoding, never
as pickles. An agent that vanishes (its process or node died) shows up as an AgentFailed
event with a message saying so, followed by AgentStopped: the session never has to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrator.protocol.messages import AgentConfig, Command, Event


class AgentBackend(Protocol):
    def start(self, configs: Sequence[AgentConfig]) -> None: ...

    def send(self, agent_id: int, command: Command) -> None: ...

    def wait_events(self, timeout: float) -> list[Event]:
        """Events that arrived, waiting up to `timeout` seconds for the first one."""
        ...

    def shutdown(self) -> None:
        """Release everything (after every agent stopped, or to give up on those that did not)."""
        ...
