"""The types of orchestrate's option values: each turns the text of a command line or an
environment variable into a value. argparse (the `orchestrate` parser's and pytest's) shows
their ArgumentTypeError as a one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = [
    "AUTO",
    "agent_counts_value",
    "agents_value",
    "non_negative_int",
    "positive_int",
    "positive_seconds",
    "seconds_or_zero",
    "shard_value",
]

AUTO = "auto"


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {value}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def positive_seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def seconds_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


positive_int = _whole_number(1)
non_negative_int = _whole_number(0)


def agents_value(text: str) -> int | str:
    """A positive number of agents, or "auto"."""
    return AUTO if text.strip().lower() == AUTO else positive_int(text)


def agent_counts_value(text: str) -> tuple[int, ...] | str:
    """ "auto", one agent count, a list (1,2,4,8) or a range (1-16)."""
    if text.strip().lower() == AUTO:
        return AUTO
    from orchestrator.planning.whatif import parse_agent_counts

    try:
        return parse_agent_counts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def shard_value(text: str) -> tuple[int, int]:
    """`I/N`: CI runner I (1-based) of N."""
    index, slash, total = text.partition("/")
    try:
        position = (int(index), int(total))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not I/N: {text!r}") from None
    if not slash or not 1 <= position[0] <= position[1]:
        raise argparse.ArgumentTypeError(f"not I/N with 1 <= I <= N: {text!r}")
    return position
