"""What each `orchestrate` command does, given its frozen config. Called by orchestrator/cli.py.

`run`: collect -> estimate -> plan -> session on agents -> report -> update the duration store.
`plan`: the same up to the plan, printed. `shard`/`merge`: the CI-runner split (no Ray).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rich.console import Console

from agents.agent import AgentConfig
from agents.stack import StackSpec, current_owner, load_stack_file
from orchestrator import warm
from orchestrator.backends import make_backend
from orchestrator.collect import collect, start_collection
from orchestrator.config import RunConfig
from orchestrator.durations.estimate import estimate_units
from orchestrator.durations.store import DurationStore
from orchestrator.errors import EXIT_OK, ArtifactError, OrchestrateError
from orchestrator.model import Collection, Outcome, Plan, RunReport, TestResult
from orchestrator.report import LiveProgress, read_results, render_summary, write_junit, write_results
from orchestrator.scheduling import make_scheduler, plan_lpt
from orchestrator.scheduling.split import split_oversized
from orchestrator.session import Session
from orchestrator.sharding import EXTRA_KEY, ShardArtifact, ShardRecord, merge_shards

# Durations of these outcomes are what the test costs (a skip costs almost nothing, and that is
# worth knowing); a crash, a timeout or a test that never ran says nothing about it.
_TIMED_OUTCOMES = frozenset(
    {Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED}
)


@dataclass(frozen=True, slots=True)
class _Prepared:
    collection: Collection
    plan: Plan
    store: DurationStore


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _warn(message: str) -> None:
    print(f"orchestrate: warning: {message}", file=sys.stderr)


def _load_store(path: str) -> DurationStore:
    store, warning = DurationStore.load(path)
    if warning:
        _warn(warning)
    return store


def _prepare(config: RunConfig, agents: int) -> _Prepared:
    store = _load_store(config.durations_path)
    collection = collect(config.collect_args, group_by=config.group_by, cwd=config.cwd)
    return _plan(collection, store, agents, config.split)


def _plan(collection: Collection, store: DurationStore, agents: int, split: bool) -> _Prepared:
    if split:
        collection = _split(collection, store, agents)
    estimates = estimate_units(collection.units, store)
    # More agents than units would only start idle stacks.
    plan = plan_lpt(estimates, max(1, min(agents, len(collection.units))))
    return _Prepared(collection, plan, store)


def _split(collection: Collection, store: DurationStore, agents: int) -> Collection:
    """The collection with oversized splittable units cut into chunks (see scheduling/split.py)."""
    units = split_oversized(estimate_units(collection.units, store), agents)
    return collection if len(units) == len(collection.units) else replace(collection, units=units)


def _load_stack(config: RunConfig) -> StackSpec | None:
    if not config.stack_file:
        return None
    spec = load_stack_file(config.stack_file)
    if config.address and config.backend == "ray":
        # The stacks run on the cluster's nodes, each on its own engine: this machine needs none.
        return spec
    from agents.stack import check_engine, sweep

    check_engine()
    removed = sweep(all_owners=False)
    if any(removed):
        _warn(f"removed {removed[0]} container(s) and {removed[1]} network(s) left by dead runs")
    return spec


def run(config: RunConfig) -> int:
    """`orchestrate run`: the whole pipeline on Ray (or local) agents."""
    stack = _load_stack(config)
    console = _console()
    store = _load_store(config.durations_path)
    # Ray start-up and collection both take seconds and are independent: overlap them. Ray
    # starts in the main thread (its processes die with the thread that started them), and the
    # collection runs as a subprocess meanwhile.
    pending = start_collection(config.collect_args, group_by=config.group_by, cwd=config.cwd)
    try:
        config = _join_warm_instance(config, console)
        backend = make_backend(
            config.backend, config.address, warm=config.warm, working_dir=config.cwd, excludes=config.excludes
        )
    except BaseException:
        pending.cancel()
        raise
    try:
        prepared = _plan(pending.wait(), store, config.agents, config.split)
        report = _execute(config, prepared, stack, backend, console)
        return _finish(config, prepared, report, console, extra={})
    finally:
        # After the summary is printed: the agents and their stacks are already down, and
        # stopping Ray itself takes a second the user need not wait for to read the result.
        backend.shutdown()


def _execute(
    config: RunConfig, prepared: _Prepared, stack: StackSpec | None, backend, console: Console
) -> RunReport:
    plan = prepared.plan
    run_id = uuid.uuid4().hex[:10]
    local = config.backend == "local" or not config.address or config.warm
    configs = [
        AgentConfig(
            agent_id=shard.agent_id,
            run_id=run_id,
            owner=current_owner(),
            cwd=config.cwd,
            pytest_args=config.collect_args,
            stack=stack,
            timeout=config.timeout,
            max_crashes=config.max_crashes,
            python=sys.executable,
            env=dict(os.environ) if local else None,
        )
        for shard in plan.shards
    ]
    scheduler = make_scheduler(config.schedule, plan)
    console.print(
        f"orchestrate: {plan.tests} tests in {len(prepared.collection.units)} units on {plan.agents} agents; "
        f"predicted {plan.makespan:.1f}s (lower bound {plan.lower_bound:.1f}s)",
        markup=False,
    )
    with LiveProgress(console, total=plan.tests, agent_ids=[s.agent_id for s in plan.shards]) as progress:
        session = Session(
            prepared.collection,
            scheduler,
            backend,
            configs,
            maxfail=prepared.collection.maxfail,
            reruns=config.reruns,
            max_crashes=config.max_crashes,
            progress=progress,
        )
        try:
            return session.run()
        finally:
            if stack is not None and local:
                _remove_leftovers(run_id)


def _remove_leftovers(run_id: str) -> None:
    """Remove what agents that died without taking their stack down left (a killed actor).

    Only where the agents share this machine's Docker engine; on a cluster, the next run's or
    `orchestrate clean`'s sweep on each node does it.
    """
    from agents.stack import remove_run

    try:
        removed = remove_run(run_id)
    except OrchestrateError as exc:
        _warn(f"could not remove the containers of this run's dead agents: {exc}")
        return
    if removed:
        _warn(f"removed {removed} container(s) that agents which died left behind")


def _finish(config: RunConfig, prepared: _Prepared, report: RunReport, console: Console, extra: dict) -> int:
    if config.junitxml:
        write_junit(report, config.junitxml, prepared.collection.junit)
    if config.results:
        write_results(report, config.results, extra=extra)
    render_summary(report, console, verbose=config.verbose)
    _update_store(prepared.store, report.results, config.durations_path)
    return report.exit_code


def _update_store(store: DurationStore, results: Sequence[TestResult], path: str) -> None:
    observations = {r.node_id: r.duration for r in results if r.outcome in _TIMED_OUTCOMES}
    if not observations:
        return
    store.update(observations)
    try:
        store.save(path)
    except OSError as exc:
        # The run's result stands; only the next plan is less informed.
        _warn(f"could not write the duration store {path}: {exc.strerror or exc}")


def plan(config: RunConfig) -> int:
    """`orchestrate plan`: print the plan without running anything."""
    from orchestrator.report.tables import render_plan

    prepared = _prepare(config, config.agents)
    render_plan(prepared.plan, len(prepared.store), _console())
    return EXIT_OK


def shard(config: RunConfig, index: int, total: int) -> int:
    """`orchestrate shard`: run CI runner `index` of `total`'s part of the plan, here, without Ray.

    Every runner plans the whole suite for `total` runners from the same collection and
    durations file, so all get the same plan and fingerprint; this one runs its own part on
    `config.agents` local agents and records the whole plan in its results file for `merge`.
    """
    console = _console()
    store = _load_store(config.durations_path)
    collection = collect(config.collect_args, group_by=config.group_by, cwd=config.cwd)
    if config.split:
        collection = _split(collection, store, total)
    full_plan = plan_lpt(estimate_units(collection.units, store), total)
    fingerprint = full_plan.fingerprint()
    mine = full_plan.shards[index - 1]
    units = tuple(estimate.unit for estimate in mine.units)
    console.print(
        f"orchestrate: runner {index} of {total}, plan fingerprint {fingerprint}: {len(mine.node_ids)} of "
        f"{full_plan.tests} tests in {len(units)} units, predicted {mine.seconds:.1f}s "
        f"(slowest runner {full_plan.makespan:.1f}s)",
        markup=False,
        soft_wrap=True,  # one line, whatever the width: CI logs are grepped for the fingerprint
    )
    extra = {EXTRA_KEY: ShardRecord.of_plan(full_plan, index, collection.junit).to_json()}
    if not units:
        console.print("orchestrate: nothing to run here (more runners than units)", markup=False)
        empty = RunReport((), (), 0.0, EXIT_OK, plan_fingerprint=fingerprint)
        if config.junitxml:
            write_junit(empty, config.junitxml, collection.junit)
        if config.results:
            write_results(empty, config.results, extra=extra)
        return EXIT_OK
    stack = _load_stack(config)
    # Chunks were cut for the whole plan already; a runner's part is not cut again.
    prepared = _plan(replace(collection, units=units), store, config.agents, split=False)
    local = replace(config, backend="local", address=None)
    backend = make_backend("local")
    try:
        report = _execute(local, prepared, stack, backend, console)
    finally:
        backend.shutdown()
    return _finish(config, prepared, replace(report, plan_fingerprint=fingerprint), console, extra=extra)


def merge(
    artifacts: Sequence[str], junitxml: str | None, results: str | None, durations: str, verbose: bool
) -> int:
    """`orchestrate merge`: one report, JUnit file and duration store from every runner's artifact.

    Refuses artifacts of different plans, or two of one runner (ArtifactError, exit 4); the
    tests of a runner whose artifact is missing are reported as not run (exit 1).
    """
    loaded = [ShardArtifact.from_results(path, *read_results(path)) for path in artifacts]
    merged = merge_shards(loaded)
    if junitxml:
        write_junit(merged.report, junitxml, merged.junit)
    if results:
        write_results(merged.report, results, extra={"merged": list(artifacts), "runners": merged.total})
    render_summary(merged.report, _console(), verbose=verbose)
    _update_store(_load_store(durations), merged.report.results, durations)
    return merged.report.exit_code


def durations_show(path: str, n: int) -> int:
    from orchestrator.report.tables import render_slowest

    store = _load_store(path)
    render_slowest(store.slowest_units(n), len(store), _console())
    return EXIT_OK


def durations_import(files: Sequence[str], path: str) -> int:
    store = _load_store(path)
    total = 0
    for file in files:
        if file.endswith(".xml"):
            total += store.import_junit_xml(file)
        else:
            total += store.import_pytest_split(file)
    try:
        store.save(path)
    except OSError as exc:
        raise ArtifactError(f"could not write the duration store {path}: {exc.strerror or exc}") from exc
    print(f"imported {total} durations into {path} ({len(store)} tests known)")
    return EXIT_OK


def _join_warm_instance(config: RunConfig, console: Console) -> RunConfig:
    """Use the warm Ray instance of `orchestrate up`, when one runs and no --address was given."""
    if config.backend != "ray" or config.address:
        return config
    instance = warm.current()
    if instance is None:
        return config
    console.print(
        f"orchestrate: joining the warm Ray instance at {instance.address} (orchestrate down stops it)"
    )
    return replace(config, address=instance.address, warm=True)


def up(agents: int) -> int:
    """`orchestrate up`: start the warm Ray instance and its `agents` warm agent actors."""
    from orchestrator.backends.ray import start_warm_agents

    instance, started = warm.up(num_cpus=os.cpu_count() or 1)
    verb = "started" if started else "already running:"
    created = start_warm_agents(instance.address, agents)
    print(
        f"orchestrate: {verb} warm Ray instance at {instance.address} with {agents} warm agents "
        f"({created} new); `orchestrate down` stops it"
    )
    return EXIT_OK


def down() -> int:
    """`orchestrate down`: stop the warm Ray instance."""
    instance = warm.down()
    print(
        "orchestrate: no warm Ray instance was running"
        if instance is None
        else f"orchestrate: stopped the warm Ray instance at {instance.address}"
    )
    return EXIT_OK


def clean(all_owners: bool) -> int:
    from agents.stack import check_engine, sweep

    check_engine()
    containers, networks = sweep(all_owners=all_owners)
    print(f"removed {containers} container(s) and {networks} network(s)")
    return EXIT_OK
