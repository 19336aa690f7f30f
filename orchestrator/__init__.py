"""orchestrate: a distributed parallel test orchestrator for pytest."""
