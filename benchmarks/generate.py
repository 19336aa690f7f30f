"""Synthetic pytest suites for the benchmarks: known true durations, stale recorded ones.

Called by `benchmarks/run.py` before it times anything, and usable alone:

    python benchmarks/generate.py OUT_DIR --classes 60 --total-seconds 60 --drift 0.5 --seed 1

A suite is `classes` test classes spread over `test_bench_XXX.py` modules, node ids
`test_bench_XXX.py::TestClassNNN::test_MM`. Each class's total time is drawn from a lognormal
distribution (heavy tailed: a few classes dominate, as in real suites) and the whole is scaled
so the suite's serial time, pytest's own overhead aside, is exactly `total_seconds`. Of each
class's time a share is a class-scoped fixture (setup paid once per process that runs any of
the class's tests: splitting a class across workers pays it again), and of each test's time a
share is a CPU-bound busy loop rather than a sleep, so agents compete for the cores.

With `setup_share=0` no class has a class-scoped fixture, so orchestrate's `--split` may cut
a long class into chunks on several agents (pytest-split and `xdist --dist load` split classes
anyway); the lower bound is then the test-level one, `Suite.test_lower_bound`.

`write_trivial_suite` writes the other kind: thousands of tests that do nothing (`def
test_n(): pass`), for the per-test overhead of a method; with `record_starts` its conftest
appends the wall-clock time at which each test starts to the file named by
`$BENCH_TEST_STARTS`, for the start-up benchmark (time to the first test).

The recorded durations, written for orchestrate (its msgpack store) and for pytest-split
(`.test_durations` JSON), are the true ones times one random factor per class in
[1 - drift, 1 + drift]: the history every duration-based planner starts from is as stale as
`drift` says. Everything is deterministic in `seed`.

`write_collection_suite` writes another kind of suite, for benchmarks/collection.py: many
modules whose *import* is what costs (each imports a few stdlib packages, one of a generated
package of shared helpers that do real work at import, and does work of its own), with tiny
tests. Each module appends the CPU seconds its import took to `$BENCH_IMPORT_LOG` and its first
test's start time to `$BENCH_START_LOG`, when those are set.

    python benchmarks/generate.py OUT_DIR --collection-modules 1000
"""

from __future__ import annotations

import argparse
import json
import random
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BenchClass",
    "BenchTest",
    "Suite",
    "make_group_suite",
    "make_suite",
    "recorded_durations",
    "write_collection_suite",
    "write_durations",
    "write_suite",
    "write_trivial_suite",
]

ORCHESTRATE_DURATIONS = Path(".orchestrate") / "durations.msgpack"
SPLIT_DURATIONS = Path(".test_durations")
STARTS_ENV = "BENCH_TEST_STARTS"


@dataclass(frozen=True, slots=True)
class BenchTest:
    """One test method: how long it sleeps and how long it spins on the CPU."""

    name: str
    sleep_seconds: float
    busy_seconds: float

    @property
    def seconds(self) -> float:
        return self.sleep_seconds + self.busy_seconds


@dataclass(frozen=True, slots=True)
class BenchClass:
    """One test class (one orchestrate unit): its module, its setup cost and its tests."""

    module: str
    name: str
    setup_seconds: float
    tests: tuple[BenchTest, ...]
    # A test group of limit 1 the class belongs to (both orchestrate's and xdist's marker), or "".
    group: str = ""

    @property
    def unit_id(self) -> str:
        return f"{self.module}::{self.name}"

    @property
    def seconds(self) -> float:
        """True serial time of the class: its setup once, plus every test."""
        return self.setup_seconds + sum(t.seconds for t in self.tests)

    def node_ids(self) -> tuple[str, ...]:
        return tuple(f"{self.unit_id}::{t.name}" for t in self.tests)

    def test_seconds(self) -> dict[str, float]:
        """True time of each test as pytest measures it: the first test's setup holds the fixture."""
        seconds = {f"{self.unit_id}::{t.name}": t.seconds for t in self.tests}
        first = f"{self.unit_id}::{self.tests[0].name}"
        seconds[first] += self.setup_seconds
        return seconds


