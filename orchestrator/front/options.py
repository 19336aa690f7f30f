"""orchestrate's options: one table of specs, read once into a frozen RunConfig.

`OPTIONS` (orchestrator/front/option_table.py) is the one place an option is declared (name, type, default, choices, help, the
orchestrate commands that take it, its pyproject.toml key and environment variable). Three
faces read it, and `build_run_config` turns what was given into one RunConfig:

    orchestrate run --timeout 5                  argparse, built from the table (cli_parser.py)
    pytest --agents 4 --orchestrate-timeout=5    pytest options, built from the table (add_options)
    [tool.orchestrate] timeout = 5               pyproject.toml in pytest's rootdir, read once

A value given on the command line wins over the environment variable, which wins over
pyproject.toml, which wins over the default. `orchestrate run` parses its own arguments into
typed values and hands them to the pytest session as a plugin object (`GivenOptions`): no option
is turned into text and parsed back. Every option but `--agents` carries the `orchestrate-`
prefix under pytest, so none clashes with another plugin's (pytest-timeout's `--timeout`,
pytest-rerunfailures' `--reruns`, pytest's own `--durations`).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.front.option_table import AUTO, DEFAULT_STATUS_INTERVAL, OPTIONS, OptionSpec

if TYPE_CHECKING:
    from orchestrator.model import GroupBy, OutputPaths
    from orchestrator.planning.groups import GroupSpec

__all__ = [
    "GivenOptions",
    "RunConfig",
    "add_options",
    "build_run_config",
    "given_options",
    "is_coordinator",
    "read_pyproject",
]

_SPECS = {spec.name: spec for spec in OPTIONS}


@dataclass(frozen=True, slots=True)
class RunConfig:
    """orchestrate's options of one session, read once."""

    agents: int | None  # None: --agents auto (orchestrator/planning/sizing.py chooses)
    stack_file: str | None
    timeout: float | None
    max_crashes: int
    reruns: int
    results: str | None
    durations: str
    schedule: str
    group_by: GroupBy
    split: bool
    backend: str
    address: str | None
    shard: tuple[int, int] | None
    planning: bool  # `orchestrate plan`: print the plan (for plan_counts, or auto if empty), run nothing
    plan_counts: tuple[int, ...]
    plot: str | None
    merge: tuple[str, ...]
    html: str | None
    excludes: tuple[str, ...]
    # Seconds between status lines (orchestrator/report/status.py); 0: none.
    status_interval: float = DEFAULT_STATUS_INTERVAL
    # The live status area: "on", "off", or "auto" (on when stdout is a terminal and not -q).
    live: str = AUTO
    # The test groups of [tool.orchestrate.groups] (orchestrator/planning/groups.py).
    groups: tuple[GroupSpec, ...] = ()
    # --split-fixture: scoped fixtures that do not keep a unit whole under --split.
    split_fixtures: tuple[str, ...] = ()

    @property
    def outputs(self) -> OutputPaths:
        from orchestrator.model import OutputPaths

        return OutputPaths(self.results, self.html, self.durations)


