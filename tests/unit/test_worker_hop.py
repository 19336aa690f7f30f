"""The agent <-> worker hop: every message survives its frame, anything else is refused."""

from __future__ import annotations

import pytest

from orchestrator.protocol import wire
from orchestrator.protocol import worker_hop as wh

WARNING = {"message_str": "old", "category_module": "builtins", "category_class_name": "DeprecationWarning"}

EVERY_MESSAGE: list[wh.WorkerMessage | wh.WorkerCommand] = [
    # worker -> agent
    wh.Collected(("t.py::a", "t.py::b"), {"python": "3.11.7", "pytest": "9.0.0"}, lazy=False, fallback=""),
    wh.Collected((), {"pytest": "9.0.0"}, lazy=True, fallback="conftest.py implements x"),
    wh.Started("t.py::a"),
    wh.Ended("t.py::a", b"\x93\xc0\x80\x90"),
    wh.Ended("t.py::a", b"\x93\xc0\x80\x90", cpu=0.25, wait=0.5, children=1.5),
    wh.NeedWork(),
    wh.NotCollected(("t.py::gone",), ("t.py::gone[1]",)),
    wh.NotCollected(("t.py::gone",)),
    wh.Stopping("stopping after 1 failures"),
    wh.Warned(WARNING),
    wh.Exited("t.py::a", "bye", 3, False),
    wh.Exited("t.py::a", "KeyboardInterrupt", None, True),
    wh.ResetWanted("t.py::T"),
    # agent -> worker
    wh.Run((("u1", ("t.py::a", "t.py::b")), ("u2", ("t.py::c",)))),
    wh.Run(()),
    wh.FlushHeld(),
    wh.FinishRun(),
    wh.ResetFinished(""),
    wh.ResetFinished("service 'db': reset failed"),
]


def _round_trip(message: wh.WorkerMessage | wh.WorkerCommand) -> wh.WorkerMessage | wh.WorkerCommand:
    return wh.decode(wire.unpack(wh.encode(message)))


@pytest.mark.parametrize("message", EVERY_MESSAGE, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: wh.WorkerMessage | wh.WorkerCommand) -> None:
    decoded = _round_trip(message)
    assert decoded == message
    assert type(decoded) is type(message)


def test_every_message_type_is_covered() -> None:
    covered = {type(m) for m in EVERY_MESSAGE}
    assert covered == set(wh.WorkerMessage.__args__) | set(wh.WorkerCommand.__args__)


def test_sequences_come_back_as_tuples_and_bytes_as_bytes() -> None:
    run = _round_trip(wh.Run((("u1", ("a", "b")),)))
    assert isinstance(run, wh.Run)
    assert isinstance(run.units, tuple) and isinstance(run.units[0][1], tuple)
    ended = _round_trip(wh.Ended("a", b"\x00\xff"))
    assert isinstance(ended, wh.Ended) and isinstance(ended.reports, bytes)
    collected = _round_trip(wh.Collected(("a",), {"pytest": "9.0.0"}))
    assert isinstance(collected, wh.Collected) and isinstance(collected.node_ids, tuple)


def test_a_frame_is_positional_and_small() -> None:
    # This hop carries a frame per test: no field names in it.
    tag, version, *values = wire.unpack(wh.encode(wh.Ended("t.py::a", b"xy", 0.25, 0.125, 0.5)))
    assert isinstance(tag, int) and version == wh.HOP_VERSION
    assert values == ["t.py::a", b"xy", 0.25, 0.125, 0.5]


def _frame(message: wh.WorkerMessage | wh.WorkerCommand) -> list[object]:
    frame = wire.unpack(wh.encode(message))
    assert isinstance(frame, list)
    return frame


@pytest.mark.parametrize("tag", [len(EVERY_MESSAGE) + 99, -1, "started", None, 1.0])
def test_an_unknown_tag_is_refused(tag: object) -> None:
    with pytest.raises(wire.WireError, match="unknown worker hop message"):
        wh.decode([tag, wh.HOP_VERSION, "t.py::a"])


@pytest.mark.parametrize("version", [wh.HOP_VERSION + 1, 0, None, "1"])
def test_a_wrong_version_is_refused(version: object) -> None:
    frame = wire.unpack(wh.encode(wh.Started("t.py::a")))
    frame[1] = version
    with pytest.raises(wire.WireError, match="worker hop version"):
        wh.decode(frame)


@pytest.mark.parametrize("frame", [{"$t": "started"}, [], [2], "started", None])
def test_what_is_not_a_frame_is_refused(frame: object) -> None:
    with pytest.raises(wire.WireError, match="not a frame of the worker hop"):
        wh.decode(frame)


@pytest.mark.parametrize(
    "frame",
    [
        _frame(wh.Started("a"))[:2],  # Started without its node id
        [*_frame(wh.Started("a")), "b"],  # and with one field too many
        _frame(wh.Collected(("a",), {}))[:-1],  # Collected without its fallback
        [*_frame(wh.Run(()))[:2], [["u1"]]],  # Run with a unit missing its node ids
        [*_frame(wh.NotCollected(()))[:2], 7, []],  # NotCollected whose node ids are no sequence
    ],
)
def test_a_malformed_message_is_refused(frame: list[object]) -> None:
    with pytest.raises(wire.WireError, match="malformed"):
        wh.decode(frame)
