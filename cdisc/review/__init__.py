"""The review report of a build (report.html): header, reconciliation, findings traced to the
raw rows, and plots of the ADaM datasets. Orchestration layer: reads a build folder."""
from .report import write_failed_report, write_review_report
from .trace import write_trace

__all__ = ["write_review_report", "write_failed_report", "write_trace"]