class GivenOptions:
    """What `orchestrate run/plan/shard/merge` was given, as typed values, handed to its pytest
    session as a plugin object (pytest registers it before it parses its command line)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        unknown = set(values) - set(_SPECS)
        if unknown:
            raise ValueError(f"not orchestrate options: {sorted(unknown)}")
        self.values = dict(values)


def add_options(parser: pytest.Parser) -> None:
    """Register the table's options as pytest options; called by the plugin's pytest_addoption."""
    group = parser.getgroup("orchestrate", "orchestrate: run on N agents, each with its own stack")
    for spec in OPTIONS:
        kwargs: dict[str, Any] = {"help": spec.help_text(), "dest": spec.pytest_dest}
        if spec.flag:
            kwargs.update(action="store_true", default=None)
        else:
            kwargs.update(default=None, metavar=spec.metavar)
            if spec.repeat:
                kwargs["action"] = "append"
            if spec.parse is not None:
                kwargs["type"] = spec.parse
            if spec.choices:
                kwargs["choices"] = list(spec.choices)
        group.addoption(spec.pytest_flag, **kwargs)


def given_options(config: pytest.Config, early: bool = False) -> dict[str, Any]:
    """The options this session was given: `orchestrate`'s values, else pytest's parsed options
    (`early`: pytest's first parse, before pytest_configure). Not given: absent."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, GivenOptions):
            return dict(plugin.values)
    namespace = config.known_args_namespace if early else config.option
    values = {spec.name: getattr(namespace, spec.pytest_dest, None) for spec in OPTIONS}
    return {name: value for name, value in values.items() if value is not None}


def is_coordinator(given: Mapping[str, Any]) -> bool:
    """A session given --agents, a plan or results files to merge drives orchestrate's run."""
    return any(given.get(name) for name in ("agents", "plan", "merge"))


def build_run_config(
    given: Mapping[str, Any], rootpath: Path, environ: Mapping[str, str] | None = None
) -> RunConfig:
    """One RunConfig from what was given, the environment, pyproject.toml and the defaults."""
    # Imported here, not at the top: every pytest process imports this module through the
    # plugin, and only a coordinator builds a RunConfig (the model costs about 20 ms to import).
    from orchestrator.model import GroupBy

    environ = os.environ if environ is None else environ
    settings = read_pyproject(rootpath)

    def value(name: str) -> Any:
        spec = _SPECS[name]
        if given.get(name) not in (None, ()):
            return tuple(given[name]) if spec.repeat else given[name]
        if spec.env and environ.get(spec.env):
            return _from_text(spec, environ[spec.env], spec.env)
        if spec.pyproject and spec.pyproject in settings:
            return _from_pyproject(spec, settings[spec.pyproject], rootpath)
        return spec.default

    agents, plan = value("agents"), value("plan")
    address = value("address") or None
    return RunConfig(
        agents=None if agents in (None, AUTO) else int(agents),
        stack_file=value("stack"),
        timeout=value("timeout"),
        max_crashes=value("max_crashes"),
        reruns=value("reruns"),
        results=value("results"),
        durations=value("durations"),
        schedule=value("schedule"),
        group_by=GroupBy(value("group_by")),
        split=bool(value("split")),
        backend=value("backend") or _default_backend(address),
        address=address,
        shard=value("shard"),
        planning=plan is not None,
        plan_counts=() if plan in (None, AUTO) else tuple(plan),
        plot=value("plot"),
        merge=tuple(value("merge")),
        html=value("html"),
        excludes=tuple(value("exclude")),
        status_interval=float(value("status_interval")),
        live=value("live"),
        groups=_groups(settings, rootpath),
        split_fixtures=tuple(value("split_fixture")),
    )


def _groups(settings: Mapping[str, Any], rootpath: Path) -> tuple[GroupSpec, ...]:
    """[tool.orchestrate.groups]: the test groups, checked (a mistake is one line, exit 4)."""
    from orchestrator.planning.groups import groups_of_table
    from orchestrator.protocol.errors import UsageError

    try:
        return groups_of_table(settings.get("groups", {}), f"{rootpath / 'pyproject.toml'}")
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _from_text(spec: OptionSpec, text: str, source: str) -> Any:
    if spec.parse is None:
        return text
    try:
        return spec.parse(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None


def _from_pyproject(spec: OptionSpec, raw: Any, rootpath: Path) -> Any:
    """A [tool.orchestrate] value, checked against the spec as its text form would be."""
    where = f"{rootpath / 'pyproject.toml'}: [tool.orchestrate] {spec.pyproject}"
    if spec.flag:
        if not isinstance(raw, bool):
            raise pytest.UsageError(f"{where} must be true or false")
        return raw
    if spec.repeat:
        if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
            raise pytest.UsageError(f"{where} must be a list of strings")
        return tuple(raw)
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise pytest.UsageError(f"{where} must be a string or a number")
    text = str(raw)
    if spec.choices and text not in spec.choices:
        raise pytest.UsageError(f"{where} must be one of {', '.join(spec.choices)}, not {text!r}")
    if spec.path:
        return str(rootpath / text)
    return _from_text(spec, text, where)


def read_pyproject(rootpath: Path) -> dict[str, Any]:
    """[tool.orchestrate] of pyproject.toml in `rootpath` (empty without one)."""
    path = rootpath / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: {exc}") from exc
    settings = data.get("tool", {}).get("orchestrate", {})
    if not isinstance(settings, dict):
        raise pytest.UsageError(f"{path}: [tool.orchestrate] must be a table")
    return settings


def _default_backend(address: str | None) -> str:
    """Ray for a named cluster or a running warm instance (`orchestrate up`); else local agents."""
    from orchestrator.run import warm

    return "ray" if address or warm.current() is not None else "local"
