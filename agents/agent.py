"""The agent: one per parallel slot. Brings its stack up, runs a pytest worker, reports events.

A plain class with no Ray in it: orchestrator/backends/ray.py wraps it in an actor, and
orchestrator/backends/local.py runs it in a thread of the coordinator (tests, `shard`). The
backend calls `start()` once, then `assign()`, `flush()`, `finish()` or `abort()` from any
thread; everything the agent has to say goes through `emit` as orchestrator.events.Event.

The agent owns what only it can see: its worker process. When the worker dies in the middle of
a test the agent reports that test as crashed, starts a fresh worker and hands it the rest of
the work; `--timeout` is enforced here, from outside the worker, by killing it. A service of
its stack that stops mid-run fails the agent (AgentFailed), so its units go to other agents.
"""

from __future__ import annotations

import collections
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.fixtures import AGENT_ENV, RUN_ENV, STACK_ENV
from agents.stack import Stack, make_stack, stack_env_json
from agents.stack.compose import StackSpec
from agents.worker import WorkerProcess
from orchestrator import events as ev
from orchestrator.errors import StackFailed
from orchestrator.model import TestUnit

# A worker that dies this many times in a row without finishing a test is not restarted again.
MAX_FRUITLESS_RESTARTS = 3
# How often a running agent checks that every service of its stack is still up.
STACK_CHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything an agent needs, picklable so it can travel to a Ray actor."""

    agent_id: int
    run_id: str
    owner: str
    cwd: str
    pytest_args: tuple[str, ...]
    stack: StackSpec | None = None
    timeout: float | None = None
    max_crashes: int = 2
    python: str = sys.executable
    # The worker's base environment; None: this process's own (an agent on a remote node).
    env: dict[str, str] | None = None


class Agent:
    """Runs the units it is given on its own pytest worker, against its own stack."""

    def __init__(
        self,
        config: AgentConfig,
        emit: Callable[[ev.Event], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._emit = emit
        self._clock = clock
        self._lock = threading.RLock()
        self._worker: WorkerProcess | None = None
        self._worker_ready = False
        # unit id -> node ids assigned and without a final result yet, in run order
        self._pending_by_unit: dict[str, list[str]] = {}
        self._unit_of_node: dict[str, str] = {}
        self._running: str | None = None
        self._running_since = 0.0
        self._timed_out: str | None = None
        self._crashes: collections.Counter[str] = collections.Counter()
        self._finishing = False
        self._flush_wanted = False
        self._aborting = False
        self._stopped_by_pytest = False
        self._restarts = 0
        self._finished_nodes: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- called by the backend -------------------------------------------------------------

    def start(self) -> None:
        """Bring the stack and the worker up in the background; AgentReady or AgentFailed follows."""
        self._thread = threading.Thread(target=self._main, name=f"agent-{self.config.agent_id}", daemon=True)
        self._thread.start()
        if self.config.timeout:
            threading.Thread(target=self._watch_timeouts, name="agent-watchdog", daemon=True).start()

    def assign(self, units: Sequence[TestUnit]) -> None:
        """Queue units on the worker, after what it already holds."""
        node_ids: list[str] = []
        with self._lock:
            for unit in units:
                self._pending_by_unit.setdefault(unit.unit_id, []).extend(unit.node_ids)
                for node_id in unit.node_ids:
                    self._unit_of_node[node_id] = unit.unit_id
                node_ids.extend(unit.node_ids)
            self._flush_wanted = False
            if self._worker_ready and self._worker is not None:
                self._worker.send("run", node_ids=node_ids)

    def flush(self) -> None:
        """Nothing more for now: run the held last test, tearing session fixtures down."""
        with self._lock:
            self._flush_wanted = True
            if self._worker_ready and self._worker is not None:
                self._worker.send("flush")

    def finish(self) -> None:
        """No more work: run what is held, stop the worker, take the stack down."""
        with self._lock:
            self._finishing = True
            if self._worker_ready and self._worker is not None:
                self._worker.send("finish")

    def abort(self) -> None:
        """Stop now (Ctrl-C, -x reached): kill the worker; the stack still comes down."""
        with self._lock:
            self._aborting = True
            self._finishing = True
            if self._worker is not None:
                self._worker.kill()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the agent's own thread -----------------------------------------------------------

    def _main(self) -> None:
        started = self._clock()
        agent_id = self.config.agent_id
        stack = None
        try:
            try:
                stack = make_stack(
                    self.config.stack,
                    self.config.run_id,
                    str(agent_id),
                    self.config.owner,
                    cwd=self.config.cwd,
                )
                endpoints = stack.up()
            except StackFailed as exc:
                self._emit(ev.AgentFailed(agent_id, message=str(exc), logs=exc.logs))
                return
            except Exception as exc:  # a background thread never swallows an error: it reports it
                self._emit(ev.AgentFailed(agent_id, message=f"stack failed: {exc!r}"))
                return
            env = dict(os.environ if self.config.env is None else self.config.env)
            env.update(endpoints.env)
            env[AGENT_ENV] = str(agent_id)
            env[RUN_ENV] = self.config.run_id
            env[STACK_ENV] = stack_env_json(endpoints)
            stop_watching = threading.Event()
            watchdog = None
            if self.config.stack is not None:
                watchdog = threading.Thread(
                    target=self._watch_stack,
                    args=(stack, stop_watching),
                    name="agent-stack-watchdog",
                    daemon=True,
                )
                watchdog.start()
            try:
                self._run_workers(
                    env, endpoints.up_seconds + endpoints.setup_seconds, self._clock() - started
                )
            finally:
                stop_watching.set()
                if watchdog is not None:
                    watchdog.join()
        finally:
            down_seconds = 0.0
            try:
                if stack is not None:
                    down_seconds = stack.down()
            except Exception as exc:
                self._emit(ev.AgentFailed(agent_id, message=f"stack teardown failed: {exc!r}"))
            self._emit(
                ev.AgentStopped(agent_id, stack_down_seconds=down_seconds, worker_restarts=self._restarts)
            )

    def _run_workers(self, env: dict[str, str], stack_seconds: float, startup_seconds: float) -> None:
        """Run workers one after another until the work is done; each replaces a dead one."""
        agent_id = self.config.agent_id
        announced = False
        fruitless = 0
        while True:
            worker = WorkerProcess(self.config.python, self.config.pytest_args, self.config.cwd, env)
            with self._lock:
                if self._aborting:
                    return
                self._worker = worker
                self._worker_ready = False
                worker.start()
            finished_before = self._finished_count
            collected = self._pump(worker, announced, stack_seconds, startup_seconds)
            code = worker.wait()
            with self._lock:
                self._worker_ready = False
                running, self._running = self._running, None
                timed_out, self._timed_out = self._timed_out, None
                if self._aborting or self._stopped_by_pytest or (self._finishing and not running):
                    return
            if collected is None and not announced:
                self._emit(
                    ev.AgentFailed(
                        agent_id,
                        message=f"pytest worker exited with code {code} before collecting",
                        logs=worker.output_tail(),
                    )
                )
                return
            announced = True
            if timed_out is not None:
                self._emit(
                    ev.TestTimedOut(
                        agent_id,
                        node_id=timed_out,
                        seconds=float(self.config.timeout or 0),
                        output=worker.output_tail(),
                    )
                )
                self._complete(timed_out)
            elif running is not None:
                self._crashes[running] += 1
                retry = self._crashes[running] < self.config.max_crashes
                self._emit(
                    ev.TestCrashed(
                        agent_id,
                        node_id=running,
                        message=_describe_exit(code),
                        output=worker.output_tail(),
                        retry=retry,
                    )
                )
                if not retry:
                    self._complete(running)
            fruitless = 0 if self._finished_count > finished_before else fruitless + 1
            if fruitless >= MAX_FRUITLESS_RESTARTS:
                self._emit(
                    ev.AgentFailed(
                        agent_id,
                        message=f"pytest worker keeps dying ({_describe_exit(code)}); agent gives up",
                        logs=worker.output_tail(),
                    )
                )
                return
            self._restarts += 1

    @property
    def _finished_count(self) -> int:
        return len(self._finished_nodes)

    def _pump(
        self, worker: WorkerProcess, announced: bool, stack_seconds: float, startup: float
    ) -> bool | None:
        """Relay one worker's messages until it exits; None when it never finished collecting."""
        agent_id = self.config.agent_id
        collected: bool | None = None
        for tag, msg in worker.messages():
            if tag == "report":
                report: dict[str, Any] = msg["report"]
                self._emit(ev.TestReported(agent_id, node_id=msg["node_id"], report=report))
                if report.get("when") == "teardown":
                    with self._lock:
                        self._running = None
                    self._complete(msg["node_id"])
            elif tag == "started":
                with self._lock:
                    self._running = msg["node_id"]
                    self._running_since = self._clock()
                self._emit(ev.TestStarted(agent_id, node_id=msg["node_id"]))
            elif tag == "need_work":
                self._emit(ev.WorkWanted(agent_id))
            elif tag == "collected":
                collected = True
                self._on_collected(worker, announced, len(msg["node_ids"]), stack_seconds, startup)
            elif tag == "not_collected":
                node_ids = tuple(msg["node_ids"])
                self._emit(
                    ev.NotCollected(
                        agent_id,
                        node_ids=node_ids,
                        similar=tuple(msg.get("similar", ())),
                        message=f"{len(node_ids)} test(s) assigned to agent {agent_id} "
                        "were not collected by its pytest worker (collection differs from the coordinator's)",
                    )
                )
                for node_id in node_ids:
                    self._complete(node_id)
            elif tag == "stopping":
                with self._lock:
                    self._stopped_by_pytest = True
            else:
                raise ValueError(f"unknown worker message {tag!r}")
        return collected

    def _on_collected(
        self, worker: WorkerProcess, announced: bool, count: int, stack_seconds: float, startup: float
    ) -> None:
        with self._lock:
            self._worker_ready = True
            if announced:
                # A replacement worker: hand it everything still pending, in the original order.
                remaining = [n for ids in self._pending_by_unit.values() for n in ids]
                if remaining:
                    worker.send("run", node_ids=remaining)
                if self._finishing:
                    worker.send("finish")
                elif self._flush_wanted:
                    worker.send("flush")
                return
        self._emit(
            ev.AgentReady(
                self.config.agent_id,
                host=socket.gethostname(),
                collected=count,
                stack_up_seconds=stack_seconds,
                startup_seconds=startup,
            )
        )
        with self._lock:
            # Work or a finish may have been sent before the worker was ready.
            remaining = [n for ids in self._pending_by_unit.values() for n in ids]
            if remaining:
                worker.send("run", node_ids=remaining)
            if self._finishing:
                worker.send("finish")

    def _complete(self, node_id: str) -> None:
        """A test has its final result here: drop it from pending, report a finished unit."""
        with self._lock:
            self._finished_nodes.add(node_id)
            unit_id = self._unit_of_node.get(node_id)
            if unit_id is None:
                return
            pending = self._pending_by_unit.get(unit_id)
            if pending is None or node_id not in pending:
                return
            pending.remove(node_id)
            if pending:
                return
            del self._pending_by_unit[unit_id]
        self._emit(ev.UnitFinished(self.config.agent_id, unit_id=unit_id))

    def _watch_stack(self, stack: Stack, stop: threading.Event) -> None:
        """Check the stack while tests run; a dead service fails this agent and stops its worker.

        The session then reschedules the agent's unfinished units on the other agents, instead of
        this agent's remaining tests all failing against a service that is gone.
        """
        while not stop.wait(STACK_CHECK_SECONDS):
            try:
                stack.check()
            except StackFailed as exc:
                failure = exc
            except Exception as exc:  # a background thread never swallows an error: it reports it
                failure = StackFailed(f"stack check failed: {exc!r}")
            else:
                continue
            with self._lock:
                if self._aborting or stop.is_set():
                    return
                self._aborting = True
                self._finishing = True
                if self._worker is not None:
                    self._worker.kill()
            message = f"stack failed mid-run, the agent stopped and its unfinished tests go to other agents: {failure}"
            self._emit(ev.AgentFailed(self.config.agent_id, message=message))
            return

    def _watch_timeouts(self) -> None:
        timeout = float(self.config.timeout or 0)
        while self._thread is not None and self._thread.is_alive():
            time.sleep(min(0.2, timeout / 4))
            with self._lock:
                if (
                    self._running is not None
                    and self._timed_out is None
                    and self._clock() - self._running_since > timeout
                    and self._worker is not None
                ):
                    self._timed_out = self._running
                    self._worker.kill()


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"worker killed by signal {-code}"
    return f"worker exited with code {code}"
