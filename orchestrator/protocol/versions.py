"""What a process runs on, for the check that every agent matches its coordinator.

Called by the worker's plugin (its `collected` message, relayed as AgentReady.versions) and by
the coordinator (orchestrator/front/plugin.py), which compares the two in the session
(`version_differences`, called by orchestrator/run/session.py when an agent is ready).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
from collections.abc import Mapping

__all__ = ["runtime_versions", "version_differences"]


def runtime_versions() -> dict[str, str]:
    """This process's Python, pytest and orchestrate versions (a missing distribution is left out)."""
    versions = {"python": platform.python_version()}
    for distribution in ("pytest", "orchestrate"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[distribution] = importlib.metadata.version(distribution)
    return versions


def version_differences(ours: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    """What an agent runs differently from the coordinator: Python by major.minor (as Ray
    requires), pytest and orchestrate exactly. Keys either side lacks are not compared."""

    def comparable(name: str, version: str) -> str:
        return ".".join(version.split(".")[:2]) if name == "python" else version

    return [
        f"{name} {theirs[name]} (coordinator {ours[name]})"
        for name in ("python", "pytest", "orchestrate")
        if name in ours and name in theirs and comparable(name, ours[name]) != comparable(name, theirs[name])
    ]
