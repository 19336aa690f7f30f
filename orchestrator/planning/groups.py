"""Test groups: which collected tests share something outside the stack, and how many may run at once.

A group is declared by marker (`@pytest.mark.orchestrate_group("payments", limit=1)` on a test,
a class, a module or `pytestmark`) or in pyproject.toml, so a suite need not be edited:

    [tool.orchestrate.groups]
    payments = {limit = 1, tests = ["tests/payments/**", "tests/test_x.py::TestY"]}
    machine = {alone = true, tests = ["tests/test_sysctl.py"]}

`tests` are glob patterns over node ids and their paths, relative to the rootdir: `**` matches
anything (`**/` also no directory at all), `*` and `?` stop at `/` and `::`, and a pattern matches a test when it matches its
node id or any leading part of it (a directory, a file, a class). `orchestrate_alone` (or a
group with `alone = true`) runs while nothing else runs on any agent; `orchestrate_weight(W)`
(or `weight=W` on the group marker) makes a test hold W slots of each of its groups.

Read once per run: `read_groups` parses the pyproject table, `GroupResolver` reads each item's
markers against it and checks them; every mistake is one UsageError line (exit 4). A unit
(orchestrator/planning/pipeline.py) belongs to the groups of its tests, holds the largest weight of its
tests, and runs alone when any of its tests must.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.fixtures import ALONE_MARKER, GROUP_MARKER, WEIGHT_MARKER
from orchestrator.protocol.errors import UsageError

__all__ = ["GroupResolver", "GroupSpec", "TestConstraints", "groups_of_table", "read_groups"]

_KEYS = frozenset({"limit", "tests", "alone"})


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A test group declared in [tool.orchestrate.groups]: its limit, its tests, whether alone."""

    name: str
    limit: int | None  # None only for an alone group (it takes the whole cluster)
    tests: tuple[str, ...] = ()
    alone: bool = False

    def matches(self, node_id: str) -> bool:
        """True when one of the group's patterns matches the node id or a leading part of it."""
        candidates = _leading_parts(node_id)
        return any(regex.fullmatch(c) for regex in _regexes(self.tests) for c in candidates)


@dataclass(frozen=True, slots=True)
class TestConstraints:
    """What one test asks of the scheduler: its groups (name, limit), its weight, alone or not."""

    __test__ = False

    groups: tuple[tuple[str, int], ...] = ()
    weight: int = 1
    alone: bool = False


