"""pytest plugin of the long-lived worker process: runs the node ids its agent sends, streams reports.

Loaded with `-p agents.plugin` into the pytest process that agents/worker.py starts. pytest
collects as usual; then this plugin's `pytest_runtestloop` replaces pytest's own loop: it reads
commands from its agent on one pipe and writes messages on another (msgpack frames, see
orchestrator/protocol/wire.py), so nothing a test prints can corrupt the stream.

Commands (agent -> worker):  run {node_ids}, flush, finish
Messages (worker -> agent):  collected {node_ids}, started {node_id}, report {report},
                             need_work, not_collected {node_ids, similar}, stopping {reason}

pytest tears fixtures down according to the *next* item, so like pytest-xdist's workers the
last item held is only run when the next one is known (`run`), or with no next item (`flush`,
`finish`, which tear session fixtures down). `need_work` is sent when the second-to-last held
item starts, so the next unit usually arrives before the worker would wait for it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from typing import Any

import pytest

from orchestrator.protocol import wire

FDS_ENV = "ORCHESTRATE_WORKER_FDS"


class WorkerPlugin:
    """The worker's end of the agent <-> worker protocol."""

    def __init__(self, config: pytest.Config, command_fd: int, message_fd: int) -> None:
        self.config = config
        self._out = wire.FrameWriter(message_fd)
        self._commands: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._items: dict[str, pytest.Item] = {}
        self._held: deque[pytest.Item] = deque()
        self._finishing = False
        self._asked_for_work = False
        self._flush_wanted = False
        reader = wire.FrameReader(command_fd)
        threading.Thread(
            target=self._read_commands, args=(reader,), name="orchestrate-commands", daemon=True
        ).start()

    def _read_commands(self, reader: wire.FrameReader) -> None:
        try:
            for msg in reader:
                self._commands.put(msg)
        finally:
            # The agent went away: behave as if it said `finish`.
            self._commands.put(None)

    def send(self, tag: str, **fields: Any) -> None:
        with self._lock:
            self._out.send(wire.message(tag, **fields))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.send("collected", node_ids=[item.nodeid for item in session.items])

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.send("started", node_id=nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.send("report", node_id=report.nodeid, report=data)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        self._items = {item.nodeid: item for item in session.items}
        while True:
            while self._take_command(block=False):
                pass
            held = self._held
            if len(held) >= 2:
                item = held.popleft()
                if len(held) == 1:
                    self._ask_for_work()
                self._run(item, held[0])
            elif held and (self._finishing or self._flush_wanted):
                self._flush_wanted = False
                self._run(held.popleft(), None)
            elif not held and self._finishing:
                return True
            else:
                self._ask_for_work()
                self._take_command(block=True)
                continue
            if session.shouldfail or session.shouldstop:
                self.send("stopping", reason=str(session.shouldfail or session.shouldstop))
                return True

    def _ask_for_work(self) -> None:
        if not self._asked_for_work:
            self.send("need_work")
            self._asked_for_work = True

    def _take_command(self, block: bool) -> str | None:
        """Apply one command from the agent; returns its tag, or None when none was waiting."""
        try:
            command = self._commands.get(block=block)
        except queue.Empty:
            return None
        if command is None:
            self._finishing = True
            return "finish"
        tag, msg = wire.check(command)
        if tag == "run":
            unknown = [n for n in msg["node_ids"] if n not in self._items]
            if unknown:
                # What this worker collected instead, where the names match: the coordinator shows
                # the difference (e.g. a parametrization that depends on the process).
                bases = {node_id.split("[", 1)[0] for node_id in unknown}
                similar = [n for n in self._items if n.split("[", 1)[0] in bases]
                self.send("not_collected", node_ids=unknown, similar=similar)
            self._held.extend(self._items[n] for n in msg["node_ids"] if n in self._items)
            self._asked_for_work = False
            # The last held item has a successor again: no flush until the agent asks anew.
            self._flush_wanted = False
        elif tag == "finish":
            self._finishing = True
        elif tag == "flush":
            # Remembered, not applied here: a flush that arrives with a `run` it follows (both
            # taken before the first of its items ran) is for the last of those items.
            self._flush_wanted = True
        else:
            raise ValueError(f"unknown command {tag!r}")
        return tag

    def _run(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    fds = os.environ.get(FDS_ENV)
    if not fds or hasattr(config, "workerinput"):
        return
    command_fd, message_fd = (int(fd) for fd in fds.split(","))
    # Only this process speaks on these pipes: no child process (a test's subprocess) inherits them.
    os.environ.pop(FDS_ENV, None)
    config.pluginmanager.register(WorkerPlugin(config, command_fd, message_fd), "orchestrate-worker")
