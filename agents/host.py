"""An agent in a process of its own: `python -m agents.host`, spoken to over two private pipes.

Started by orchestrator/run/backends/local.py, one process per agent on this machine (the Ray
backend wraps the same AgentRuntime in an actor instead). The first frame in is the agent's
config, every later one a batch of commands; every frame out is a batch of events (what the agent emitted in one wake-up), all as the
bytes of orchestrator.protocol's encoding. The process is its own session, so a Ctrl-C at the
terminal reaches only the coordinator, which tells the agent to abort; if the coordinator goes
away (end of file on the command pipe) the agent aborts by itself, taking its stack down.
Without a stack the worker is started as soon as the config is read, before the runtime is
imported (agents/worker.py's `start_early`), so pytest's start overlaps this process's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Sequence

from agents.worker import start_early_or_later
from orchestrator.protocol import wire
from orchestrator.protocol.messages import Abort, Command, Event, decode, decode_config, encode

FDS_ENV = "ORCHESTRATE_AGENT_FDS"


def main() -> int:
    command_fd, event_fd = (int(fd) for fd in os.environ.pop(FDS_ENV).split(","))
    frames = iter(wire.FrameReader(command_fd))
    writer = wire.FrameWriter(event_fd)

    def emit(batch: Sequence[Event]) -> None:
        """Write one batch of the agent's events (the runtime hands them one at a time: one write a
        wake-up of its driver thread, or a phase of the stack as it starts)."""
        # The coordinator may be gone: the command reader sees that and aborts.
        with contextlib.suppress(OSError):
            writer.send(encode(batch))

    config = decode_config(next(frames))
    # Without a stack, the worker starts before the rest of the agent is imported (about 60 ms
    # of this process's start that pytest's own start in the worker now overlaps).
    early_worker = start_early_or_later(config)
    from agents.runtime import AgentRuntime

    runtime = AgentRuntime(config, emit=emit, early_worker=early_worker)
    runtime.start()

    def read_commands() -> None:
        try:
            for data in frames:
                for command in decode(data):
                    if isinstance(command, Command):
                        runtime.command(command)
        except (OSError, wire.WireError):
            pass
        runtime.command(Abort())

    threading.Thread(target=read_commands, name="orchestrate-agent-commands", daemon=True).start()
    runtime.wait_stopped(None)  # AgentStopped, the last event, is written before the driver ends
    return 0


if __name__ == "__main__":
    sys.exit(main())
