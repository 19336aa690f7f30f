"""Worker side of orchestrate: the agent, its pytest worker and its container stack.

PYTEST_DONT_REWRITE: imported before the coordinator's pytest session starts (see orchestrator).
"""
