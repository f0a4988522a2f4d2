"""Units and human-readable quantities.

Inside the simulator everything is SI base units: seconds, bytes, bytes per second,
FLOP, FLOP/s, watts, metres. Human strings ("80 GiB", "400 Gbps", "7d", "5 us",
"4M" tokens, "300 km") are parsed only at the configuration boundary with the
``parse_*`` functions, and printed with the ``fmt_*`` functions.

Conventions: decimal prefixes (k, M, G, T, P) are powers of 1000, binary prefixes
(Ki, Mi, Gi, Ti) powers of 1024; ``b``/``bps`` are bits, ``B`` bytes.

>>> parse_bytes("80 GiB") == 80 * 2**30
True
>>> parse_bandwidth("400 Gbps")  # bytes per second
50000000000.0
>>> parse_duration("1h30m")
5400.0
>>> parse_duration("5 us")
5e-06
>>> parse_count("4M")
4000000.0
>>> fmt_duration(90061)
'1d 1h 1m'
"""

from __future__ import annotations

import math
import re

from .errors import UnitError

__all__ = [
    "DAY",
    "GB",
    "GIB",
    "HOUR",
    "MINUTE",
    "TB",
    "TFLOPS",
    "YEAR",
    "fmt_bandwidth",
    "fmt_bytes",
    "fmt_count",
    "fmt_duration",
    "parse_bandwidth",
    "parse_bytes",
    "parse_count",
    "parse_distance",
    "parse_duration",
    "parse_power",
]

KB, MB, GB, TB, PB = 1e3, 1e6, 1e9, 1e12, 1e15
KIB, MIB, GIB, TIB = 2**10, 2**20, 2**30, 2**40
TFLOPS = 1e12
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
WEEK, YEAR = 7 * DAY, 365 * DAY
FIBRE_S_PER_KM = 5e-6  # one-way latency of light in fibre, about 5 us/km (DOMAIN.md 3.3)

_NUM = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"

_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}

_BYTE_UNITS: dict[str, float] = {"": 1.0, "B": 1.0, "byte": 1.0, "bytes": 1.0}
for _p, _f in _DECIMAL.items():
    if _p:
        _BYTE_UNITS[_p + "B"] = _f
for _p, _f in _BINARY.items():
    _BYTE_UNITS[_p + "B"] = _f

_BW_UNITS: dict[str, float] = {}  # -> bytes per second
for _p, _f in _DECIMAL.items():
    _BW_UNITS[_p + "bps"] = _f / 8
    _BW_UNITS[_p + "b/s"] = _f / 8
    _BW_UNITS[_p + "B/s"] = _f
    _BW_UNITS[_p + "Bps"] = _f
for _p, _f in _BINARY.items():
    _BW_UNITS[_p + "B/s"] = _f
_BW_UNITS.update({"Gbit/s": 1e9 / 8, "Mbit/s": 1e6 / 8, "Tbit/s": 1e12 / 8})

_TIME_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": MINUTE,
    "min": MINUTE,
    "h": HOUR,
    "hr": HOUR,
    "d": DAY,
    "day": DAY,
    "days": DAY,
    "w": WEEK,
    "y": YEAR,
    "year": YEAR,
    "years": YEAR,
}

_DIST_UNITS = {"m": 1.0, "km": 1e3}
_POWER_UNITS = {"W": 1.0, "kW": 1e3, "MW": 1e6}


def _split(text: str, what: str) -> list[tuple[float, str]]:
    s = text.strip()
    if not s:
        raise UnitError(f"empty {what}")
    parts = re.findall(_NUM + r"\s*([A-Za-zµ/]*)", s)
    rebuilt = "".join(n + u for n, u in parts)
    if not parts or rebuilt != re.sub(r"\s+", "", s).replace("_", ""):
        raise UnitError(f"cannot parse {what} {text!r}")
    return [(float(n), u) for n, u in parts]


def _parse_single(value: str | float | int, table: dict[str, float], what: str, example: str) -> float:
    if isinstance(value, bool):
        raise UnitError(f"expected a {what}, got {value!r}")
    if isinstance(value, (int, float)):
        return _finite(float(value), value, what)
    if not isinstance(value, str):
        raise UnitError(f"expected a {what} such as {example!r}, got {value!r}")
    parts = _split(value, what)
    if len(parts) != 1:
        raise UnitError(f"cannot parse {what} {value!r} (expected e.g. {example!r})")
    num, unit = parts[0]
    if unit not in table:
        raise UnitError(f"unknown unit {unit!r} in {what} {value!r} (expected e.g. {example!r})")
    return _finite(num * table[unit], value, what)


