"""The environment variables an agent sets for its pytest worker and the tests: names only.

A module of its own, importing nothing, so the agent process (agents/host.py, agents/runtime.py)
needs no pytest: only its worker imports pytest.
"""

# What the tests see (agents/fixtures.py exposes them as fixtures).
AGENT_ENV = "ORCHESTRATE_AGENT"
RUN_ENV = "ORCHESTRATE_RUN_ID"
STACK_ENV = "ORCHESTRATE_STACK"
# `1` when the stack resets before every unit (the worker asks for each reset).
RESET_ENV = "ORCHESTRATE_RESET"
# The worker's two private pipes, `<commands in>,<messages out>` (agents/plugin.py reads it).
WORKER_FDS_ENV = "ORCHESTRATE_WORKER_FDS"
