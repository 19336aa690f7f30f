"""One agent's stack as its driver uses it: brought up in a thread of its own, reset, taken down.

Owned by agents/runtime.py's AgentRuntime. `start()` brings the stack up in a thread (a stack of
the run's own, or a borrowed warm stack: agents/stack/warm.py) and hands the driver what
happened as inputs through `put`: StackReachable (a borrowed stack's endpoints, before its reset:
the worker may start), then StackUp or StackUpFailed. `reset()` and `take_down()` run in the
driver thread and return the input they result in; `take_down()` first waits for a stack still
coming up (a worker that started early may end before it is up), and keeps a borrowed warm
stack up for the next run unless it failed. `worker_env` and `worker_args` are how the worker
starts on this stack, set before StackReachable or StackUp is handed over.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agents._io import Input, ResetDone, StackDied, StackDown, StackReachable, StackUp, StackUpFailed
from agents.stack import Stack, StackEndpoints, StackStep, make_stack, sweep
from agents.stack.compose import parse_stack
from agents.stack.lease import Lease
from agents.stack.warm import WarmSlot, open_slot, slot_stack
from agents.worker import worker_args, worker_env
from orchestrator.protocol import messages as pm
from orchestrator.protocol.errors import DockerUnavailable, StackFailed

if TYPE_CHECKING:
    from agents.stack.borrowed import WarmDockerStack
    from agents.stack.cgroup_cpu import CgroupCpu


class StackSide:
    """One agent's stack: its thread of start-up, its lease, its watch, its warm slot if any."""

    def __init__(
        self,
        config: pm.AgentConfig,
        put: Callable[[Input], None],
        clock: Callable[[], float],
        on_error: Callable[[BaseException], None],
        tell_phase: Callable[[pm.AgentPhase], None],
    ) -> None:
        self.config = config
        self._put = put
        self._clock = clock
        self._on_error = on_error
        # The phases of the stack's start (services ready, setup, snapshot), sent at once.
        self._tell_phase = tell_phase
        self.worker_env: dict[str, str] = {}
        self.worker_args: list[str] = []
        self.private_dir = ""
        self._stack: Stack | None = None
        self._lease: Lease | None = None
        # Ends the stack's watch on Docker's events (a dead service becomes StackDied).
        self._stop_watch: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        # A borrowed warm stack: its slot, the slot's lock (a file descriptor) and whether the
        # stack is kept at the end (False once it failed: it is removed, the next run rebuilds it).
        self._warm_slot: WarmSlot | None = None
        self._warm_stack: WarmDockerStack | None = None
        self._warm_lock: int | None = None
        self._warm_keep = False
        self._borrowed = False  # the slot's stack adopted as it was kept (not replaced)
        # The CPU the stack's containers spend (agents/stack/cgroup_cpu.py), and its last reading.
        self._cpu_meter: CgroupCpu | None = None
        self._cpu_seen = 0.0

    def adopt_worker(self, args: Sequence[str], env: dict[str, str]) -> None:
        """The worker already started with these (agents/worker.py's `start_early`)."""
        self.worker_args, self.worker_env = list(args), env

    def adopt_warm_lock(self, lock: int) -> None:
        """The warm slot's lock, taken by agents/worker.py's `start_early` to start the worker on
        the slot's recorded endpoints: this agent holds the slot already."""
        self._warm_lock = lock

    def keeps_early_worker(self, args: Sequence[str], env: dict[str, str]) -> bool:
        """Whether a worker started early on the warm slot's recorded endpoints is the one to
        run: the slot was borrowed as is (not replaced) and its endpoints are those recorded.
        Asked at StartWorker, once `worker_args` and `worker_env` are set."""
        return self._borrowed and list(args) == self.worker_args and env == self.worker_env

    def start(self, private_dir: str) -> None:
        """Bring the stack up in a thread of its own; its result comes back through `put`."""
        self.private_dir = private_dir
        self._thread = threading.Thread(
            target=self._bring_up, name=f"orchestrate-stack-{self.config.agent_id}", daemon=True
        )
        self._thread.start()

    def failed(self) -> None:
        """The agent failed: a borrowed warm stack is removed at the end, not kept."""
        self._warm_keep = False

    def _bring_up(self) -> None:
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
            if spec is not None and config.warm_id:
                slot = WarmSlot(config.warm_id, config.agent_id, config.warm_owner, Path(config.warm_dir))
                if self._warm_lock is None:  # else taken already, to start the worker early
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
                ready_timeout = spec.ready_timeout if spec is not None else 0.0
                self._stack = make_stack(
                    spec,
                    config.run_id,
                    str(config.agent_id),
                    config.owner,
                    cwd=config.cwd,
                    on_step=lambda step: self._on_step(step, ready_timeout),
                )
                early = spec is not None and spec.early_worker and not config.collector
                if early:  # the worker starts once the containers run (StackReachable)
                    endpoints = self._stack.up(lambda ends: self._reachable(ends, started))
                else:
                    endpoints = self._stack.up()
                seconds = endpoints.up_seconds + endpoints.setup_seconds
                resets = self._stack.resets
                if resets:
                    self._tell_phase(pm.AgentPhase(phase="snapshot"))
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
        if not self.worker_args:
            self._prepare_worker(endpoints, resets)
        if spec is not None:
            self._start_cpu_meter()
        self._warm_keep = True  # before the watch: a death it reports makes it False
        if spec is not None:
            # Docker's events, not polling: nothing runs while every service lives.
            self._stop_watch = self._stack.watch(self._stack_died)
        self._put(
            StackUp(
                stack_seconds=seconds,
                resets=resets,
                now=self._clock(),
                stack_args=tuple(endpoints.pytest_args),
                stack_env=dict(endpoints.env),
                worker_args=tuple(self.worker_args),
                cache=endpoints.cache,
                setup_seconds=endpoints.setup_seconds,
                setup_saved_seconds=endpoints.cache_saved_seconds,
                started=started,
                warm=warm,
            )
        )

    def _on_step(self, step: StackStep, ready_timeout: float) -> None:
        timeout = ready_timeout if step.phase == "services" else 0.0
        self._tell_phase(
            pm.AgentPhase(phase=step.phase, ready=step.ready, waiting=step.waiting, timeout=timeout)
        )

    def _reachable(self, endpoints: StackEndpoints, started: float) -> None:
        """A borrowed stack's endpoints, before its reset: the worker may start with them."""
        resets = self._stack.resets if self._stack is not None else False
        self._prepare_worker(endpoints, resets)
        self._borrowed = True  # only a slot adopted as it was kept says its endpoints early
        self._put(
            StackReachable(
                started=started,
                now=self._clock(),
                stack_args=tuple(endpoints.pytest_args),
                stack_env=dict(endpoints.env),
                worker_args=tuple(self.worker_args),
            )
        )

    def _prepare_worker(self, endpoints: StackEndpoints, resets: bool) -> None:
        """The worker's environment and command line on this stack."""
        config = self.config
        self.worker_env = worker_env(config, endpoints.env, endpoints.services, resets)
        self.worker_args = worker_args(
            config.pytest_args,
            self.private_dir,
            config.agent_id,
            basetemp=config.basetemp,
            stack_args=endpoints.pytest_args,
        )

    def _stack_died(self, message: str) -> None:
        self._warm_keep = False  # a warm stack that lost a service is removed, not kept
        self._put(StackDied(message))

    def _take_lease_and_sweep(self) -> None:
        """Hold this stack's lease on the node, then clear what dead runs left on its engine
        (unless the coordinator just did, on the same engine: AgentConfig.swept).

        The lease comes first, so a sweep by another agent on this node never takes this stack
        for a dead one while it starts. What this sweep finds is the next run's clean-up of a
        killed coordinator's stacks (agents/stack/lease.py). A sweep that fails changes nothing
        for this run: the stack's own `up` says clearly what is wrong with the engine.
        """
        config = self.config
        self._lease = Lease(
            config.run_id,
            str(config.agent_id),
            on_error=self._on_error,
        )
        self._lease.take()
        if config.swept:
            return  # the coordinator swept this engine a moment ago (a local agent)
        with contextlib.suppress(StackFailed, DockerUnavailable):
            sweep()

    def reset(self, unit_id: str) -> ResetDone:
        assert self._stack is not None
        try:
            seconds = self._stack.reset()
        except StackFailed as exc:
            self._warm_keep = False
            return ResetDone(unit_id, error=str(exc))
        except Exception as exc:
            self._warm_keep = False
            return ResetDone(unit_id, error=f"stack reset failed: {exc!r}")
        if self._cpu_meter is not None:
            self._cpu_seen = self._cpu_meter.seconds()  # what the reset spent is no test's
        return ResetDone(unit_id, seconds=seconds)

    def service_cpu_spent(self) -> float:
        """CPU-seconds the stack's containers spent since the last call, since they came up or
        since the last reset; 0.0 without a meter."""
        if self._cpu_meter is None:
            return 0.0
        now = self._cpu_meter.seconds()
        spent, self._cpu_seen = max(0.0, now - self._cpu_seen), now
        return spent

    def _start_cpu_meter(self) -> None:
        """The meter of the stack's containers' CPU, read once now; none where it cannot be."""
        try:
            meter = self._stack.cpu_meter() if self._stack is not None else None
        except Exception:  # a measurement: never the stack's failure
            meter = None
        if meter is not None:
            self._cpu_seen = meter.seconds()
            self._cpu_meter = meter

    def take_down(self) -> StackDown:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()  # a stack still coming up (its worker started early)
        self.stop_watching()
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

    def stop_watching(self) -> None:
        stop, self._stop_watch = self._stop_watch, None
        if stop is not None:
            stop()
