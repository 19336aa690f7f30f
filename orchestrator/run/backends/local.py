"""Agents on this machine: no Ray, the same AgentRuntime the Ray actor wraps.

The default when no cluster is named, and what `orchestrate shard` uses (a CI runner needs no
cluster). Every agent has its own pytest worker process; where its runtime lives depends on
whether it has a stack:

- Without a stack, the runtime is a thread of this (the coordinator's) process: its worker is
  started at once from the config, commands are method calls and events arrive as objects,
  never encoded. An agent process would only relay bytes here, and its interpreter's start
  (about 0.1 CPU-s each, 4 of them on 2 cores at `--agents 4`) is what the first test waited
  for (docs/decisions.md, "The hot path, fifth pass"). A timeout or a crash is still seen from
  outside the worker, by the runtime's thread.
- With a stack, the agents one start brings up share a `python -m agents.host` process of its
  own session (agents/host.py), each agent's runtime a thread there: one interpreter's start
  and one import of the Docker SDK for all of them (0.2-0.35 CPU-s each when every agent had a
  process of its own), and the SDK stays out of the coordinator. If the coordinator is killed,
  that process sees its command pipe close and every agent takes its stack's containers down.
  The configs, commands and events cross two private pipes as the bytes of
  orchestrator.protocol's encoding (commands framed with their agent's id; events name theirs).
  A process that dies (killed, out of memory) is reported as the loss of each of its agents,
  AgentFailed then AgentStopped, like a lost Ray actor, and the coordinator lives on. With
  `threads=False` every agent gets a process of its own (tests kill one).
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orchestrator.protocol import wire
from orchestrator.protocol.messages import (
    Abort,
    AgentConfig,
    AgentFailed,
    AgentReady,
    AgentStopped,
    Command,
    Event,
    decode,
    encode,
    encode_config,
)

if TYPE_CHECKING:
    from agents.runtime import AgentRuntime
    from agents.worker import EarlyWorker

FDS_ENV = "ORCHESTRATE_AGENT_FDS"  # agents/host.py reads it
SHUTDOWN_SECONDS = 60.0


class _HostProcess:
    """The coordinator's handle on one agent process (`python -m agents.host`) and the agents
    it runs: its command pipe, its event reader, and which of its agents have stopped."""

    def __init__(self, configs: Sequence[AgentConfig], events: queue.Queue[list[Event]]) -> None:
        self.agent_ids = [config.agent_id for config in configs]
        command_read, command_write = os.pipe()
        event_read, event_write = os.pipe()
        env = dict(os.environ)
        env[FDS_ENV] = f"{command_read},{event_write}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agents.host"],
            cwd=configs[0].cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(command_read, event_write),
            start_new_session=True,  # a Ctrl-C reaches the coordinator, which aborts the agents
        )
        os.close(command_read)
        os.close(event_write)
        self._writer = wire.FrameWriter(command_write)
        self._lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self.stopped: set[int] = set()
        with self._lock, contextlib.suppress(OSError):  # gone at once: the event reader says so
            self._writer.send([encode_config(config) for config in configs])
        self._stderr_reader = threading.Thread(target=self._keep_stderr, daemon=True)
        self._stderr_reader.start()
        # It ends once the process has exited (a blocking waitpid): `wait` joins it.
        self._events_reader = threading.Thread(
            target=self._read_events, args=(event_read, events), daemon=True
        )
        self._events_reader.start()

    def send_bytes(self, agent_id: int, data: bytes) -> None:
        # The process may be gone: its agents' loss is reported by the event reader anyway.
        with self._lock, contextlib.suppress(OSError):
            self._writer.send([agent_id, data])

    def _keep_stderr(self) -> None:
        assert self._proc.stderr is not None
        with self._proc.stderr:  # closed here, at end of file: a suite with -W error would see it leak
            for raw in self._proc.stderr:
                self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _read_events(self, fd: int, events: queue.Queue[list[Event]]) -> None:
        """Relay the agents' event batches, decoded (once, here); at end of file, report the
        deaths they did not announce."""
        try:
            for data in wire.FrameReader(fd):
                batch = [message for message in decode(data) if isinstance(message, Event)]
                events.put(batch)
                if batch and isinstance(batch[-1], AgentStopped):
                    self.stopped.add(batch[-1].agent_id)
        except (OSError, wire.WireError):
            pass
        finally:
            os.close(fd)
        code = self._proc.wait()
        for agent_id in self.agent_ids:
            if agent_id in self.stopped:
                continue
            self.stopped.add(agent_id)
            lost = AgentFailed(
                agent_id=agent_id,
                message=f"agent lost: its process {_describe(code)}",
                logs="\n".join(self._stderr),
            )
            events.put([lost, AgentStopped(agent_id=agent_id)])
        with self._lock, contextlib.suppress(OSError):
            self._writer.close()

    def wait(self, timeout: float) -> None:
        # Joined, not `Popen.wait(timeout)`, which polls with sleeps until the process is gone.
        self._events_reader.join(timeout)
        if self._events_reader.is_alive():
            self._proc.kill()
            self._events_reader.join(timeout)  # its end of file comes with the process's end
        self._stderr_reader.join(timeout)


class _AgentProcess:
    """One agent run by a host process (alone, or beside the other agents of its start)."""

    def __init__(self, agent_id: int, host: _HostProcess) -> None:
        self.agent_id = agent_id
        self.host = host

    @property
    def stopped(self) -> bool:
        return self.agent_id in self.host.stopped

    def send_bytes(self, data: bytes) -> None:
        self.host.send_bytes(self.agent_id, data)

    def wait(self, timeout: float) -> None:
        self.host.wait(timeout)


class _AgentThread:
    """An agent without a stack, run by an AgentRuntime in this process (its driver thread).

    Made before it begins: until `begin`, the commands sent to it wait here, in order.
    """

    def __init__(
        self, config: AgentConfig, events: queue.Queue[list[Event]], when_up: Callable[[], None]
    ) -> None:
        self.config = config
        self.agent_id = config.agent_id
        self.stopped = False
        self._events = events
        self._when_up = when_up
        self._up = False
        self._lock = threading.Lock()
        self._runtime: AgentRuntime | None = None
        self._waiting: list[Command] = []

    def begin(self, early_worker: EarlyWorker | None) -> None:
        # Imported here: a run whose agents all have stacks never loads the runtime in the coordinator.
        from agents.runtime import AgentRuntime

        runtime = AgentRuntime(self.config, emit=self._emit, early_worker=early_worker)
        runtime.start()
        with self._lock:
            self._runtime = runtime
            for command in self._waiting:
                runtime.command(command)
            self._waiting = []

    def _emit(self, batch: Sequence[Event]) -> None:
        """The runtime's batches, as they are: the objects the session reads (AgentStopped last)."""
        if batch and isinstance(batch[-1], AgentStopped):
            self.stopped = True
        self._events.put(list(batch))
        if not self._up and any(isinstance(e, AgentReady | AgentFailed | AgentStopped) for e in batch):
            self._up = True
            self._when_up()

    def send(self, command: Command) -> None:
        with self._lock:
            if self._runtime is None:
                self._waiting.append(command)
            else:
                self._runtime.command(command)

    def wait(self, timeout: float) -> None:
        # The runtime kills its worker as its driver ends; one that does not end is a daemon
        # thread, left behind with the process.
        if self._runtime is not None:
            self._runtime.wait_stopped(timeout)


