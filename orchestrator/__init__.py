"""orchestrate: a distributed parallel test orchestrator for pytest.

PYTEST_DONT_REWRITE: `orchestrate run` imports this package before it starts its pytest
session, so pytest must not try (and warn that it cannot) rewrite its asserts as a plugin's.
"""
