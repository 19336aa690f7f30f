"""The checks every part of the stack file's validation shares: one StackFileError, at its place.

Base of agents/stack/compose.py's validator (the document), agents/stack/_services.py's (each
service) and agents/stack/_extension.py's (the `x-orchestrate` extension).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from orchestrator.protocol.errors import StackFileError

__all__ = ["YamlChecker", "did_you_mean"]


class YamlChecker:
    """Checks loaded YAML values, naming the place (`services.db.ports[0]`) of the first problem."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, place: str, message: str) -> StackFileError:
        return StackFileError(f"{self.where}: {place}: {message}" if place else f"{self.where}: {message}")

    def mapping(self, raw: object, place: str) -> dict[Any, Any]:
        if not isinstance(raw, dict):
            kind = "null" if raw is None else type(raw).__name__
            raise self.fail(place, f"must be a mapping, not {kind}")
        return raw

    def check_keys(
        self,
        body: Mapping[Any, Any],
        place: str,
        known: tuple[str, ...],
        unsupported: Mapping[str, str] | None = None,
    ) -> None:
        for key in body:
            if isinstance(key, str) and (key in known or key.startswith("x-") and key != "x-orchestrate"):
                continue
            if unsupported and key in unsupported:
                raise self.fail(place, f"key '{key}' is not supported: {unsupported[key]}")
            raise self.fail(place, f"unknown key '{key}'{did_you_mean(str(key), known)}")

    def scalar_text(self, value: object, place: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise self.fail(place, "must be a string or a number")


def did_you_mean(word: str, choices: Mapping[str, object] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
