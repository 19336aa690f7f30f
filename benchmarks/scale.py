"""100,000 trivial tests, 1% failing: plain pytest against `orchestrate run`, wall and memory.

    python benchmarks/scale.py [--tests 100000] [--repetitions 1] [--agents auto,2]

The suite of issue 18's scale target: 100 files of 200 classes of 5 tests (by default), one
test in a hundred failing with an assertion message, every method with `--junitxml`. It is
generated under benchmarks/out/cases/scale/suite. Each orchestrate method first runs once
untimed (the duration store of its second run; the bytecode and assertion-rewrite caches it
writes are plain pytest's too), then the repetitions run interleaved. Each command runs under GNU time, whose peak RSS is the largest single process's
(the coordinator, pytest's own process, or a worker). For orchestrate, the plan's prediction is
read from its output and set beside the wall of its test phase.

PYTHONDONTWRITEBYTECODE is removed from every command's environment, for every method alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/scale.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.methods import plan_figures  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "cases" / "scale"
BIN = Path(sys.executable).parent


def write_suite(root: Path, tests: int, files: int = 100, per_class: int = 5) -> None:
    """`tests` tests in `files` files of classes of `per_class`; every 100th test fails."""
    classes = tests // files // per_class
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    number = 0
    for f in range(files):
        lines = []
        for c in range(classes):
            lines.append(f"class TestC{c:04d}:")
            for t in range(per_class):
                body = (
                    "assert number % 7 == 99, f'{number} is not what we wanted'"
                    if number % 100 == 99
                    else "pass"
                )
                lines += [f"    def test_{t}(self):", f"        number = {number}", f"        {body}"]
                number += 1
        (root / f"test_f{f:03d}.py").write_text("\n".join(lines) + "\n", encoding="utf-8")


def commands(suite: Path, scratch: Path, agents: list[str]) -> dict[str, list[str]]:
    junit = ["--junitxml", str(scratch / "junit.xml"), "-q"]
    found = {"plain pytest": [str(BIN / "pytest"), str(suite), *junit]}
    for n in agents:
        found[f"orchestrate {n}"] = [
            str(BIN / "orchestrate"),
            "run",
            str(suite),
            "--durations",
            str(scratch / f"durations-{n}.msgpack"),
            *(["--agents", n] if n != "auto" else []),
            "--",
            *junit,
        ]
    return found


def run_once(command: list[str], cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "@@rss %M", *command], cwd=cwd, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    rss = re.search(r"@@rss (\d+)", done.stderr)
    predicted, test_phase = plan_figures(done.stdout)
    counts = re.findall(r"^=*\s*(\d+ failed, \d+ passed)", done.stdout, re.M)
    return {
        "exit": done.returncode,
        "wall": wall,
        "peak_mib": int(rss.group(1)) / 1024 if rss else None,
        "predicted": predicted,
        "test_phase": test_phase,
        "counts": counts[-1] if counts else done.stdout.strip().splitlines()[-1:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=100_000)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--agents", default="auto,2", help="orchestrate's --agents values, comma-separated")
    args = parser.parse_args()
    suite, scratch = OUT / f"suite-{args.tests}", OUT / "scratch"
    if not suite.exists():
        write_suite(suite, args.tests)
    scratch.mkdir(parents=True, exist_ok=True)
    methods = commands(suite, scratch, args.agents.split(","))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
    for name, command in methods.items():  # untimed: the store for a second run, bytecode
        if name.startswith("orchestrate"):
            print(f"warm-up: {name}", file=sys.stderr, flush=True)
            run_once(command, suite)
    for repetition in range(args.repetitions):
        order = list(methods.items())
        order = order[repetition % len(order) :] + order[: repetition % len(order)]
        for name, command in order:
            result = run_once(command, suite)
            runs[name].append(result)
            print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    summary = {
        name: {
            "wall": statistics.median(r["wall"] for r in results),
            "peak_mib": max(r["peak_mib"] or 0 for r in results),
            "runs": results,
        }
        for name, results in runs.items()
    }
    (OUT / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plain = summary["plain pytest"]
    for name, figures in summary.items():
        last = figures["runs"][-1]
        ratio = (
            f" ({figures['wall'] / plain['wall']:.2f}x, RSS {figures['peak_mib'] / plain['peak_mib']:.2f}x)"
        )
        prediction = (
            f"; predicted {last['predicted']:.1f}s for a test phase of {last['test_phase']:.1f}s"
            if last["predicted"] is not None and last["test_phase"] is not None
            else ""
        )
        print(
            f"{name}: wall {figures['wall']:.1f}s, peak RSS {figures['peak_mib']:.0f} MiB"
            f"{'' if name == 'plain pytest' else ratio}{prediction}; {last['counts']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
