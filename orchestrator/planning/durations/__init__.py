"""Durations: what each test took on past runs, and what it is expected to take on this one.

    store.py     the duration store (msgpack, written atomically; history per test, imported
                 from pytest-split or JUnit files), stored at load 1
    importers.py pytest-split's and JUnit XML files read into observations the store folds in
    estimate.py  a unit's estimate from the store (a module's mean for unknown tests)
    learning.py  the remaining work re-estimated as tests end, and the ETA
    startup.py   the agents' fixed costs per backend and stack (start-up, teardown)

May import: orchestrator.model, orchestrator.protocol (the wire encoding, the error tree).

Invariant: a store that cannot be read or written never fails a run: it warns, and the plan
falls back to estimates.
"""
