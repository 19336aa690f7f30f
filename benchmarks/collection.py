"""Collection cost of orchestrate's lazy workers against pytest-xdist, on a suite whose imports cost.

    python benchmarks/collection.py                       # 1,000 modules, N = 2 4, 3 repetitions
    python benchmarks/collection.py --modules 200 --agents 2 --repetitions 1   # a quick look

One suite is generated (benchmarks/generate.py `write_collection_suite`: modules that import
stdlib packages and a shared helper doing real work, tiny tests), collected once untimed so
every method finds the same bytecode caches, then each method runs it as a subprocess:

- `orchestrate run --backend local --agents N` (agents are processes of this machine, so every
  process of the run is a descendant the benchmark waits for; Ray's daemons would not be);
- `pytest -n N --dist worksteal`.

Per command: total CPU seconds of every process of the command (`getrusage(RUSAGE_CHILDREN)`
before and after: each process is counted when its parent reaps it), of which the CPU seconds
spent importing test modules (each module logs its own import's `process_time`), wall-clock,
and the time from the command's start to the first test's start (each module's first test logs
`time.time()`). Repetitions are interleaved (every repetition runs every method once, in
rotated order); medians are reported. PYTHONDONTWRITEBYTECODE is removed from every command's
environment alike. Writes benchmarks/out/collection.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python benchmarks/collection.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import write_collection_suite  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
METHODS = ("orchestrate", "xdist")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One timed command."""

    method: str
    agents: int
    repetition: int
    exit_code: int
    wall_seconds: float
    cpu_seconds: float  # every process of the command, user + system
    import_cpu_seconds: float  # of which: importing test modules, summed over processes
    modules_imported: int  # test-module imports, summed over processes
    first_test_seconds: float | None  # command start -> first test started


def _command(method: str, agents: int, scratch: Path) -> list[str]:
    if method == "orchestrate":
        store = scratch / f"durations-{time.monotonic_ns()}.msgpack"  # no history: every run alike
        return [sys.executable, "-m", "orchestrator", "run", "--backend", "local", "--agents", str(agents),
                "--durations", str(store)]  # fmt: skip
    return [sys.executable, "-m", "pytest", "-n", str(agents), "--dist", "worksteal", "-q"]


def measure(method: str, agents: int, repetition: int, suite: Path, scratch: Path) -> Measurement:
    """Run one method once on `suite`; every figure from this command alone."""
    import_log = scratch / "imports.log"
    start_log = scratch / "starts.log"
    for log in (import_log, start_log):
        log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(BENCH_IMPORT_LOG=str(import_log), BENCH_START_LOG=str(start_log))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with (scratch / f"{method}-{agents}-{repetition}.log").open("w") as output:
        code = subprocess.run(
            _command(method, agents, scratch), cwd=suite, env=env, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, check=False,
        ).returncode  # fmt: skip
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    imports = [float(line.split()[1]) for line in _lines(import_log)]
    starts = [float(line) for line in _lines(start_log)]
    return Measurement(
        method, agents, repetition, code, wall, cpu, sum(imports), len(imports),
        (min(starts) - started) if starts else None,
    )  # fmt: skip


def _lines(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


def summarize(measurements: list[Measurement]) -> list[dict[str, object]]:
    """Medians per (method, N)."""
    rows = []
    keys = sorted({(m.agents, m.method) for m in measurements})
    for agents, method in keys:
        ms = [m for m in measurements if (m.agents, m.method) == (agents, method)]
        firsts = [m.first_test_seconds for m in ms if m.first_test_seconds is not None]
        rows.append(
            {
                "method": method,
                "agents": agents,
                "runs": len(ms),
                "failed_runs": sum(1 for m in ms if m.exit_code != 0),
                "cpu_seconds": statistics.median(m.cpu_seconds for m in ms),
                "import_cpu_seconds": statistics.median(m.import_cpu_seconds for m in ms),
                "modules_imported": statistics.median(m.modules_imported for m in ms),
                "wall_seconds": statistics.median(m.wall_seconds for m in ms),
                "first_test_seconds": statistics.median(firsts) if firsts else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--agents", default="2,4", help="comma-separated N")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--results", type=Path, default=OUT / "collection.json")
    args = parser.parse_args(argv)
    agents = [int(n) for n in args.agents.split(",")]
    with tempfile.TemporaryDirectory(prefix="orchestrate-collection-") as tmp:
        suite = write_collection_suite(Path(tmp) / "suite", args.modules)
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # Untimed: bytecode and assertion-rewrite caches written once, for every method alike.
        subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=suite, env=env,
                       stdout=subprocess.DEVNULL, check=True)  # fmt: skip
        pairs = [(method, n) for n in agents for method in METHODS]
        measurements: list[Measurement] = []
        for repetition in range(args.repetitions):
            shift = repetition % len(pairs)
            for method, n in pairs[shift:] + pairs[:shift]:
                m = measure(method, n, repetition, suite, scratch)
                measurements.append(m)
                print(
                    f"rep {repetition} {method:<12} N={n}: exit {m.exit_code}, cpu {m.cpu_seconds:6.1f}s "
                    f"(imports {m.import_cpu_seconds:5.1f}s, {m.modules_imported} modules), "
                    f"wall {m.wall_seconds:6.1f}s, first test {m.first_test_seconds or float('nan'):5.1f}s",
                    flush=True,
                )
    rows = summarize(measurements)
    print(f"\nmedians of {args.repetitions} interleaved repetitions, {args.modules} modules:")
    print("method       N   cpu s  import cpu s  modules imported  wall s  first test s")
    for row in rows:
        first = row["first_test_seconds"]
        print(
            f"{row['method']:<12} {row['agents']} {row['cpu_seconds']:7.1f} {row['import_cpu_seconds']:13.1f} "
            f"{row['modules_imported']:17.0f} {row['wall_seconds']:7.1f} "
            f"{first if first is None else format(first, '13.1f')}"
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "modules": args.modules,
        "load_average_at_end": os.getloadavg(),
        "cpus": os.cpu_count(),
        "summary": rows,
        "measurements": [asdict(m) for m in measurements],
    }
    args.results.write_text(json.dumps(document, indent=1))
    print(f"written {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
