"""The boundary between the coordinator and the agents, checked by walking every import.

agents/ may import orchestrator.protocol (what both sides share) and nothing else of
orchestrator/; orchestrator/protocol/ imports nothing of ours outside itself; and the rest of
orchestrator/ reaches agents/ only through its declared faces (`AGENT_FACES`): the stack
package's public names, the worker's option rule, the markers, and the agent
runtime that the Ray actor wraps and a local agent without a stack runs in a thread
(orchestrator/run/backends/ray.py and local.py alone).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("orchestrator", "agents")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file, also those inside functions."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            # `from orchestrator import model` imports orchestrator.model
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(folder: str, allowed: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imports(path):
            ours = any(_is_under(module, top) for top in OURS)
            if ours and module not in OURS and not any(_is_under(module, ok) for ok in allowed):
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return found


def test_agents_import_only_the_protocol_of_the_orchestrator() -> None:
    assert _violations("agents", allowed=("agents", "orchestrator.protocol")) == []


# What of agents/ the coordinator side may import, and from where (None: any module).
AGENT_FACES: dict[str, tuple[str, ...] | None] = {
    "agents.stack": None,  # the package's __all__: validate, check the engine, sweep, clean
    "agents.worker": None,  # without_stack_options: the one rule for per-agent options
    "agents.fixtures": None,  # the markers' names and lines
    # the agent a Ray actor hosts, and a local agent without a stack runs in a thread
    "agents.runtime": ("orchestrator/run/backends/ray.py", "orchestrator/run/backends/local.py"),
}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _face_violations() -> list[str]:
    found = []
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for line, module in _imports(path):
            if not _is_under(module, "agents") or module == "agents":
                continue
            # `from agents.stack import sweep` also yields agents.stack.sweep: a name of a face
            face = module if _is_module(module) else module.rpartition(".")[0]
            where = AGENT_FACES.get(face, ())
            if where is not None and relative not in where:
                found.append(f"{relative}:{line}: imports {module}")
    return found


def test_the_coordinator_reaches_agents_only_through_their_faces() -> None:
    assert _face_violations() == []


def test_the_face_check_sees_a_private_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "orchestrator").mkdir()
    (tmp_path / "agents" / "stack").mkdir(parents=True)
    (tmp_path / "agents" / "stack" / "__init__.py").write_text("")
    (tmp_path / "agents" / "stack" / "docker.py").write_text("")
    (tmp_path / "orchestrator" / "x.py").write_text("from agents.stack.docker import DockerStack\n")
    (tmp_path / "orchestrator" / "y.py").write_text("from agents.runtime import AgentRuntime\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = _face_violations()
    assert "orchestrator/x.py:1: imports agents.stack.docker" in found
    assert any("y.py:1: imports agents.runtime" in f for f in found)


def test_the_report_is_a_leaf() -> None:
    """report/ renders values (orchestrator.model) and replays them into pytest; it imports no stage."""
    allowed = ("orchestrator.report", "orchestrator.model", "orchestrator.protocol")
    assert _violations("orchestrator/report", allowed=allowed) == []


def test_the_model_imports_nothing_of_ours_outside_itself() -> None:
    assert _violations("orchestrator/model", allowed=("orchestrator.model",)) == []


def test_the_protocol_imports_nothing_of_ours_outside_itself() -> None:
    assert _violations("orchestrator/protocol", allowed=("orchestrator.protocol",)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from orchestrator.planning import sizing\n", "agents/x.py:1: imports orchestrator.planning.sizing"),
        ("import orchestrator.model\n", "agents/x.py:1: imports orchestrator.model"),
        (
            "def f():\n    from orchestrator.run.session import Session\n",
            "agents/x.py:2: imports orchestrator.run.session",
        ),
    ],
)
def test_the_check_sees_forbidden_imports(
    source: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "x.py").write_text(source)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert expected in _violations("agents", allowed=("agents", "orchestrator.protocol"))


# Each third-party engine is met at exactly one edge of ours.
_EDGES = {
    "ray": ("orchestrator/run/backends/ray.py", "orchestrator/run/backends/ray_cluster.py"),
    "docker": ("agents/stack/_sdk.py",),
    "msgpack": ("orchestrator/protocol/wire.py",),
    "rich": ("orchestrator/report/",),
}


@pytest.mark.parametrize("library", sorted(_EDGES))
def test_each_engine_is_imported_at_one_edge_only(library: str) -> None:
    importers = []
    for folder in OURS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if any(_is_under(module, library) for _, module in _imports(path)):
                importers.append(relative)
    assert importers, f"nothing imports {library}: is the check looking in the right place?"
    assert [p for p in importers if not p.startswith(_EDGES[library])] == []
