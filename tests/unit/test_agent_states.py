"""The session's table of agent states: every (state, event) pair is allowed, dropped or refused
as written here, restated independently of orchestrator/run/agent_states.py."""

from __future__ import annotations

import pytest

from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import InternalError
from orchestrator.run.agent_states import TRANSITIONS, AgentState, allowed_states
from orchestrator.run.session import Session

S = AgentState
EVENTS = sorted({cls.name for cls in p.Event.__subclasses__()})
STARTUP = {"agent_phase", "stack_ready", "warning_recorded"}
WORK = {
    "agent_phase",
    "warning_recorded",
    "test_ended",
    "test_crashed",
    "test_timed_out",
    "test_exited",
    "not_collected",
    "unit_finished",
    "work_wanted",
    "stack_reset",
}
DROPPED = "dropped"

# state -> event -> the next states, or DROPPED; an event not listed is refused.
EXPECTED: dict[AgentState, dict[str, object]] = {
    S.STARTING: {
        **dict.fromkeys(STARTUP, {S.STARTING}),
        "agent_ready": {S.READY},
        "agent_failed": {S.FAILED},
        "tearing_down": {S.TEARING_DOWN},
        "agent_stopped": {S.STOPPED},
    },
    S.READY: {
        **dict.fromkeys(WORK, {S.READY}),
        "agent_failed": {S.FAILED},
        "tearing_down": {S.TEARING_DOWN},
        "agent_stopped": {S.STOPPED},
    },
    S.FAILED: {
        **dict.fromkeys(STARTUP | WORK | {"agent_ready"}, DROPPED),
        "stack_reset": {S.FAILED},
        "agent_failed": {S.FAILED},
        "tearing_down": {S.TEARING_DOWN},
        "agent_stopped": {S.STOPPED},
    },
    S.TEARING_DOWN: {
        "agent_phase": DROPPED,
        "stack_ready": DROPPED,
        "agent_failed": {S.TEARING_DOWN},
        "agent_stopped": {S.STOPPED},
    },
    S.STOPPED: {},
}


def test_the_table_covers_every_state_and_only_known_events() -> None:
    assert set(TRANSITIONS) == set(AgentState)
    assert {name for row in TRANSITIONS.values() for name in row} <= set(EVENTS)
    # Every event has its handler in the session, and the table names each of them somewhere.
    assert all(hasattr(Session, f"on_{name}") for name in EVENTS)
    assert {name for row in TRANSITIONS.values() for name in row} == set(EVENTS)


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("state", list(AgentState), ids=lambda s: s.name)
def test_each_event_is_allowed_dropped_or_refused_in_each_state(state: AgentState, event: str) -> None:
    expected = EXPECTED[state].get(event)
    if expected is None:
        with pytest.raises(InternalError, match=f"agent 7: event {event!r} while {state.value}"):
            allowed_states(7, state, event)
    elif expected == DROPPED:
        assert allowed_states(7, state, event) is None
    else:
        assert allowed_states(7, state, event) == expected


def test_only_a_ready_agent_takes_work_and_only_the_last_two_states_need_no_wait() -> None:
    assert [s for s in AgentState if s.takes_work] == [S.READY]
    assert [s for s in AgentState if s.runs_nothing_more] == [S.TEARING_DOWN, S.STOPPED]
