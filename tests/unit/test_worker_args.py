"""The pytest worker's command line: the user's arguments, then what every agent's worker needs."""

from __future__ import annotations

from agents.worker import worker_args


def test_private_cache_and_basetemp_no_maxfail_no_stepwise_then_the_stack_args() -> None:
    args = worker_args(
        ["tests", "-x", "--sw", "--stepwise-skip", "-k", "db"], "/tmp/priv", 2, stack_args=["-p", "stackplug"]
    )
    assert args == [
        "tests",
        "-x",
        "-k",
        "db",
        "-o",
        "cache_dir=/tmp/priv/cache",
        "--basetemp=/tmp/priv/basetemp",
        "--maxfail=0",
        "-p",
        "stackplug",
    ]


def test_the_users_basetemp_gets_one_directory_per_agent() -> None:
    assert "--basetemp=/bt/agent-3" in worker_args([], "/tmp/priv", 3, basetemp="/bt")


def test_no_cache_dir_option_when_the_cache_plugin_is_off() -> None:
    args = worker_args(["-p", "no:cacheprovider"], "/tmp/priv", 0)
    assert not any(a.startswith("cache_dir=") for a in args)
