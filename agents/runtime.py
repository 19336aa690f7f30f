"""The agent's I/O around its AgentMachine: one driver thread, the stack, the worker's pipes.

A backend (orchestrator/backends/local.py's agent process, ray.py's actor) makes one
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
frame waiting (under load, many tests'), the machine's transitions, one batch out. Stack up,
reset and down run in it too (the worker is idle or waiting for them meanwhile). The threads
that remain only wait (on a process's exit, the stack) and turn what they see into inputs;
none of them swallows an error: an unexpected exception ends the agent with AgentFailed (with
the traceback) and AgentStopped.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.agent import (
    Action,
    AgentMachine,
    CommandIn,
    Emit,
    Input,
    KillWorker,
    ResetDone,
    ResetStack,
    SendToWorker,
    StackDied,
    StackDown,
    StackReachable,
    StackUp,
    StackUpFailed,
    StartWorker,
    Stop,
    TakeStackDown,
    Tick,
    WorkerExited,
    WorkerSaid,
)
from agents.env_names import AGENT_ENV, RESET_ENV, RUN_ENV, STACK_ENV
from agents.stack import Stack, StackEndpoints, make_stack, stack_env_json, sweep
from agents.stack.compose import parse_stack
from agents.stack.errors import DockerUnavailable, StackFailed
from agents.stack.lease import Lease
from agents.stack.warm import WarmSlot, open_slot, slot_stack
from agents.worker import WorkerProcess, worker_args
from orchestrator.protocol import messages as pm

if TYPE_CHECKING:
    from agents.stack.borrowed import WarmDockerStack


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
    ) -> None:
        self.config = config
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
        self._thread: threading.Thread | None = None
        self._stack: Stack | None = None
        self._lease: Lease | None = None
        # Ends the stack's watch on Docker's events (a dead service becomes StackDied).
        self._stop_watch: Callable[[], None] | None = None
        self._worker: WorkerProcess | None = None
        self._worker_messages_ended = False
        self._worker_env: dict[str, str] = {}
        self._worker_args: list[str] = []
        self._private_dir = ""
        self._stopped_sent = False
        self._stack_thread: threading.Thread | None = None
        # A borrowed warm stack: its slot, the slot's lock (a file descriptor) and whether the
        # stack is kept at the end (False once it failed: it is removed, the next run rebuilds it).
        self._warm_slot: WarmSlot | None = None
        self._warm_stack: WarmDockerStack | None = None
        self._warm_lock: int | None = None
        self._warm_keep = False

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
            self._private_dir = tempfile.mkdtemp(prefix=f"orchestrate-agent-{self.config.agent_id}-")
            self._selector.register(self._wake_read, selectors.EVENT_READ, self._on_wake)
            self._stack_thread = threading.Thread(
                target=self._bring_stack_up, name=f"orchestrate-stack-{self.config.agent_id}", daemon=True
            )
            self._stack_thread.start()
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
            self._warm_keep = False
            self._fail(exc)
            self._flush_events()
        finally:
            self._stop_watching()
            if self._worker is not None:
                self._worker.kill()
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
            return self._reset(action.unit_id)
        elif isinstance(action, TakeStackDown):
            return self._take_stack_down()
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
            self._emit_batch(batch)

    # -- the stack -------------------------------------------------------------------------

    def _bring_stack_up(self) -> None:
        """Stack up (and snapshot), then queue StackUp or StackUpFailed behind earlier commands.

        Runs in a thread of its own, so that a worker can start while a borrowed warm stack is
        being reset (StackReachable first); the driver joins it before taking the stack down.
        """
        config = self.config
        started = self._clock()
        warm = ""
        try:
            spec = parse_stack(config.stack_text, Path(config.stack_path)) if config.stack_text else None
            if spec is not None:
                self._take_lease_and_sweep()
            slot = None
            if spec is not None and config.warm_id and not config.collector:
                slot = WarmSlot(config.warm_id, config.agent_id, config.warm_owner, Path(config.warm_dir))
                self._warm_lock = slot.lock()
                warm = "busy"  # another run borrows it: a stack of this run's own instead
            if spec is not None and slot is not None and self._warm_lock is not None:
                self._warm_slot = slot
                self._stack = self._warm_stack = slot_stack(spec, slot, config.cwd)  # removed if it fails
                up = open_slot(
                    spec, slot, config.cwd, self._clock, lambda ends: self._reachable(ends, started)
                )
                self._stack = self._warm_stack = up.stack
                endpoints, seconds, warm = up.endpoints, up.seconds, up.how
                resets = up.stack.resets
            else:
                self._stack = make_stack(
                    spec, config.run_id, str(config.agent_id), config.owner, cwd=config.cwd
                )
                endpoints = self._stack.up()
                seconds = endpoints.up_seconds + endpoints.setup_seconds
                resets = self._stack.resets
                if resets:
                    try:
                        seconds += self._stack.snapshot()
                    except StackFailed as exc:
                        raise StackFailed(f"stack snapshot failed: {exc}", exc.service, exc.logs) from exc
        except StackFailed as exc:
            self._put(StackUpFailed(str(exc), exc.logs))
            return
        except Exception as exc:
            self._put(StackUpFailed(f"stack failed: {exc!r}"))
            return
        if not self._worker_args:
            self._prepare_worker(endpoints, resets)
        if spec is not None:
            # Docker's events, not polling: nothing runs while every service lives.
            self._stop_watch = self._stack.watch(self._stack_died)
        self._warm_keep = True
        self._put(
            StackUp(
                stack_seconds=seconds,
                resets=resets,
                now=self._clock(),
                stack_args=tuple(endpoints.pytest_args),
                stack_env=dict(endpoints.env),
                worker_args=tuple(self._worker_args),
                cache=endpoints.cache,
                setup_seconds=endpoints.setup_seconds,
                setup_saved_seconds=endpoints.cache_saved_seconds,
                started=started,
                warm=warm,
            )
        )

    def _reachable(self, endpoints: StackEndpoints, started: float) -> None:
        """A borrowed stack's endpoints, before its reset: the worker may start with them."""
        resets = self._stack.resets if self._stack is not None else False
        self._prepare_worker(endpoints, resets)
        self._put(
            StackReachable(
                started=started,
                now=self._clock(),
                stack_args=tuple(endpoints.pytest_args),
                stack_env=dict(endpoints.env),
                worker_args=tuple(self._worker_args),
            )
        )

    def _prepare_worker(self, endpoints: StackEndpoints, resets: bool) -> None:
        """The worker's environment and command line on this stack."""
        config = self.config
        env = dict(os.environ if config.env is None else config.env)
        env.update(endpoints.env)
        env[AGENT_ENV] = str(config.agent_id)
        env[RUN_ENV] = config.run_id
        env[STACK_ENV] = stack_env_json(endpoints)
        if resets:
            env[RESET_ENV] = "1"
        self._worker_env = env
        self._worker_args = worker_args(
            config.pytest_args,
            self._private_dir,
            config.agent_id,
            basetemp=config.basetemp,
            stack_args=endpoints.pytest_args,
        )

    def _stack_died(self, message: str) -> None:
        self._warm_keep = False  # a warm stack that lost a service is removed, not kept
        self._put(StackDied(message))

    def _take_lease_and_sweep(self) -> None:
        """Hold this stack's lease on the node, then clear what dead runs left on its engine.

        The lease comes first, so a sweep by another agent on this node never takes this stack
        for a dead one while it starts. What this sweep finds is the next run's clean-up of a
        killed coordinator's stacks (agents/stack/lease.py). A sweep that fails changes nothing
        for this run: the stack's own `up` says clearly what is wrong with the engine.
        """
        config = self.config
        self._lease = Lease(
            config.run_id,
            str(config.agent_id),
            on_error=lambda exc: self._put(_ThreadFailed(exc, "renewing the stack's lease")),
        )
        self._lease.take()
        with contextlib.suppress(StackFailed, DockerUnavailable):
            sweep()

    def _reset(self, unit_id: str) -> ResetDone:
        assert self._stack is not None
        try:
            seconds = self._stack.reset()
        except StackFailed as exc:
            self._warm_keep = False
            return ResetDone(unit_id, error=str(exc))
        except Exception as exc:
            self._warm_keep = False
            return ResetDone(unit_id, error=f"stack reset failed: {exc!r}")
        return ResetDone(unit_id, seconds=seconds)

    def _take_stack_down(self) -> StackDown:
        if self._stack_thread is not None and self._stack_thread is not threading.current_thread():
            self._stack_thread.join()  # a stack still coming up (its worker started early)
        self._stop_watching()
        down = StackDown()
        try:
            if self._warm_stack is not None and self._warm_keep:
                self._warm_stack.keep()  # borrowed: kept up for the next run, which resets it first
            elif self._stack is not None:
                if self._warm_slot is not None:
                    self._warm_slot.drop_record()  # the next run brings this slot up anew
                down = StackDown(seconds=self._stack.down())
        except Exception as exc:
            down = StackDown(error=str(exc) if isinstance(exc, StackFailed) else repr(exc))
        finally:
            self._stack = self._warm_stack = None
            if self._warm_lock is not None:
                os.close(self._warm_lock)
                self._warm_lock = None
            if self._lease is not None:
                # A stack that could not be removed keeps its lease, to go stale for a later sweep.
                self._lease.release(keep=bool(down.error))
                self._lease = None
        return down

    def _stop_watching(self) -> None:
        stop, self._stop_watch = self._stop_watch, None
        if stop is not None:
            stop()

    # -- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        worker = WorkerProcess(
            self.config.python or sys.executable, self._worker_args, self.config.cwd, self._worker_env
        )
        self._worker = worker
        self._worker_messages_ended = False
        worker.start()
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
        down = self._take_stack_down()
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
