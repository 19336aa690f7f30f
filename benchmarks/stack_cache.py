"""The stack set-up state cache (issue 21): what a run pays for `setup`, cold, cached and without.

    python benchmarks/stack_cache.py [--setup-seconds 20] [--agents 4] [--repetitions 3]
    python benchmarks/stack_cache.py --demo [--repetitions 3]   # the bundled examples/integration

A case is a suite against one Postgres per agent whose `setup` sleeps `--setup-seconds` (a slow
migration) and then creates a table; or, with --demo, the bundled example. Each repetition runs,
interleaved: `nocache` (x-orchestrate.cache: false, every agent runs setup: the behaviour before
the cache), `cold` (a setup input changed: a new key, setup once, cloned to every agent), and
`hit` (the same key again: no setup); with --demo also `warm` (the example's own stack file,
whose `--agents` warm stacks `orchestrate up --stack` brought up once before the repetitions:
every such run borrows them, resets them and starts fresh workers). Each figure is the whole
`orchestrate run` command's wall time; the line the run's summary prints about the cache is kept
beside it. The images this script committed are removed at the end (`clean_cache` of each key
it made), and the warm stacks by `orchestrate down`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.stack import clean_cache, load_stack_file, stack_cache_key  # noqa: E402

STACK = """
services:
  db:
    image: orchestrate/postgres:15
    ports: ["5432"]
    healthcheck:
      test: ["CMD", "pg_isready", "--quiet", "--host=127.0.0.1", "--username=postgres"]
      interval: 250ms
      retries: 120
x-orchestrate:
  env:
    DATABASE_URL: "postgresql://postgres:postgres@{{db.host}}:{{db.port}}/postgres"
  setup: ["python setup_db.py"]
  setup_inputs: ["migrations/*", "setup_db.py"]
  reset: {{db: postgres}}
  cache: {cache}
"""

SETUP = """
import os, pathlib, time, psycopg
time.sleep({seconds})  # a slow migration
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
    for migration in sorted(pathlib.Path("migrations").iterdir()):
        connection.execute(migration.read_text())
"""

TESTS = """
import os, psycopg, pytest

@pytest.mark.parametrize("n", range(4))
def test_items(n):
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("DELETE FROM items")
        connection.execute("INSERT INTO items VALUES (%s)", (n,))
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (1,)
"""


def write_case(root: Path, setup_seconds: float) -> None:
    """The suite, its setup and a stack file with the cache on (stack.yml) and off (nocache.yml)."""
    (root / "migrations").mkdir(parents=True, exist_ok=True)
    (root / "setup_db.py").write_text(SETUP.format(seconds=setup_seconds))
    for module in range(4):  # four units, one per agent
        (root / f"test_items_{module}.py").write_text(TESTS)
    (root / "stack.yml").write_text(STACK.format(cache="true"))
    (root / "nocache.yml").write_text(STACK.format(cache="false"))
    new_input(root)


def new_input(root: Path) -> None:
    """Change a setup input: the next run has a new key (a cold cache)."""
    (root / "migrations" / "0001.sql").write_text(f"CREATE TABLE items (n int); -- {uuid.uuid4().hex}")


def run(cwd: Path, suite: str, stack: str, agents: int) -> tuple[float, str]:
    """One `orchestrate run`: its wall seconds and the summary's stack cache line."""
    command = [sys.executable, "-m", "orchestrator", "run", suite, "--stack", stack, "--agents", str(agents)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr}"
        )
    line = next((li for li in done.stdout.splitlines() if li.startswith("stack cache:")), "")
    return wall, line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup-seconds", type=float, default=20.0)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--demo", action="store_true", help="the bundled examples/integration instead")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = parser.parse_args(argv)
    if args.demo:
        cwd, suite = REPO, "examples/integration"
        # The example's stack file with one more setup input, a token file of ours (a new token:
        # a new key, without touching the example), and a copy with the cache off.
        args.out.mkdir(parents=True, exist_ok=True)
        token = args.out / "demo-token"
        text = (REPO / "examples" / "integration" / "stack.yml").read_text()
        own_input = (
            f'setup_inputs: ["examples/integration/migrate.py", "{token.relative_to(REPO).as_posix()}"]'
        )
        text = text.replace('setup_inputs: ["examples/integration/migrate.py"]', own_input)
        (args.out / "demo-stack.yml").write_text(text)
        (args.out / "demo-nocache-stack.yml").write_text(text + "  cache: false\n")
        stack = str((args.out / "demo-stack.yml").relative_to(REPO))
        nocache = str((args.out / "demo-nocache-stack.yml").relative_to(REPO))
    else:
        cwd = args.out / "cases" / "stack-cache"
        write_case(cwd, args.setup_seconds)
        suite, stack, nocache = ".", "stack.yml", "nocache.yml"
    walls: dict[str, list[float]] = {"nocache": [], "cold": [], "hit": [], "warm": []}
    lines: dict[str, str] = {}
    keys: set[str] = set()
    warm_stack = "examples/integration/stack.yml" if args.demo else ""
    if warm_stack:
        orchestrate = [sys.executable, "-m", "orchestrator"]
        subprocess.run(
            [*orchestrate, "up", "--stack", warm_stack, "--agents", str(args.agents)], cwd=cwd, check=True
        )
    try:
        for repetition in range(args.repetitions):
            if nocache:
                walls["nocache"].append(run(cwd, suite, nocache, args.agents)[0])
            if args.demo:
                token.write_text(uuid.uuid4().hex)
            else:
                new_input(cwd)
            keys.add(stack_cache_key(load_stack_file(cwd / stack), cwd))
            for kind in ("cold", "hit"):
                wall, lines[kind] = run(cwd, suite, stack, args.agents)
                walls[kind].append(wall)
                print(f"repetition {repetition + 1}: {kind} {wall:.2f}s  {lines[kind]}", flush=True)
            if warm_stack:
                wall, lines["warm"] = run(cwd, suite, warm_stack, args.agents)
                walls["warm"].append(wall)
                print(f"repetition {repetition + 1}: warm {wall:.2f}s", flush=True)
    finally:
        if warm_stack:
            subprocess.run([*orchestrate, "down"], cwd=cwd, check=False)
        for key in keys:
            clean_cache(key)
    summary = {
        kind: {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "cache": lines.get(kind, ""),
        }
        for kind, values in walls.items()
        if values
    }
    print(
        json.dumps(
            {"agents": args.agents, "setup_seconds": None if args.demo else args.setup_seconds, **summary},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
