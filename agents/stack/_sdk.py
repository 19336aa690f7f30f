"""The Docker SDK, imported here once: agents/stack/docker.py (one agent's stack),
agents/stack/started.py (its containers), agents/stack/engine_events.py (its events stream),
agents/stack/setup_state.py (its set-up state), agents/stack/engine.py (engine-wide operations)
and agents/stack/images.py (the set-up state cache's images) reach it through this module only."""

from __future__ import annotations

import docker
import docker.errors
from docker.models.containers import Container

__all__ = ["Container", "docker"]
