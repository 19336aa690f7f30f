"""What the coordinator and the agents share: values, commands, events and their encoding.

The only part of orchestrator/ that agents/ imports, and it imports nothing else of ours, so
neither side reaches into the other's internals (tests/unit/test_imports.py keeps it so):

    orchestrator (coordinator) ──commands──►  agents (agent, worker)
                               ◄──events────
                  both speak orchestrator.protocol (messages.py over wire.py)

`wire.py` is the msgpack encoding (the only msgpack import); `messages.py` the typed messages
of the coordinator <-> agent hop (frozen dataclasses, each a tagged, versioned map), their one
registry of tags and their encoding, re-exporting the shared values (`values.py`), the
commands (`commands.py`) and the events (`events.py`);
`worker_hop.py` those of the agent <-> pytest worker hop (positional frames, one per test);
`reports.py` how one test's pytest reports are packed once in the worker and unpacked once in
the coordinator.

Nothing is re-exported here: a pytest worker imports `wire`, `worker_hop` and `reports` only,
and the package's import must not cost it the messages (about 25 ms a process).
"""
