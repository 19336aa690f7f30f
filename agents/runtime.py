"""The agent's threads and I/O around its AgentMachine: stack, worker process, pipes, clock.

A backend (orchestrator/backends/local.py in a thread of the coordinator, ray.py in an actor)
makes one `AgentRuntime` per agent, calls `start()` once, `command()` from any thread, and
gets every event through `emit` (from the driver thread, in order, AgentStopped last).

    command() ──────────────┐
    pipe reader (per worker)├──► one input queue ──► driver thread: AgentMachine.handle(input)
    stack watchdog ─────────┘         ▲ Tick(clock()) when idle      │ actions: start/kill/write
                                      └──────────────────────────────┘ the worker, stack reset/down,
                                                                       emit
The driver thread owns the machine, the stack and the worker handle; stack up, reset and down
run in it (nothing else happens meanwhile: the worker is idle or waiting for them). The other
threads only turn what they read into inputs. None of them swallows an error: an unexpected
exception ends the agent with AgentFailed (with the traceback) and AgentStopped.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    StackUp,
    StackUpFailed,
    StartWorker,
    Stop,
    TakeStackDown,
    Tick,
    WorkerExited,
    WorkerMessage,
)
from agents.fixtures import AGENT_ENV, RUN_ENV, STACK_ENV
from agents.plugin import RESET_ENV
from agents.stack import Stack, make_stack, stack_env_json, sweep
from agents.stack.compose import parse_stack
from agents.stack.errors import DockerUnavailable, StackFailed
from agents.stack.lease import Lease
from agents.worker import WorkerProcess, worker_args
from orchestrator.protocol import messages as pm

# How often the driver feeds the machine the time (timeouts are enforced from these ticks).
TICK_SECONDS = 0.1
# How often a running agent checks that every service of its stack is still up.
STACK_CHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _ThreadFailed:
    """An exception in a helper thread, handed to the driver to fail the agent with."""

    error: BaseException
    where: str


class AgentRuntime:
    """Runs one agent: its stack and its pytest workers, driven by an AgentMachine."""

    def __init__(
        self,
        config: pm.AgentConfig,
        emit: Callable[[pm.Event], None],
        node: pm.NodeInfo | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._emit_to_backend = emit
        self._clock = clock
        node = node or pm.NodeInfo(
            hostname=socket.gethostname(), resources={"CPU": float(os.cpu_count() or 1)}
        )
        self._machine = AgentMachine(config.agent_id, timeout=config.timeout, node=node)
        self._inputs: queue.Queue[Input | _ThreadFailed] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stack: Stack | None = None
        self._lease: Lease | None = None
        self._watching = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._worker: WorkerProcess | None = None
        self._worker_env: dict[str, str] = {}
        self._worker_args: list[str] = []
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
        self._inputs.put(CommandIn(command))

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until AgentStopped was emitted and the driver ended; False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the driver thread -----------------------------------------------------------------

    def _drive(self) -> None:
        try:
            self._private_dir = tempfile.mkdtemp(prefix=f"orchestrate-agent-{self.config.agent_id}-")
            self._bring_stack_up()
            last_tick = self._clock()
            while True:
                try:
                    item = self._inputs.get(timeout=TICK_SECONDS)
                except queue.Empty:
                    item = Tick(self._clock())
                if isinstance(item, _ThreadFailed):
                    raise RuntimeError(f"{item.where} failed: {item.error!r}") from item.error
                if self._apply(item):
                    return
                now = self._clock()
                if now - last_tick >= TICK_SECONDS:  # a busy queue still gets its ticks
                    last_tick = now
                    if self._apply(Tick(now)):
                        return
        except BaseException as exc:  # the driver never swallows an error: the agent fails with it
            self._fail(exc)
        finally:
            self._stop_watching()
            if self._worker is not None:
                self._worker.kill()
            if self._private_dir:
                shutil.rmtree(self._private_dir, ignore_errors=True)

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
                self._worker.send(action.tag, **action.fields)
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
        self._emit_to_backend(event)

    # -- the stack -------------------------------------------------------------------------

    def _bring_stack_up(self) -> None:
        """Stack up (and snapshot), then queue StackUp or StackUpFailed behind earlier commands."""
        config = self.config
        try:
            spec = parse_stack(config.stack_text, Path(config.stack_path)) if config.stack_text else None
            if spec is not None:
                self._take_lease_and_sweep()
            self._stack = make_stack(spec, config.run_id, str(config.agent_id), config.owner, cwd=config.cwd)
            endpoints = self._stack.up()
            seconds = endpoints.up_seconds + endpoints.setup_seconds
            resets = self._stack.resets
            if resets:
                try:
                    seconds += self._stack.snapshot()
                except StackFailed as exc:
                    raise StackFailed(f"stack snapshot failed: {exc}", exc.service, exc.logs) from exc
        except StackFailed as exc:
            self._inputs.put(StackUpFailed(str(exc), exc.logs))
            return
        except Exception as exc:
            self._inputs.put(StackUpFailed(f"stack failed: {exc!r}"))
            return
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
        if spec is not None:
            self._watchdog = threading.Thread(
                target=self._watch_stack, args=(self._stack,), name="orchestrate-stack-watchdog", daemon=True
            )
            self._watchdog.start()
        self._inputs.put(StackUp(stack_seconds=seconds, resets=resets, now=self._clock()))

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
            on_error=lambda exc: self._inputs.put(_ThreadFailed(exc, "renewing the stack's lease")),
        )
        self._lease.take()
        with contextlib.suppress(StackFailed, DockerUnavailable):
            sweep()

    def _reset(self, unit_id: str) -> ResetDone:
        assert self._stack is not None
        try:
            seconds = self._stack.reset()
        except StackFailed as exc:
            return ResetDone(unit_id, error=str(exc))
        except Exception as exc:
            return ResetDone(unit_id, error=f"stack reset failed: {exc!r}")
        return ResetDone(unit_id, seconds=seconds)

    def _take_stack_down(self) -> StackDown:
        self._stop_watching()
        down = StackDown()
        try:
            if self._stack is not None:
                down = StackDown(seconds=self._stack.down())
        except Exception as exc:
            down = StackDown(error=str(exc) if isinstance(exc, StackFailed) else repr(exc))
        finally:
            self._stack = None
            if self._lease is not None:
                # A stack that could not be removed keeps its lease, to go stale for a later sweep.
                self._lease.release(keep=bool(down.error))
                self._lease = None
        return down

    def _stop_watching(self) -> None:
        self._watching.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join()
            self._watchdog = None

    def _watch_stack(self, stack: Stack) -> None:
        """Check the stack while tests run; a dead service becomes StackDied (the agent fails)."""
        while not self._watching.wait(STACK_CHECK_SECONDS):
            try:
                stack.check()
            except StackFailed as exc:
                self._inputs.put(StackDied(str(exc)))
                return
            except Exception as exc:
                self._inputs.put(StackDied(f"stack check failed: {exc!r}"))
                return

    # -- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        worker = WorkerProcess(
            self.config.python or sys.executable, self._worker_args, self.config.cwd, self._worker_env
        )
        self._worker = worker
        worker.start()
        threading.Thread(
            target=self._read_worker, args=(worker,), name="orchestrate-worker-reader", daemon=True
        ).start()

    def _read_worker(self, worker: WorkerProcess) -> None:
        """Turn what one worker says into inputs; its end (EOF, then exit code) into WorkerExited."""
        try:
            for tag, message in worker.messages():
                fields = {k: v for k, v in message.items() if not k.startswith("$")}
                self._inputs.put(WorkerMessage(tag, fields, self._clock()))
            code = worker.wait()
            self._inputs.put(WorkerExited(code, worker.output_tail()))
        except BaseException as exc:
            worker.kill()
            self._inputs.put(_ThreadFailed(exc, "reading the pytest worker"))

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
