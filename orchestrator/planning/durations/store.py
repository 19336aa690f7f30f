"""The per-test duration history: what the planner knows about how long each test takes.

Read by the CLI before planning (`DurationStore.load`), fed with the passed and failed tests'
durations after a run (`update`), written back atomically (`save`). `orchestrate durations`
uses `import_pytest_split`, `import_junit_xml`, `merge` and `slowest_units`.

On disk it is one wire message (see orchestrator/protocol/wire.py, the only msgpack user):

    {"$t": "durations", "$v": 1, "alpha": 0.5,
     "tests": {node_id: [seconds, count], ...},
     "junit": [[classname, name, seconds, count], ...],
     "cpu": {node_id: cpu_seconds, ...},
     "startup": {"format": 1, "costs": {key: [ready, stack_up, worker_start, teardown, runs]}}}

"tests" holds each test's seconds as they would be at load one (one agent per core): a run with
more agents than cores stretched the CPU part of every test, and the session takes that
stretch out before the store learns it (orchestrator/run/host_load.py). "cpu" holds the
CPU-seconds of the tests whose CPU was measured, a moving average as "tests"; a plan for more
agents than cores puts the stretch back (durations/estimate.py). It is a key of its own, so a
store written before it existed is read without it, and older versions ignore it.

"junit" holds durations imported from JUnit XML, where the exact node id is lost: they are
keyed by pytest's (classname, name) and matched to collected node ids through
`junit_key`, which mangles a node id exactly as pytest does when it writes the XML. Reading
other tools' files (pytest-split, JUnit XML) is durations/importers.py's; the store folds in
what they hold.

"startup" holds the agents' fixed costs per backend and stack (durations/startup.py, which
says what they are and how they predict a run's start-up). It has a format of its own, so it
can change without touching the tests' history: a store without it (written before it
existed) has no start-up history, and one of a format this code does not know is read without
it (its test durations still count). Older orchestrate versions ignore the key.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.model import TestUnit, UnitDuration
from orchestrator.planning.durations.importers import (
    JunitKey,
    junit_key,
    read_junit_xml,
    read_pytest_split,
    valid_seconds,
)
from orchestrator.planning.durations.startup import StartupCosts, StartupHistory
from orchestrator.protocol import wire

DEFAULT_PATH = Path(".orchestrate") / "durations.msgpack"

# Weight of the newest observation in the moving average. 0.5 halves the weight of every older
# run: a test that really got slower is believed within two or three runs, while one noisy run
# (a loaded CI machine) moves the estimate only halfway.
ALPHA = 0.5

_TAG = "durations"
# 2: each entry also holds the agents' cost per test (durations/startup.py); 1 is still read.
STARTUP_FORMAT = 2
_STARTUP_FORMATS_READ = (1, 2)


@dataclass(frozen=True, slots=True)
class TestHistory:
    """What the store knows about one test: its moving-average duration and how often it ran."""

    __test__ = False  # not a pytest test class, despite the name

    seconds: float
    count: int

    def observe(self, seconds: float) -> TestHistory:
        """The history after one more run that took `seconds`."""
        return TestHistory(ALPHA * seconds + (1 - ALPHA) * self.seconds, self.count + 1)


def unit_of(node_id: str) -> str:
    """The unit a stored node id belongs to when no collection says otherwise.

    Tests inside a class (a node id with two or more names after the path) belong to
    `path::OutermostClass`; module-level tests belong to `path`. Parameter ids are cut off
    first, since they may contain "::" themselves.
    """
    path, _, rest = node_id.partition("::")
    names = rest.partition("[")[0].split("::")
    return f"{path}::{names[0]}" if len(names) >= 2 else path


class DurationStore:
    """The duration history, mutable, owned by whoever loaded it (the CLI during a run)."""

    def __init__(
        self,
        tests: Mapping[str, TestHistory] | None = None,
        junit: Mapping[JunitKey, TestHistory] | None = None,
        startup: StartupHistory | None = None,
    ) -> None:
        self._tests: dict[str, TestHistory] = dict(tests or {})
        self._junit: dict[JunitKey, TestHistory] = dict(junit or {})
        self._cpu: dict[str, float] = {}  # node id -> moving-average CPU-seconds, where measured
        # The agents' fixed costs, per backend and stack: read by the planner, fed after a run.
        self.startup = startup if startup is not None else StartupHistory()

    # -- reading and writing the file ------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[DurationStore, str | None]:
        """Read the store at `path`: (store, None), or (empty store, one-line warning).

        A missing file is a first run, not a problem. Anything else that cannot be read is
        reported and ignored, never raised and never touched: planning without history only
        costs balance, and the user may want to look at the bad file.
        """
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return cls(), None
        except OSError as exc:
            return cls(), _ignored(path, exc.strerror or str(exc))
        try:
            return cls._from_wire(wire.unpack(data)), None
        except (wire.WireError, ValueError, TypeError) as exc:
            return cls(), _ignored(path, str(exc))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the store to `path` atomically; raise OSError if it cannot.

        The bytes go to a temporary file in the same directory, are fsynced, then renamed over
        `path`: a reader sees the old store or the new one, never half of one, even if the
        machine dies mid-write. The caller turns an OSError into a warning.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = wire.pack(self._to_wire())
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except OSError:
            mode = 0o644  # mkstemp's 0600 would hide a shared CI cache from other users
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as temp:
                os.fchmod(temp.fileno(), mode)
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        _fsync_directory(target.parent)

    def _to_wire(self) -> dict[str, Any]:
        return wire.message(
            _TAG,
            alpha=ALPHA,
            tests={node_id: [h.seconds, h.count] for node_id, h in self._tests.items()},
            junit=[[cls, name, h.seconds, h.count] for (cls, name), h in self._junit.items()],
            cpu=self._cpu,
            startup={
                "format": STARTUP_FORMAT,
                "costs": {key: costs.as_list() for key, costs in self.startup.items()},
            },
        )

    @classmethod
    def _from_wire(cls, msg: Any) -> DurationStore:
        tag, fields = wire.check(msg)
        if tag != _TAG:
            raise ValueError(f"a {tag!r} message, not a duration store")
        tests = fields.get("tests", {})
        junit = fields.get("junit", [])
        if not isinstance(tests, dict) or not isinstance(junit, list):
            raise ValueError("malformed duration store")
        store = cls()
        for node_id, entry in tests.items():
            if not isinstance(node_id, str) or not isinstance(entry, list) or len(entry) != 2:
                raise ValueError(f"malformed entry for {node_id!r:.100}")
            store._tests[node_id] = _history(*entry)
        for entry in junit:
            if (
                not isinstance(entry, list)
                or len(entry) != 4
                or not all(isinstance(s, str) for s in entry[:2])
            ):
                raise ValueError(f"malformed JUnit entry {entry!r:.100}")
            store._junit[entry[0], entry[1]] = _history(*entry[2:])
        cpu = fields.get("cpu", {})
        if not isinstance(cpu, dict):
            raise ValueError("malformed CPU history")
        for node_id, seconds in cpu.items():
            if not isinstance(node_id, str) or not valid_seconds(seconds):
                raise ValueError(f"malformed CPU entry for {node_id!r:.100}")
            store._cpu[node_id] = float(seconds)
        store.startup = _startup_from_wire(fields.get("startup"))
        return store

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._tests) + len(self._junit)

    def get(self, node_id: str) -> float | None:
        """The predicted seconds of `node_id`, or None if it never ran.

        An exact node id wins; otherwise a JUnit import with the same (classname, name).
        """
        history = self._tests.get(node_id)
        if history is None and self._junit:
            history = self._junit.get(junit_key(node_id))
        return None if history is None else history.seconds

    def cpu(self, node_id: str) -> float | None:
        """The CPU-seconds `node_id` spent on past runs, or None if never measured."""
        return self._cpu.get(node_id)

    def items(self) -> Iterator[tuple[str, TestHistory]]:
        """Every test known by its exact node id (JUnit imports not included)."""
        return iter(self._tests.items())

    def known_seconds(self) -> list[float]:
        """The predicted seconds of every test in the store, JUnit imports included."""
        return [h.seconds for h in self._tests.values()] + [h.seconds for h in self._junit.values()]

    def slowest_units(
        self, n: int | None = None, units: Sequence[TestUnit] | None = None
    ) -> tuple[UnitDuration, ...]:
        """The `n` units with the most known seconds (all if `n` is None), slowest first.

        With `units` (a collection) the grouping is the collection's and only its tests count;
        without, stored node ids are grouped by `unit_of` and JUnit imports by classname.
        Called by `orchestrate durations show`.
        """
        totals: dict[str, list[float]] = {}  # unit id -> [seconds, tests]

        def add(unit_id: str, seconds: float) -> None:
            total = totals.setdefault(unit_id, [0.0, 0])
            total[0] += seconds
            total[1] += 1

        if units is not None:
            for unit in units:
                for node_id in unit.node_ids:
                    seconds = self.get(node_id)
                    if seconds is not None:
                        add(unit.unit_id, seconds)
        else:
            for node_id, history in self._tests.items():
                add(unit_of(node_id), history.seconds)
            for (classname, _), history in self._junit.items():
                add(classname, history.seconds)
        ranked = sorted(
            (UnitDuration(unit_id, seconds, int(tests)) for unit_id, (seconds, tests) in totals.items()),
            key=lambda u: (-u.seconds, u.unit_id),
        )
        return tuple(ranked if n is None else ranked[:n])

    # -- changes ---------------------------------------------------------------------------

    def update(self, observations: Mapping[str, float], cpu: Mapping[str, float] | None = None) -> None:
        """Fold one run's durations (and the CPU-seconds of the tests whose CPU was measured)
        into the moving averages. Called by the session at the end.

        The caller passes only passed and failed tests: a skipped or crashed test's time says
        nothing about how long it takes. Values that are negative or not finite are ignored.
        A test observed by node id drops any JUnit-imported entry it shadows.
        """
        for node_id, seconds in observations.items():
            if not valid_seconds(seconds):
                continue
            self._tests[node_id] = _observed(self._tests.get(node_id), float(seconds))
            if self._junit:
                self._junit.pop(junit_key(node_id), None)
        for node_id, seconds in (cpu or {}).items():
            if valid_seconds(seconds) and node_id in self._tests:
                known = self._cpu.get(node_id)
                self._cpu[node_id] = seconds if known is None else ALPHA * seconds + (1 - ALPHA) * known

    def merge(self, other: DurationStore) -> None:
        """Take in another store's history (e.g. the stores of several CI jobs).

        For a test both know, the entry with more observations wins, and equal counts are
        averaged: jobs that start from the same store each update their own tests, so the
        higher count is the more recent history, not a competing one.
        """
        for node_id, history in other._tests.items():
            mine = self._tests.get(node_id)
            self._tests[node_id] = _merged(mine, history)
            cpu = _merged_cpu(self._cpu.get(node_id), other._cpu.get(node_id), mine, history)
            if cpu is not None:
                self._cpu[node_id] = cpu
        for key, history in other._junit.items():
            self._junit[key] = _merged(self._junit.get(key), history)
        self.startup.merge(other.startup)

    def import_pytest_split(self, path: str | os.PathLike[str]) -> int:
        """Fold in pytest-split's `.test_durations` file; return how many tests it held.

        Raise UsageError if it is not one (durations/importers.py reads it).
        """
        observations = read_pytest_split(path)
        self.update(observations)
        return len(observations)

    def import_junit_xml(self, path: str | os.PathLike[str]) -> int:
        """Fold in the test times of a JUnit XML report; return how many tests it held.

        A test already known by node id is updated in place; the others are kept by
        (classname, name) and matched later through `junit_key`. Raise UsageError on a file
        that is not a JUnit report (durations/importers.py reads it and says what it keeps).
        """
        observations = read_junit_xml(path)
        by_key = {junit_key(node_id): node_id for node_id in self._tests}
        for key, seconds in observations.items():
            node_id = by_key.get(key)
            if node_id is not None:
                self._tests[node_id] = self._tests[node_id].observe(seconds)
            else:
                self._junit[key] = _observed(self._junit.get(key), seconds)
        return len(observations)


def _startup_from_wire(part: Any) -> StartupHistory:
    """The "startup" part; empty when absent (an older file) or of a format this code does not know."""
    if part is None or (isinstance(part, dict) and part.get("format") not in _STARTUP_FORMATS_READ):
        return StartupHistory()
    costs = part.get("costs") if isinstance(part, dict) else None
    if not isinstance(costs, dict):
        raise ValueError("malformed start-up history")
    history = {}
    for key, entry in costs.items():
        if not isinstance(key, str) or not isinstance(entry, list):
            raise ValueError(f"malformed start-up entry for {key!r:.100}")
        history[key] = StartupCosts.from_list(entry)
    return StartupHistory(history)


def _history(seconds: Any, count: Any) -> TestHistory:
    if not valid_seconds(seconds) or not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"malformed history entry [{seconds!r:.30}, {count!r:.30}]")
    return TestHistory(float(seconds), count)


def _observed(history: TestHistory | None, seconds: float) -> TestHistory:
    return TestHistory(seconds, 1) if history is None else history.observe(seconds)


def _merged(mine: TestHistory | None, theirs: TestHistory) -> TestHistory:
    if mine is None or theirs.count > mine.count:
        return theirs
    if mine.count > theirs.count:
        return mine
    return TestHistory((mine.seconds + theirs.seconds) / 2, mine.count)


def _merged_cpu(
    mine: float | None, theirs: float | None, mine_history: TestHistory | None, theirs_history: TestHistory
) -> float | None:
    """The CPU-seconds kept for a test `merge` takes in: as `_merged` picks its history."""
    if theirs is None or mine is None:
        return mine if theirs is None else theirs
    mine_count = mine_history.count if mine_history is not None else 0
    if theirs_history.count != mine_count:
        return theirs if theirs_history.count > mine_count else mine
    return (mine + theirs) / 2


def _ignored(path: str | os.PathLike[str], reason: str) -> str:
    reason = " ".join(reason.split())  # one line, whatever the decoder said
    return f"ignoring the duration store {os.fspath(path)}: {reason}; planning without history"


def _fsync_directory(directory: Path) -> None:
    # The rename lives in the directory; without this a crash right after `save` may bring the
    # old store back. Some filesystems refuse to fsync a directory, which costs only that.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
