"""Figures (:mod:`.plots`) and the self-contained HTML report (:mod:`.html`) of a run; safe file
names and atomic writes (:mod:`.files`).

Pure functions of DataFrames and dicts; nothing here imports the engine.
"""

from . import files, html, plots

__all__ = ["files", "html", "plots"]
