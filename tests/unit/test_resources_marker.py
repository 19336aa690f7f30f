"""`@pytest.mark.orchestrate(resources=...)`: registered everywhere, collected onto units."""

from __future__ import annotations

import pytest

from orchestrator.model import GroupBy
from orchestrator.planning.pipeline import units_of
from orchestrator.protocol.errors import UsageError

SUITE = """
import pytest

@pytest.mark.orchestrate(resources={"GPU": 1})
class TestGpu:
    def test_a(self): pass

    @pytest.mark.orchestrate(resources={"GPU": 2, "special": 0.5})
    def test_b(self): pass

def test_plain(): pass
"""


def test_a_unit_needs_the_most_any_of_its_tests_asks_for(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(SUITE)
    units = {u.unit_id: u for u in units_of(items, GroupBy.CLASS)}
    assert units["test_a_unit_needs_the_most_any_of_its_tests_asks_for.py::TestGpu"].resources == (
        ("GPU", 2.0),
        ("special", 0.5),
    )
    assert units["test_a_unit_needs_the_most_any_of_its_tests_asks_for.py"].resources == ()


def test_a_malformed_marker_is_a_usage_error_naming_the_test(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(
        "import pytest\n@pytest.mark.orchestrate(resources=['GPU'])\ndef test_x(): pass\n"
    )
    with pytest.raises(UsageError, match=r"test_x: @pytest.mark.orchestrate\(resources=...\) takes a dict"):
        units_of(items, GroupBy.CLASS)


def test_the_marker_passes_strict_markers_under_plain_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
