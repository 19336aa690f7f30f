"""Agents as Ray actors, on a local Ray instance or an existing cluster. The only module importing ray.

Called by the session through the AgentBackend protocol. Each agent is one actor wrapping the
plain agents.runtime.AgentRuntime; the config, commands and events cross as the bytes of
orchestrator.protocol's encoding. Events come back by long polling: one `poll()` call per actor
is always in flight, each returns a batch (so a busy run does not pay one Ray round trip per
event), and the coordinator takes results in completion order with `ray.wait`.

On a cluster (`--address`), the suite's directory travels with Ray: it is the job's runtime_env
working_dir (minus .gitignore'd files and --exclude patterns), every agent runs pytest in its
unpacked copy, and agents ask for one `orchestrate_agent` slot when the cluster offers that
resource (deploy/cluster gives it to worker nodes only, so no agent lands on the head).

Restarts are off on purpose (`max_restarts=0`, `max_task_retries=0`): a restarted actor would
come back without its worker and its stack, so a lost agent is reported instead (as
AgentFailed) and the session reschedules its unfinished units on the other agents.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError

from agents.runtime import AgentRuntime
from agents.worker import start_early_or_later
from orchestrator.protocol.errors import ClusterUnreachable, UsageError
from orchestrator.protocol.messages import (
    Abort,
    AgentConfig,
    AgentFailed,
    AgentStopped,
    Command,
    Event,
    NodeInfo,
    decode,
    decode_config,
    encode,
    encode_config,
)
from orchestrator.run.backends import check_reachable

# How long one poll may wait inside the actor before returning an empty batch.
POLL_SECONDS = 1.0
# Once a poll has an event it gathers more: until none came for BATCH_QUIET_SECONDS, or for at
# most BATCH_SECONDS, or BATCH_EVENTS events.
BATCH_QUIET_SECONDS = 0.01
BATCH_SECONDS = 0.05
BATCH_EVENTS = 500
# Warm agents (`orchestrate up --agents N`) are detached actors found by name in this namespace.
NAMESPACE = "orchestrate"


def warm_agent_name(agent_id: int) -> str:
    return f"orchestrate-agent-{agent_id}"


# The custom resource of nodes that can host agents (a Docker engine for their stacks).
AGENT_RESOURCE = "orchestrate_agent"
# Never shipped to the nodes, whatever .gitignore says.
ALWAYS_EXCLUDED = (".git", ".venv", ".orchestrate")


class _AgentActor:
    """The actor around one run's AgentRuntime: command bytes in, batches of event bytes out.

    A warm actor outlives runs: each run calls `begin` with its own config, which starts a
    fresh AgentRuntime (a fresh pytest worker, a fresh stack) behind a fresh event queue.
    """

    def __init__(self, config: bytes | None = None) -> None:
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._agent: AgentRuntime | None = None
        if config is not None:
            self.begin(config)

    def begin(self, config: bytes) -> None:
        agent_config = decode_config(config)
        if not os.path.isabs(agent_config.cwd):
            # Shipped code: the path is relative to the working_dir Ray unpacked and made this
            # process's cwd, and the worker runs with this node's Python, not the coordinator's.
            agent_config = replace(agent_config, cwd=os.path.abspath(agent_config.cwd), python=sys.executable)
        if self._agent is not None:
            # A previous run's agent that its coordinator never finished (it was killed).
            self._agent.command(Abort())
            self._agent.wait_stopped(60)
        # The previous run's last poll may still wait on the old queue, holding the one poll
        # thread for up to POLL_SECONDS: wake it, so this run's first events are not delayed.
        self._events.put(None)
        events: queue.Queue[Event | None] = queue.Queue()
        self._events = events

        def emit(batch: Sequence[Event]) -> None:
            for event in batch:
                events.put(event)

        # Without a stack the worker starts now, before the node's description is asked of Ray.
        early_worker = start_early_or_later(agent_config)
        self._agent = AgentRuntime(agent_config, emit=emit, node=_node_info(), early_worker=early_worker)
        self._agent.start()

    def ping(self) -> str:
        return socket.gethostname()

    def command(self, data: bytes) -> None:
        if self._agent is None:
            raise RuntimeError("no run has begun on this agent")
        for command in decode(data):
            assert isinstance(command, Command)
            self._agent.command(command)

    @ray.method(concurrency_group="events")
    def poll(self, timeout: float) -> bytes:
        events = self._events
        try:
            first = events.get(timeout=timeout)
        except queue.Empty:
            return encode([])
        batch = [first]
        deadline = time.monotonic() + BATCH_SECONDS
        while batch[-1] is not None and not isinstance(batch[-1], AgentStopped) and len(batch) < BATCH_EVENTS:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(events.get(timeout=min(BATCH_QUIET_SECONDS, remaining)))
            except queue.Empty:
                break
        return encode([e for e in batch if e is not None])


def _node_info() -> NodeInfo:
    """Where this actor runs: Ray's node id and address, the host name, the node's resources."""
    node_id = ray.get_runtime_context().get_node_id()
    resources = next((n.get("Resources") or {} for n in ray.nodes() if n.get("NodeID") == node_id), {})
    return NodeInfo(
        node_id=node_id,
        address=ray.util.get_node_ip_address(),
        hostname=socket.gethostname(),
        # Ray's own bookkeeping (memory, node:<ip>) is no capability a test asks for.
        resources={k: float(v) for k, v in resources.items() if not k.startswith("node:")},
    )


class RayBackend:
    """Starts (or joins) Ray and runs one agent actor per agent."""

    def __init__(
        self,
        address: str | None = None,
        warm: bool = False,
        working_dir: str | None = None,
        excludes: Sequence[str] = (),
    ) -> None:
        self._address = address
        self._warm = warm
        # Only agents on a cluster get the code shipped; local and warm agents share this disk.
        self._working_dir = working_dir if address and not warm else None
        self._excludes = [*ALWAYS_EXCLUDED, *excludes]
        self._agent_options: dict[str, Any] = {}
        self._actors: dict[int, Any] = {}
        # Agents served by warm actors of `orchestrate up`: they outlive this run, never killed.
        self._borrowed: set[int] = set()
        self._polls: dict[Any, int] = {}
        self._stopped: set[int] = set()
        self._connect()

    def _connect(self) -> None:
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "configure_logging": True,
            "namespace": NAMESPACE,
        }
        if self._address:
            check_reachable(self._address)
            # `ray start --head` turns token authentication on; a client only sends its token
            # when told to, so do that whenever this machine has one.
            if "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").exists():
                os.environ["RAY_AUTH_MODE"] = "token"
                # Ray read its config when it was imported: make it read the variable again
                # (what Ray's own `_enable_token_auth` does), or the token is never sent.
                with contextlib.suppress(ImportError, AttributeError):
                    from ray._raylet import Config  # type: ignore[attr-defined]  # not in the stub

                    Config.initialize("")
            if self._working_dir:
                options["runtime_env"] = {"working_dir": self._working_dir, "excludes": self._excludes}
            try:
                ray.init(address=self._address, **options)
            except ValueError as exc:
                if "Package size" in str(exc):
                    # Ray's message goes on with advice; its first sentence says it all.
                    raise UsageError(
                        f"{self._working_dir} is too large to ship to the cluster: "
                        f"{str(exc).split('. ', 1)[0]}; add --exclude PATTERN or .gitignore entries"
                    ) from exc
                raise ClusterUnreachable(f"could not join the Ray cluster at {self._address}: {exc}") from exc
            except (RayError, ConnectionError, RuntimeError, ImportError) as exc:
                # ImportError: a ray:// address without ray[client] installed here.
                raise ClusterUnreachable(f"could not join the Ray cluster at {self._address}: {exc}") from exc
            if ray.cluster_resources().get(AGENT_RESOURCE):
                self._agent_options = {"resources": {AGENT_RESOURCE: 1}}
        else:
            # "local": always a fresh instance of our own, even where `ray start` left one running.
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)

    def start(self, configs: Sequence[AgentConfig]) -> None:
        if self._working_dir:
            # Relative to the shipped copy: the actor resolves it where Ray unpacked the code.
            configs = [replace(c, cwd=os.path.relpath(c.cwd, self._working_dir)) for c in configs]
        placements = self._placements(len(configs))
        for config, placement in zip(configs, placements, strict=True):
            actor = self._warm_actor(config.agent_id) if self._warm else None
            data = encode_config(config)
            if actor is not None:
                actor.begin.remote(data)
                self._borrowed.add(config.agent_id)
            else:
                actor = actor_class(**self._agent_options, **placement).remote(data)
            self._actors[config.agent_id] = actor
        for agent_id, actor in self._actors.items():
            self._polls[actor.poll.remote(POLL_SECONDS)] = agent_id

    def _placements(self, count: int) -> list[dict[str, Any]]:
        """Each agent's placement on a cluster whose nodes offer agent slots: round-robin over
        those nodes (by node id), each pinned softly, so agents spread over every node as far as
        they have slots. Ray's SPREAD alone is best-effort and may put every agent on one node;
        soft affinity still lets Ray place an agent elsewhere when its node has no slot left."""
        if not (self._address and self._agent_options):
            return [{} for _ in range(count)]
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = sorted(
            n["NodeID"]
            for n in ray.nodes()
            if n.get("Alive") and (n.get("Resources") or {}).get(AGENT_RESOURCE)
        )
        if len(nodes) < 2:
            return [{} for _ in range(count)]
        return [
            {"scheduling_strategy": NodeAffinitySchedulingStrategy(nodes[index % len(nodes)], soft=True)}
            for index in range(count)
        ]

    def send(self, agent_id: int, command: Command) -> None:
        if agent_id in self._stopped:
            return  # its AgentStopped was seen: nobody is listening any more
        self._actors[agent_id].command.remote(encode([command]))

    def wait_events(self, timeout: float) -> list[Event]:
        if not self._polls:
            return []
        ready, _ = ray.wait(list(self._polls), num_returns=1, timeout=timeout)
        if not ready:
            return []
        more, _ = ray.wait(list(self._polls), num_returns=len(self._polls), timeout=0)
        events: list[Event] = []
        for ref in {*ready, *more}:
            agent_id = self._polls.pop(ref)
            try:
                batch = [e for e in decode(ray.get(ref)) if isinstance(e, Event)]
            except RayError as exc:
                self._stopped.add(agent_id)
                events.append(AgentFailed(agent_id=agent_id, message=f"agent lost: {first_line(exc)}"))
                events.append(AgentStopped(agent_id=agent_id))
                continue
            events.extend(batch)
            if any(isinstance(e, AgentStopped) for e in batch):
                self._stopped.add(agent_id)
            else:
                self._polls[self._actors[agent_id].poll.remote(POLL_SECONDS)] = agent_id
        return events

    def shutdown(self) -> None:
        for agent_id, actor in self._actors.items():
            if agent_id not in self._stopped:
                actor.command.remote(encode([Abort()]))
        # Give aborting agents time to take their stacks down before their processes go.
        deadline_polls = list(self._polls)
        if deadline_polls:
            ray.wait(deadline_polls, num_returns=len(deadline_polls), timeout=30)
        for agent_id, actor in self._actors.items():
            if agent_id not in self._borrowed:
                with contextlib.suppress(RayError):
                    ray.kill(actor, no_restart=True)
        if not self._address:
            _kill_local_monitor()
        ray.shutdown()

    @staticmethod
    def _warm_actor(agent_id: int) -> Any:
        try:
            return ray.get_actor(warm_agent_name(agent_id), namespace=NAMESPACE)
        except ValueError:
            return None


def _kill_local_monitor() -> None:
    """Kill the autoscaler monitor of the Ray instance this process started, before `ray.shutdown()`.

    `ray.shutdown()` stops its instance's processes one after the other, each with SIGTERM and up
    to a second's wait before SIGKILL. The monitor (the autoscaler's, with nothing to scale on a
    local instance) does not exit on SIGTERM, so it cost a whole second of every local Ray run's
    1.4 s shutdown (Ray 2.60, measured per process type). Killed first, ray.shutdown() finds it
    gone. Ray's node object is private: where it is not found, ray.shutdown() does it all, as before.
    """
    node = getattr(getattr(ray, "_private", None), "worker", None)
    node = getattr(node, "_global_node", None)
    processes = getattr(node, "all_processes", None)
    if not isinstance(processes, dict):
        return
    for info in processes.get("monitor", ()):
        process = getattr(info, "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait(timeout=5)


def actor_class(**options: Any) -> Any:
    options.setdefault("scheduling_strategy", "SPREAD")
    return ray.remote(  # type: ignore[call-overload]  # actor options are untyped
        num_cpus=0,
        max_restarts=0,
        max_task_retries=0,
        # poll() long-polls in a group of its own; commands run one at a time, in the order
        # they were sent (a threaded actor with more threads would reorder assign and flush).
        max_concurrency=1,
        concurrency_groups={"events": 1},
        **options,
    )(_AgentActor)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
