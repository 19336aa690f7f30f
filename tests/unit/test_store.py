"""Unit tests of the duration store: file handling, moving averages, imports, the slowest list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.model import TestUnit
from orchestrator.planning.durations import store as store_module
from orchestrator.planning.durations.store import (
    ALPHA,
    DurationStore,
    TestHistory,
    UnitDuration,
    junit_key,
    unit_of,
)
from orchestrator.protocol import wire
from orchestrator.protocol.errors import UsageError


def _store(**seconds_by_node_id: float) -> DurationStore:
    return DurationStore({n: TestHistory(s, 1) for n, s in seconds_by_node_id.items()})


# -- loading and saving ----------------------------------------------------------------------


def test_missing_file_is_an_empty_store_without_warning(tmp_path: Path) -> None:
    store, warning = DurationStore.load(tmp_path / "nope" / "durations.msgpack")
    assert len(store) == 0
    assert warning is None


def test_save_then_load_round_trips_and_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / ".orchestrate" / "durations.msgpack"
    store = DurationStore()
    store.update({"t.py::test_a": 1.5, "t.py::test_b": 0.25})
    store.update({"t.py::test_a": 0.5})
    store.save(path)

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert len(loaded) == 2
    assert loaded.get("t.py::test_a") == pytest.approx(1.0)
    assert dict(loaded.items())["t.py::test_a"].count == 2
    assert loaded.get("t.py::test_b") == 0.25
    assert list(tmp_path.joinpath(".orchestrate").iterdir()) == [path]  # no temp file left


def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    _store(**{"t.py::test_a": 1.0}).save(path)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    path.chmod(0o664)
    _store(**{"t.py::test_a": 2.0}).save(path)
    assert path.stat().st_mode & 0o777 == 0o664


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\xc1 this is not msgpack", id="garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(wire.pack([1, 2, 3]), id="untagged"),
        pytest.param(wire.pack(wire.message("outcome", tests={})), id="wrong-tag"),
        pytest.param(wire.pack({**wire.message("durations", tests={}), "$v": 99}), id="future-version"),
        pytest.param(wire.pack(wire.message("durations", tests=[1])), id="tests-not-a-map"),
        pytest.param(wire.pack(wire.message("durations", tests={"t.py::a": ["x", 1]})), id="bad-seconds"),
        pytest.param(wire.pack(wire.message("durations", tests={"t.py::a": [1.0, 0]})), id="bad-count"),
        pytest.param(wire.pack(wire.message("durations", junit=[["c", 1, 1.0, 1]])), id="bad-junit"),
    ],
)
def test_unreadable_store_is_ignored_with_one_line_warning_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "durations.msgpack"
    path.write_bytes(content)

    store, warning = DurationStore.load(path)

    assert len(store) == 0
    assert warning is not None
    assert str(path) in warning
    assert "\n" not in warning
    assert path.read_bytes() == content


def test_future_format_version_is_named_in_the_warning(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    path.write_bytes(wire.pack({**wire.message("durations", tests={}), "$v": 2}))
    _, warning = DurationStore.load(path)
    assert warning is not None and "version 2" in warning


def test_a_directory_in_place_of_the_store_is_a_warning(tmp_path: Path) -> None:
    store, warning = DurationStore.load(tmp_path)
    assert len(store) == 0
    assert warning is not None


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_save_raises_and_leaves_the_old_store_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "durations.msgpack"
    _store(**{"t.py::test_old": 1.0}).save(path)
    old_bytes = path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        _store(**{"t.py::test_new": 2.0}).save(path)
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == [path.name]  # the temp file was removed
    assert DurationStore.load(path)[0].get("t.py::test_old") == 1.0


# -- updating and merging --------------------------------------------------------------------


def test_update_keeps_an_exponential_moving_average_and_a_count() -> None:
    store = DurationStore()
    store.update({"t.py::test_a": 2.0})
    assert store.get("t.py::test_a") == 2.0  # the first run is taken as is
    store.update({"t.py::test_a": 4.0})
    assert store.get("t.py::test_a") == pytest.approx(ALPHA * 4.0 + (1 - ALPHA) * 2.0)
    store.update({"t.py::test_a": 1.0})
    assert store.get("t.py::test_a") == pytest.approx(ALPHA * 1.0 + (1 - ALPHA) * 3.0)
    assert dict(store.items())["t.py::test_a"].count == 3
    assert store.get("t.py::test_other") is None


def test_update_ignores_values_that_are_not_durations() -> None:
    store = _store(**{"t.py::test_a": 1.0})
    store.update({"t.py::test_a": float("nan"), "t.py::test_b": -1.0, "t.py::test_c": float("inf")})
    assert store.get("t.py::test_a") == 1.0
    assert len(store) == 1


def test_merge_prefers_the_longer_history_and_averages_equal_ones() -> None:
    mine = DurationStore({"a": TestHistory(1.0, 3), "b": TestHistory(1.0, 2), "c": TestHistory(1.0, 2)})
    theirs = DurationStore({"a": TestHistory(9.0, 2), "b": TestHistory(9.0, 3), "c": TestHistory(3.0, 2)})
    theirs.update({"d": 4.0})

    mine.merge(theirs)

    assert mine.get("a") == 1.0
    assert mine.get("b") == 9.0
    assert mine.get("c") == 2.0
    assert mine.get("d") == 4.0


def test_cpu_seconds_are_averaged_saved_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    store = DurationStore()
    store.update({"t.py::test_a": 1.0, "t.py::test_b": 1.0}, cpu={"t.py::test_a": 0.8, "t.py::test_x": 1.0})
    store.update({"t.py::test_a": 1.0}, cpu={"t.py::test_a": 0.4, "t.py::test_b": float("nan")})
    store.save(path)

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert loaded.cpu("t.py::test_a") == pytest.approx(ALPHA * 0.4 + (1 - ALPHA) * 0.8)
    assert loaded.cpu("t.py::test_b") is None  # never measured (not a number is no measure)
    assert loaded.cpu("t.py::test_x") is None  # CPU only for a test whose duration is known


def test_a_store_written_before_cpu_seconds_were_kept_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    path.write_bytes(
        wire.pack(wire.message("durations", alpha=ALPHA, tests={"t.py::test_a": [1.0, 2]}, junit=[]))
    )

    loaded, warning = DurationStore.load(path)

    assert warning is None
    assert loaded.get("t.py::test_a") == 1.0
    assert loaded.cpu("t.py::test_a") is None


def test_a_malformed_cpu_entry_is_a_one_line_warning(tmp_path: Path) -> None:
    path = tmp_path / "durations.msgpack"
    bad = wire.message(
        "durations", alpha=ALPHA, tests={"t.py::test_a": [1.0, 2]}, junit=[], cpu={"t.py::test_a": "x"}
    )
    path.write_bytes(wire.pack(bad))

    loaded, warning = DurationStore.load(path)

    assert len(loaded) == 0
    assert warning is not None and "malformed CPU entry" in warning and "\n" not in warning


def test_merge_takes_the_cpu_seconds_of_the_history_it_keeps() -> None:
    mine = DurationStore({"a": TestHistory(1.0, 3), "b": TestHistory(1.0, 2), "c": TestHistory(1.0, 2)})
    mine.update({}, cpu={"a": 0.2, "b": 0.2, "c": 0.2})
    theirs = DurationStore({"a": TestHistory(9.0, 2), "b": TestHistory(9.0, 3), "c": TestHistory(3.0, 2)})
    theirs.update({"d": 4.0}, cpu={"a": 0.8, "b": 0.8, "c": 0.6, "d": 0.5})

    mine.merge(theirs)

    assert mine.cpu("a") == 0.2  # mine has the longer history
    assert mine.cpu("b") == 0.8  # theirs has
    assert mine.cpu("c") == pytest.approx(0.4)  # equal: averaged, as the seconds are
    assert mine.cpu("d") == 0.5


# -- imports ---------------------------------------------------------------------------------


def test_import_pytest_split_durations(tmp_path: Path) -> None:
    path = tmp_path / ".test_durations"
    path.write_text(json.dumps({"tests/test_a.py::test_x": 1.25, "tests/test_a.py::test_y[1-2]": 0}))
    store = _store(**{"tests/test_a.py::test_x": 0.25})

    assert store.import_pytest_split(path) == 2

    assert store.get("tests/test_a.py::test_x") == pytest.approx(ALPHA * 1.25 + (1 - ALPHA) * 0.25)
    assert store.get("tests/test_a.py::test_y[1-2]") == 0.0


def test_import_pytest_split_old_list_format(tmp_path: Path) -> None:
    path = tmp_path / ".test_durations"
    path.write_text(json.dumps([["t.py::test_x", 2.0]]))
    store = DurationStore()
    assert store.import_pytest_split(path) == 1
    assert store.get("t.py::test_x") == 2.0


@pytest.mark.parametrize(
    "content",
    ["{not json", '"a string"', '{"t.py::test_x": "slow"}', '{"t.py::test_x": -1}', '{"t.py::test_x": true}'],
)
def test_import_pytest_split_rejects_bad_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / ".test_durations"
    path.write_text(content)
    store = DurationStore()
    with pytest.raises(UsageError, match=".test_durations"):
        store.import_pytest_split(path)
    assert len(store) == 0


def test_import_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        DurationStore().import_pytest_split(tmp_path / "missing.json")
    with pytest.raises(UsageError, match="cannot read"):
        DurationStore().import_junit_xml(tmp_path / "missing.xml")


_SAMPLE_SUITE = """
import time

