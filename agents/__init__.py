"""Worker side of orchestrate: the agent, its pytest worker and its container stack."""
