"""The pytest worker's command line: the user's arguments, then what every agent's worker needs."""

from __future__ import annotations

from agents.worker import without_stack_options, worker_args


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


def test_the_stacks_options_replace_the_users_same_options_for_the_workers() -> None:
    user = ["tests", "--db-url", "sqlite://", "-k", "db", "--redis=redis://shared", "-p", "mine", "--flag"]
    stack = ["--db-url", "postgresql://agent-3", "--redis=redis://agent-3", "-p", "stackplug", "--flag"]

    kept, replaced = without_stack_options(user, stack)

    assert kept == ["tests", "-k", "db", "-p", "mine"]  # -p adds to the user's: never replaced
    assert replaced == ["--db-url", "--redis", "--flag"]
    args = worker_args(user, "/tmp/priv", 3, stack_args=stack)
    assert args.count("--db-url") == 1 and args[args.index("--db-url") + 1] == "postgresql://agent-3"
    assert "sqlite://" not in args and "--redis=redis://shared" not in args


def test_a_user_flag_before_another_option_keeps_that_option() -> None:
    kept, replaced = without_stack_options(["--db-url", "-x"], ["--db-url", "postgresql://a"])
    assert (kept, replaced) == (["-x"], ["--db-url"])
