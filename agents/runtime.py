"""The agent's I/O around its AgentMachine: one driver thread, the stack, the worker's pipes.

A backend (orchestrator/run/backends/local.py's agent process, ray.py's actor) makes one
`AgentRuntime` per agent, calls `start()` once and `command()` from any thread, and gets every
event through `emit`, a batch at a time, in order, AgentStopped last.

    command() ─────────────┐                 ┌── the worker's message pipe (frames)
    stack watch (events) ──┤ wake pipe       ├── the worker's stdout (kept for crash reports)
    worker exit waiter ────┘                 │
                     one selector in the driver thread ──► AgentMachine.handle(input)
                     timeout: the running test's deadline   │ actions: start/kill/write the
                     (none without --timeout: no ticks)     │ worker, reset/down the stack, emit
                                                            ▼
                     events of one wake-up, emitted as one batch

The driver thread owns the machine, the stack and the worker handle, and reads the worker's
pipes itself, so a test's end costs one wake-up of one thread here: a read that takes every
frame waiting (under load, many tests'), the machine's transitions, one batch out. The stack
comes up in a thread of its own (agents/_stack_side.py), so that a worker can start while a
borrowed warm stack is reset; reset and down run in the driver (the worker is idle or waiting
for them meanwhile). The threads
that remain only wait (on a process's exit, the stack) and turn what they see into inputs;
none of them swallows an error: an unexpected exception ends the agent with AgentFailed (with
the traceback) and AgentStopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agents._stack_side import StackSide
from agents.agent import (
    Action,
    AgentMachine,
    CommandIn,
    Emit,
    Input,
    KillWorker,
    ResetStack,
    SendToWorker,
    StartWorker,
    Stop,
    TakeStackDown,
    Tick,
    WorkerExited,
    WorkerSaid,
)
from agents.load_costs import with_service_cpu
from agents.worker import EarlyWorker, WorkerProcess
from orchestrator.protocol import messages as pm

KILLED_WORKER_WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _ThreadFailed:
    """An exception in a helper thread, handed to the driver to fail the agent with."""

    error: BaseException
    where: str


@dataclass(frozen=True, slots=True)
class _ProcessExited:
    """A worker's process has exited (its waiter thread saw it); its pipes may still hold data."""

    worker: WorkerProcess


