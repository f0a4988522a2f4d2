import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster_sim import units as u
from cluster_sim.errors import UnitError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80 GiB", 80 * 2**30), ("80GB", 80e9), ("1.5 TB", 1.5e12), ("512", 512.0), ("4 KiB", 4096.0)],
)
def test_parse_bytes(text, expected):
    assert u.parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("400 Gbps", 50e9), ("900 GB/s", 900e9), ("200 Gb/s", 25e9), ("100 Mbps", 12.5e6)],
)
def test_parse_bandwidth(text, expected):
    assert u.parse_bandwidth(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", 7 * 86400), ("5 us", 5e-6), ("1h30m", 5400), ("2d 12h", 216000), ("10m", 600),
     ("500ms", 0.5), ("1y", 365 * 86400), (3, 3.0)],
)
def test_parse_duration(text, expected):
    assert u.parse_duration(text) == pytest.approx(expected, rel=1e-15)


def test_counts_and_distance():
    assert u.parse_count("4M") == 4e6
    assert u.parse_count("1T") == 1e12
    assert u.parse_count("300B") == 300e9
    assert u.parse_count("15e12") == 15e12
    assert u.parse_distance("300 km") == 300_000
    assert u.parse_power("1.2 kW") == 1200


@pytest.mark.parametrize("bad", ["", "80 GiBB", "fast", "1h 2x", "nan s", "-5s"])
def test_bad_durations_raise(bad):
    with pytest.raises(UnitError):
        u.parse_duration(bad)


def test_bad_units_name_the_input():
    with pytest.raises(UnitError, match="'80 Gibibytes'"):
        u.parse_bytes("80 Gibibytes")


def test_formatting():
    assert u.fmt_bytes(80 * 2**30) == "80 GiB"
    assert u.fmt_bandwidth(50e9) == "400 Gbps"
    assert u.fmt_bandwidth(50e9, bits=False) == "50 GB/s"
    assert u.fmt_count(4e6) == "4M"
    assert u.fmt_duration(0.0035) == "3.5 ms"
    assert u.fmt_duration(90061) == "1d 1h 1m"
    assert u.fmt_duration(125) == "2m 5s"


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_duration_roundtrip_seconds(x):
    assert math.isclose(u.parse_duration(f"{x!r}s"), x, rel_tol=1e-12, abs_tol=1e-12)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["KiB", "MiB", "GiB", "kB", "MB", "GB"]))
def test_bytes_scale(n, unit):
    factor = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    assert u.parse_bytes(f"{n} {unit}") == n * factor
