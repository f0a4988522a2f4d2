"""The run progress line on stderr: only on a terminal, never with ``--json`` or ``-q``.

:class:`ProgressLine` is the callback :func:`cluster_sim.simulate` and ``compare`` take: called
``(done, total)`` at each phase or run, and ``tick(done, total, events)`` as simulated time
advances inside the engines. It draws one line, redrawn in place (``\\r``) at most every
``min_interval_s`` of wall time, and erased when the run ends::

    simulating demo [############------------------]  40%  1.2M events/s  ETA 0:07

The clock and the stream are parameters, so the drawing is tested without a terminal or timing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["ProgressLine", "format_eta", "format_rate", "progress_bar"]


def format_rate(per_s: float) -> str:
    """``1234567`` -> ``'1.2M'`` (events per second, three significant digits at most)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_s >= scale:
            return f"{per_s / scale:.3g}{suffix}"
    return f"{per_s:.0f}"


def format_eta(seconds: float) -> str:
    """``75`` -> ``'1:15'``, ``3725`` -> ``'1:02:05'`` (rounded to whole seconds)."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class ProgressLine:
    """A progress bar on one line of ``stream``: fraction done, events/s and ETA.

    Parameters
    ----------
    label : str
        Shown first (the experiment's name).
    stream : text stream
        Where the line is drawn (the CLI: stderr, only when it is a terminal).
    clock : callable, optional
        Wall clock in seconds (default :func:`time.monotonic`); the rate and ETA are measured on it.
    min_interval_s : float
        Least wall time between two redraws (the end of the run is always drawn).
    width : int
        Characters of the bar.
    """

    def __init__(self, label: str, stream: TextIO, clock: Callable[[], float] = time.monotonic,
                 min_interval_s: float = 0.1, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.clock = clock
        self.min_interval_s = min_interval_s
        self.width = width
        self.t0 = clock()
        self.fraction = 0.0
        self.events: int | None = None
        self._drawn_at: float | None = None
        self._shown = 0   # characters of the line on screen

    def __call__(self, done: float, total: float) -> None:
        """A phase (or run) is done: ``done`` of ``total``."""
        self.update(done, total)

    def tick(self, done: float, total: float, events: int) -> None:
        """Simulated time advanced inside an engine: ``done`` of ``total`` phases, ``events`` so far."""
        self.update(done, total, events)

    def update(self, done: float, total: float, events: int | None = None) -> None:
        """Record the progress and redraw if ``min_interval_s`` has passed (never backwards)."""
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
        self.fraction = max(self.fraction, frac)
        if events is not None:
            self.events = events
        now = self.clock()
        if (self._drawn_at is not None and now - self._drawn_at < self.min_interval_s
                and self.fraction < 1.0):
            return
        self._drawn_at = now
        self._draw(self.render(now))

    def render(self, now: float) -> str:
        """The line at wall time ``now``."""
        f = self.fraction
        full = int(f * self.width + 1e-9)   # 1.2 / 3 is 0.3999...: still 4 of 10
        parts = [f"{self.label} [{'#' * full}{'-' * (self.width - full)}] {f:4.0%}"]
        elapsed = now - self.t0
        if self.events is not None and elapsed > 0:
            parts.append(f"{format_rate(self.events / elapsed)} events/s")
        if 0 < f < 1 and elapsed > 0:
            parts.append(f"ETA {format_eta(elapsed * (1 - f) / f)}")
        return "  ".join(parts)

    def _draw(self, line: str) -> None:
        pad = " " * max(self._shown - len(line), 0)
        self.stream.write(f"\r{line}{pad}")
        self.stream.flush()
        self._shown = max(self._shown, len(line))   # the padding is on screen too

    def close(self) -> None:
        """Erase the line (the bar is transient: the command's output follows on a clean line)."""
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


@contextmanager
def progress_bar(enabled: bool, label: str, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> Iterator[ProgressLine | None]:
    """A :class:`ProgressLine` on ``stream`` (default stderr) when ``enabled`` and it is a terminal,
    else None (so ``--json``, ``-q`` and piped output never carry a bar)."""
    out = sys.stderr if stream is None else stream
    if not enabled or not out.isatty():
        yield None
        return
    line = ProgressLine(label, out, clock=clock)
    try:
        yield line
    finally:
        line.close()
