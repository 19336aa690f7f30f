"""Agents in a process of their own: `python -m agents.host`, spoken to over two private pipes.

Started by orchestrator/run/backends/local.py for the agents with a stack on this machine: one
process for all the agents one start brings up (each agent an AgentRuntime, its driver a thread
here), or one per agent (the Ray backend wraps the same AgentRuntime in an actor instead). The
first frame in is the list of its agents' configs, every later one `[agent id, bytes]`, a batch
of commands for that agent; every frame out is a batch of one agent's events (what it emitted
in one wake-up; events name their agent), all as the bytes of orchestrator.protocol's encoding. The
process is its own session, so a Ctrl-C at the terminal reaches only the coordinator, which
tells the agents to abort; if the coordinator goes away (end of file on the command pipe) every
agent aborts by itself, taking its stack down.
Every worker that can start at once is started as soon as the configs are read, before the
runtime and the Docker SDK are imported (agents/worker.py's `start_early`: without a stack, or on
a borrowed warm stack's recorded endpoints), so pytest's start overlaps this process's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from agents.worker import start_early_or_later
from orchestrator.protocol import wire
from orchestrator.protocol.messages import Abort, AgentConfig, Command, Event, decode, decode_config, encode

if TYPE_CHECKING:
    from agents.runtime import AgentRuntime
    from agents.worker import EarlyWorker

FDS_ENV = "ORCHESTRATE_AGENT_FDS"


def main() -> int:
    command_fd, event_fd = (int(fd) for fd in os.environ.pop(FDS_ENV).split(","))
    frames = iter(wire.FrameReader(command_fd))
    writer = wire.FrameWriter(event_fd)
    writing = threading.Lock()

    def emit(batch: Sequence[Event]) -> None:
        """Write one batch of an agent's events (a runtime hands them one at a time: one write a
        wake-up of its driver thread, or a phase of the stack as it starts); the agents' runtimes
        write from their own threads, one frame at a time."""
        # The coordinator may be gone: the command reader sees that and aborts.
        with writing, contextlib.suppress(OSError):
            writer.send(encode(batch))

    # The first frame: every agent's config; then, for the rest of the run, commands.
    configs = [decode_config(data) for data in next(frames)]
    # Every worker that can start now does, before the runtime is imported (see the docstring).
    early_workers = [start_early_or_later(config) for config in configs]
    runtimes = {
        config.agent_id: _start_agent(config, emit, early)
        for config, early in zip(configs, early_workers, strict=True)
    }

    def read_commands() -> None:
        try:
            for agent_id, data in frames:
                for command in decode(data):
                    if isinstance(command, Command):
                        runtimes[agent_id].command(command)
        except (OSError, wire.WireError, TypeError, ValueError, KeyError):
            pass
        # End of file: the coordinator is gone (or done): every agent aborts, its stack comes down.
        for runtime in runtimes.values():
            runtime.command(Abort())

    threading.Thread(target=read_commands, name="orchestrate-agent-commands", daemon=True).start()
    for runtime in runtimes.values():
        runtime.wait_stopped(None)  # AgentStopped, the last event, is written before the driver ends
    return 0


def _start_agent(
    config: AgentConfig, emit: Callable[[Sequence[Event]], None], early_worker: EarlyWorker | None
) -> AgentRuntime:
    from agents.runtime import AgentRuntime

    runtime = AgentRuntime(config, emit=emit, early_worker=early_worker)
    runtime.start()
    return runtime


if __name__ == "__main__":
    sys.exit(main())
