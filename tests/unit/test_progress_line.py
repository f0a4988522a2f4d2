"""The CLI progress line, on a fake clock and a fake stream (no terminal, no timing)."""

from __future__ import annotations

import io

import pytest

from cluster_sim.cli.progress import ProgressLine, format_eta, format_rate, progress_bar


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen(raw: str) -> str:
    """What a terminal shows after ``raw``: the text after the last carriage return, right-stripped."""
    return raw.rsplit("\r", 1)[-1].rstrip()


def test_rate_and_eta_formats():
    assert [format_rate(x) for x in (0, 950, 1234, 2.5e6, 3e9)] == ["0", "950", "1.23k", "2.5M", "3G"]
    assert [format_eta(x) for x in (0, 0.2, 59.5, 75, 3725)] == ["0:00", "0:00", "1:00", "1:15", "1:02:05"]


def test_line_shows_fraction_events_per_second_and_eta():
    clock, out = Clock(), io.StringIO()
    line = ProgressLine("sim x", out, clock=clock, width=10)
    clock.t += 4.0   # 4 s of wall time for 40 % of the run and 2 million events
    line.tick(1.2, 3.0, 2_000_000)
    assert _screen(out.getvalue()) == "sim x [####------]  40%  500k events/s  ETA 0:06"
    clock.t += 6.0
    line(3.0, 3.0)   # a plain (done, total) call: the last event count stays
    assert _screen(out.getvalue()) == "sim x [##########] 100%  200k events/s"


def test_line_without_events_has_no_rate_and_never_goes_back():
    clock, out = Clock(), io.StringIO()
    line = ProgressLine("compare", out, clock=clock, width=4)
    clock.t += 1.0
    line(1, 4)
    clock.t += 1.0
    line(0.5, 4)   # an earlier phase boundary after a later tick: the bar holds
    assert _screen(out.getvalue()) == "compare [#---]  25%  ETA 0:06"


def test_redraws_at_most_every_interval_but_always_at_the_end():
    clock, out = Clock(), io.StringIO()
    line = ProgressLine("x", out, clock=clock, min_interval_s=0.5)
    line.tick(0.1, 1, 10)
    clock.t += 0.2
    line.tick(0.2, 1, 20)   # too soon: recorded, not drawn
    assert out.getvalue().count("\r") == 1 and line.fraction == pytest.approx(0.2)
    clock.t += 0.4
    line.tick(0.3, 1, 30)
    line.tick(1.0, 1, 40)   # the end is drawn even right after a redraw
    assert out.getvalue().count("\r") == 3 and "100%" in _screen(out.getvalue())


def test_a_shorter_line_overwrites_a_longer_one_and_close_erases():
    clock, out = Clock(), io.StringIO()
    line = ProgressLine("x", out, clock=clock, min_interval_s=0)
    clock.t += 1
    line.tick(0.5, 1, 10**6)
    long = len(_screen(out.getvalue()))
    line(1, 1)   # no ETA any more: shorter, padded with blanks
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert len(last) == long and last.rstrip().endswith("events/s")
    line.close()
    assert out.getvalue().endswith("\r" + " " * long + "\r")


def test_progress_bar_only_on_a_terminal_and_when_enabled():
    with progress_bar(True, "x", stream=io.StringIO()) as p:
        assert p is None   # piped or redirected: no bar
    with progress_bar(False, "x", stream=Tty()) as p:
        assert p is None   # --json or -q
    tty = Tty()
    with progress_bar(True, "x", stream=tty) as p:
        assert isinstance(p, ProgressLine)
        p(1, 2)
    assert tty.getvalue().startswith("\rx [") and _screen(tty.getvalue()) == ""   # erased at the end
