"""The one error tree of orchestrate; every error a user can cause is one of these.

    OrchestrateError                 base; `exit_code` is what the CLI exits with
    ├── UsageError                   bad option, missing path, bad pytest flag (exit 4)
    │   └── ArtifactError            `merge` was given artifacts that do not fit together (exit 4)
    ├── EnvironmentProblem           something outside us is missing (exit 4)
    │   ├── ClusterUnreachable       `--address` names a Ray cluster that does not answer
    │   └── VersionMismatch          an agent's Python, orchestrate or pytest differs from ours
    ├── StackError                   the stack layer's (agents/stack/)
    │   ├── StackFileError           the stack file is missing or invalid (exit 4)
    │   ├── DockerUnavailable        no Docker engine answers (exit 4)
    │   └── StackFailed              an agent's stack did not come up, died, or could not be
    │                                reset/removed (per agent; reaching the user only through
    │                                `orchestrate clean` or the sweep before a run: exit 4)
    └── InternalError                a broken invariant: a bug in orchestrate (exit 3)

In the protocol package because both sides raise them: the agents (their stacks) and the
coordinator. Collection errors and an empty collection are pytest's own to report (the
coordinator is a pytest session), with pytest's exit codes 2 and 5.

Docker and Ray errors are translated at the module that talks to them
(`raise DockerUnavailable(...) from exc`), so nothing above the edge imports their types.
A side effect that does not change the result (writing the duration store) warns instead.
"""

from __future__ import annotations

__all__ = [
    "EXIT_INTERNAL_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NO_TESTS",
    "EXIT_OK",
    "EXIT_TESTS_FAILED",
    "EXIT_USAGE_ERROR",
    "USER_ERRORS",
    "ArtifactError",
    "ClusterUnreachable",
    "DockerUnavailable",
    "EnvironmentProblem",
    "InternalError",
    "OrchestrateError",
    "StackError",
    "StackFailed",
    "StackFileError",
    "UsageError",
    "VersionMismatch",
]

# pytest's exit codes, which orchestrate reuses so CI scripts need no change.
EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_INTERRUPTED = 2
EXIT_INTERNAL_ERROR = 3
EXIT_USAGE_ERROR = 4
EXIT_NO_TESTS = 5


class OrchestrateError(Exception):
    """Base class: a one-line message for the user, and the exit code it maps to."""

    exit_code = EXIT_INTERNAL_ERROR


class UsageError(OrchestrateError):
    exit_code = EXIT_USAGE_ERROR


class ArtifactError(UsageError):
    pass


class EnvironmentProblem(OrchestrateError):
    exit_code = EXIT_USAGE_ERROR


class ClusterUnreachable(EnvironmentProblem):
    pass


class VersionMismatch(EnvironmentProblem):
    pass


class StackError(OrchestrateError):
    """Base of the stack layer's errors."""

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


class InternalError(OrchestrateError):
    exit_code = EXIT_INTERNAL_ERROR


# Everything with a one-line message and an exit code for the user.
USER_ERRORS: tuple[type[Exception], ...] = (OrchestrateError,)
