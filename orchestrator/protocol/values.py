"""The values the coordinator and its agents share inside their messages: where an agent runs,
a unit of work, and the configuration an agent starts with (sent once, under its own tag).

Encoded and decoded by orchestrator/protocol/messages.py like the messages that carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["COLLECTOR_ID", "AgentConfig", "NodeInfo", "UnitWork"]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """Where an agent runs: the cluster node (Ray's node id and address), the host name, and
    what the node has (Ray's resource totals of that node; a local agent: this machine's CPUs),
    which the schedulers match against units' `@pytest.mark.orchestrate(resources=...)`."""

    node_id: str = ""
    address: str = ""
    hostname: str = ""
    resources: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnitWork:
    """One unit handed to an agent: its id and the node ids to run, in order."""

    unit_id: str
    node_ids: tuple[str, ...]


# The coordinator's collection agent's id (orchestrator/run/collection_stack.py): never one of a
# run's agents (0..N-1); also the warm stack slot `orchestrate up --stack` keeps for it.
COLLECTOR_ID = 999_999


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything an agent needs to start: sent once, when the backend creates the agent."""

    agent_id: int
    run_id: str
    # `<hostname>:<pid>` of the coordinator, stamped on every container (see agents.stack).
    owner: str
    cwd: str
    # The user's paths and pytest arguments, as the coordinator's own session got them.
    pytest_args: tuple[str, ...] = ()
    # The stack file's text and path (the agent parses it; relative paths are the file's).
    stack_text: str = ""
    stack_path: str = ""
    timeout: float | None = None
    python: str = ""
    # The worker's base environment; None: the agent process's own (an agent on another node).
    env: dict[str, str] | None = None
    # The user's --basetemp, if any: each agent's worker gets a directory of its own below it.
    basetemp: str | None = None
    # A collection agent: it brings its stack up, says how a worker would be started on it
    # (StackReady) and keeps the stack up until Finish; it never starts a worker.
    collector: bool = False
    # A warm stack to borrow (`orchestrate up --stack`, agents/stack/warm.py): the label its
    # containers carry as their run, the keeper process's `<hostname>:<pid>` that owns them, and
    # the folder of the slots' records and locks; empty: a stack of this run's own.
    warm_id: str = ""
    warm_owner: str = ""
    warm_dir: str = ""
    # The coordinator swept this agent's engine of dead runs' leftovers just before starting it
    # (a local agent: the same engine), so the agent's own sweep would only repeat it.
    swept: bool = False
