"""The session's view of each agent's life: its states and their explicit transition table.

Like the agent's own table (agents/_states.py, after h11's `_state.py`), every state lists the
events it accepts and the states they may lead to (`TRANSITIONS`); events a state deliberately
drops are listed apart (`IGNORED`: what a failed agent still says about tests is stale, its
work was requeued when it failed); any other event raises InternalError.

    STARTING ──agent_ready──► READY ──tearing_down──► TEARING_DOWN ──agent_stopped──► STOPPED
        │                       │                          ▲
        └──── agent_failed ─────┴──► FAILED ─tearing_down──┘   (agent_stopped from any state
                                                                but STOPPED: always the last)

A failure's reason stays on the record (AgentRecord.failure) in the states that follow FAILED;
a teardown that fails (agent_failed while TEARING_DOWN) keeps the agent TEARING_DOWN: it runs
nothing more either way. Whether an agent was sent Flush is scheduling, not a state
(AgentRecord.flushed).
"""

from __future__ import annotations

import enum

from orchestrator.protocol import messages as p
from orchestrator.protocol.errors import InternalError

__all__ = ["IGNORED", "TRANSITIONS", "AgentState", "allowed_states"]


class AgentState(enum.Enum):
    """Where an agent is in its life, as the session knows it from the agent's events."""

    STARTING = "starting"  # started: its stack and its worker come up
    READY = "ready"  # collected: it takes work
    FAILED = "failed"  # failed: takes no more work, its stack comes down next
    TEARING_DOWN = "tearing down"  # runs nothing more: its stack comes down (or is kept warm)
    STOPPED = "stopped"  # stopped, its stack down: no event follows

    @property
    def takes_work(self) -> bool:
        return self is AgentState.READY

    @property
    def runs_nothing_more(self) -> bool:
        """The session need not wait for this agent before its report."""
        return self in (AgentState.TEARING_DOWN, AgentState.STOPPED)


S = AgentState
# What a starting or ready agent says about its start-up, its stack, its tests.
_STARTUP = (p.AgentPhase.name, p.StackReady.name, p.WarningRecorded.name)
_WORK = (
    p.AgentPhase.name,
    p.WarningRecorded.name,
    p.TestEnded.name,
    p.TestCrashed.name,
    p.TestTimedOut.name,
    p.TestExited.name,
    p.NotCollected.name,
    p.UnitFinished.name,
    p.WorkWanted.name,
    p.StackReset.name,
)
_END = {p.AgentFailed.name: frozenset({S.FAILED}), p.AgentStopped.name: frozenset({S.STOPPED})}

# state -> event name -> the states that event may lead to. Anything else (and not IGNORED)
# is an InternalError.
TRANSITIONS: dict[AgentState, dict[str, frozenset[AgentState]]] = {
    S.STARTING: {
        **dict.fromkeys(_STARTUP, frozenset({S.STARTING})),
        p.AgentReady.name: frozenset({S.READY}),
        p.TearingDown.name: frozenset({S.TEARING_DOWN}),
        **_END,
    },
    S.READY: {
        **dict.fromkeys(_WORK, frozenset({S.READY})),
        p.TearingDown.name: frozenset({S.TEARING_DOWN}),
        **_END,
    },
    S.FAILED: {
        # The stack's reset still completes while the worker is being stopped.
        p.StackReset.name: frozenset({S.FAILED}),
        # A second failure (its stack's teardown failed too) is said, the state stays.
        p.AgentFailed.name: frozenset({S.FAILED}),
        p.TearingDown.name: frozenset({S.TEARING_DOWN}),
        p.AgentStopped.name: frozenset({S.STOPPED}),
    },
    S.TEARING_DOWN: {
        # Its stack's teardown failed, or the backend lost it meanwhile: it still runs nothing.
        p.AgentFailed.name: frozenset({S.TEARING_DOWN}),
        p.AgentStopped.name: frozenset({S.STOPPED}),
    },
    S.STOPPED: {},
}

# state -> event names dropped there without a change.
IGNORED: dict[AgentState, frozenset[str]] = {
    S.STARTING: frozenset(),
    S.READY: frozenset(),
    # Stale: the failed agent's work was requeued when it failed.
    S.FAILED: frozenset({p.AgentReady.name, *_STARTUP, *_WORK} - {p.StackReset.name}),
    # A start-up phase relayed from the stack's own thread may trail an abort's teardown.
    S.TEARING_DOWN: frozenset({p.AgentPhase.name, p.StackReady.name}),
    S.STOPPED: frozenset(),
}


def allowed_states(agent_id: int, state: AgentState, event_name: str) -> frozenset[AgentState] | None:
    """The states `event_name` may lead to from `state`; None if it is dropped there (IGNORED).

    An event the state does not accept at all is a bookkeeping bug: InternalError.
    """
    allowed = TRANSITIONS[state].get(event_name)
    if allowed is None and event_name not in IGNORED[state]:
        raise InternalError(f"agent {agent_id}: event {event_name!r} while {state.value}")
    return allowed