class AgentRuntime:
    """Runs one agent: its stack and its pytest workers, driven by an AgentMachine."""

    def __init__(
        self,
        config: pm.AgentConfig,
        emit: Callable[[Sequence[pm.Event]], None],
        node: pm.NodeInfo | None = None,
        clock: Callable[[], float] = time.monotonic,
        early_worker: EarlyWorker | None = None,
    ) -> None:
        self.config = config
        # A worker started already (agents/worker.py start_early, by the local backend or agents/host.py),
        # taken at the first StartWorker.
        self._early_worker = early_worker
        self._emit_batch = emit
        self._clock = clock
        node = node or pm.NodeInfo(
            hostname=socket.gethostname(), resources={"CPU": float(os.cpu_count() or 1)}
        )
        self._machine = AgentMachine(
            config.agent_id, timeout=config.timeout, node=node, collector=config.collector
        )
        self._inputs: queue.SimpleQueue[Input | _ThreadFailed | _ProcessExited] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector = selectors.DefaultSelector()
        self._outbox: list[pm.Event] = []
        # Batches reach the backend from the driver, and from the stack's thread while it comes
        # up (its AgentPhase): one at a time, in order.
        self._emit_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stack = StackSide(
            config,
            self._put,
            clock,
            lambda exc: self._put(_ThreadFailed(exc, "renewing the stack's lease")),
            self._tell_phase,
        )
        self._worker: WorkerProcess | None = None
        self._worker_messages_ended = False
        self._private_dir = ""
        self._stopped_sent = False

    # -- called by the backend -------------------------------------------------------------

    def start(self) -> None:
        """Bring the stack and the worker up in the background; AgentReady or AgentFailed follows."""
        self._thread = threading.Thread(
            target=self._drive, name=f"orchestrate-agent-{self.config.agent_id}", daemon=True
        )
        self._thread.start()

    def command(self, command: pm.Command) -> None:
        """Queue a command from the session (any thread)."""
        self._put(CommandIn(command))

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until AgentStopped was emitted and the driver ended; False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _put(self, item: Input | _ThreadFailed | _ProcessExited) -> None:
        """Hand an input to the driver from any thread, waking its selector."""
        self._inputs.put(item)
        with contextlib.suppress(BlockingIOError, OSError):  # full: it is awake anyway; closed: it ended
            os.write(self._wake_write, b"!")

    # -- the driver thread -----------------------------------------------------------------

    def _drive(self) -> None:
        try:
            early = self._early_worker
            if early is not None:
                self._private_dir = early.private_dir
                if early.warm_lock is None:
                    self._stack.adopt_worker(early.args, early.env)
                else:  # on a warm slot's recorded endpoints: kept if they prove current
                    self._stack.adopt_warm_lock(early.warm_lock)
            else:
                self._private_dir = tempfile.mkdtemp(prefix=f"orchestrate-agent-{self.config.agent_id}-")
            self._selector.register(self._wake_read, selectors.EVENT_READ, self._on_wake)
            self._stack.start(self._private_dir)
            while True:
                deadline = self._machine.deadline()
                timeout = None if deadline is None else max(0.0, deadline - self._clock())
                ready = self._selector.select(timeout)
                stopped = False
                for key, _ in ready:
                    stopped = key.data() or stopped
                if deadline is not None and self._clock() >= deadline:
                    stopped = self._apply(Tick(self._clock())) or stopped
                self._flush_events()
                if stopped:
                    return
        except BaseException as exc:  # the driver never swallows an error: the agent fails with it
            self._stack.failed()
            self._fail(exc)
            self._flush_events()
        finally:
            self._stack.stop_watching()
            never_taken = self._early_worker.process if self._early_worker is not None else None
            for worker in (self._worker, never_taken):
                if worker is not None:
                    worker.kill()
                    # Reaped and its pipes closed here: in the coordinator's process (a local agent
                    # in a thread) a leftover would be a ResourceWarning in the user's session.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        worker.wait(KILLED_WORKER_WAIT_SECONDS)
                    worker.close()
            if self._private_dir:
                shutil.rmtree(self._private_dir, ignore_errors=True)
            self._selector.close()
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _on_wake(self) -> bool:
        """Apply every input other threads queued; True after Stop."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)
        stopped = False
        while True:
            try:
                item = self._inputs.get_nowait()
            except queue.Empty:
                return stopped
            if isinstance(item, _ThreadFailed):
                raise RuntimeError(f"{item.where} failed: {item.error!r}") from item.error
            if isinstance(item, _ProcessExited):
                stopped = self._worker_exited(item.worker) or stopped
            else:
                stopped = self._apply(item) or stopped

    def _apply(self, first: Input) -> bool:
        """Feed one input, and the inputs its actions produce at once; True after Stop."""
        inputs: deque[Input] = deque([first])
        stopped = False
        while inputs:
            for action in self._machine.handle(inputs.popleft()):
                follow_up = self._do(action)
                if follow_up is not None:
                    inputs.append(follow_up)
                stopped = stopped or isinstance(action, Stop)
        return stopped

    def _do(self, action: Action) -> Input | None:
        """Carry out one action; returns the input it results in when it completes here."""
        if isinstance(action, Emit):
            self._emit(action.event)
        elif isinstance(action, SendToWorker):
            if self._worker is not None:
                self._worker.send(action.command)
        elif isinstance(action, StartWorker):
            self._start_worker()
        elif isinstance(action, KillWorker):
            if self._worker is not None:
                self._worker.kill()
        elif isinstance(action, ResetStack):
            self._flush_events()  # what this wake-up emitted goes out before a slow step
            return self._stack.reset(action.unit_id)
        elif isinstance(action, TakeStackDown):
            self._flush_events()  # TearingDown first: the session's report need not wait
            return self._stack.take_down()
        elif isinstance(action, Stop):
            pass
        else:
            raise TypeError(f"unknown action {action!r}")
        return None

    def _emit(self, event: pm.Event) -> None:
        if self._stopped_sent:
            return
        self._stopped_sent = isinstance(event, pm.AgentStopped)
        self._outbox.append(event)

    def _flush_events(self) -> None:
        """Hand what this wake-up emitted to the backend, as one batch."""
        if self._outbox:
            batch, self._outbox = self._outbox, []
            if any(isinstance(event, pm.TestEnded) for event in batch):
                batch = with_service_cpu(batch, self._stack.service_cpu_spent())
            with self._emit_lock:
                self._emit_batch(batch)

    def _tell_phase(self, phase: pm.AgentPhase) -> None:
        """Send a phase of the stack's start at once, from the stack's thread.

        The machine is not involved: it waits for StackUp throughout, so the phase goes
        straight out, as `_fail` sends its events.
        """
        with self._emit_lock:
            self._emit_batch([dataclasses.replace(phase, agent_id=self.config.agent_id)])

    # -- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        early, self._early_worker = self._early_worker, None
        if (
            early is not None
            and early.warm_lock is not None
            and not self._stack.keeps_early_worker(early.args, early.env)
        ):
            # The slot was replaced, or its endpoints changed: that worker talks to the wrong
            # services (or to none); it goes, and one starts on the stack the agent has.
            early.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                early.process.wait(KILLED_WORKER_WAIT_SECONDS)
            early.process.close()
            early = None
        if early is not None:
            worker = early.process  # started with these very args and env
        else:
            worker = WorkerProcess(
                self.config.python or sys.executable,
                self._stack.worker_args,
                self.config.cwd,
                self._stack.worker_env,
            )
            worker.start()
        self._worker = worker
        self._worker_messages_ended = False
        self._selector.register(worker.message_fd, selectors.EVENT_READ, lambda: self._on_messages(worker))
        self._selector.register(worker.output_fd, selectors.EVENT_READ, lambda: self._on_output(worker))

        def wait_for_exit() -> None:
            worker.wait()
            self._put(_ProcessExited(worker))

        threading.Thread(target=wait_for_exit, name="orchestrate-worker-exit", daemon=True).start()

    def _on_messages(self, worker: WorkerProcess) -> bool:
        """Feed the machine every message waiting on the worker's pipe; True after Stop."""
        messages = worker.read_messages()
        if messages is None:
            self._selector.unregister(worker.message_fd)
            self._worker_messages_ended = True
            return False
        now = self._clock()
        stopped = False
        for message in messages:
            stopped = self._apply(WorkerSaid(message, now)) or stopped
        return stopped

    def _on_output(self, worker: WorkerProcess) -> bool:
        if worker.read_output() is None:
            self._selector.unregister(worker.output_fd)
        return False

    def _worker_exited(self, worker: WorkerProcess) -> bool:
        """The worker's process is gone: read what its pipes still hold, then WorkerExited."""
        stopped = False
        if not self._worker_messages_ended:
            # What it wrote before it died is still in the pipe (a child it forked may even
            # hold the pipe open): read it all now, without waiting for an end of file.
            now = self._clock()
            for message in worker.drain_messages():
                stopped = self._apply(WorkerSaid(message, now)) or stopped
            self._selector.unregister(worker.message_fd)
            self._worker_messages_ended = True
        if worker.output_fd in self._selector.get_map():
            while worker.read_output():  # what is there now (a test's child may keep it open)
                pass
            self._selector.unregister(worker.output_fd)
        code = worker.wait()
        output = worker.output_tail()
        worker.close()
        return self._apply(WorkerExited(code, output)) or stopped

    # -- failure of the agent itself -------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """An unexpected error: report it, clean up as far as possible, and stop."""
        if self._stopped_sent:
            return
        details = "".join(traceback.format_exception(exc))
        self._emit(
            pm.AgentFailed(agent_id=self.config.agent_id, message=f"agent error: {exc!r}", logs=details)
        )
        if self._worker is not None:
            self._worker.kill()
        down = self._stack.take_down()
        if down.error:
            self._emit(
                pm.AgentFailed(agent_id=self.config.agent_id, message=f"stack teardown failed: {down.error}")
            )
        self._emit(
            pm.AgentStopped(
                agent_id=self.config.agent_id,
                stack_down_seconds=down.seconds,
                worker_restarts=self._machine.worker_restarts,
            )
        )