@dataclass(frozen=True, slots=True)
class Suite:
    """A generated suite and the parameters it came from."""

    classes: tuple[BenchClass, ...]
    seed: int

    @property
    def total_seconds(self) -> float:
        return sum(c.seconds for c in self.classes)

    @property
    def longest_unit_seconds(self) -> float:
        return max((c.seconds for c in self.classes), default=0.0)

    @property
    def tests(self) -> int:
        return sum(len(c.tests) for c in self.classes)

    def group_seconds(self) -> dict[str, float]:
        """The serial time of each test group (limit 1: its classes run one after another)."""
        groups: dict[str, float] = {}
        for bench_class in self.classes:
            if bench_class.group:
                groups[bench_class.group] = groups.get(bench_class.group, 0.0) + bench_class.seconds
        return groups

    def lower_bound(self, agents: int) -> float:
        """No schedule on `agents` agents can finish sooner: max(total / agents, longest unit,
        each limit-1 group's total)."""
        return max(self.total_seconds / agents, self.longest_unit_seconds, *self.group_seconds().values())

    def test_lower_bound(self, agents: int) -> float:
        """The bound when classes may be cut between agents: max(total / agents, longest test)."""
        return max(self.total_seconds / agents, max(self.test_seconds().values(), default=0.0))

    def test_seconds(self) -> dict[str, float]:
        """True seconds of every test, keyed by node id."""
        return {node_id: s for c in self.classes for node_id, s in c.test_seconds().items()}


def make_suite(
    classes: int = 60,
    total_seconds: float = 60.0,
    *,
    seed: int = 1,
    sigma: float = 1.0,
    cpu_share: float = 0.2,
    setup_share: float = 0.15,
    tests_per_class: tuple[int, int] = (2, 8),
    classes_per_module: int = 5,
) -> Suite:
    """A suite of `classes` classes whose true serial time is `total_seconds`.

    Class times are lognormal(0, `sigma`) before scaling; `setup_share` of each class is its
    class-scoped fixture, `cpu_share` of each test a busy loop. Tests of a class share its
    remaining time in random proportions.
    """
    if classes < 1:
        raise ValueError(f"need at least one class, not {classes}")
    if total_seconds <= 0:
        raise ValueError(f"total_seconds must be positive, not {total_seconds}")
    if not (0 <= cpu_share <= 1 and 0 <= setup_share < 1):
        raise ValueError("cpu_share must be in [0, 1] and setup_share in [0, 1)")
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, sigma) for _ in range(classes)]
    scale = total_seconds / sum(weights)
    bench_classes = []
    for index, weight in enumerate(weights):
        class_seconds = weight * scale
        setup_seconds = class_seconds * setup_share
        count = rng.randint(*tests_per_class)
        shares = [rng.uniform(0.2, 1.0) for _ in range(count)]
        per_share = (class_seconds - setup_seconds) / sum(shares)
        tests = tuple(
            BenchTest(f"test_{m:02d}", share * per_share * (1 - cpu_share), share * per_share * cpu_share)
            for m, share in enumerate(shares)
        )
        module = f"test_bench_{index // classes_per_module:03d}.py"
        bench_classes.append(BenchClass(module, f"TestClass{index:03d}", setup_seconds, tests))
    return Suite(tuple(bench_classes), seed)


def make_group_suite(
    total_seconds: float = 60.0,
    group_seconds: float = 15.0,
    group_classes: int = 10,
    other_classes: int = 30,
    *,
    seed: int = 1,
    sigma: float = 1.0,
    setup_share: float = 0.15,
    group: str = "payments",
) -> Suite:
    """A sleep-bound suite of `total_seconds` of which `group_seconds` is one limit-1 test group
    spread over `group_classes` classes (in modules of their own among the others'), for the
    test-groups benchmark: orchestrate's `orchestrate_group(limit=1)` against xdist's `loadgroup`.
    """
    if not 0 < group_seconds < total_seconds:
        raise ValueError("group_seconds must be positive and below total_seconds")
    grouped = make_suite(
        group_classes, group_seconds, seed=seed, sigma=0.3, cpu_share=0.0, setup_share=setup_share
    )
    others = make_suite(
        other_classes,
        total_seconds - group_seconds,
        seed=seed + 1,
        sigma=sigma,
        cpu_share=0.0,
        setup_share=setup_share,
    )
    classes = [
        BenchClass(f"test_group_{i:03d}.py", f"TestGroup{i:03d}", c.setup_seconds, c.tests, group)
        for i, c in enumerate(grouped.classes)
    ]
    classes += [BenchClass(c.module, c.name, c.setup_seconds, c.tests) for c in others.classes]
    return Suite(tuple(classes), seed)


