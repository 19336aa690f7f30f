"""What the stack layer raises. Kept here so agents/ never imports the coordinator's errors.

    StackError            base; `exit_code` is what the CLI exits with when it reaches the user
    ├── StackFileError    the stack file is missing or invalid (exit 4, a usage error)
    ├── DockerUnavailable no Docker engine answers (exit 4, an environment problem)
    └── StackFailed       an agent's stack did not come up, died, or could not be reset/removed
                          (per agent; reaching the user only through `orchestrate clean` or the
                          sweep before a run: an environment problem, exit 4)

orchestrator/errors.py re-exports these for the coordinator (orchestrator -> agents is the
allowed direction); its CLI catches StackError beside its own OrchestrateError.
"""

from __future__ import annotations

EXIT_USAGE_ERROR = 4
EXIT_INTERNAL_ERROR = 3


class StackError(Exception):
    """Base of the stack layer's errors: a one-line message for the user."""

    exit_code = EXIT_INTERNAL_ERROR


class StackFileError(StackError):
    exit_code = EXIT_USAGE_ERROR


class DockerUnavailable(StackError):
    exit_code = EXIT_USAGE_ERROR


class StackFailed(StackError):
    """A stack failed: names the service (when one is to blame) and carries its last log lines."""

    exit_code = EXIT_USAGE_ERROR

    def __init__(self, message: str, service: str = "", logs: str = "") -> None:
        super().__init__(message)
        self.service = service
        self.logs = logs
