"""The front door: how a user starts orchestrate, and one RunConfig from what they gave.

Owns the `orchestrate` command (cli.py, cli_parser.py), the option table and the RunConfig
(options.py), the `pytest11` plugin that makes a pytest session a coordinator (plugin.py), the
commands that are no pytest session (commands.py: clean, durations, up/down, report; bench.py).

May import: every other part of orchestrator/ (it wires them), the agents' declared faces
(tests/unit/test_imports.py). Nothing imports it but the entry points.

Invariant: an option is declared once, in `options.OPTIONS`, and read once into a frozen
RunConfig; nothing downstream re-reads argv, the environment or pyproject.toml.
"""