class LocalBackend:
    """Runs each agent on this machine (in a thread here, or in a process of its own with a
    stack); implements AgentBackend.

    Agents in threads begin at most as many at a time as the machine has CPUs: the next begins
    when one of those is up (ready, or failed). Begun all at once, N workers on fewer cores share
    them and are all ready late together; begun a core's worth at a time, the first are ready
    sooner and run tests while the rest start (the 60 s suite at 8 agents on 2 cores: 0.4 s
    sooner). An agent sent a command before it begins begins at once.
    """

    def __init__(self, threads: bool = True, starting_at_once: int | None = None) -> None:
        """`threads`: agents without a stack run in threads here (False: in processes, as agents
        with a stack do; tests/integration/test_backends.py kills one). `starting_at_once`: how
        many agents in threads begin at a time (default: this machine's CPU count)."""
        self._agents: dict[int, _AgentProcess | _AgentThread] = {}
        self._queue: queue.Queue[list[Event]] = queue.Queue()
        self._threads = threads
        self._starting_at_once = starting_at_once or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._not_begun: collections.deque[_AgentThread] = collections.deque()

    def start(self, configs: Sequence[AgentConfig]) -> None:
        in_threads = [
            config for config in configs if self._threads and not config.stack_text and not config.collector
        ]
        # Imported here: agents with a stack need none of it in the coordinator.
        from agents.worker import start_early_or_later

        # The first agents' workers first, then the runtimes (their import is 10-20 ms here).
        early_workers = {
            config.agent_id: start_early_or_later(config) for config in in_threads[: self._starting_at_once]
        }
        threads = {config.agent_id for config in in_threads}
        in_processes = [config for config in configs if config.agent_id not in threads]
        # Agents with a stack share one process (one interpreter's start and imports, the
        # Docker SDK's included, instead of one each); with `threads` off, one process each.
        groups = [in_processes] if self._threads else [[config] for config in in_processes]
        for group in (g for g in groups if g):
            host = _HostProcess(group, self._queue)
            for config in group:
                self._agents[config.agent_id] = _AgentProcess(config.agent_id, host)
        for config in in_threads:
            agent = _AgentThread(config, self._queue, self._begin_next)
            if config.agent_id not in early_workers:
                with self._lock:
                    self._not_begun.append(agent)
            self._agents[config.agent_id] = agent
        # Begun once every agent is in place: one up at once finds the rest waiting.
        for agent_id, early_worker in early_workers.items():
            thread = self._agents[agent_id]
            assert isinstance(thread, _AgentThread)
            thread.begin(early_worker)

    def _begin_next(self) -> None:
        """An agent is up: the next one waiting begins (called from that agent's thread)."""
        with self._lock:
            agent = self._not_begun.popleft() if self._not_begun else None
        if agent is not None:
            _begin(agent)

    def send(self, agent_id: int, command: Command) -> None:
        agent = self._agents[agent_id]
        if agent.stopped:
            return
        if isinstance(agent, _AgentThread):
            with self._lock:
                begin_now = agent in self._not_begun
                if begin_now:
                    self._not_begun.remove(agent)
            agent.send(command)  # kept until it begins, when it begins now
            if begin_now:
                _begin(agent)
        else:
            agent.send_bytes(encode([command]))

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
        return [event for batch in batches for event in batch]

    def shutdown(self) -> None:
        with self._lock:  # agents that have not begun never will: nothing of theirs to stop
            self._not_begun.clear()
        for agent_id in self._agents:
            self.send(agent_id, Abort())
        for agent in self._agents.values():
            agent.wait(SHUTDOWN_SECONDS)  # a shared process: waited for once, then at once


def _begin(agent: _AgentThread) -> None:
    """Start the agent's worker, then its runtime (a later agent's, begun when one is up)."""
    from agents.worker import start_early_or_later

    agent.begin(start_early_or_later(agent.config))


def _describe(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