import pytest


def test_module_level():
    time.sleep(0.02)


@pytest.mark.parametrize("value", ["a::b", "plain"])
def test_params(value):
    pass


class TestThings:
    def test_method(self):
        time.sleep(0.05)

    def test_fails(self):
        assert False

    @pytest.mark.skip(reason="not today")
    def test_skipped(self):
        pass
"""
_SAMPLE_NODE_IDS = [
    "pkg/test_sample.py::test_module_level",
    "pkg/test_sample.py::test_params[a::b]",
    "pkg/test_sample.py::test_params[plain]",
    "pkg/test_sample.py::TestThings::test_method",
    "pkg/test_sample.py::TestThings::test_fails",
]


@pytest.fixture(scope="module")
def junit_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUnit XML file written by a real pytest run of a small suite in a package directory."""
    root = tmp_path_factory.mktemp("junit")
    root.joinpath("pytest.ini").write_text("[pytest]\n")  # keep this repository's config out
    root.joinpath("pkg").mkdir()
    root.joinpath("pkg", "test_sample.py").write_text(textwrap.dedent(_SAMPLE_SUITE))
    report = root / "junit.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:orchestrate_stack"]
        + ["-q", f"--junitxml={report}", "pkg"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr  # one test fails
    return report


def test_junit_key_matches_what_pytest_writes(junit_report: Path) -> None:
    import xml.etree.ElementTree as ET

    written = {(c.get("classname"), c.get("name")) for c in ET.parse(junit_report).getroot().iter("testcase")}
    assert {junit_key(n) for n in _SAMPLE_NODE_IDS} <= written


def test_import_junit_xml_matches_collected_node_ids(junit_report: Path) -> None:
    store = DurationStore()

    assert store.import_junit_xml(junit_report) == len(_SAMPLE_NODE_IDS)  # the skipped one is left out

    for node_id in _SAMPLE_NODE_IDS:
        assert store.get(node_id) is not None, node_id
    assert store.get("pkg/test_sample.py::TestThings::test_skipped") is None
    slept = store.get("pkg/test_sample.py::TestThings::test_method")
    assert slept is not None and 0.05 <= slept < 5


def test_import_junit_xml_updates_tests_known_by_node_id(junit_report: Path) -> None:
    node_id = "pkg/test_sample.py::TestThings::test_method"
    store = _store(**{node_id: 10.0})

    store.import_junit_xml(junit_report)

    history = dict(store.items())[node_id]
    assert history.count == 2
    assert 5.0 <= history.seconds < 7.5  # the average of 10 and a fraction of a second
    assert len(store) == len(_SAMPLE_NODE_IDS)  # no second, shadowed entry


def test_a_run_replaces_the_junit_entry_it_shadows(junit_report: Path) -> None:
    store = DurationStore()
    store.import_junit_xml(junit_report)
    node_id = "pkg/test_sample.py::test_params[a::b]"

    store.update({node_id: 3.0})

    assert store.get(node_id) == 3.0
    assert len(store) == len(_SAMPLE_NODE_IDS)


def test_junit_entries_survive_save_and_load(junit_report: Path, tmp_path: Path) -> None:
    store = DurationStore()
    store.import_junit_xml(junit_report)
    store.save(tmp_path / "d.msgpack")
    loaded, warning = DurationStore.load(tmp_path / "d.msgpack")
    assert warning is None
    assert [loaded.get(n) for n in _SAMPLE_NODE_IDS] == [store.get(n) for n in _SAMPLE_NODE_IDS]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<testsuites><testsuite>", "not XML"),
        ("<html><body/></html>", "not a JUnit report"),
        ('<testsuite><testcase classname="a" name="b" time="soon"/></testsuite>', "bad time"),
        ('<testsuite><testcase name="b" time="1.0"/></testsuite>', "lacks"),
    ],
)
def test_import_junit_xml_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        DurationStore().import_junit_xml(path)


