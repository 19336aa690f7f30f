"""A test's reports packed once in the worker: what unpacks is exactly pytest's serialised form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from _pytest.reports import TestReport, pytest_report_to_serializable

from orchestrator.protocol import wire
from orchestrator.protocol.reports import compact_phase, pack_test_reports, unpack_test_reports
from orchestrator.report.outcomes import rebuild_report

SUITE = """
import pytest

@pytest.fixture
def resource():
    print("setting up")
    yield 1

def test_passes(resource, record_property):
    record_property("answer", 42)
    print("in the call")

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False
"""


def _reports_by_test(pytester: pytest.Pytester, source: str = SUITE) -> dict[str, list[TestReport]]:
    """The TestReports pytest made for each test of `source`, run in-process."""
    pytester.makepyfile(test_suite=source)
    # pytest-html adds an attribute to every call report: a plugin's report, in pytest's form.
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:html")
    by_test: dict[str, list[TestReport]] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        assert isinstance(report, TestReport)
        by_test.setdefault(report.nodeid, []).append(report)
    return by_test


def _pack_like_the_worker(reports: Sequence[TestReport]) -> tuple[bytes, list[bool]]:
    """Pack one test's reports as agents/plugin.py does; also which phases went compact."""
    phases: list[Any] = []
    compacted: list[bool] = []
    keywords: dict[str, Any] = {}
    for report in reports:
        compact = compact_phase(report.__dict__) if type(report) is TestReport else None
        compacted.append(compact is not None)
        if compact is None:
            compact = pytest_report_to_serializable(report)
        elif not keywords:
            keywords = dict(report.keywords)
        phases.append(compact)
    return pack_test_reports(reports[0].location, keywords, phases), compacted


def _serialised(report: TestReport) -> dict[str, Any]:
    """pytest's serialised form of `report`, as it reads after crossing the wire."""
    return wire.unpack(wire.pack(pytest_report_to_serializable(report)))  # type: ignore[no-any-return]


def _seen(report: TestReport) -> tuple[Any, ...]:
    """What pytest's reporters read off a report."""
    return (
        report.nodeid,
        report.location,
        report.keywords,
        report.when,
        report.outcome,
        report.longreprtext,
        report.sections,
        report.user_properties,
        report.duration,
        report.start,
        report.stop,
    )


def test_a_passing_tests_phases_go_compact_and_unpack_to_pytests_form(pytester: pytest.Pytester) -> None:
    reports = _reports_by_test(pytester)["test_suite.py::test_passes"]
    assert [r.when for r in reports] == ["setup", "call", "teardown"]
    data, compacted = _pack_like_the_worker(reports)
    assert compacted == [True, True, True]

    unpacked = unpack_test_reports("test_suite.py::test_passes", data)

    assert unpacked == [_serialised(r) for r in reports]
    assert all(r["$report_type"] == "TestReport" for r in unpacked)
    assert [_seen(rebuild_report(r)) for r in unpacked] == [_seen(r) for r in reports]
    # What the compact form carries besides the outcome: captured output, user properties.
    assert any("in the call" in text for r in unpacked for _, text in r["sections"])
    assert unpacked[1]["user_properties"] == [["answer", 42]]


def test_a_compact_phase_is_much_smaller_than_pytests_form(pytester: pytest.Pytester) -> None:
    reports = _reports_by_test(pytester)["test_suite.py::test_passes"]
    data, _ = _pack_like_the_worker(reports)
    full = pack_test_reports(None, {}, [pytest_report_to_serializable(r) for r in reports])
    assert len(data) < len(full)


@pytest.mark.parametrize(
    ("test", "whens_compacted"),
    [
        ("test_fails", {"setup": True, "call": False, "teardown": True}),  # a traceback
        ("test_skipped", {"setup": False, "teardown": True}),  # a skip's reason (longrepr)
        ("test_xfails", {"setup": True, "call": False, "teardown": True}),  # longrepr and wasxfail
    ],
)
def test_a_report_with_a_longrepr_crosses_in_pytests_form(
    pytester: pytest.Pytester, test: str, whens_compacted: dict[str, bool]
) -> None:
    node_id = f"test_suite.py::{test}"
    reports = _reports_by_test(pytester)[node_id]
    data, compacted = _pack_like_the_worker(reports)
    assert dict(zip([r.when for r in reports], compacted, strict=True)) == whens_compacted

    unpacked = unpack_test_reports(node_id, data)

    assert unpacked == [_serialised(r) for r in reports]
    assert [_seen(rebuild_report(r)) for r in unpacked] == [_seen(r) for r in reports]


def test_a_plugins_extra_attribute_crosses_compact_as_pytests_serialiser_passes_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().extra = ["a plugin's", "data"]
        """
    )
    reports = _reports_by_test(pytester)["test_suite.py::test_passes"]
    assert all(r.outcome == "passed" and r.longrepr is None for r in reports)
    assert [compact_phase(r.__dict__)[-1] for r in reports] == [{"extra": ["a plugin's", "data"]}] * 3  # type: ignore[index]

    data, compacted = _pack_like_the_worker(reports)
    assert compacted == [True, True, True]
    unpacked = unpack_test_reports("test_suite.py::test_passes", data)

    assert unpacked == [_serialised(r) for r in reports]
    assert [r["extra"] for r in unpacked] == [["a plugin's", "data"]] * 3


def test_compact_phase_takes_only_a_plain_reports_attributes() -> None:
    plain = TestReport("t.py::a", ("t.py", 0, "a"), {"a": 1}, "passed", None, "call", [], 0.1, 1.0, 1.1)
    assert compact_phase(plain.__dict__) == ["call", "passed", 0.1, 1.0, 1.1, [], [], {}]
    assert compact_phase({**plain.__dict__, "extra": 1}) == [
        "call",
        "passed",
        0.1,
        1.0,
        1.1,
        [],
        [],
        {"extra": 1},
    ]
    assert compact_phase({**plain.__dict__, "longrepr": "boom"}) is None


def test_malformed_reports_name_their_test() -> None:
    with pytest.raises(wire.WireError, match="malformed reports of t.py::a"):
        unpack_test_reports("t.py::a", wire.pack([None, {}]))
    with pytest.raises(wire.WireError):
        unpack_test_reports("t.py::a", b"\xc1")
