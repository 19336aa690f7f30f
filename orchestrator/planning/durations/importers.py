"""Durations from other tools' files: pytest-split's `.test_durations` and JUnit XML reports.

Each reader returns the observations a file holds, checked, for DurationStore
(durations/store.py) to fold in: pytest-split's by node id, JUnit's by pytest's (classname,
name), since the XML loses the exact node id; `junit_key` turns a node id into that key exactly
as pytest does when it writes the XML. A file that is not what it should be raises UsageError
with one line saying why.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from _pytest.junitxml import mangle_test_address

from orchestrator.protocol.errors import UsageError

__all__ = ["JunitKey", "junit_key", "read_junit_xml", "read_pytest_split", "valid_seconds"]

JunitKey = tuple[str, str]


def junit_key(node_id: str) -> JunitKey:
    """pytest's JUnit (classname, name) for `node_id`, as `--junitxml` writes it (no prefix)."""
    names = mangle_test_address(node_id)
    return ".".join(names[:-1]), names[-1]


def valid_seconds(value: Any) -> bool:
    """Whether `value` is a duration worth keeping: a finite, non-negative number (not a bool)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def read_pytest_split(path: str | os.PathLike[str]) -> dict[str, float]:
    """The {node_id: seconds} of pytest-split's `.test_durations` file.

    The file is JSON, {node_id: seconds}; pytest-split before 0.3 wrote a list of
    [node_id, seconds] pairs, also accepted. Raise UsageError if it is neither.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from exc
    if isinstance(document, list) and all(isinstance(p, list) and len(p) == 2 for p in document):
        document = dict(document)
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not a pytest-split durations file (expected a JSON object)")
    observations: dict[str, float] = {}
    for node_id, seconds in document.items():
        if not isinstance(node_id, str) or not valid_seconds(seconds):
            raise UsageError(f"{path}: bad duration {seconds!r:.50} for {node_id!r:.200}")
        observations[node_id] = float(seconds)
    return observations


def read_junit_xml(path: str | os.PathLike[str]) -> dict[JunitKey, float]:
    """The {(classname, name): seconds} of a JUnit XML report.

    Skipped tests and tests with a setup or teardown error are left out, like the store's
    `update` does; a repeated test (a rerun) keeps its last time. Reports written with
    `junit_prefix` only match node ids if the prefix is removed first. Raise UsageError on a
    file that is not a JUnit report.
    """
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise UsageError(f"{path} is not XML: {exc}") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise UsageError(f"{path} is not a JUnit report (root element <{root.tag}>)")
    observations: dict[JunitKey, float] = {}
    for case in root.iter("testcase"):
        if case.find("skipped") is not None or case.find("error") is not None:
            continue
        classname, name, time = case.get("classname"), case.get("name"), case.get("time")
        if classname is None or name is None or time is None:
            raise UsageError(f"{path}: a <testcase> lacks classname, name or time")
        try:
            seconds = float(time)
        except ValueError:
            seconds = math.nan
        if not valid_seconds(seconds):
            raise UsageError(f"{path}: bad time {time!r:.50} for {classname}::{name}")
        observations[classname, name] = seconds  # a repeated test (a rerun): the last wins
    return observations
