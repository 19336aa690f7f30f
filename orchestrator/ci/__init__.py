"""CI runners: one runner's part of the plan (`orchestrate shard`) and one report from all
(`orchestrate merge`), without Ray.

May import: orchestrator.model, protocol, planning (every runner computes the same plan),
report (the merged results are replayed through pytest's hooks, as a run's are) and, for the
shard mode (shard_mode.py), run/ (a runner runs its part as `orchestrate run` does).

Invariant: every runner plans alike (the plan's fingerprint is recorded), and merge refuses
artifacts of different plans or a test claimed by two runners.
"""
