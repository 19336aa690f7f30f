"""Agents as processes of this machine: no Ray, the same AgentRuntime the Ray actor wraps.

The default when no cluster is named, and what `orchestrate shard` uses (a CI runner needs no
cluster). Each agent is a `python -m agents.host` process of its own session (agents/host.py)
with its own pytest worker and stack; the config, commands and events cross two private pipes
as the bytes of orchestrator.protocol's encoding. An agent process that dies (killed, out of
memory) is reported as a lost agent, AgentFailed then AgentStopped, like a lost Ray actor, and
the coordinator lives on.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence

from orchestrator.protocol import wire
from orchestrator.protocol.messages import (
    Abort,
    AgentConfig,
    AgentFailed,
    AgentStopped,
    Command,
    Event,
    decode,
    encode,
    encode_config,
)

FDS_ENV = "ORCHESTRATE_AGENT_FDS"  # agents/host.py reads it
SHUTDOWN_SECONDS = 60.0


class _AgentProcess:
    """The coordinator's handle on one agent process: its command pipe and its event reader."""

    def __init__(self, config: AgentConfig, events: queue.Queue[list[Event]]) -> None:
        self.agent_id = config.agent_id
        command_read, command_write = os.pipe()
        event_read, event_write = os.pipe()
        env = dict(os.environ)
        env[FDS_ENV] = f"{command_read},{event_write}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agents.host"],
            cwd=config.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(command_read, event_write),
            start_new_session=True,  # a Ctrl-C reaches the coordinator, which aborts the agent
        )
        os.close(command_read)
        os.close(event_write)
        self._writer = wire.FrameWriter(command_write)
        self._lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self.stopped = False
        self.send_bytes(encode_config(config))
        self._stderr_reader = threading.Thread(target=self._keep_stderr, daemon=True)
        self._stderr_reader.start()
        threading.Thread(target=self._read_events, args=(event_read, events), daemon=True).start()

    def send_bytes(self, data: bytes) -> None:
        # The agent may be gone: its loss is reported by the event reader anyway.
        with self._lock, contextlib.suppress(OSError):
            self._writer.send(data)

    def _keep_stderr(self) -> None:
        assert self._proc.stderr is not None
        with self._proc.stderr:  # closed here, at end of file: a suite with -W error would see it leak
            for raw in self._proc.stderr:
                self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _read_events(self, fd: int, events: queue.Queue[list[Event]]) -> None:
        """Relay the agent's event batches, decoded (once, here); at end of file, report a death
        it did not announce."""
        try:
            for data in wire.FrameReader(fd):
                batch = [message for message in decode(data) if isinstance(message, Event)]
                events.put(batch)
                if batch and isinstance(batch[-1], AgentStopped):
                    self.stopped = True
        except (OSError, wire.WireError):
            pass
        finally:
            os.close(fd)
        code = self._proc.wait()
        if not self.stopped:
            self.stopped = True
            lost = AgentFailed(
                agent_id=self.agent_id,
                message=f"agent lost: its process {_describe(code)}",
                logs="\n".join(self._stderr),
            )
            events.put([lost, AgentStopped(agent_id=self.agent_id)])
        with self._lock, contextlib.suppress(OSError):
            self._writer.close()

    def wait(self, timeout: float) -> None:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stderr_reader.join(timeout)


class LocalBackend:
    """Runs each agent in a process of its own on this machine; implements AgentBackend."""

    def __init__(self) -> None:
        self._agents: dict[int, _AgentProcess] = {}
        self._queue: queue.Queue[list[Event]] = queue.Queue()

    def start(self, configs: Sequence[AgentConfig]) -> None:
        for config in configs:
            self._agents[config.agent_id] = _AgentProcess(config, self._queue)

    def send(self, agent_id: int, command: Command) -> None:
        agent = self._agents[agent_id]
        if not agent.stopped:
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
        for agent_id in self._agents:
            self.send(agent_id, Abort())
        for agent in self._agents.values():
            agent.wait(SHUTDOWN_SECONDS)


def _describe(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
