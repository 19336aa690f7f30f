"""WarmDockerStack: a DockerStack kept up between runs, and adopted again by the next run's agent.

Made by agents/stack/warm.py for one slot of `orchestrate up --stack FILE --agents N`. Its
containers and network carry the warm stacks' id as their run label, the slot as their agent
label and the keeper process (agents/stack/keeper.py) as their owner, so `sweep` leaves them
alone while the keeper lives and removes them once it is gone, like any dead run's. Besides the
Stack protocol it can `adopt()` the slot's running containers (no container is created), take
over an earlier snapshot (`attach`), say the cache key it would have now (`current_key`), and
end a run without removing anything (`keep`).
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.stack.containers import LABEL_AGENT, LABEL_RUN, LABEL_SERVICE
from agents.stack.docker import DockerStack
from agents.stack.protocol import StackEndpoints
from agents.stack.setup_state import state_key
from agents.stack.started import StartedService
from orchestrator.protocol.errors import StackFailed

__all__ = ["WarmDockerStack"]


class WarmDockerStack(DockerStack):
    """One warm slot's stack: adopted when it is kept and current, else brought up anew."""

    def current_key(self) -> str:
        """The set-up state cache's key of this stack file, images and setup inputs, now."""
        return state_key(self._connect(), self.spec, self.cwd)

    def adopt(self) -> StackEndpoints:
        """Take over this slot's running containers; their endpoints. Raises StackFailed when a
        service has no running container (the stack is then brought up anew)."""
        client = self._connect()
        filters = {"label": [f"{LABEL_RUN}={self.run_id}", f"{LABEL_AGENT}={self.agent_id}"]}
        kept = {c.labels.get(LABEL_SERVICE): c for c in client.containers.list(all=True, filters=filters)}
        started: list[StartedService] = []
        for name, service in self.spec.services.items():
            container = kept.get(name)
            if container is None:
                raise StackFailed(f"service '{name}': no container of it is kept", service=name)
            if container.status != "running":
                raise StackFailed(f"service '{name}': its kept container is {container.status}", service=name)
            started.append(StartedService(service, container, client, self._clock(), health_check=None))
        self._started = started
        self._endpoints = self._endpoints_with(self._endpoints_of(client, started))
        return self._endpoints

    def attach(self, states: Mapping[str, bytes]) -> None:
        """Reset to the snapshot recorded when this stack was set up (`export()` then)."""
        self._snapshots.attach(self._handle, states)

    def export(self) -> dict[str, bytes]:
        """The snapshot's recorded state per service, for the slot's record."""
        return self._snapshots.export()

    def keep(self) -> None:
        """End this run's use of the stack without removing anything: stop watching it."""
        with self._watch_lock:
            self._down_started = True
            watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.stop()
        if self._client is not None:
            self._client.close()
            self._client = None
