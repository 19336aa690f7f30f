"""pytest plugin of the long-lived worker process: runs the node ids its agent sends, streams reports.

Loaded with `-p agents.plugin` into the pytest process that agents/worker.py starts. pytest
collects (lazily: test files are only collected when a `run` names them, see
agents/collection.py); then this plugin's `pytest_runtestloop` replaces pytest's own loop: it
reads commands from its agent on one pipe and writes messages on another (msgpack frames, see
orchestrator/protocol/wire.py), so nothing a test prints can corrupt the stream.

The messages both ways are orchestrator/protocol/worker_hop.py's. One message ends a test:
`Ended`, sent at `pytest_runtest_logfinish` with all of that test's reports packed once
(orchestrator/protocol/reports.py: passing phases compact, anything else in pytest's own
serialised form). Frames are buffered and written together when the worker is about to start a
test (after its `Started`) or to wait for its agent, so a busy worker writes once per test and
everything a test's end says is on the pipe before the next test's code runs.

pytest tears fixtures down according to the *next* item, so like pytest-xdist's workers the
last item held is only run when the next one is known (`run`), or with no next item (`flush`,
`finish`, which tear session fixtures down). `NeedWork` is sent when the second-to-last held
item starts, so the next unit usually arrives before the worker would wait for it.

With ORCHESTRATE_RESET=1 (the stack resets between units), the worker asks `ResetWanted`
before the first item of each unit, after the previous item ran with this one as its next (so
its fixtures were torn down as pytest would), and waits for `ResetFinished`. A failed reset makes
every test of that unit a setup error; items are never skipped (pytest's SetupState needs every
item run in order). pytest.exit() and KeyboardInterrupt in a test are told to the agent
(`Exited`) before they go on, so pytest still ends its session normally.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import queue
import resource
import threading
import time
import warnings
from collections import deque
from typing import Any, assert_never

import pytest
from _pytest.reports import TestReport

from agents.collection import WorkerCollection, collect_mode, file_node_id
from agents.env_names import RESET_ENV
from agents.env_names import WORKER_FDS_ENV as FDS_ENV
from agents.quiet_terminal import quieten
from agents.run_queue import RunQueueClock
from orchestrator.protocol import wire
from orchestrator.protocol import worker_hop as wh
from orchestrator.protocol.reports import compact_phase, pack_test_reports
from orchestrator.protocol.versions import runtime_versions

# What a test's child processes can have computed for it: no more than its wall times the cores.
CORES = os.cpu_count() or 1


class WorkerPlugin:
    """The worker's end of the agent <-> worker protocol."""

    def __init__(
        self,
        config: pytest.Config,
        command_fd: int,
        message_fd: int,
        collection: WorkerCollection,
        resets: bool = False,
    ) -> None:
        self.config = config
        self._out_fd = message_fd
        self._outbox = bytearray()
        self._commands: queue.Queue[wh.WorkerCommand | None] = queue.Queue()
        self._lock = threading.Lock()
        # The reports of the test running now, until its logfinish sends them as one Ended.
        self._reports: list[TestReport] = []
        self._cpu_at_start = 0.0
        self._children_at_start = 0.0
        self._started_at = 0.0
        # What each test lost to the machine's load (agents/run_queue.py).
        self._run_queue = RunQueueClock()
        self._waited_at_start = 0.0
        self._collection = collection
        self._session: pytest.Session | None = None
        # (unit id, item, whether it is the first item of its unit here), in run order
        self._held: deque[tuple[str, pytest.Item, bool]] = deque()
        self._resets = resets
        self._unit_of: dict[str, str] = {}
        self._failed_resets: dict[str, str] = {}
        self._reset_reply: str | None = None
        self._finishing = False
        self._agent_gone = False
        self._asked_for_work = False
        self._flush_wanted = False
        reader = wire.FrameReader(command_fd)
        threading.Thread(
            target=self._read_commands, args=(reader,), name="orchestrate-commands", daemon=True
        ).start()

    def _read_commands(self, reader: wire.FrameReader) -> None:
        try:
            for frame in reader:
                command = wh.decode(frame)
                if not isinstance(command, wh.Run | wh.FlushHeld | wh.FinishRun | wh.ResetFinished):
                    raise wire.WireError(f"not a command for the worker: {command!r:.200}")
                self._commands.put(command)
        finally:
            # The agent went away: behave as if it said `finish`.
            self._commands.put(None)

    def say(self, message: wh.WorkerMessage) -> None:
        """Queue one message for the agent; `flush` writes what is queued."""
        with self._lock:
            self._outbox += wh.encode(message)

    def flush(self) -> None:
        with self._lock:
            view = memoryview(self._outbox)
            while view:
                view = view[os.write(self._out_fd, view) :]
            view.release()
            self._outbox.clear()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # A lazy worker is ready with no node ids (or only those of files named on its command line).
        self.say(
            wh.Collected(
                node_ids=tuple(item.nodeid for item in session.items),
                versions=runtime_versions(),
                lazy=self._collection.lazy,
                fallback=self._collection.fallback,
            )
        )
        self.flush()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        # Written with what the previous test's end queued: one write per test.
        self.say(wh.Started(nodeid))
        self.flush()
        self._cpu_at_start = time.process_time()
        self._children_at_start = _children_cpu()
        self._started_at = time.monotonic()
        self._waited_at_start = self._run_queue.waited()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        with contextlib.suppress(OSError):  # the agent may be gone: nobody is left to tell
            self.flush()

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        self._reports.append(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        reports, self._reports = self._reports, []
        if any(type(report) is not TestReport and report.failed for report in reports):
            # A plugin's report of this test failed (pytest's SubtestReport). pytest's terminal
            # reporter asks pytest_report_teststatus of every report as it is logged, and there
            # pytest fails a passed test that contains failed subtests; the worker's quiet
            # reporter asks nothing per test, so the hook is asked here, for such tests only,
            # before the reports leave (the coordinator's replay then sees what plain pytest's
            # terminal and JUnit see).
            for report in reports:
                if type(report) is TestReport:
                    self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        phases: list[Any] = []
        keywords: dict[str, Any] = {}
        for report in reports:
            compact = compact_phase(report.__dict__) if type(report) is TestReport else None
            # Keywords go once per test: a phase whose keywords differ (a marker applied during
            # the test) crosses whole.
            if compact is not None and keywords and report.keywords != keywords:
                compact = None
            if compact is None:
                compact = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
            elif not keywords:
                keywords = report.keywords  # type: ignore[assignment]  # a dict in a TestReport
            phases.append(compact)
        cpu = time.process_time() - self._cpu_at_start
        # A child reaped now may have run long before (a server a session fixture started and
        # stops after the last test): the test is given no more than its cores could compute.
        children = min(
            _children_cpu() - self._children_at_start, (time.monotonic() - self._started_at) * CORES
        )
        waited = self._run_queue.waited()
        wait = waited - self._waited_at_start if waited >= 0.0 and self._waited_at_start >= 0.0 else -1.0
        self.say(wh.Ended(nodeid, pack_test_reports(location, keywords, phases), cpu, wait, children))

    def pytest_warning_recorded(
        self,
        warning_message: warnings.WarningMessage,
        when: str,
        nodeid: str,
        location: tuple[str, int, str] | None,
    ) -> None:
        self.say(
            wh.Warned(
                {
                    **serialize_warning_message(warning_message),
                    "when": when,
                    "nodeid": nodeid,
                    "location": list(location) if location else None,
                }
            )
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """A unit whose stack reset failed: each of its tests is a setup error, never run dirty."""
        error = self._failed_resets.get(self._unit_of.get(item.nodeid, ""))
        if error is not None:
            pytest.fail(f"the stack could not be reset before this unit: {error}", pytrace=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
        if session.config.option.collectonly:
            return True
        self._session = session
        while True:
            while self._take_command(block=False):
                pass
            held = self._held
            if len(held) >= 2:
                entry = held.popleft()
                if len(held) == 1:
                    self._ask_for_work()
                self._run(entry, held[0][1])
            elif held and (self._finishing or self._flush_wanted):
                self._flush_wanted = False
                self._run(held.popleft(), None)
            elif not held and self._finishing:
                self.flush()
                return True
            else:
                self._ask_for_work()
                self._take_command(block=True)
                continue
            if session.shouldfail or session.shouldstop:
                self.say(wh.Stopping(str(session.shouldfail or session.shouldstop)))
                self.flush()
                return True

    def _ask_for_work(self) -> None:
        if not self._asked_for_work:
            self.say(wh.NeedWork())
            self._asked_for_work = True

    def _take_command(self, block: bool) -> bool:
        """Apply one command from the agent; False when none was waiting."""
        if block:
            self.flush()  # everything said so far is on the pipe before we wait
        try:
            command = self._commands.get(block=block)
        except queue.Empty:
            return False
        if command is None:
            self._finishing = True
            self._agent_gone = True
            return True
        match command:
            case wh.Run(units):
                self._hold(units)
            case wh.FinishRun():
                self._finishing = True
            case wh.FlushHeld():
                # Remembered, not applied here: a flush that arrives with a `Run` it follows (both
                # taken before the first of its items ran) is for the last of those items.
                self._flush_wanted = True
            case wh.ResetFinished(error):
                self._reset_reply = error
            case _:
                assert_never(command)
        return True

    def _hold(self, units: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        """Collect (lazily) and hold the items of `units`, after those already held."""
        assert self._session is not None
        self._collection.collect(self._session, (n for _, ids in units for n in ids))
        items = self._collection.items
        unknown = [n for _, ids in units for n in ids if n not in items]
        if unknown:
            # Collect their files whole: a class may come from another one's items (a
            # modifyitems hook that makes a class per database, as SQLAlchemy's plugin does), so
            # its own name is no collector of the file's.
            self._collection.collect_whole_files(self._session, {file_node_id(n) for n in unknown})
            unknown = [n for n in unknown if n not in items]
        if unknown:
            # What this worker collected instead, where the names match: the coordinator shows
            # the difference (a parametrization that depends on the process, a class named after
            # the database it is connected to).
            names = {(file_node_id(n), _test_name(n)) for n in unknown}
            similar = [n for n in items if (file_node_id(n), _test_name(n)) in names]
            self.say(wh.NotCollected(tuple(unknown), tuple(similar)))
        for unit_id, node_ids in units:
            known = [n for n in node_ids if n in items]
            for index, node_id in enumerate(known):
                self._unit_of[node_id] = unit_id
                self._held.append((unit_id, items[node_id], index == 0))
        self._asked_for_work = False
        # The last held item has a successor again: no flush until the agent asks anew.
        self._flush_wanted = False

    def _run(self, entry: tuple[str, pytest.Item, bool], nextitem: pytest.Item | None) -> None:
        unit_id, item, first_of_unit = entry
        if first_of_unit and self._resets:
            self._reset_before(unit_id)
        try:
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except pytest.exit.Exception as exc:
            # Told before it goes on: pytest ends its session as usual (exit status, teardown).
            self.say(wh.Exited(item.nodeid, exc.msg, exc.returncode))
            self.flush()
            raise
        except KeyboardInterrupt as exc:
            self.say(wh.Exited(item.nodeid, str(exc) or "KeyboardInterrupt", interrupted=True))
            self.flush()
            raise

    def _reset_before(self, unit_id: str) -> None:
        """Ask the agent to reset the stack and wait for it; other commands are applied meanwhile."""
        self.say(wh.ResetWanted(unit_id))
        self._reset_reply = None
        while self._reset_reply is None:
            self._take_command(block=True)
            if self._agent_gone and self._reset_reply is None:
                self._reset_reply = "the agent went away before the reset was done"
        if self._reset_reply:
            self._failed_resets[unit_id] = self._reset_reply


def _children_cpu() -> float:
    """CPU-seconds of the worker's child processes that ended and were waited for (one getrusage)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _test_name(node_id: str) -> str:
    """A test's own name: the last part of its node id, without parameters."""
    return node_id.split("[", 1)[0].rsplit("::", 1)[-1]


def serialize_warning_message(warning_message: warnings.WarningMessage) -> dict[str, Any]:
    """A recorded warning as plain data, like pytest-xdist's remote.serialize_warning_message."""
    message = warning_message.message
    result: dict[str, Any] = {
        "message_str": str(message),
        "message_module": type(message).__module__ if isinstance(message, Warning) else None,
        "message_class_name": type(message).__name__ if isinstance(message, Warning) else None,
        "category_module": getattr(warning_message.category, "__module__", None),
        "category_class_name": getattr(warning_message.category, "__qualname__", None),
    }
    for name in ("filename", "lineno", "line", "source"):
        value = getattr(warning_message, name, None)
        result[name] = value if value is None or isinstance(value, str | int) else repr(value)
    return result


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    fds = os.environ.get(FDS_ENV)
    if not fds or hasattr(config, "workerinput"):
        return
    command_fd, message_fd = (int(fd) for fd in fds.split(","))
    # Only this process speaks on these pipes: no child process (a test's subprocess) inherits them.
    os.environ.pop(FDS_ENV, None)
    resets = os.environ.get(RESET_ENV) == "1"
    # Freeze the heap (every item and report of the session) just before the interpreter's final
    # collection, which would otherwise walk it: 0.2-0.4 s at 5,000 tests, and the end of every
    # run waits for its workers to exit. Objects are still freed by reference count as always.
    atexit.register(gc.freeze)
    quieten(config)
    collection = WorkerCollection(config, collect_mode())
    config.pluginmanager.register(collection, "orchestrate-collection")
    config.pluginmanager.register(
        WorkerPlugin(config, command_fd, message_fd, collection, resets), "orchestrate-worker"
    )
