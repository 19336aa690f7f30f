"""The run: agents started, units dispatched as the scheduler decides, one outcome per test.

    run_mode.py          `orchestrate run`: the session's run loop (on agents, or in this process:
                         in_process.py); plan_mode.py: `orchestrate plan` (the shard mode is in ci/)
    coordinator.py       the coordinator's run on agents and the session's ending (sections,
                         outputs, stacks down); agent_start.py: the agents' configs, backend and
                         stack file; costs.py: durations, capacity, start-up history; console.py:
                         its lines and the status display
    session.py           the session: a sans-I/O state machine (events in, commands out), the
                         one owner of a run's state (agent_states.py: each agent's states and
                         their transition table; agent_record.py: what each agent holds;
                         attempts.py: the ledger of attempts and finals; tally.py: what each
                         attempt changes beyond it; host_load.py; final_report.py; invariant.py:
                         the end-of-run check against the endings received)
    loop.py              the loop around the session: backend started, events waited for and
                         fed in, commands sent, Ctrl-C, every agent stopped
    backends/            how agents are started and spoken to: local processes, Ray actors
                         (backends/ray.py is the only `import ray`)
    collection_stack.py  a stack of the coordinator's own, for collections that need services
    warm.py              `orchestrate up`: agents (and stacks) kept warm between runs

May import: orchestrator.model, protocol, planning, report (to hand results to pytest's hooks);
the agents' declared faces only.

Invariant: every collected test ends with exactly one final outcome, checked at the end against
the ending events actually received; an infrastructure fault is never a test's own failure.
"""
