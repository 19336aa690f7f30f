"""Keep pytest-xdist's controller out of the coordinator's session: orchestrate's agents run the tests.

Called by the plugin's `pytest_cmdline_main` (orchestrator/front/plugin.py) when the session is an
orchestrate coordinator: after xdist's own `pytest_cmdline_main` (tryfirst) turned `-n N` into
its distribution settings, before `pytest_configure`, where xdist would register its controller
(DSession). That controller skips the coordinator's collection ("no tests ran") and starts xdist
workers beside orchestrate's agents.

- `-n`, `--dist`, `--tx` or `-d` on the command line together with `--agents`: the user asked
  for two parallel runners at once; a usage error (exit 4), as one line.
- the same from the ini file's `addopts` (or PYTEST_ADDOPTS), written for plain pytest runs:
  switched off in the coordinator only, every other xdist option left as it is; each agent's
  worker gets `-n 0` (agents/worker.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

__all__ = ["keep_xdist_out"]

# xdist's options that start a distributed run (long forms also as --name=value).
_LONG_OPTIONS = frozenset({"--numprocesses", "--dist", "--tx", "--distload"})


def keep_xdist_out(config: pytest.Config) -> None:
    """Refuse `-n` given with `--agents`; turn off a distribution mode that came from addopts."""
    option = config.option
    distributing = getattr(option, "dist", "no") != "no" and bool(getattr(option, "tx", None))
    if not distributing:
        return  # xdist not installed, disabled with -p no:xdist, or not asked for
    if named_on_command_line(config.invocation_params.args):
        raise pytest.UsageError(
            "--agents and pytest-xdist's -n/--dist/--tx both run the tests in parallel: use one of them"
        )
    option.numprocesses = 0
    option.dist = "no"
    option.tx = []


def named_on_command_line(args: Sequence[str]) -> bool:
    """Whether `args` (the command line as given, without addopts) ask xdist to distribute."""
    for arg in args:
        if arg == "--":
            break
        if arg.partition("=")[0] in _LONG_OPTIONS or arg == "-d":
            return True
        if arg.startswith("-n") and not arg.startswith("--"):
            return True  # -n N, -nN, -nauto
    return False
