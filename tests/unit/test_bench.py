"""Why a benchmarked run failed, in one line, from pytest's output (orchestrator/front/bench.py)."""

from __future__ import annotations

from orchestrator.front.bench import failure_reason

XDIST_WITHOUT_STACK = """\
============================= test session starts ==============================
created: 2/2 workers
EEE                                                                      [100%]
==================================== ERRORS ====================================
__________________ ERROR at setup of TestJobQueue.test_fifo ___________________
[gw1] linux -- Python 3.11.7 /venv/bin/python
DATABASE_URL is not set: this suite needs a running stack
_____________ ERROR at setup of TestAccounts.test_ids_start_at_one _____________
[gw0] linux -- Python 3.11.7 /venv/bin/python
DATABASE_URL is not set: this suite needs a running stack
______________________ ERROR at setup of TestCache.test_hit ______________________
[gw0] linux -- Python 3.11.7 /venv/bin/python
REDIS_URL is not set
=========================== short test summary info ============================
ERROR t.py::TestJobQueue::test_fifo - Failed: DATABASE_URL is not set: this s...
============================== 3 errors in 1.04s ===============================
"""

ASSERTIONS = """\
=================================== FAILURES ===================================
____________________________________ test_a ____________________________________

    def test_a():
>       assert 1 == 2
E       assert 1 == 2

t.py:2: AssertionError
========================= 1 failed, 3 passed in 0.02s ==========================
"""


def test_the_most_common_error_and_the_counts() -> None:
    assert failure_reason(XDIST_WITHOUT_STACK) == (
        "3 errors in 1.04s; most common error (2 tests): DATABASE_URL is not set: this suite needs a running stack"
    )


def test_an_assertion_is_its_E_line() -> None:
    assert (
        failure_reason(ASSERTIONS) == "1 failed, 3 passed in 0.02s; most common error (1 test): assert 1 == 2"
    )


def test_output_without_sections_is_its_last_lines() -> None:
    assert failure_reason("ERROR: file or directory not found: nope\n\nno tests ran in 0.01s\n") == (
        "ERROR: file or directory not found: nope | no tests ran in 0.01s"
    )
