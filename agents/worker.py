"""The agent's handle on its long-lived pytest worker process, and that process's command line.

Called by agents/runtime.py: `worker_args(...)` builds the worker's pytest arguments;
`WorkerProcess.start()` launches `python -m pytest -p agents.plugin ARGS` with two private
pipes (commands in, messages out, see agents/plugin.py); `messages()` yields what the worker
says until it exits; the worker's own stdout/stderr is kept in a ring buffer so a crash report
can show its last lines. `pytest_command` is shared with the coordinator's collection.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agents.plugin import FDS_ENV
from orchestrator.protocol import wire

OUTPUT_LINES_KEPT = 200
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
    whole run), no stepwise flags, and the stack's own pytest arguments (rendered per agent).
    """
    args = [arg for arg in user_args if arg not in STEPWISE_FLAGS]
    if "no:cacheprovider" not in args and "-pno:cacheprovider" not in args:
        args += ["-o", f"cache_dir={os.path.join(private_dir, 'cache')}"]
    base = os.path.join(basetemp, f"agent-{agent_id}") if basetemp else os.path.join(private_dir, "basetemp")
    args += [f"--basetemp={base}", "--maxfail=0", *stack_args]
    return args


class WorkerProcess:
    """One pytest worker process; a new one replaces it after a crash or a timeout."""

    def __init__(self, python: str, args: Sequence[str], cwd: str, env: Mapping[str, str]) -> None:
        self._command = pytest_command(python, ["-p", "agents.plugin", *args])
        self._cwd = cwd
        self._env = dict(env)
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES_KEPT)
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: wire.FrameWriter | None = None
        self._reader: wire.FrameReader | None = None
        self._send_lock = threading.Lock()

    def start(self) -> None:
        command_read, command_write = os.pipe()
        message_read, message_write = os.pipe()
        env = dict(self._env)
        env[FDS_ENV] = f"{command_read},{message_write}"
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
        self._writer = wire.FrameWriter(command_write)
        self._reader = wire.FrameReader(message_read)
        threading.Thread(target=self._keep_output, name="orchestrate-worker-output", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc else 0

    def _keep_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        # Closed at end of file: left to the garbage collector, it is a ResourceWarning in the
        # coordinator's session, an error in a suite with `filterwarnings = error`.
        with self._proc.stdout as output:
            for raw in output:
                self._output.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._output)[-lines:])

    def send(self, tag: str, **fields: Any) -> bool:
        """Send a command; False when the worker is already gone (its pipe is closed)."""
        with self._send_lock:
            if self._writer is None:
                return False
            try:
                self._writer.send(wire.message(tag, **fields))
            except (BrokenPipeError, OSError):
                return False
            return True

    def messages(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield (tag, message) until the worker closes its end (it exited or was killed)."""
        assert self._reader is not None
        try:
            for raw in self._reader:
                yield wire.check(raw)
        except OSError:
            return

    def kill(self) -> None:
        """SIGKILL the worker and everything it started; safe to call twice."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit, close the pipes, and return the exit code (negative: killed by a signal)."""
        assert self._proc is not None
        code = self._proc.wait(timeout)
        with self._send_lock:
            for end in (self._writer, self._reader):
                if end is not None:
                    with contextlib.suppress(OSError):
                        end.close()
            self._writer = None
            self._reader = None
        return code
