"""The set-up state cache's key (agents/stack/cache.py): what changes it and what does not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agents.stack.cache import cache_key, input_files
from agents.stack.compose import StackSpec, parse_stack
from orchestrator.protocol.errors import StackFileError

STACK = """
services:
  db: {image: orchestrate/postgres:15, ports: ["5432"]}
x-orchestrate:
  setup: ["python app/migrate.py"]
"""
IDS = {"orchestrate/postgres:15": "sha256:aaa"}


def spec_of(text: str, path: str = "app/stack.yml") -> StackSpec:
    return parse_stack(textwrap.dedent(text), path=Path(path))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    (tmp_path / "app" / "migrate.py").write_text("print('migrate')\n")
    (tmp_path / "app" / "migrations" / "0001.sql").write_text("CREATE TABLE t (id int);\n")
    (tmp_path / "app" / "test_app.py").write_text("def test(): pass\n")
    (tmp_path / "app" / "conftest.py").write_text("")
    return tmp_path


def test_the_default_inputs_are_the_stack_folder_without_tests(project: Path) -> None:
    assert [p.as_posix() for p in input_files(spec_of(STACK), project)] == [
        "app/migrate.py",
        "app/migrations/0001.sql",
    ]


def test_a_migration_change_changes_the_key_and_a_test_change_does_not(project: Path) -> None:
    spec = spec_of(STACK)
    before = cache_key(spec, IDS, project)
    (project / "app" / "test_app.py").write_text("def test(): assert 1\n")
    assert cache_key(spec, IDS, project) == before
    (project / "app" / "migrations" / "0002.sql").write_text("ALTER TABLE t ADD x int;\n")
    assert cache_key(spec, IDS, project) != before


def test_the_image_id_and_the_setup_commands_are_part_of_the_key(project: Path) -> None:
    spec = spec_of(STACK)
    assert cache_key(spec, {"orchestrate/postgres:15": "sha256:bbb"}, project) != cache_key(
        spec, IDS, project
    )
    other = spec_of(STACK.replace("app/migrate.py", "app/migrate.py --seed"))
    assert cache_key(other, IDS, project) != cache_key(spec, IDS, project)


def test_the_same_file_elsewhere_gives_the_same_key(project: Path) -> None:
    assert cache_key(spec_of(STACK, "app/stack.yml"), IDS, project) == cache_key(
        spec_of(STACK, str(project / "app" / "stack.yml")), IDS, project
    )


def test_setup_inputs_globs_replace_the_default(project: Path) -> None:
    spec = spec_of(STACK + '  setup_inputs: ["app/migrations/**"]\n')
    assert [p.as_posix() for p in input_files(spec, project)] == ["app/migrations/0001.sql"]
    before = cache_key(spec, IDS, project)
    (project / "app" / "migrate.py").write_text("print('changed, but not an input')\n")
    assert cache_key(spec, IDS, project) == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  setup_inputs: migrations\n", "setup_inputs: must be a list of glob patterns"),
        ('  setup_inputs: ["/abs/**"]\n', r"setup_inputs\[0\]: must be relative"),
        ("  cache: maybe\n", "cache: must be true or false"),
        ("  cache_max_mb: -1\n", "cache_max_mb: must be a whole number"),
    ],
)
def test_bad_cache_settings_are_one_line_errors(extra: str, message: str) -> None:
    with pytest.raises(StackFileError, match=message):
        spec_of(STACK + extra)


def test_the_summary_line_says_hit_or_miss_and_what_setup_cost() -> None:
    from orchestrator.model import AgentStatistics
    from orchestrator.report.sections import stack_cache_line

    miss = [AgentStatistics(0, stack_cache="miss", setup_seconds=20.4)] + [
        AgentStatistics(i, stack_cache="hit", setup_saved_seconds=20.4) for i in (1, 2, 3)
    ]
    assert stack_cache_line(miss) == (
        "stack cache: miss; setup ran 1x (20.4s), committed and cloned to 3 other agent(s)"
    )
    hits = [AgentStatistics(i, stack_cache="hit", setup_saved_seconds=20.4) for i in range(4)]
    assert (
        stack_cache_line(hits) == "stack cache: hit on 4 agent(s); setup skipped (it took 20.4s when cached)"
    )
    assert stack_cache_line([AgentStatistics(0)]) == ""
