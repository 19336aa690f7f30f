"""An agent in a process of its own: `python -m agents.host`, spoken to over two private pipes.

Started by orchestrator/backends/local.py, one process per agent on this machine (the Ray
backend wraps the same AgentRuntime in an actor instead). The first frame in is the agent's
config, every later one a batch of commands; every frame out is a batch of events, all as the
bytes of orchestrator.protocol's encoding. The process is its own session, so a Ctrl-C at the
terminal reaches only the coordinator, which tells the agent to abort; if the coordinator goes
away (end of file on the command pipe) the agent aborts by itself, taking its stack down.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading

from agents.runtime import AgentRuntime
from orchestrator.protocol import wire
from orchestrator.protocol.messages import Abort, AgentStopped, Command, Event, decode, decode_config, encode

FDS_ENV = "ORCHESTRATE_AGENT_FDS"
# After an abort, how long the stack may take to come down before the process gives up.
STOP_SECONDS = 120.0
# At most this many events in one frame to the coordinator.
MAX_BATCH = 500


def main() -> int:
    command_fd, event_fd = (int(fd) for fd in os.environ.pop(FDS_ENV).split(","))
    frames = iter(wire.FrameReader(command_fd))
    writer = wire.FrameWriter(event_fd)
    outbox: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def send_batches() -> None:
        """Write what the agent emitted, as many events a frame as have queued up meanwhile
        (a busy worker's reports cross in batches, not one write and one wake-up each)."""
        while True:
            batch = [outbox.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(outbox.get_nowait())
                except queue.Empty:
                    break
            # The coordinator may be gone: the command reader sees that and aborts.
            with contextlib.suppress(OSError):
                writer.send(encode(batch))
            if any(isinstance(event, AgentStopped) for event in batch):
                return

    sender = threading.Thread(target=send_batches, name="orchestrate-agent-events", daemon=True)
    sender.start()

    def emit(event: Event) -> None:
        outbox.put(event)

    config = decode_config(next(frames))
    runtime = AgentRuntime(config, emit=emit)
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
    runtime.wait_stopped(None)
    sender.join(STOP_SECONDS)  # AgentStopped, the last event, is written before the process ends
    return 0


if __name__ == "__main__":
    sys.exit(main())
