"""The loop around the session: the backend started, events fed in, commands sent out.

The session (session.py) decides and never waits; this loop does the waiting: on the backend's
events, never longer than the status display's next update, so the display keeps its timing
without a thread. It turns Ctrl-C into the session's stop, always stops every agent (and waits,
within STOP_GRACE_SECONDS, until each runs nothing more: not until its stack is down, which the
backend's shutdown waits for after the report), and returns the session's RunReport.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from orchestrator.model import RunReport
from orchestrator.protocol import messages as p
from orchestrator.report.status import StatusDisplay
from orchestrator.run.backends.protocol import AgentBackend
from orchestrator.run.session import Session

__all__ = ["STOP_GRACE_SECONDS", "WAIT_SLICE_SECONDS", "run_session", "stop_unused_agents"]

# How long agents get to finish cleanly (stacks down) once the run is over or interrupted.
STOP_GRACE_SECONDS = 120.0
WAIT_SLICE_SECONDS = 0.5


def run_session(
    session: Session,
    backend: AgentBackend,
    *,
    display: StatusDisplay | None = None,
    backend_started: float | None = None,
) -> RunReport:
    """Run `session` on `backend`'s agents until every test has its final outcome, or a stop;
    always stops every agent. `backend_started`: when the caller started the agents itself (by
    the session's clock), else they are started here."""
    if backend_started is None:
        session.start(session.clock())
        backend.start(session.configs)
    else:
        session.start(backend_started)
    loop = _Loop(session, backend, display)
    try:
        while not session.done():
            session.dispatch()
            loop.send_commands()
            loop.wait_and_handle()
            session.check_stop_requested()
    except KeyboardInterrupt:
        session.interrupt()
    finally:
        loop.stop_agents()
    return session.report()


class _Loop:
    """What carries the session's decisions out: the backend, the display, the waits."""

    def __init__(self, session: Session, backend: AgentBackend, display: StatusDisplay | None) -> None:
        self._session = session
        self._backend = backend
        self._display = display
        self._clock = session.clock

    def send_commands(self) -> None:
        for agent_id, command in self._session.take_commands():
            self._backend.send(agent_id, command)

    def wait_and_handle(self) -> None:
        """Wait for events (until the display's next update at the latest), hand each to the
        session, send what it decided, let the display show the status if it is due."""
        events = self._backend.wait_events(self._wait_slice())
        for event in events:
            self._session.handle(event)
        self.send_commands()
        self._show_status(bool(events))

    def stop_agents(self) -> None:
        """Finish (or abort) every agent and wait until each runs nothing more (TearingDown)."""
        session = self._session
        session.stop_agents()
        self.send_commands()
        deadline = self._clock() + STOP_GRACE_SECONDS
        while not session.agents_run_nothing_more() and self._clock() < deadline:
            try:
                self.wait_and_handle()
            except KeyboardInterrupt:
                # A second Ctrl-C: still clean up, but stop waiting for tests to finish.
                session.interrupt_again()
                self.send_commands()
        session.gave_up_waiting(STOP_GRACE_SECONDS)

    def _wait_slice(self) -> float:
        """How long to wait for events: until the display's next update at the latest."""
        if self._display is None:
            return WAIT_SLICE_SECONDS
        return max(0.0, min(WAIT_SLICE_SECONDS, self._display.wake_at() - self._clock()))

    def _show_status(self, changed: bool) -> None:
        """Let the display show the status if it is due; name late services at once, once."""
        if self._display is None:
            return
        for notice in self._session.late_service_notices():
            self._display.notice(notice)
        self._display.update(self._clock(), changed, self._session.status)


def stop_unused_agents(backend: AgentBackend, configs: Sequence[p.AgentConfig]) -> None:
    """Abort agents that were started but never given a run, and wait until each has stopped."""
    waiting = {c.agent_id for c in configs}
    for agent_id in waiting:
        backend.send(agent_id, p.Abort())
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while waiting and time.monotonic() < deadline:
        for event in backend.wait_events(WAIT_SLICE_SECONDS):
            if isinstance(event, p.AgentStopped):
                waiting.discard(event.agent_id)
