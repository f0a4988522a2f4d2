"""Figures (:mod:`.plots`) and the self-contained HTML report (:mod:`.html`) of a run.

Pure functions of DataFrames and dicts; nothing here imports the engine.
"""

from . import html, plots

__all__ = ["html", "plots"]
