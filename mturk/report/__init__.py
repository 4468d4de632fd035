"""`regnet-bench report`: votes -> quality control -> per-item aggregation -> the paper's tables
with intervals and tests -> Markdown, LaTeX, CSV, one HTML page and PNG figures; plus `plan`
(power and cost). Pipeline: inputs -> validate -> qc -> aggregate -> tables/stats -> render/plots,
assembled in `build`."""

from mturk.report.build import Report, ReportOptions, build_report, write_report
from mturk.report.qc import QCRules

__all__ = ["Report", "ReportOptions", "QCRules", "build_report", "write_report"]
