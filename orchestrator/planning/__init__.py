"""Planning: from collected items to a plan, before anything runs, and pure.

    pipeline.py   items -> units (class, module or file) -> estimates -> the plan
    durations/    the duration store (past runs), estimates, the live re-estimate, start-up costs
    scheduling/   the LPT plan, and the schedulers (static, dynamic work stealing): they return
                  assignments and never send anything
    sizing.py     how many agents (`--agents auto`); whatif.py: `plan --agents LIST`

May import: orchestrator.model, orchestrator.protocol; pytest for collection in pipeline.py. No
Ray, no Docker, no agents/, nothing of run/ or report/.

Invariant: the same inputs give the same plan (no clock, no I/O but the store's file), so the
schedulers are tested against a simulator and CI shards agree on one plan.
"""
