"""What a process runs on, for the check that every agent matches its coordinator.

Called by the worker's plugin (its `collected` message, relayed as AgentReady.versions) and by
the coordinator (orchestrator/plugin.py), which compares the two in the session.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform

__all__ = ["runtime_versions"]


def runtime_versions() -> dict[str, str]:
    """This process's Python, pytest and orchestrate versions (a missing distribution is left out)."""
    versions = {"python": platform.python_version()}
    for distribution in ("pytest", "orchestrate"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[distribution] = importlib.metadata.version(distribution)
    return versions
