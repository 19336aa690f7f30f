"""Test groups as declared: markers and [tool.orchestrate.groups] onto units, and every mistake one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.model import GroupBy
from orchestrator.planning.groups import GroupSpec, read_groups
from orchestrator.planning.pipeline import units_of
from orchestrator.protocol.errors import UsageError

SUITE = """
import pytest

pytestmark = pytest.mark.orchestrate_group("bucket", limit=2)

@pytest.mark.orchestrate_group("payments", limit=2)
class TestPayments:
    def test_a(self): pass

    @pytest.mark.orchestrate_weight(2)
    @pytest.mark.orchestrate_group("licence", limit=3)
    def test_b(self): pass

@pytest.mark.orchestrate_alone
def test_sysctl(): pass

class TestPlain:
    def test_c(self): pass
"""


def _units(pytester: pytest.Pytester, source: str, groups: tuple[GroupSpec, ...] = ()) -> dict[str, object]:
    items = pytester.getitems(source)
    return {u.unit_id.partition("::")[2] or "module": u for u in units_of(items, GroupBy.CLASS, groups)}


def test_a_unit_belongs_to_the_groups_of_its_tests(pytester: pytest.Pytester) -> None:
    units = _units(pytester, SUITE)
    payments = units["TestPayments"]
    assert payments.groups == (("bucket", 2), ("licence", 3), ("payments", 2))  # type: ignore[attr-defined]
    assert payments.weight == 2  # type: ignore[attr-defined]
    module = units["module"]
    assert module.alone and module.groups == (("bucket", 2),)  # type: ignore[attr-defined]
    assert units["TestPlain"].groups == (("bucket", 2),)  # type: ignore[attr-defined]


def test_pyproject_groups_match_paths_and_node_ids_by_glob(pytester: pytest.Pytester) -> None:
    specs = (
        GroupSpec("payments", 1, ("test_pyproject_*.py::TestPay*",)),
        GroupSpec(
            "machine",
            None,
            ("**/test_pyproject_groups_match_paths_and_node_ids_by_glob.py::test_f",),
            alone=True,
        ),
    )
    source = "class TestPayA:\n    def test_x(self): pass\nclass TestOther:\n    def test_y(self): pass\ndef test_f(): pass\n"
    units = _units(pytester, source, specs)
    assert units["TestPayA"].groups == (("payments", 1),)  # type: ignore[attr-defined]
    assert units["TestOther"].groups == ()  # type: ignore[attr-defined]
    assert units["module"].alone  # type: ignore[attr-defined]
    assert GroupSpec("g", 1, ("tests/payments/**",)).matches("tests/payments/sub/test_a.py::TestA::test_b[x]")
    assert GroupSpec("g", 1, ("tests/payments",)).matches("tests/payments/test_a.py::test_b")
    assert GroupSpec("g", 1, ("tests/pay*",)).matches("tests/payments/test_a.py::test_b")  # the directory
    assert GroupSpec("g", 1, ("**/test_a.py",)).matches("test_a.py::test_b")
    assert not GroupSpec("g", 1, ("tests/*.py",)).matches("tests/payments/test_a.py::test_b")
    assert GroupSpec("g", 1, ("tests/test_x.py::TestY",)).matches("tests/test_x.py::TestY::test_z")
    assert not GroupSpec("g", 1, ("tests/test_x.py::TestY",)).matches("tests/test_x.py::TestYZ::test_z")


def test_a_marker_may_name_a_group_declared_in_pyproject(pytester: pytest.Pytester) -> None:
    source = "import pytest\n@pytest.mark.orchestrate_group('payments')\ndef test_x(): pass\n"
    units = _units(pytester, source, (GroupSpec("payments", 2),))
    assert units["module"].groups == (("payments", 2),)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "@pytest.mark.orchestrate_group('x')\ndef test_x(): pass",
            r"test_x: unknown test group 'x': give it a limit",
        ),
        (
            "@pytest.mark.orchestrate_group('x', limit=0)\ndef test_x(): pass",
            r"limit must be a whole number of at least 1, got 0",
        ),
        ("@pytest.mark.orchestrate_group('x', limit=1.5)\ndef test_x(): pass", r"got 1.5"),
        ("@pytest.mark.orchestrate_group(limit=1)\ndef test_x(): pass", r"needs a group name"),
        (
            "@pytest.mark.orchestrate_group('x', limit=1)\ndef test_a(): pass\n"
            "@pytest.mark.orchestrate_group('x', limit=2)\ndef test_b(): pass",
            r"test_b: group 'x' has limit 2 here and 1 in .*test_a; give it one limit",
        ),
        (
            "@pytest.mark.orchestrate_weight(3)\n@pytest.mark.orchestrate_group('x', limit=2)\ndef test_x(): pass",
            r"weight 3 is above the limit of group 'x' \(2\): it could never run",
        ),
        (
            "@pytest.mark.orchestrate_weight(2)\ndef test_x(): pass",
            r"test_x: a weight counts against a group's limit",
        ),
        (
            "@pytest.mark.orchestrate_weight(0)\n@pytest.mark.orchestrate_group('x', limit=2)\ndef test_x(): pass",
            r"a weight must be a whole number of at least 1",
        ),
    ],
)
def test_every_mistake_is_one_usage_error_naming_the_test(
    pytester: pytest.Pytester, source: str, message: str
) -> None:
    items = pytester.getitems("import pytest\n" + source + "\n")
    with pytest.raises(UsageError, match=message) as caught:
        units_of(items, GroupBy.CLASS)
    assert "\n" not in str(caught.value)


def test_a_marker_limit_must_agree_with_pyproject(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(
        "import pytest\n@pytest.mark.orchestrate_group('p', limit=2)\ndef test_x(): pass\n"
    )
    with pytest.raises(UsageError, match=r"group 'p' has limit 2 here and 1 in pyproject.toml"):
        units_of(items, GroupBy.CLASS, (GroupSpec("p", 1),))


def test_read_groups_from_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    assert read_groups(path) == ()
    path.write_text(
        "[tool.orchestrate.groups]\n"
        'payments = {limit = 1, tests = ["tests/payments/**", "tests/test_x.py::TestY"]}\n'
        'machine = {alone = true, tests = ["tests/test_sysctl.py"]}\n'
    )
    assert read_groups(path) == (
        GroupSpec("payments", 1, ("tests/payments/**", "tests/test_x.py::TestY")),
        GroupSpec("machine", None, ("tests/test_sysctl.py",), alone=True),
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("p = {limit = 0}", r"p: limit must be a whole number of at least 1, got 0"),
        ("p = {tests = []}", r"p: needs a limit"),
        ("p = {limit = 1, test = []}", r"p: unknown key 'test'"),
        ("p = {limit = 1, tests = 'a'}", r"p: tests must be a list of glob patterns"),
        ("p = 3", r"p must be a table"),
    ],
)
def test_a_bad_pyproject_group_is_one_line(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.orchestrate.groups]\n{table}\n")
    with pytest.raises(UsageError, match=message):
        read_groups(path)


def test_the_markers_pass_strict_markers_under_plain_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_retry_and_a_requeued_part_keep_the_units_groups(pytester: pytest.Pytester) -> None:
    unit = _units(pytester, SUITE)["TestPayments"]
    retry = unit.retry("x (crash retry 1)", unit.node_ids[0])  # type: ignore[attr-defined]
    part = unit.subset(unit.node_ids[1:])  # type: ignore[attr-defined]
    for kept in (retry, part):
        assert (kept.groups, kept.weight, kept.alone) == (unit.groups, unit.weight, unit.alone)  # type: ignore[attr-defined]


def test_the_run_config_reads_the_groups_once_with_the_rest_of_pyproject(tmp_path: Path) -> None:
    from orchestrator.front.options import build_run_config

    (tmp_path / "pyproject.toml").write_text(
        '[tool.orchestrate]\ntimeout = 5\n[tool.orchestrate.groups]\npay = {limit = 2, tests = ["t/**"]}\n'
    )
    config = build_run_config({"agents": 2}, tmp_path, environ={})
    assert config.groups == (GroupSpec("pay", 2, ("t/**",)),)
    (tmp_path / "pyproject.toml").write_text("[tool.orchestrate.groups]\npay = {limit = -1}\n")
    with pytest.raises(pytest.UsageError, match=r"pay: limit must be a whole number of at least 1, got -1"):
        build_run_config({"agents": 2}, tmp_path, environ={})
