"""The one error tree of orchestrate; every error a user can cause is one of these.

    OrchestrateError                 base; `exit_code` is what the CLI exits with
    ├── UsageError                   bad option, missing path, bad pytest flag (exit 4)
    │   ├── StackFileError           the stack file is missing or invalid (exit 4)
    │   └── ArtifactError            `merge` was given artifacts that do not fit together (exit 4)
    ├── EnvironmentProblem           something outside us is missing (exit 4)
    │   ├── DockerUnavailable        no Docker engine answers
    │   ├── ClusterUnreachable       `--address` names a Ray cluster that does not answer
    │   └── VersionMismatch          an agent's Python, orchestrate or pytest differs from ours
    ├── CollectionFailed             pytest could not collect the suite (exit 2, like pytest)
    ├── NoTestsCollected             nothing to run (exit 5, like pytest)
    ├── StackFailed                  an agent's container stack did not come up (per agent)
    └── InternalError                a broken invariant: a bug in orchestrate (exit 3)

Docker and Ray errors are translated at the module that talks to them
(`raise DockerUnavailable(...) from exc`), so nothing above the edge imports their types.
A side effect that does not change the result (writing the duration store) warns instead.
"""

from __future__ import annotations

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


class StackFileError(UsageError):
    pass


class ArtifactError(UsageError):
    pass


class EnvironmentProblem(OrchestrateError):
    exit_code = EXIT_USAGE_ERROR


class DockerUnavailable(EnvironmentProblem):
    pass


class ClusterUnreachable(EnvironmentProblem):
    pass


class VersionMismatch(EnvironmentProblem):
    pass


class CollectionFailed(OrchestrateError):
    """pytest's collection failed; `output` is what pytest printed, shown as is."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, output: str = "", exit_code: int = EXIT_INTERRUPTED) -> None:
        super().__init__(message)
        self.output = output
        self.exit_code = exit_code


class NoTestsCollected(OrchestrateError):
    exit_code = EXIT_NO_TESTS


class StackFailed(OrchestrateError):
    """An agent's stack failed: names the service and carries its last log lines."""

    def __init__(self, message: str, service: str = "", logs: str = "") -> None:
        super().__init__(message)
        self.service = service
        self.logs = logs


class InternalError(OrchestrateError):
    exit_code = EXIT_INTERNAL_ERROR
