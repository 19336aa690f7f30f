"""What pytest does not report itself: orchestrate's terminal sections, the results file, rerun
elements in pytest's JUnit file, and the replay of agents' results through pytest's hooks.

Called by the coordinator plugin (orchestrator/front/plugin.py) and `orchestrate merge`.
"""

from orchestrator.report.outcomes import outcome_of, rebuild_report, report_duration
from orchestrator.report.results import read_results, report_to_document, write_results

__all__ = [
    "outcome_of",
    "read_results",
    "rebuild_report",
    "report_duration",
    "report_to_document",
    "write_results",
]
