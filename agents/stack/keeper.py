"""The keeper of warm stacks: `python -m agents.stack.keeper`, started by `orchestrate up --stack`.

A process of its own session that brings up every slot (agents/stack/warm.py: the stack, its
setup through the cache, its snapshot, the slot's record): one per agent, and one for the
coordinator's collection when the stack file gives it a stack of its own (slot COLLECTOR_ID).
It writes one line on its stdout (`ready`, or `failed: <why>` after removing what it made)
and then waits for a signal, doing nothing: it is only the owner of the warm stacks (their
`orchestrate.owner` label names its pid), so that a sweep removes them once it is gone.
SIGTERM (from `orchestrate down`), SIGINT or SIGHUP: it removes every container and network of
its warm stacks, drops the slots' records and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agents.stack import current_owner, load_stack_file, remove_run
from agents.stack.warm import WarmSlot, open_slot
from orchestrator.protocol.errors import StackError
from orchestrator.protocol.values import COLLECTOR_ID

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _build(slot: WarmSlot, stack_path: str, cwd: str) -> None:
    """Bring `slot` up (or adopt it: a keeper restarted over kept stacks), under its lock."""
    fd = slot.lock()
    if fd is None:
        raise StackError(f"warm stack {slot.slot} is locked by another process")
    try:
        spec = load_stack_file(stack_path)
        up = open_slot(spec, slot, cwd, time.monotonic)
        up.stack.keep()
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.stack.keeper")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--warm-id", required=True)
    parser.add_argument("--cwd", required=True)
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    owner = current_owner()
    try:
        indexes = list(range(args.agents))
        if load_stack_file(args.stack).collects_on_own_stack:
            indexes.append(COLLECTOR_ID)  # the coordinator's collection stack (one per run)
        slots = [WarmSlot(args.warm_id, index, owner, directory) for index in indexes]
        with ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="warm-up") as pool:
            for future in [pool.submit(_build, slot, args.stack, args.cwd) for slot in slots]:
                future.result()
    except Exception as exc:
        _remove(args.warm_id, directory)
        print(f"failed: {' '.join(str(exc).split())}", flush=True)
        return 1
    # From here a signal waits for sigwait. Before (while the stacks come up, their setup
    # commands inheriting this thread's mask), SIGTERM ends the keeper at once, and `orchestrate
    # down`, which sent it, removes what it made by label.
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    print("ready", flush=True)
    with contextlib.suppress(OSError):
        sys.stdout.close()
    signal.sigwait(_SIGNALS)
    _remove(args.warm_id, directory)
    return 0


def _remove(warm_id: str, directory: Path) -> None:
    """Every container and network of these warm stacks, then their records."""
    with contextlib.suppress(StackError):
        remove_run(warm_id)
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
