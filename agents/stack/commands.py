"""The stack file's shell commands (x-orchestrate `setup`, `reset_commands`), run on the agent.

Called by agents/stack/docker.py after the services are ready (setup) and before each unit
(reset commands). A command that cannot start or exits non-zero is a StackFailed naming it,
with the end of its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agents.stack import stack_env_json
from agents.stack.protocol import StackEndpoints
from orchestrator.protocol.errors import StackFailed

__all__ = ["run_commands"]

# How much of a failing command's output its error keeps.
OUTPUT_CHARS = 4000


def run_commands(
    commands: tuple[str, ...],
    kind: str,
    cwd: str | Path,
    endpoints: StackEndpoints,
    clock: Callable[[], float],
) -> float:
    """Run `commands` in `cwd` with the stack's env, in order; returns the seconds they took.

    `kind` ("setup command", "reset command") names the command in errors.
    """
    if not commands:
        return 0.0
    started_at = clock()
    visible = StackEndpoints(env=endpoints.env, services=endpoints.services)
    process_env = {**os.environ, **visible.env, "ORCHESTRATE_STACK": stack_env_json(visible)}
    # `python` in a command means the interpreter running orchestrate (the one with the suite's
    # dependencies), as in an activated virtualenv, even when it is not on PATH.
    interpreter_dir = os.path.dirname(sys.executable)
    if interpreter_dir:
        process_env["PATH"] = os.pathsep.join([interpreter_dir, process_env.get("PATH", os.defpath)])
    for command in commands:
        try:
            result = subprocess.run(
                command,
                shell=True,
                cwd=cwd,
                env=process_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                check=False,
            )
        except OSError as exc:
            raise StackFailed(f"{kind} {command!r} could not be started in {cwd}: {exc}") from exc
        if result.returncode != 0:
            output = result.stdout[-OUTPUT_CHARS:].rstrip()
            shown = f"; output:\n{output}" if output else " (no output)"
            raise StackFailed(
                f"{kind} {command!r} failed with exit code {result.returncode}{shown}", logs=output
            )
    return clock() - started_at
