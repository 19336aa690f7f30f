"""Which collector of a file a lazy worker must expand for a node id (agents/collection.py)."""

from __future__ import annotations

import pytest

from agents.collection import class_node_id, file_node_id


@pytest.mark.parametrize(
    ("node_id", "expected"),
    [
        ("t.py::TestA::test_x", "t.py::TestA"),
        ("t.py::TestA::test_x[1-a]", "t.py::TestA"),
        ("t.py::TestA::TestInner::test_x", "t.py::TestA"),  # only top-level classes are deferred
        ("t.py::test_f", "t.py::test_f"),
        ("t.py::test_f[0]", "t.py::test_f"),
        ("t.py::test_f[a::b]", "t.py::test_f"),  # a parameter id may hold "::"
        ("t.py::TestA::test_x[a::b]", "t.py::TestA"),
        ("t.py::TestA::test_x[a[0]]", "t.py::TestA"),
        ("sub/dir/t.py::TestA::test_x", "sub/dir/t.py::TestA"),
        ("sub[1]/t.py::TestA::test_x[2]", "sub[1]/t.py::TestA"),  # and a path may hold "["
        ("t[1].py::test_f[2]", "t[1].py::test_f"),
        ("t.py", "t.py"),
    ],
)
def test_class_node_id(node_id: str, expected: str) -> None:
    assert class_node_id(node_id) == expected
    assert file_node_id(node_id) == expected.split("::", 1)[0]
