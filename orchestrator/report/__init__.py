"""The merged report's outputs: the terminal summary, the JUnit file and the results file.

Called by the CLI once the session has merged every agent's results into a RunReport, and by
`orchestrate merge` for CI shards. terminal.py is where report code meets rich.
"""

from orchestrator.report.junit import write_junit
from orchestrator.report.outcomes import outcome_of, rebuild_report, report_duration
from orchestrator.report.results import read_results, write_results
from orchestrator.report.terminal import LiveProgress, counts_line, render_summary

__all__ = [
    "LiveProgress",
    "counts_line",
    "outcome_of",
    "read_results",
    "rebuild_report",
    "render_summary",
    "report_duration",
    "write_junit",
    "write_results",
]
