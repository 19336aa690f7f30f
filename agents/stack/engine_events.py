"""The engine's events stream as one stack's WatchSource (agents/stack/watcher.py): its deaths.

Uses the Docker SDK (through agents/stack/_sdk.py) for DockerStack.watch (agents/stack/
docker.py), which opens one per watcher. The stream is filtered by the stack's labels and by
the events that may end a container, so a healthy stack sends nothing; each source has its own
client, which it closes when the watcher releases it. Docker errors become StackFailed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from agents.stack._sdk import docker, engine_client
from agents.stack.containers import LABEL_AGENT, LABEL_RUN, Death, one_line
from agents.stack.engine import API_TIMEOUT
from agents.stack.started import StartedService, check_running
from orchestrator.protocol.errors import StackFailed

__all__ = ["EngineEvents"]

# Container events that may end a service (a `kill` only names the signal of the `die` after it).
_DEATH_EVENTS = ("die", "oom", "kill", "destroy")


class EngineEvents:
    """The WatchSource of one DockerStack: its container events, and its started services'
    words for a death (`started()` gives the stack's StartedService list as it is then)."""

    def __init__(
        self,
        agent_id: str,
        client: docker.DockerClient,
        stream: Any,
        started: Callable[[], Sequence[StartedService]],
    ) -> None:
        self._agent_id = agent_id
        self._client = client
        self._stream = stream
        self._started = started

    @classmethod
    def open(
        cls, run_id: str, agent_id: str, started: Callable[[], Sequence[StartedService]]
    ) -> EngineEvents:
        """Ask the engine for the stack's container events from now on; raises StackFailed."""
        labels = [f"{LABEL_RUN}={run_id}", f"{LABEL_AGENT}={agent_id}"]
        filters = {"type": "container", "label": labels, "event": list(_DEATH_EVENTS)}
        try:
            client = engine_client(API_TIMEOUT)
        except docker.errors.DockerException as exc:
            raise StackFailed(f"agent {agent_id}: no Docker engine answers: {one_line(exc)}") from exc
        try:
            stream = client.events(decode=True, filters=filters)
        except (docker.errors.DockerException, OSError) as exc:
            client.close()
            message = f"agent {agent_id}: cannot watch its stack's containers: {one_line(exc)}"
            raise StackFailed(message) from exc
        return cls(agent_id, client, stream, started)

    def events(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._stream)

    def close(self) -> None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            self._stream.close()

    def dead_already(self) -> str | None:
        try:
            check_running(self._started(), self._client, self._agent_id)
        except StackFailed as exc:
            return str(exc)
        return None

    def describe(self, death: Death) -> str:
        item = next((item for item in self._started() if item.service.name == death.service), None)
        if item is None:
            return f"service '{death.service}': {death.what}"
        return str(item.failure(death.what, self._client))

    def lost(self) -> str:
        return (
            f"agent {self._agent_id}: the Docker engine ended its events stream "
            "(did the engine stop?); the stack is no longer watched"
        )

    def release(self) -> None:
        self.close()
        self._client.close()
