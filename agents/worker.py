"""The agent's handle on its long-lived pytest worker process, and that process's command line.

`worker_args(...)` builds the worker's pytest arguments; `WorkerProcess.start()` launches
`python -m pytest -p agents.plugin ARGS` with two private pipes (commands in, messages out,
orchestrator/protocol/worker_hop.py); the agent's driver reads the messages and the worker's
own stdout/stderr (kept in a ring buffer, so a crash report can show its last lines) when its
selector says they are readable. `pytest_command` is shared with the coordinator's collection.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agents.env_names import AGENT_ENV, RESET_ENV, RUN_ENV, STACK_ENV, WORKER_FDS_ENV
from orchestrator.protocol import wire
from orchestrator.protocol import worker_hop as wh

if TYPE_CHECKING:
    from orchestrator.protocol.messages import AgentConfig

OUTPUT_LINES_KEPT = 200
# Where a crash report begins in a dying worker's output (faulthandler's, or a traceback).
CRASH_REPORT_STARTS = ("Fatal Python error", "Traceback (most recent call last)")
# The user's stepwise flags: each worker sees only part of the suite, so pytest's stepwise
# state would be wrong; the coordinator alone decides where a run stops.
STEPWISE_FLAGS = frozenset(
    {"--sw", "--stepwise", "--sw-skip", "--stepwise-skip", "--sw-reset", "--stepwise-reset"}
)


def pytest_command(python: str, args: Sequence[str]) -> list[str]:
    """The command line of a pytest process with `args` (shared by collection and workers).

    A suite whose ini file says `addopts = -n auto` would make every one of our pytest
    processes start xdist workers of its own: `-n 0` (last, so it wins) keeps each of them a
    single process. Not added where xdist is absent or disabled (`-p no:xdist`), where `-n`
    would be an unknown option.
    """
    command = [python, "-m", "pytest", *args]
    if _XDIST_INSTALLED and "no:xdist" not in args and "-pno:xdist" not in args:
        command += ["-n", "0"]
    return command


_XDIST_INSTALLED = importlib.util.find_spec("xdist") is not None


def worker_args(
    user_args: Sequence[str],
    private_dir: str,
    agent_id: int,
    basetemp: str | None = None,
    stack_args: Sequence[str] = (),
) -> list[str]:
    """The worker's pytest arguments: the user's, then what each agent's worker must differ in.

    Every agent gets its own cache dir and base temp (workers of one machine would otherwise
    share and wipe them), `--maxfail=0` (the coordinator alone applies -x/--maxfail over the
    whole run), no stepwise flags, and the stack's own pytest arguments (rendered per agent),
    which replace the same options among the user's: an option that appends (a second
    `--db-url` adds a database) must not point every agent at one shared service.
    """
    args, _ = without_stack_options([arg for arg in user_args if arg not in STEPWISE_FLAGS], stack_args)
    if "no:cacheprovider" not in args and "-pno:cacheprovider" not in args:
        args += ["-o", f"cache_dir={os.path.join(private_dir, 'cache')}"]
    base = os.path.join(basetemp, f"agent-{agent_id}") if basetemp else os.path.join(private_dir, "basetemp")
    args += [f"--basetemp={base}", "--maxfail=0", *stack_args]
    return args


def worker_env(
    config: AgentConfig,
    stack_env: Mapping[str, str] = {},  # noqa: B006 -- read only
    services: Mapping[str, object] = {},  # noqa: B006 -- read only
    resets: bool = False,
) -> dict[str, str]:
    """The worker's environment on a stack: the agent's, the stack file's `env` rendered for
    this stack, who the agent is, and ORCHESTRATE_STACK (read back by agents/fixtures.py)."""
    env = dict(os.environ if config.env is None else config.env)
    env.update(stack_env)
    env[AGENT_ENV] = str(config.agent_id)
    env[RUN_ENV] = config.run_id
    env[STACK_ENV] = stack_value(stack_env, services)
    if resets:
        env[RESET_ENV] = "1"
    return env


def stack_value(env: Mapping[str, str], services: Mapping[str, object]) -> str:
    """The ORCHESTRATE_STACK value: the stack's env and each service's endpoint, as JSON."""
    return json.dumps({"env": env, "services": services}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class EarlyWorker:
    """A worker started before the rest of its agent is imported: with no stack file, its
    command line and environment follow from the agent's config alone, so pytest's start (the
    longest part of an agent's) overlaps those imports. The local backend starts every such
    worker before it imports the runtime; agents/host.py before it imports the rest of itself.

    On a borrowed warm stack (`warm_lock`: its slot's lock, taken here and handed to the agent)
    it starts on the endpoints the slot's record holds, before the Docker SDK is imported; the
    agent keeps it only if the slot is borrowed as is with those very endpoints, and otherwise
    kills it and starts another (agents/runtime.py)."""

    process: WorkerProcess
    private_dir: str
    args: tuple[str, ...]
    env: dict[str, str]
    warm_lock: int | None = None


def start_early(config: AgentConfig) -> EarlyWorker | None:
    """Start the worker of an agent without a stack, or on a warm stack's recorded endpoints
    (None with a stack of its own, or with no worker at all)."""
    if config.collector:
        return None
    if config.stack_text:
        return _start_on_warm_slot(config) if config.warm_id else None
    private_dir = tempfile.mkdtemp(prefix=f"orchestrate-agent-{config.agent_id}-")
    args = worker_args(config.pytest_args, private_dir, config.agent_id, basetemp=config.basetemp)
    env = worker_env(config)
    process = WorkerProcess(config.python or sys.executable, args, config.cwd, env)
    try:
        process.start()
    except OSError:
        os.rmdir(private_dir)
        raise
    return EarlyWorker(process, private_dir, tuple(args), env)


def _start_on_warm_slot(config: AgentConfig) -> EarlyWorker | None:
    """Take the warm slot's lock and start the worker on its recorded endpoints; None when the
    slot is another run's or has none recorded (the agent then locks and borrows as before)."""
    from pathlib import Path

    from agents.stack.warm import WarmSlot, recorded

    slot = WarmSlot(config.warm_id, config.agent_id, config.warm_owner, Path(config.warm_dir))
    lock = slot.lock()
    if lock is None:
        return None
    record = recorded(slot)
    if record is None:
        os.close(lock)
        return None
    ends = record.endpoints
    private_dir = tempfile.mkdtemp(prefix=f"orchestrate-agent-{config.agent_id}-")
    args = worker_args(
        config.pytest_args,
        private_dir,
        config.agent_id,
        basetemp=config.basetemp,
        stack_args=ends.pytest_args,
    )
    env = worker_env(config, ends.env, ends.services, record.resets)
    process = WorkerProcess(config.python or sys.executable, args, config.cwd, env)
    try:
        process.start()
    except OSError:
        os.rmdir(private_dir)
        os.close(lock)
        raise
    return EarlyWorker(process, private_dir, tuple(args), env, warm_lock=lock)


def start_early_or_later(config: AgentConfig) -> EarlyWorker | None:
    """`start_early`, or None when the worker cannot start now: the runtime then starts it again
    at its StartWorker, and reports what fails as AgentFailed."""
    try:
        return start_early(config)
    except OSError:
        return None


# Options that add to one another by design (plugins, ini overrides, warning filters): a stack's
# never replaces the user's.
_CUMULATIVE_OPTIONS = frozenset({"-p", "-o", "--override-ini", "-W", "--pythonwarnings"})


def without_stack_options(user_args: Sequence[str], stack_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """`user_args` less every option the stack's pytest_args also give (with its value), and the
    names of the options taken out, in order (an option given both ways is said once)."""
    names: dict[str, bool] = {}  # option name -> whether the stack's form takes a value
    for index, arg in enumerate(stack_args):
        if not arg.startswith("-") or arg == "-":
            continue
        name, equals, _ = arg.partition("=")
        if name in _CUMULATIVE_OPTIONS:
            continue
        following = stack_args[index + 1] if index + 1 < len(stack_args) else None
        names[name] = bool(equals) or (following is not None and not following.startswith("-"))
    kept: list[str] = []
    dropped: dict[str, None] = {}
    skip_value = False
    for arg in user_args:
        if skip_value:
            skip_value = False
            if not arg.startswith("-"):
                continue
        name, equals, _ = arg.partition("=")
        if name in names:
            dropped[name] = None
            skip_value = names[name] and not equals
            continue
        kept.append(arg)
    return kept, list(dropped)


class WorkerProcess:
    """One pytest worker process; a new one replaces it after a crash or a timeout.

    Its two pipes out (messages, and stdout/stderr) are non-blocking and read by the agent's
    driver thread when its selector says they are readable (`read_messages`, `read_output`).
    """

    def __init__(self, python: str, args: Sequence[str], cwd: str, env: Mapping[str, str]) -> None:
        self._command = pytest_command(python, ["-p", "agents.plugin", *args])
        self._cwd = cwd
        self._env = dict(env)
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES_KEPT)
        self._partial_line = b""
        self._proc: subprocess.Popen[bytes] | None = None
        self._command_fd = -1
        self.message_fd = -1
        self.output_fd = -1
        self._unpacker = wire.FrameUnpacker()
        self._send_lock = threading.Lock()

    def start(self) -> None:
        command_read, command_write = os.pipe()
        message_read, message_write = os.pipe()
        env = dict(self._env)
        env[WORKER_FDS_ENV] = f"{command_read},{message_write}"
        self._proc = subprocess.Popen(
            self._command,
            cwd=self._cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(command_read, message_write),
            # Its own process group, so a timeout kill also takes the test's own children.
            start_new_session=True,
        )
        os.close(command_read)
        os.close(message_write)
        self._command_fd = command_write
        self.message_fd = message_read
        assert self._proc.stdout is not None
        self.output_fd = self._proc.stdout.fileno()
        os.set_blocking(self.message_fd, False)
        os.set_blocking(self.output_fd, False)

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc else 0

    def read_messages(self) -> list[wh.WorkerMessage] | None:
        """The messages waiting on the pipe (all of them, decoded); None at end of file."""
        try:
            chunk = os.read(self.message_fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        return self._decode(chunk)

    def _decode(self, chunk: bytes) -> list[wh.WorkerMessage]:
        messages = []
        for frame in self._unpacker.feed(chunk):
            message = wh.decode(frame)
            if isinstance(message, wh.Run | wh.FlushHeld | wh.FinishRun | wh.ResetFinished):
                raise wire.WireError(f"the worker sent a command: {message!r:.200}")
            messages.append(message)
        return messages

    def drain_messages(self) -> list[wh.WorkerMessage]:
        """Every message still on the pipe, without waiting (the process has exited)."""
        drained: list[wh.WorkerMessage] = []
        while True:
            try:
                chunk = os.read(self.message_fd, 1 << 16)
            except BlockingIOError:
                return drained
            if not chunk:
                return drained
            drained.extend(self._decode(chunk))

    def read_output(self) -> int | None:
        """Keep what the worker printed (its last lines): bytes read (0: none now); None at end of file."""
        try:
            chunk = os.read(self.output_fd, 1 << 16)
        except BlockingIOError:
            return 0
        if not chunk:
            if self._partial_line:
                self._output.append(self._partial_line.decode("utf-8", "replace"))
                self._partial_line = b""
            return None
        *lines, self._partial_line = (self._partial_line + chunk).split(b"\n")
        self._output.extend(line.decode("utf-8", "replace") for line in lines)
        return len(chunk)

    def output_tail(self, lines: int = 40) -> str:
        """The worker's last output: all of it from where a crash report begins (faulthandler's
        fatal error, a traceback) if one is among the lines kept, else the last `lines` lines."""
        kept = list(self._output)
        # `in`, not startswith: pytest's progress line may still be open when the report begins.
        starts = [i for i, line in enumerate(kept) if any(m in line for m in CRASH_REPORT_STARTS)]
        if starts and len(kept) - starts[-1] > lines:
            return "\n".join(kept[starts[-1] :])
        return "\n".join(kept[-lines:])

    def send(self, command: wh.WorkerCommand) -> bool:
        """Send a command; False when the worker is already gone (its pipe is closed)."""
        with self._send_lock:
            if self._command_fd < 0:
                return False
            try:
                view = memoryview(wh.encode(command))
                while view:
                    view = view[os.write(self._command_fd, view) :]
            except OSError:
                return False
            return True

    def kill(self) -> None:
        """SIGKILL the worker and everything it started; safe to call twice."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit and return the exit code (negative: killed by a signal)."""
        assert self._proc is not None
        return self._proc.wait(timeout)

    def close(self) -> None:
        """Close this side's pipes (after the exit was seen); safe to call twice."""
        with self._send_lock:
            for fd in (self._command_fd, self.message_fd):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._command_fd = self.message_fd = -1
        if self._proc is not None and self._proc.stdout is not None:
            # Closed here: left to the garbage collector, it is a ResourceWarning in the
            # coordinator's session, an error in a suite with `filterwarnings = error`.
            self._proc.stdout.close()
        self.output_fd = -1