def recorded_durations(suite: Suite, drift: float, seed: int | None = None) -> dict[str, float]:
    """Every test's true seconds times its class's random factor in [1 - drift, 1 + drift]."""
    if not 0 <= drift < 1:
        raise ValueError(f"drift must be in [0, 1), not {drift}")
    rng = random.Random(f"drift-{suite.seed if seed is None else seed}")
    recorded: dict[str, float] = {}
    for bench_class in suite.classes:
        factor = rng.uniform(1 - drift, 1 + drift)
        recorded.update((n, s * factor) for n, s in bench_class.test_seconds().items())
    return recorded


def write_suite(suite: Suite, directory: str | Path) -> Path:
    """Write the suite's modules and its pytest.ini into `directory`; return it.

    The pytest.ini makes `directory` the rootdir, so the configuration of whatever project
    the directory lives in never applies to the benchmark.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    by_module: dict[str, list[BenchClass]] = {}
    for bench_class in suite.classes:
        by_module.setdefault(bench_class.module, []).append(bench_class)
    for module, module_classes in by_module.items():
        parts = [_MODULE_HEADER]
        parts.extend(_class_source(c) for c in module_classes)
        (root / module).write_text("\n".join(parts), encoding="utf-8")
    (root / "suite.json").write_text(json.dumps(_suite_summary(suite), indent=1), encoding="utf-8")
    return root


def write_durations(durations: Mapping[str, float], directory: str | Path) -> tuple[Path, Path]:
    """Write `durations` as orchestrate's store and as pytest-split's JSON; return both paths."""
    from orchestrator.planning.durations.store import DurationStore

    root = Path(directory)
    store_path = root / ORCHESTRATE_DURATIONS
    store = DurationStore()
    store.update(dict(durations))
    store.save(store_path)
    split_path = root / SPLIT_DURATIONS
    split_path.write_text(json.dumps(dict(sorted(durations.items())), indent=1), encoding="utf-8")
    return store_path, split_path


# Each module carries its own helper, so nothing depends on how pytest sets up sys.path.
_MODULE_HEADER = textwrap.dedent(
    '''\
    """Generated by benchmarks/generate.py; do not edit."""

    import time

    import pytest


    def work(sleep_seconds, busy_seconds):
        """Sleep, then spin on the CPU until `busy_seconds` of wall time have passed."""
        if sleep_seconds:
            time.sleep(sleep_seconds)
        deadline = time.perf_counter() + busy_seconds
        while time.perf_counter() < deadline:
            pass
    '''
)


def _class_source(bench_class: BenchClass) -> str:
    lines = [f"class {bench_class.name}:"]
    if bench_class.group:
        lines = [
            f"@pytest.mark.xdist_group({bench_class.group!r})",
            f"@pytest.mark.orchestrate_group({bench_class.group!r}, limit=1)",
            *lines,
        ]
    if bench_class.setup_seconds > 0:  # without one, --split may cut the class
        lines += [
            '    @pytest.fixture(scope="class", autouse=True)',
            "    @classmethod",
            "    def _class_setup(cls):",
            f"        work({bench_class.setup_seconds:.6f}, 0)",
            "",
        ]
    for test in bench_class.tests:
        lines += [
            f"    def {test.name}(self):",
            f"        work({test.sleep_seconds:.6f}, {test.busy_seconds:.6f})",
            "",
        ]
    return "\n" + "\n".join(lines)


def write_trivial_suite(
    directory: str | Path,
    tests: int = 5000,
    *,
    modules: int = 50,
    classes_per_module: int = 2,
    record_starts: bool = False,
) -> int:
    """Write `tests` tests that do nothing (`def test_n(): pass`) into `directory`; return the count.

    Each module holds `tests // modules` tests (the remainder goes to the first modules): half
    of them as module-level functions, half spread over `classes_per_module` classes. With
    `record_starts`, a conftest.py appends `time.time()` at each test's setup to the file
    named by $BENCH_TEST_STARTS (nothing when it is unset).
    """
    if tests < 1 or modules < 1 or classes_per_module < 0:
        raise ValueError("need at least one test and one module, and no negative class count")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    if record_starts:
        (root / "conftest.py").write_text(_STARTS_CONFTEST, encoding="utf-8")
    modules = min(modules, tests)
    base, extra = divmod(tests, modules)
    for index in range(modules):
        count = base + (1 if index < extra else 0)
        functions = count - count // 2 if classes_per_module else count
        lines = ['"""Generated by benchmarks/generate.py; do not edit."""', ""]
        lines += [f"def test_{n:04d}():\n    pass\n" for n in range(functions)]
        in_classes = count - functions
        for c in range(classes_per_module):
            size = in_classes // classes_per_module + (1 if c < in_classes % classes_per_module else 0)
            if size:
                lines.append(f"\nclass TestTrivial{c}:")
                lines += [f"    def test_{n:04d}(self):\n        pass\n" for n in range(size)]
        (root / f"test_trivial_{index:03d}.py").write_text("\n".join(lines), encoding="utf-8")
    return tests


_STARTS_CONFTEST = textwrap.dedent(
    f'''\
    """Generated by benchmarks/generate.py: when each test starts, for the start-up benchmark."""

    import os
    import time


    def pytest_runtest_setup(item):
        path = os.environ.get("{STARTS_ENV}")
        if path:
            with open(path, "a", encoding="utf-8") as stream:
                stream.write(f"{{time.time():.6f}}\\n")
    '''
)


def write_collection_suite(
    directory: str | Path,
    modules: int = 1000,
    *,
    helpers: int = 100,
    tests_per_module: int = 3,
    modules_per_directory: int = 50,
) -> Path:
    """Write a suite of `modules` test modules with costly imports and tiny tests; return its root.

    Modules are `tests/group_GG/test_mod_MMMM.py`, each one class `TestModMMMM` of
    `tests_per_module` tests (one orchestrate unit per module); module M imports helper
    `helpers/h_HHH.py` with HHH = M mod `helpers`, so each helper is shared by several modules,
    as application code is. A pytest.ini makes the directory the rootdir and puts it on
    sys.path (`pythonpath = .`) for the helpers.
    """
    if modules < 1 or helpers < 1 or tests_per_module < 1:
        raise ValueError("need at least one module, one helper and one test per module")
    root = Path(directory)
    (root / "helpers").mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider\npythonpath = .\n", encoding="utf-8"
    )
    (root / "helpers" / "__init__.py").write_text('"""Generated shared helpers."""\n', encoding="utf-8")
    for index in range(helpers):
        (root / "helpers" / f"h_{index:03d}.py").write_text(
            _HELPER_SOURCE.replace("INDEX", str(index)), encoding="utf-8"
        )
    for index in range(modules):
        group = root / "tests" / f"group_{index // modules_per_directory:02d}"
        group.mkdir(parents=True, exist_ok=True)
        tests = "\n".join(
            f"    def test_{t}(self):\n        _started()\n        assert len(TABLE) == 1500\n"
            for t in range(tests_per_module)
        )
        source = (
            _COLLECTION_MODULE_SOURCE.replace("HELPER", f"h_{index % helpers:03d}")
            .replace("INDEX", f"{index:04d}")
            .replace("TESTS", tests)
        )
        (group / f"test_mod_{index:04d}.py").write_text(source, encoding="utf-8")
    summary = {"modules": modules, "helpers": helpers, "tests": modules * tests_per_module}
    (root / "suite.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return root


# A shared helper: real work at import (regular expressions compiled, digests computed), paid
# once per process that imports it.
_HELPER_SOURCE = textwrap.dedent(
    '''\
    """Generated by benchmarks/generate.py; do not edit. Shared helper INDEX."""

    import hashlib
    import re

    PATTERNS = [re.compile(rf"helper-INDEX-{i}-(\\d+)-[a-z]{{{i % 9 + 1}}}") for i in range(60)]
    DIGESTS = [hashlib.sha256(f"INDEX-{i}".encode()).hexdigest() for i in range(10000)]


    def lookup(i):
        return DIGESTS[i % len(DIGESTS)]
    '''
)

# A test module: a few stdlib-heavy imports (paid by the first module of each process), its
# shared helper, and work of its own; it logs the CPU seconds of its import.
_COLLECTION_MODULE_SOURCE = textwrap.dedent(
    '''\
    """Generated by benchmarks/generate.py; do not edit."""

    import time

    _IMPORT_STARTED = time.process_time()

    import argparse  # noqa: E402
    import decimal  # noqa: E402
    import email.parser  # noqa: E402
    import json  # noqa: E402
    import os  # noqa: E402
    import xml.etree.ElementTree  # noqa: E402

    from helpers import HELPER  # noqa: E402

    TABLE = {i: HELPER.lookup(i * 7) + json.dumps([i, str(decimal.Decimal(i) / 7)]) for i in range(1500)}
    _PARSERS = (argparse.ArgumentParser, email.parser.Parser, xml.etree.ElementTree.fromstring)
    _FIRST = []


    def _log(variable, line):
        path = os.environ.get(variable)
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)


    def _started():
        if not _FIRST:
            _FIRST.append(True)
            _log("BENCH_START_LOG", f"{time.time():.6f}\\n")


    class TestModINDEX:
    TESTS

    _log("BENCH_IMPORT_LOG", f"{os.getpid()} {time.process_time() - _IMPORT_STARTED:.6f}\\n")
    '''
)


def _suite_summary(suite: Suite) -> dict[str, object]:
    return {
        "seed": suite.seed,
        "tests": suite.tests,
        "classes": len(suite.classes),
        "total_seconds": suite.total_seconds,
        "longest_unit_seconds": suite.longest_unit_seconds,
        "units": {c.unit_id: c.seconds for c in suite.classes},
        "groups": suite.group_seconds(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic benchmark suite and its stale durations.")
    parser.add_argument("directory", help="where to write the suite (created if missing)")
    parser.add_argument("--classes", type=int, default=60)
    parser.add_argument("--total-seconds", type=float, default=60.0)
    parser.add_argument(
        "--drift", type=float, default=0.5, help="recorded = true x U[1-drift, 1+drift] per class"
    )
    parser.add_argument(
        "--cpu-share", type=float, default=0.2, help="share of each test spent in a busy loop"
    )
    parser.add_argument(
        "--setup-share",
        type=float,
        default=0.15,
        help="share of each class in its class-scoped fixture; 0: no fixture, classes can be cut by --split",
    )
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma of the class times")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--trivial", type=int, metavar="TESTS", help="write TESTS tests that do nothing instead"
    )
    parser.add_argument(
        "--collection-modules",
        type=int,
        default=0,
        metavar="N",
        help="write the collection benchmark's suite of N modules with costly imports instead",
    )
    args = parser.parse_args(argv)
    if args.trivial:
        write_trivial_suite(args.directory, args.trivial)
        print(f"{args.directory}: {args.trivial} trivial tests")
        return 0
    if args.collection_modules:
        root = write_collection_suite(args.directory, args.collection_modules)
        print(f"{root}: {args.collection_modules} modules with costly imports, tiny tests")
        return 0
    suite = make_suite(
        args.classes,
        args.total_seconds,
        seed=args.seed,
        sigma=args.sigma,
        cpu_share=args.cpu_share,
        setup_share=args.setup_share,
    )
    root = write_suite(suite, args.directory)
    write_durations(recorded_durations(suite, args.drift), root)
    print(
        f"{root}: {suite.tests} tests in {len(suite.classes)} classes, {suite.total_seconds:.1f}s serial, "
        f"longest class {suite.longest_unit_seconds:.1f}s, durations drifted by up to {args.drift:.0%}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