# -- the slowest units -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node_id", "unit_id"),
    [
        ("tests/test_a.py::test_x", "tests/test_a.py"),
        ("tests/test_a.py::test_x[a::B::c]", "tests/test_a.py"),
        ("tests/test_a.py::TestX::test_y", "tests/test_a.py::TestX"),
        ("tests/test_a.py::TestX::TestInner::test_y[1]", "tests/test_a.py::TestX"),
        ("README.txt", "README.txt"),
    ],
)
def test_unit_of_a_stored_node_id(node_id: str, unit_id: str) -> None:
    assert unit_of(node_id) == unit_id


def test_slowest_units_without_a_collection() -> None:
    store = _store(
        **{
            "a.py::test_1": 1.0,
            "a.py::test_2": 1.0,
            "a.py::TestK::test_1": 5.0,
            "b.py::test_1": 0.5,
        }
    )
    assert store.slowest_units(2) == (UnitDuration("a.py::TestK", 5.0, 1), UnitDuration("a.py", 2.0, 2))
    assert len(store.slowest_units()) == 3


def test_slowest_units_follow_the_collection() -> None:
    store = _store(**{"a.py::test_1": 1.0, "a.py::TestK::test_1": 5.0, "b.py::test_1": 0.5})
    units = [
        TestUnit("a.py", ("a.py::test_1", "a.py::TestK::test_1", "a.py::test_new")),
        TestUnit("b.py", ("b.py::test_1",)),
    ]
    assert store.slowest_units(5, units) == (UnitDuration("a.py", 6.0, 2), UnitDuration("b.py", 0.5, 1))
