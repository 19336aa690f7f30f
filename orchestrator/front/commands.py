"""The `orchestrate` commands that are not pytest sessions: durations, warm mode, clean-up.

Called by orchestrator/front/cli.py. `run`, `plan`, `shard` and `merge` are pytest sessions driven
by orchestrator/front/plugin.py; these manage what lives between runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrator.planning.durations.store import DurationStore
from orchestrator.protocol.errors import EXIT_OK, EXIT_TESTS_FAILED, EXIT_USAGE_ERROR, ArtifactError
from orchestrator.run import warm

if TYPE_CHECKING:
    from orchestrator.front.bench import BenchConfig


def _load_store(path: str) -> DurationStore:
    store, warning = DurationStore.load(path)
    if warning:
        print(f"orchestrate: warning: {warning}", file=sys.stderr)
    return store


def durations_show(path: str, n: int) -> int:
    from orchestrator.report.tables import slowest_text

    store = _load_store(path)
    print(slowest_text(store.slowest_units(n), len(store)))
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


def up(agents: int, stack_file: str | None = None) -> int:
    """`orchestrate up`: start the warm Ray instance and its `agents` warm agent actors; with
    `stack_file`, instead keep `agents` warm stacks for the local agents of later runs."""
    if stack_file:
        from agents.stack import load_stack_file
        from orchestrator.run import warm_stacks

        stacks, started = warm_stacks.up(stack_file, agents)
        verb = "started" if started else "already up:"
        collection = (
            " and one for the coordinator's collection"
            if load_stack_file(stack_file).collects_on_own_stack
            else ""
        )
        print(
            f"orchestrate: {verb} {stacks.agents} warm stacks{collection} of {stack_file} (keeper pid "
            f"{stacks.pid}); runs here borrow them, `orchestrate down` removes them"
        )
        return EXIT_OK
    from orchestrator.run.backends.ray_cluster import start_warm_agents

    instance, started = warm.up(num_cpus=os.cpu_count() or 1)
    verb = "started" if started else "already running:"
    created = start_warm_agents(instance.address, agents)
    print(
        f"orchestrate: {verb} warm Ray instance at {instance.address} with {agents} warm agents "
        f"({created} new); `orchestrate down` stops it"
    )
    return EXIT_OK


def down() -> int:
    """`orchestrate down`: remove the warm stacks and stop the warm Ray instance."""
    from orchestrator.run import warm_stacks

    stacks, leftover = warm_stacks.down()
    if stacks is not None:
        extra = f" ({leftover} container(s) its keeper had left)" if leftover else ""
        print(f"orchestrate: removed the {stacks.agents} warm stacks of {stacks.stack}{extra}")
    instance = warm.down()
    if instance is not None:
        print(f"orchestrate: stopped the warm Ray instance at {instance.address}")
    elif stacks is None:
        print("orchestrate: no warm Ray instance was running, and no warm stacks were up")
    return EXIT_OK


def clean(
    all_owners: bool, address: str | None = None, stale_after: float | None = None, cache: bool = False
) -> int:
    """`orchestrate clean`: remove what dead runs left, on this machine's engine or, with
    `address`, on the engine of every node of that Ray cluster (one sweep task per node).
    `cache`: also this machine's cached set-up state of stacks (each node keeps its own)."""
    from agents.stack import STALE_SECONDS

    stale = STALE_SECONDS if stale_after is None else stale_after
    if address:
        from orchestrator.run.backends.ray_cluster import sweep_nodes

        failed = False
        for node in sweep_nodes(address, all_owners, stale):
            where = f"{node.hostname} ({node.address})" if node.address != node.hostname else node.hostname
            if node.no_engine:
                print(f"{where}: no Docker engine, nothing to remove")
            elif node.problem:
                failed = True
                print(f"{where}: {node.problem}", file=sys.stderr)
            else:
                print(f"{where}: removed {node.containers} container(s) and {node.networks} network(s)")
        return EXIT_USAGE_ERROR if failed else EXIT_OK
    from agents.stack import check_engine, sweep

    check_engine()
    containers, networks = sweep(all_owners=all_owners, stale_after=stale)
    print(f"removed {containers} container(s) and {networks} network(s)")
    if cache:
        from agents.stack import clean_cache

        print(f"removed {clean_cache()} cached stack image(s)")
    return EXIT_OK


# --- the HTML report, `plan --agents LIST`, `report` and `bench` (issue 13) ---


def report(results_path: str, html: str) -> int:
    """`orchestrate report RESULTS --html PATH`: the HTML page of a results file, made later."""
    from orchestrator.report.html import write_html
    from orchestrator.report.results import read_document

    document = read_document(results_path)
    try:
        write_html(document, html)
    except OSError as exc:
        raise ArtifactError(f"could not write {html}: {exc.strerror or exc}") from exc
    print(f"orchestrate: wrote {html} ({len(document.get('tests') or [])} tests)")
    return EXIT_OK


def bench(config: BenchConfig) -> int:
    """`orchestrate bench`: measure this suite with orchestrate, serial pytest and xdist."""
    import json

    from orchestrator.front.bench import NOTE_BYTECODE, run_bench
    from orchestrator.report.html import write_html
    from orchestrator.report.tables import render_bench, stdout_console

    console = stdout_console()
    console.print(f"orchestrate bench: {NOTE_BYTECODE}", markup=False)
    result = run_bench(config, lambda line: console.print(f"orchestrate bench: {line}", markup=False))
    render_bench(result, console)
    document = result.to_json()
    try:
        if config.results:
            with open(config.results, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=1)
        if config.html:
            write_html({}, config.html, bench=document)
    except OSError as exc:
        raise ArtifactError(f"could not write the benchmark's results: {exc.strerror or exc}") from exc
    return EXIT_TESTS_FAILED if result.failed else EXIT_OK