def read_groups(pyproject: Path) -> tuple[GroupSpec, ...]:
    """The groups of [tool.orchestrate.groups] in `pyproject` (none when it has none, or no file)."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{pyproject}: {exc}") from exc
    return groups_of_table(data.get("tool", {}).get("orchestrate", {}).get("groups", {}), str(pyproject))


def groups_of_table(table: object, path: str) -> tuple[GroupSpec, ...]:
    """The groups of a parsed [tool.orchestrate.groups] table of the file `path`, checked."""
    where = f"{path}: [tool.orchestrate.groups]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table of groups")
    return tuple(_spec(name, value, where) for name, value in table.items())


def _spec(name: str, value: object, where: str) -> GroupSpec:
    if not isinstance(value, dict):
        raise UsageError(f"{where} {name} must be a table, e.g. {name} = {{limit = 1, tests = [...]}}")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise UsageError(f"{where} {name}: unknown key {unknown[0]!r} (known: alone, limit, tests)")
    alone = value.get("alone", False)
    if not isinstance(alone, bool):
        raise UsageError(f"{where} {name}: alone must be true or false")
    limit = value.get("limit")
    if limit is None and not alone:
        raise UsageError(f"{where} {name}: needs a limit (a whole number of at least 1) or alone = true")
    if limit is not None:
        limit = _limit(limit, f"{where} {name}")
    tests = value.get("tests", [])
    if not isinstance(tests, list) or not all(isinstance(t, str) and t for t in tests):
        raise UsageError(f"{where} {name}: tests must be a list of glob patterns (strings)")
    return GroupSpec(name, limit, tuple(tests), alone)


def _limit(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{where}: limit must be a whole number of at least 1, got {value!r}")
    return value


class GroupResolver:
    """Reads each collected test's groups, weight and alone from its markers and the declared
    groups, and checks that every group has one limit the whole run agrees on."""

    def __init__(self, specs: tuple[GroupSpec, ...] = ()) -> None:
        self._specs = {spec.name: spec for spec in specs}
        # group name -> (limit, where it was set): a marker's limit must agree with every other.
        self._limits: dict[str, tuple[int, str]] = {
            s.name: (s.limit, "pyproject.toml") for s in specs if s.limit is not None
        }

    def of(self, item: pytest.Item) -> TestConstraints:
        """The constraints of one test; raises UsageError naming the test for a bad marker."""
        node_id = item.nodeid
        limits: dict[str, int] = {}
        alone = item.get_closest_marker(ALONE_MARKER) is not None
        weights: list[int] = []
        for spec in self._specs.values():
            if spec.tests and spec.matches(node_id):
                alone = alone or spec.alone
                if spec.limit is not None:
                    limits[spec.name] = spec.limit
        for marker in item.iter_markers(GROUP_MARKER):
            name = marker.args[0] if marker.args else marker.kwargs.get("name")
            if not isinstance(name, str) or not name:
                raise UsageError(
                    f'{node_id}: @pytest.mark.{GROUP_MARKER} needs a group name, e.g. ("payments", limit=1)'
                )
            if "weight" in marker.kwargs:
                weights.append(_weight(marker.kwargs["weight"], node_id))
            declared = self._specs.get(name)
            alone = alone or (declared is not None and declared.alone)
            limit = self._limit_of(name, marker.kwargs.get("limit"), node_id)
            if limit is not None:
                limits[name] = limit
        weight_marker = item.get_closest_marker(WEIGHT_MARKER)
        if weight_marker is not None:
            value = weight_marker.args[0] if weight_marker.args else weight_marker.kwargs.get("weight")
            weights = [_weight(value, node_id)]
        weight = max(weights, default=1)
        if weights and not limits and not alone:
            raise UsageError(
                f"{node_id}: a weight counts against a group's limit, and this test is in no group "
                f"(add @pytest.mark.{GROUP_MARKER}(...) or list it in [tool.orchestrate.groups])"
            )
        for name, limit in limits.items():
            if weight > limit:
                raise UsageError(
                    f"{node_id}: weight {weight} is above the limit of group {name!r} ({limit}): it could never run"
                )
        return TestConstraints(tuple(sorted(limits.items())), weight, alone)

    def _limit_of(self, name: str, given: object, node_id: str) -> int | None:
        """The group's one limit; None for an alone group declared without one."""
        known = self._limits.get(name)
        if given is None:
            if known is not None:
                return known[0]
            spec = self._specs.get(name)
            if spec is not None and spec.alone:
                return None
            raise UsageError(
                f"{node_id}: unknown test group {name!r}: give it a limit "
                f"(@pytest.mark.{GROUP_MARKER}({name!r}, limit=N)) or declare it in [tool.orchestrate.groups]"
            )
        limit = _limit(given, f"{node_id}: @pytest.mark.{GROUP_MARKER}({name!r})")
        if known is None:
            self._limits[name] = (limit, node_id)
        elif known[0] != limit:
            raise UsageError(
                f"{node_id}: group {name!r} has limit {limit} here and {known[0]} in {known[1]}; give it one limit"
            )
        return limit


def _weight(value: object, node_id: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{node_id}: a weight must be a whole number of at least 1, got {value!r}")
    return value


def _leading_parts(node_id: str) -> list[str]:
    """The node id and every leading part of it: directories, the file, enclosing classes."""
    path, sep, rest = node_id.partition("::")
    pieces = path.split("/")
    parts = ["/".join(pieces[: i + 1]) for i in range(len(pieces))]
    if sep:
        names = rest.split("::")
        parts += [path + "::" + "::".join(names[: i + 1]) for i in range(len(names))]
    return parts


_REGEX_CACHE: dict[tuple[str, ...], tuple[re.Pattern[str], ...]] = {}


def _regexes(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    cached = _REGEX_CACHE.get(patterns)
    if cached is None:
        cached = _REGEX_CACHE[patterns] = tuple(re.compile(_translate(p)) for p in patterns)
    return cached


def _translate(pattern: str) -> str:
    """A glob over node ids as a regular expression (`**` anything; `*`, `?` not past `/` or `::`)."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # any directories, or none
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/:]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/:]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
