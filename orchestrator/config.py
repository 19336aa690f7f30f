"""The frozen configuration of one run, built by the CLI (the only place reading argv and env)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model import GroupBy

DEFAULT_DURATIONS_PATH = ".orchestrate/durations.msgpack"
# A test that crashes its worker is tried this many times in all before it is final.
DEFAULT_MAX_CRASHES = 2


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What `orchestrate run` (and `shard`) was asked to do."""

    paths: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    agents: int = 1
    address: str | None = None
    # Patterns (gitignore syntax) kept out of the code shipped to a cluster, besides .gitignore's.
    excludes: tuple[str, ...] = ()
    backend: str = "ray"
    durations_path: str = DEFAULT_DURATIONS_PATH
    junitxml: str | None = None
    results: str | None = None
    group_by: GroupBy = GroupBy.CLASS
    schedule: str = "dynamic"
    stack_file: str | None = None
    timeout: float | None = None
    max_crashes: int = DEFAULT_MAX_CRASHES
    reruns: int = 0
    cwd: str = "."
    verbose: bool = False
    # Cut oversized units without class/module fixtures into chunks (opt-in: tests of a class
    # may depend on each other's side effects, which no fixture scope shows).
    split: bool = False
    # Joined the warm local Ray instance of `orchestrate up` (agents share this machine).
    warm: bool = False

    @property
    def collect_args(self) -> tuple[str, ...]:
        """What every pytest process gets: the user's paths, then the args after `--`."""
        return (*self.paths, *self.pytest_args)
