"""A run's agents started and stopped: the stack file parsed first, each agent's config, the
backend they run on, warm stacks borrowed, and what dead agents left removed at the end.

With an explicit `--agents N` the agents start while the coordinator collects (or earlier,
from collection_stack.py), as xdist's workers do; otherwise once the plan says how many. Those
started early and never given a run are stopped, their stacks down, before the backend goes.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.front.options import RunConfig
from orchestrator.front.worker_options import args_for_workers
from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import USER_ERRORS

__all__ = [
    "AgentStart",
    "check_engine_and_sweep",
    "current_owner",
    "load_stack",
    "remove_leftovers",
    "stack_notes",
    "warm_field",
]


class AgentStart:
    """The agents of one run: their configs, the backend they run on, and those started early."""

    def __init__(
        self, config: pytest.Config, options: RunConfig, stack_text: str, say: Callable[[str], None]
    ) -> None:
        self.config = config
        self.options = options
        self.stack_text = stack_text
        self.run_id = uuid.uuid4().hex[:10]
        self.backend: Any = None
        self.started_at = 0.0
        # Agents started before the coordinator's collection (an explicit --agents N): their configs.
        self.early_configs: list[p.AgentConfig] = []
        # What the agents' start says (warm instances, warm stacks): the coordinator's console.
        self.say = say
        # The warm stacks this run borrows: not looked up yet (False), none (None), or them.
        self._warm: Any = False

    def start_early(self) -> None:
        """With --agents N, start the agents now: their stacks come up and their workers start
        while this session collects, instead of after it (xdist's workers also start at once)."""
        if self.options.agents is None or self.options.planning or self.early_configs:
            return
        self.early_configs = self.configs(range(self.options.agents))
        self.start(self.early_configs)

    def configs(self, agent_ids: Iterable[int]) -> list[p.AgentConfig]:
        """The AgentConfig of each of `agent_ids`."""
        local = not self.options.address
        warm = self.warm_stacks()
        # Before pytest parsed its options (agents started from pytest_load_initial_conftests),
        # the early parse has them.
        basetemp = getattr(self.config.option, "basetemp", None) or getattr(
            self.config.known_args_namespace, "basetemp", None
        )
        return [
            p.AgentConfig(
                agent_id=agent_id,
                run_id=self.run_id,
                owner=current_owner(),
                cwd=str(self.config.invocation_params.dir),
                pytest_args=tuple(args_for_workers(self.config.invocation_params.args)),
                stack_text=self.stack_text,
                stack_path=self.options.stack_file or "",
                timeout=self.options.timeout,
                python=sys.executable,
                env=dict(os.environ) if local else None,
                basetemp=str(basetemp) if basetemp else None,
                warm_id=warm_field(warm, agent_id, "warm_id"),
                warm_owner=warm_field(warm, agent_id, "warm_owner"),
                warm_dir=warm_field(warm, agent_id, "warm_dir"),
                swept=self.swept,
            )
            for agent_id in agent_ids
        ]

    @property
    def swept(self) -> bool:
        """Whether the coordinator sweeps the agents' engine, so that they need not: with a stack
        file on this machine, `Coordinator.check_engine` does, beside their start (a cluster's
        agents each sweep their own node). A sweep removes only dead runs' containers, never
        those of a live run: its order with their start does not matter."""
        return bool(self.stack_text) and not self.options.address

    def start(self, configs: Sequence[p.AgentConfig]) -> None:
        """Make the backend and start these agents on it (without waiting for them)."""
        from orchestrator.run.backends import make_backend

        if self.options.backend == "ray" and not self.options.address:
            from orchestrator.run import warm

            instance = warm.current()
            if instance is not None:
                self.say(
                    f"orchestrate: joining the warm Ray instance at {instance.address} (orchestrate down stops it)"
                )
        self.backend = make_backend(
            self.options.backend,
            self.options.address,
            working_dir=str(self.config.invocation_params.dir),
            excludes=self.options.excludes,
        )
        self.started_at = time.monotonic()
        self.backend.start(configs)

    def stop(self, warnings: list[str]) -> None:
        """Stop what is left: agents started early and never run (a collection error, no tests,
        an interrupt), stacks down, then the backend, which waits until every agent has taken
        its stack down, so that nothing of the run is left when the command returns."""
        if self.early_configs and self.backend is not None:
            from orchestrator.run.loop import stop_unused_agents

            stop_unused_agents(self.backend, self.early_configs)
            if self.stack_text and not self.options.address:
                remove_leftovers(self.run_id, warnings)
            self.early_configs = []
        if self.backend is not None:
            self.backend.shutdown()
            self.backend = None

    def warm_stacks(self) -> Any:
        """The warm stacks of `orchestrate up --stack` this run borrows (None: none), said once."""
        if self._warm is not False:
            return self._warm
        self._warm = None
        if not self.stack_text or self.options.address or self.options.stack_file is None:
            return None
        from orchestrator.run import warm_stacks

        stacks = warm_stacks.current(Path(self.config.invocation_params.dir) / warm_stacks.STATE_PATH)
        if stacks is None:
            return None
        if stacks.stack != os.path.realpath(self.options.stack_file):
            self.say(
                f"orchestrate: the warm stacks here are of {stacks.stack}, not of this run's stack file: "
                "every agent brings up a stack of its own"
            )
            return None
        self.say(
            f"orchestrate: borrowing the {stacks.agents} warm stacks of `orchestrate up` (each reset to "
            "its snapshot first; `orchestrate down` removes them)"
        )
        self._warm = stacks
        return stacks


def warm_field(stacks: Any, agent_id: int, name: str) -> str:
    """One AgentConfig field giving agent `agent_id` its warm slot ("" without warm stacks)."""
    if stacks is None:
        return ""
    from orchestrator.run.warm_stacks import borrow_fields

    return borrow_fields(stacks, agent_id).get(name, "")


def load_stack(path: str) -> str:
    """Validate the stack file before anything starts; its text."""
    from agents.stack import load_stack_file

    load_stack_file(path)
    return Path(path).read_text(encoding="utf-8")


def check_engine_and_sweep(say: Callable[[str, bool], None]) -> None:
    """Stacks on this machine: raise DockerUnavailable (one line) unless its Docker engine
    answers, and remove what dead runs left on it. On a cluster each agent checks and sweeps its
    own node."""
    from agents.stack import check_engine, sweep

    check_engine()
    removed = sweep(all_owners=False)
    if any(removed):
        say(
            f"orchestrate: warning: removed {removed[0]} container(s) and {removed[1]} network(s) left by dead runs",
            True,
        )


def stack_notes(config: pytest.Config, options: RunConfig, stack_file: str) -> tuple[str, list[str]]:
    """What to say of the stack file's per-agent pytest_args and env: the hint for tests not
    collected by an agent (the coordinator collects without them, or with its own stack's), and
    a warning when the user gave an option those pytest_args give per agent."""
    from agents.stack import load_stack_file
    from agents.worker import without_stack_options

    spec = load_stack_file(stack_file)
    templates = spec.pytest_arg_templates
    per_agent = [
        *(f"pytest_args {a}" for a in templates if a.startswith("-")),
        *(f"env {k}" for k in spec.env),
    ]
    hint = ""
    if per_agent and spec.collection_stack and not options.address:
        hint = (
            f"the coordinator collected with the stack file's {', '.join(per_agent)} rendered for "
            "a stack of its own: does collection depend on something else that differs per agent?"
        )
    elif per_agent:
        hint = (
            f"the stack file gives each agent its own {', '.join(per_agent)}; the coordinator collects "
            "without them: does collection depend on the service (names, versions, capabilities)?"
        )
    _, replaced = without_stack_options(args_for_workers(config.invocation_params.args), templates)
    if not replaced:
        return hint, []
    names = ", ".join(replaced)
    return hint, [
        f"{names} {'is' if len(replaced) == 1 else 'are'} given after -- and in the stack file's "
        f"pytest_args: each agent's worker gets only the stack file's, rendered for its own stack "
        f"(the coordinator's collection keeps yours)"
    ]


def remove_leftovers(run_id: str, warnings: list[str]) -> None:
    """Remove what agents that died without taking their stack down left (a killed actor)."""
    from agents.stack import remove_run

    try:
        removed = remove_run(run_id)
    except USER_ERRORS as exc:
        warnings.append(f"could not remove the containers of this run's dead agents: {exc}")
        return
    if removed:
        warnings.append(f"removed {removed} container(s) that agents which died left behind")


def current_owner() -> str:
    """Who runs this: the owner label of the containers this run's agents start."""
    from agents.stack import current_owner as owner

    return owner()
