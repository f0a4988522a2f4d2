"""Figures (:mod:`.plots`) and the self-contained HTML report (:mod:`.html`: layout and the run
page; :mod:`.html_report`: per-service and policy tables, file links, the report of a directory of
runs, ``write_sweep_report``; :mod:`.metric_links`: metric names -> their docs/metrics.md
definitions) of a run; safe file names and atomic writes (:mod:`.files`).

Pure functions of DataFrames and dicts; nothing here imports the engine.
"""

from . import files, html, html_report, metric_links, plots

__all__ = ["files", "html", "html_report", "metric_links", "plots"]