def _finite(x: float, raw: object, what: str) -> float:
    if not math.isfinite(x):
        raise UnitError(f"{what} {raw!r} is not finite")
    return x


def parse_bytes(value: str | float | int) -> float:
    """Parse a size ("80 GiB", "1.5 TB", 4096) into bytes."""
    return _parse_single(value, _BYTE_UNITS, "size", "80 GiB")


def parse_bandwidth(value: str | float | int) -> float:
    """Parse a bandwidth ("400 Gbps", "900 GB/s") into bytes per second. Numbers are B/s."""
    return _parse_single(value, _BW_UNITS, "bandwidth", "400 Gbps")


def parse_distance(value: str | float | int) -> float:
    """Parse a distance ("300 km") into metres. Bare numbers are metres."""
    return _parse_single(value, _DIST_UNITS, "distance", "300 km")


def parse_power(value: str | float | int) -> float:
    """Parse a power ("700 W", "1.2 kW") into watts."""
    return _parse_single(value, _POWER_UNITS, "power", "700 W")


_COUNT = {**_DECIMAL, "B": 1e9}  # "300B tokens": B is billion in counts (never bytes here)


def parse_count(value: str | float | int) -> float:
    """Parse a count with an optional decimal suffix ("4M", "1T", "300B", "15e12", "2k")."""
    return _parse_single(value, _COUNT, "count", "4M")


def parse_duration(value: str | float | int) -> float:
    """Parse a duration into seconds; compound forms ("1h30m", "2d 12h") are summed.

    Bare numbers are seconds. Negative durations are rejected.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        total = _finite(float(value), value, "duration")
    elif isinstance(value, str):
        total = 0.0
        for num, unit in _split(value, "duration"):
            if unit == "":
                unit = "s"
            if unit not in _TIME_UNITS:
                raise UnitError(f"unknown unit {unit!r} in duration {value!r} (expected e.g. '7d', '5 us')")
            f = _TIME_UNITS[unit]
            total += num / round(1 / f) if f < 1 else num * f  # exact for ns/us/ms
        total = _finite(total, value, "duration")
    else:
        raise UnitError(f"expected a duration such as '7d', got {value!r}")
    if total < 0:
        raise UnitError(f"duration {value!r} is negative")
    return total


def _fmt_scaled(x: float, steps: list[tuple[float, str]], digits: int = 3) -> str:
    for factor, name in steps:
        if abs(x) >= factor:
            return f"{x / factor:.{digits}g} {name}"
    factor, name = steps[-1]
    return f"{x / factor:.{digits}g} {name}"


def fmt_bytes(n: float, binary: bool = True) -> str:
    """Format bytes: ``fmt_bytes(80 * 2**30) == '80 GiB'``."""
    steps: list[tuple[float, str]]
    if binary:
        steps = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB"), (1, "B")]
    else:
        steps = [(TB, "TB"), (GB, "GB"), (MB, "MB"), (KB, "kB"), (1, "B")]
    return _fmt_scaled(n, steps)


def fmt_bandwidth(bytes_per_s: float, bits: bool = True) -> str:
    """Format a bandwidth given in bytes per second, as bits ("400 Gbps") or bytes ("50 GB/s")."""
    if bits:
        steps = [(1e12, "Tbps"), (1e9, "Gbps"), (1e6, "Mbps"), (1e3, "kbps"), (1, "bps")]
        return _fmt_scaled(bytes_per_s * 8, steps)
    steps = [(1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s"), (1, "B/s")]
    return _fmt_scaled(bytes_per_s, steps)


def fmt_count(n: float) -> str:
    """Format a large count with a decimal suffix: ``fmt_count(4e6) == '4M'``."""
    return _fmt_scaled(n, [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"), (1, "")]).replace(" ", "").strip()


def fmt_duration(seconds: float) -> str:
    """Format seconds for people: '1d 1h 1m', '3.5 ms', '12.3 s'."""
    s = float(seconds)
    if not math.isfinite(s):
        return str(s)
    if s < 1e-3:
        return f"{s * 1e6:.3g} us"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    if s < MINUTE:
        return f"{s:.3g} s"
    parts = []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        k = int(s // size)
        if k:
            parts.append(f"{k}{unit}")
            s -= k * size
    if not parts or (len(parts) == 1 and s >= 1):
        parts.append(f"{int(round(s))}s")
    return " ".join(parts)
