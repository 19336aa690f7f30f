"""The worker's terminal reporter, quiet per test (agents/quiet_terminal.py), in a real pytest run."""

from __future__ import annotations

import pytest

from agents.quiet_terminal import QuietReporter

CONFTEST = """
import pytest

from agents.quiet_terminal import quieten


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    quieten(config)
"""


def test_no_output_per_test_but_the_session_still_ends_as_pytests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_many="\n".join(f"def test_{n}():\n    pass\n" for n in range(40)))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == 0
    assert not [line for line in result.outlines if line.startswith("test_many.py")], result.outlines
    assert "." * 40 not in result.stdout.str()
    result.stdout.fnmatch_lines(["*test session starts*", "*no tests ran*"])  # it counted none itself


def test_a_crash_in_the_session_still_explains_itself(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        CONFTEST + "\n\ndef pytest_collection_finish(session):\n    raise RuntimeError('boom')\n"
    )
    pytester.makepyfile(test_one="def test_one():\n    pass\n")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == 3
    result.stdout.fnmatch_lines(["INTERNALERROR>*RuntimeError: boom*"])


def test_it_replaces_only_pytests_own_reporter(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfigure("-p", "no:cacheprovider")
    from agents.quiet_terminal import quieten

    quieten(config)
    quiet = config.pluginmanager.get_plugin("terminalreporter")
    assert isinstance(quiet, QuietReporter)
    quieten(config)  # already quiet: left as it is
    assert config.pluginmanager.get_plugin("terminalreporter") is quiet
