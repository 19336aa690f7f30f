"""The AgentBackend protocol: where agents live and how their events reach the session.

Called only by orchestrator/session.py. `start` creates the agents without waiting for them
(each reports AgentReady or AgentFailed when its stack and worker are up); commands are
fire-and-forget; `wait_events` returns whatever events arrived, in completion order, across
all agents. An agent that vanishes (its process or node died) shows up as an AgentFailed event
with a message saying so, followed by AgentStopped: the session never has to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agents.agent import AgentConfig
from orchestrator.events import Event
from orchestrator.model import TestUnit


class AgentBackend(Protocol):
    def start(self, configs: Sequence[AgentConfig]) -> None: ...

    def assign(self, agent_id: int, units: Sequence[TestUnit]) -> None: ...

    def flush(self, agent_id: int) -> None: ...

    def finish(self, agent_id: int) -> None: ...

    def abort(self, agent_id: int) -> None: ...

    def wait_events(self, timeout: float) -> list[Event]:
        """Events that arrived, waiting up to `timeout` seconds for the first one."""
        ...

    def shutdown(self) -> None:
        """Release everything (after every agent stopped, or to give up on those that did not)."""
        ...
