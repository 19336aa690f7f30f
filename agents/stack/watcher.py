"""A stack's watchdog: one daemon thread on the engine's events stream until a service dies.

Made by DockerStack.watch (agents/stack/docker.py), which opens the stream, filtered by the
stack's labels, before the thread starts, so nothing that happens afterwards is missed; what
died before it opened is found by one look at every container (`WatchSource.dead_already`).
Waiting on events instead of polling costs nothing while the stack is healthy.

The invariant: `on_death` is called at most once, and never once `stop()` has returned (the
decision and the call are made under one lock that `stop()` takes), so `down()`, which stops
its watchers before removing anything, never reports its own removals. An error of the thread
itself becomes an `on_death` message too: a stack nobody watches any more is no healthy stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from agents.stack.containers import Death, death_of

__all__ = ["DeathWatcher", "WatchSource"]

# How long `stop()` waits for the thread once its stream is closed (it ends in milliseconds).
_JOIN_SECONDS = 5.0


class WatchSource(Protocol):
    """What a DeathWatcher reads: one stack's open events stream and the words for a death."""

    def events(self) -> Iterator[Mapping[str, Any]]:
        """The stack's container events (already requested from the engine), one dict each."""
        ...

    def close(self) -> None:
        """End the iteration of `events()`; called from another thread, perhaps twice."""
        ...

    def dead_already(self) -> str | None:
        """The message for a service that died before the stream opened, or None."""
        ...

    def describe(self, death: Death) -> str:
        """The message for `death`: the service, what happened, its last log lines."""
        ...

    def lost(self) -> str:
        """The message for the stream ending while nobody stopped it (the engine went away)."""
        ...

    def release(self) -> None:
        """Free what the source holds (its engine client); called by the thread as it ends."""
        ...


class DeathWatcher:
    """Calls `on_death(message)` once, from its own daemon thread, when a service of the stack dies."""

    def __init__(self, source: WatchSource, on_death: Callable[[str], None], name: str) -> None:
        self._source = source
        self._on_death = on_death
        self._lock = threading.RLock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """End the thread promptly; afterwards `on_death` is never called. Safe to call twice."""
        with self._lock:  # waits for an `on_death` under way, unless this is its own thread
            if self._stopped:
                return
            self._stopped = True
        self._source.close()
        if self._thread is not threading.current_thread() and self._thread.ident is not None:
            self._thread.join(_JOIN_SECONDS)

    def _run(self) -> None:
        try:
            try:
                message = self._first_death()
            except Exception as exc:  # a bug or an engine error: turned into the event, not swallowed
                message = f"the stack's watchdog failed: {exc!r}"
            with self._lock:
                if message is not None and not self._stopped:
                    self._stopped = True
                    self._on_death(message)
        finally:
            self._source.release()

    def _first_death(self) -> str | None:
        """The message for the first death, or None when stopped first."""
        already = self._source.dead_already()
        if already is not None:
            return already
        signals: dict[str, str] = {}
        for event in self._source.events():
            if self._stopped:
                return None
            death = death_of(event, signals)
            if death is not None:
                return self._source.describe(death)
        return None if self._stopped else self._source.lost()
