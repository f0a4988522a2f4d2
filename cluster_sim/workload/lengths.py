"""Request length distributions fitted to public traces, and synthetic request tables.

Shipped distributions (prompt and output tokens sampled independently; the traces' rank
correlations are small, -0.02 to 0.07):

* ``azure_code``, ``azure_conv`` - Azure LLM inference trace 2023 (Patel et al., Splitwise,
  ISCA 2024; CC-BY-4.0), ``AzureLLMInferenceTrace_{code,conv}.csv``, ``ContextTokens`` /
  ``GeneratedTokens``.
* ``mooncake`` - Mooncake FAST'25 ``conversation_trace.jsonl`` (Qin et al.; Apache-2.0),
  ``input_length`` / ``output_length``.

Each is stored as its empirical quantile function at the probabilities :data:`PROBS` (every
1 %, plus 99.5, 99.9 and 100 %; NumPy linear percentiles of the full trace) and sampled by
inverse-CDF interpolation. ``<name>_lognormal`` variants are maximum-likelihood lognormal fits
(mean and std of log tokens) clipped to the trace's range. ``fixed:P:O`` gives constant lengths.
``tests/validation`` recomputes the tables from the traces.

>>> p, o = sample_lengths("azure_conv", 5, rng=0)
>>> p.dtype.name, len(o)
('int32', 5)
>>> t = synthetic_requests(arrivals={"kind": "poisson", "rate_per_s": 5.0}, lengths="fixed:512:64",
...                        horizon_s=10.0, rng=1)
>>> int(t.prompt_tokens[0]), int(t.output_tokens[0])
(512, 64)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..rng import as_generator
from .arrivals import generate
from .requests import RequestTable

__all__ = ["LENGTHS", "PROBS", "LengthDist", "length_dist", "sample_lengths", "synthetic_requests"]

PROBS = tuple([i / 100 for i in range(100)] + [0.995, 0.999, 1.0])

# Quantiles of prompt / output tokens at PROBS (NumPy linear percentiles of the whole trace).
_AZURE_CODE_PROMPT = (
    3, 17, 35, 50, 62, 75, 88, 97, 109, 130, 147, 162, 179, 193, 209, 232, 253, 283, 319, 352, 385.6,
    423, 469, 501.4, 539, 578, 604, 651, 698, 745.2, 770, 816, 848, 880, 908.1, 938.6, 969.5, 997,
    1027, 1049, 1075, 1105.4, 1133, 1174, 1204.9, 1261.1, 1296.3, 1346.5, 1377, 1417, 1469, 1500.2,
    1555, 1600, 1641.7, 1690, 1724, 1774, 1823, 1873.2, 1909, 1964, 2024.2, 2077, 2128, 2163.7, 2226,
    2284.1, 2329.2, 2386.4, 2433, 2479.6, 2546, 2615.1, 2670.6, 2744.5, 2804, 2895.6, 2975, 3066,
    3192.4, 3294.2, 3450.6, 3598.9, 3714.1, 3920.2, 4107, 4319.7, 4559, 4759, 5187.6, 5632.9, 5959.2,
    6193.7, 6584.8, 7303.3, 7430.3, 7435, 7436, 7436, 7436, 7437, 7437,
)
_AZURE_CODE_OUTPUT = (
    6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 10,
    10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14,
    15, 15, 15, 16, 16, 16, 17, 17, 18, 18, 19, 19, 19, 20, 21, 21, 22, 23, 24, 25, 26, 27, 28, 29, 31,
    32, 34, 37, 39, 42, 45, 48, 52, 55, 59.4, 65, 72, 79, 90, 105, 128, 170.9, 251.5, 359.4, 825.3,
    1899,
)
_AZURE_CONV_PROMPT = (
    2, 29, 91, 161, 181, 181, 191, 197, 201, 203, 207, 212, 222, 242, 317, 372, 375, 378, 381, 384,
    387, 390, 392, 394, 395, 396, 398, 399, 400, 402, 403, 405, 406, 408, 411, 414, 419, 424, 433, 456,
    703, 862.6, 903, 946, 971.6, 984, 994, 1002, 1009, 1014, 1020, 1025, 1031, 1036, 1041, 1045, 1050,
    1055, 1060, 1065, 1071, 1076, 1081, 1086, 1092, 1097, 1102, 1109, 1116, 1122, 1130, 1139, 1147,
    1159.4, 1171, 1189, 1214.4, 1249, 1311, 1314, 1315, 1321, 1368.3, 1508, 1689.2, 1876.2, 2032, 2221,
    2401.2, 2584, 2734.5, 3291.2, 4073, 4076, 4079, 4083, 4086, 4090, 4098, 4142, 4831, 6179.2, 14050,
)
_AZURE_CONV_OUTPUT = (
    7, 16, 24, 32, 38, 41, 44, 47, 49, 52, 54, 57, 59, 62, 64, 67, 69, 71, 73, 75, 77, 79, 81, 82, 84,
    85, 86, 87, 89, 90, 91, 92, 93, 94, 95, 96, 97, 99, 100, 101, 103, 105, 107, 108, 110, 113, 116,
    118, 122, 125, 129, 133, 137, 141, 145, 151, 156, 161, 163, 169, 177, 182, 190, 202, 216, 217, 237,
    371, 375, 378, 384, 387, 390, 393, 394, 395, 396, 396, 397, 398, 400, 402, 404, 407, 410, 411, 414,
    415, 417, 420, 424, 428, 429, 433, 442, 451, 468, 509, 540, 601, 643.2, 954, 1000,
)
_MOONCAKE_PROMPT = (
    891, 894, 896, 897, 899, 901, 904, 909, 919, 936, 964, 1012, 1066, 1118.9, 1196, 1261, 1325.6,
    1402, 1479, 1556, 1662, 1772, 1878, 2008, 2137.2, 2306.5, 2477.8, 2670.2, 2840.4, 3061.7, 3263,
    3501.4, 3710.2, 3899.9, 4077.4, 4251, 4389.8, 4532, 4700.4, 4817.7, 4993, 5138, 5272, 5481.4,
    5687.2, 5870.5, 6069.8, 6265.2, 6490, 6686.7, 6909, 7125.3, 7400.4, 7648, 7911.4, 8186.5, 8452,
    8728.5, 8951.4, 9270.1, 9570, 9872.6, 10159.6, 10498, 10881, 11237.5, 11612.8, 11953.1, 12317.4,
    12687.8, 13196, 13650.6, 14017.6, 14415.4, 14903.4, 15367, 15757.8, 16229.5, 16766, 17347.8, 17869,
    18490, 19044.2, 19774.1, 20588.2, 21464, 22662.8, 23864.3, 24830.2, 26111, 27367, 28668.5, 30462,
    32398.6, 35007.8, 39550.5, 44612.8, 52215.4, 66448.6, 85400.4, 100810.3, 121300.9, 126195,
)
_MOONCAKE_OUTPUT = (
    1, 3, 3, 5, 8, 10, 13, 15, 18, 21, 24, 27, 30.6, 34, 39, 46, 56, 66, 79, 90, 100, 111, 122, 133,
    144, 156.5, 169, 182, 193, 204, 213, 220, 230, 239, 247, 256, 265, 272, 278, 284, 291, 298, 305,
    311, 317, 322.5, 328, 333, 339, 345, 350, 356, 361, 366, 370, 375, 380, 385, 390, 395, 399, 403,
    408, 413, 418, 423, 427, 432, 438, 443, 447, 452, 457, 461, 466, 472, 477, 483, 491, 497, 504, 511,
    519, 526.9, 535, 543, 551, 561, 571, 583, 597, 612, 628, 648, 670, 698, 738, 800.2, 891.8, 1118.5,
    1567.6, 2000, 2000,
)

@dataclass(frozen=True)
class LengthDist:
    """A joint (independent) distribution of prompt and output lengths.

    ``kind`` is ``empirical`` (``prompt``/``output`` = quantiles at :data:`PROBS`),
    ``lognormal`` (``(mu, sigma, lo, hi)`` of log tokens, clipped to ``[lo, hi]``) or ``fixed``
    (``(value,)``).
    """

    name: str
    kind: str
    prompt: tuple[float, ...]
    output: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        want = {"empirical": len(PROBS), "lognormal": 4, "fixed": 1}
        if self.kind not in want:
            raise ConfigError(f"lengths.{self.name}: unknown kind {self.kind!r}; known: {', '.join(want)}")
        for col in (self.prompt, self.output):
            if len(col) != want[self.kind]:
                raise ConfigError(f"lengths.{self.name}: {self.kind} needs {want[self.kind]} values, got {len(col)}")
        if self.kind == "empirical" and any(np.diff(col).min() < 0 for col in (self.prompt, self.output)):
            raise ConfigError(f"lengths.{self.name}: quantiles must not decrease")

    @classmethod
    def fit(cls, name: str, prompt_tokens: np.ndarray, output_tokens: np.ndarray, source: str = "") -> LengthDist:
        """Empirical quantile tables of observed lengths (e.g. a trace's RequestTable columns)."""
        q = np.asarray(PROBS) * 100.0
        return cls(name, "empirical", tuple(np.percentile(prompt_tokens, q).tolist()),
                   tuple(np.percentile(output_tokens, q).tolist()), source)

    @classmethod
    def fit_lognormal(cls, name: str, prompt_tokens: np.ndarray, output_tokens: np.ndarray, source: str = ""
                      ) -> LengthDist:
        """Lognormal fits (mean and std of log tokens), clipped to the observed range."""
        def one(x: np.ndarray) -> tuple[float, ...]:
            lx = np.log(np.maximum(np.asarray(x, dtype=np.float64), 1.0))
            return (float(lx.mean()), float(lx.std()), float(np.min(x)), float(np.max(x)))
        return cls(name, "lognormal", one(prompt_tokens), one(output_tokens), source)

    def _draw(self, col: tuple[float, ...], n: int, gen: np.random.Generator) -> np.ndarray:
        if self.kind == "fixed":
            x = np.full(n, col[0], dtype=np.float64)
        elif self.kind == "lognormal":
            mu, sigma, lo, hi = col
            x = np.clip(gen.lognormal(mu, sigma, size=n), lo, hi)
        else:
            x = np.interp(gen.random(n), PROBS, col)
        return np.maximum(np.rint(x), 1).astype(np.int32)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (prompt_tokens, output_tokens) pairs as int32 arrays, each >= 1."""
        gen = as_generator(rng, "lengths")
        prompt = self._draw(self.prompt, n, gen)
        return prompt, self._draw(self.output, n, gen)

    @property
    def mean_prompt_tokens(self) -> float:
        """Mean prompt length of the distribution (before rounding)."""
        return self._mean(self.prompt)

    @property
    def mean_output_tokens(self) -> float:
        """Mean output length of the distribution (before rounding)."""
        return self._mean(self.output)

    def _mean(self, col: tuple[float, ...]) -> float:
        if self.kind == "fixed":
            return col[0]
        if self.kind == "lognormal":
            return math.exp(col[0] + col[1] ** 2 / 2)  # unclipped
        q, p = np.asarray(col), np.asarray(PROBS)
        return float(((q[1:] + q[:-1]) * 0.5 * np.diff(p)).sum())  # trapezoid rule


_AZ = "Azure LLM inference trace 2023 (Splitwise, ISCA 2024), AzureLLMInferenceTrace_{}.csv; CC-BY-4.0"
_MC = "Mooncake FAST'25 conversation_trace.jsonl (kvcache-ai/Mooncake); Apache-2.0"
LENGTHS: Mapping[str, LengthDist] = MappingProxyType({
    "azure_code": LengthDist("azure_code", "empirical", _AZURE_CODE_PROMPT, _AZURE_CODE_OUTPUT, _AZ.format("code")),
    "azure_conv": LengthDist("azure_conv", "empirical", _AZURE_CONV_PROMPT, _AZURE_CONV_OUTPUT, _AZ.format("conv")),
    "mooncake": LengthDist("mooncake", "empirical", _MOONCAKE_PROMPT, _MOONCAKE_OUTPUT, _MC),
    "azure_code_lognormal": LengthDist("azure_code_lognormal", "lognormal", (6.9986, 1.3602, 3, 7437),
                                       (2.7882, 0.8472, 6, 1899), _AZ.format("code")),
    "azure_conv_lognormal": LengthDist("azure_conv_lognormal", "lognormal", (6.6333, 0.9852, 2, 14050),
                                       (5.0190, 0.8590, 7, 1000), _AZ.format("conv")),
    "mooncake_lognormal": LengthDist("mooncake_lognormal", "lognormal", (8.7367, 1.1991, 891, 126195),
                                     (5.3364, 1.3584, 1, 2000), _MC),
})


def length_dist(kind: str | LengthDist) -> LengthDist:
    """A shipped distribution by name, ``fixed:P:O``, or a :class:`LengthDist` as is."""
    if isinstance(kind, LengthDist):
        return kind
    if isinstance(kind, str) and kind.startswith("fixed:"):
        parts = kind.split(":")
        try:
            p, o = int(parts[1]), int(parts[2])
            if len(parts) != 3 or p < 1 or o < 1:
                raise ValueError
        except (ValueError, IndexError):
            raise ConfigError(f"lengths: expected 'fixed:PROMPT:OUTPUT' with positive integers, got {kind!r}") from None
        return LengthDist(kind, "fixed", (p,), (o,), "constant")
    if kind not in LENGTHS:
        raise ConfigError(f"lengths: unknown {kind!r}; known: {', '.join(sorted(LENGTHS))}, fixed:P:O")
    return LENGTHS[kind]


def sample_lengths(kind: str | LengthDist, n: int, rng: np.random.Generator | int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (prompt_tokens, output_tokens) int32 pairs from distribution ``kind``."""
    return length_dist(kind).sample(int(n), rng)


def synthetic_requests(*, arrivals: np.ndarray | Mapping[str, Any] | str = "poisson",
                       lengths: str | LengthDist = "azure_conv", n: int | None = None,
                       horizon_s: float | None = None, rate_per_s: float | None = None,
                       rng: np.random.Generator | int | None = None, service: int | None = None
                       ) -> RequestTable:
    """A :class:`RequestTable` of synthetic requests.

    Parameters
    ----------
    arrivals : ndarray, mapping or str
        Arrival times in seconds, or an arrival process: a kind name (``poisson``, ``gamma``,
        ``diurnal``) or a mapping ``{"kind": ..., "rate_per_s": ..., **params}``.
    lengths : str or LengthDist
        Length distribution (see :data:`LENGTHS`, or ``fixed:P:O``).
    n : int, optional
        Number of requests (the first ``n`` arrivals).
    horizon_s : float, optional
        Keep arrivals before ``horizon_s``. At least one of ``n`` and ``horizon_s`` is needed
        for a generated process.
    rate_per_s : float, optional
        Mean arrival rate, if not in the ``arrivals`` mapping.
    rng : Generator, int or None
        Random source; arrivals are drawn first, then lengths.
    service : int, optional
        Service id to tag every request with.
    """
    gen = as_generator(rng, "workload")
    if isinstance(arrivals, (str, Mapping)):
        spec: dict[str, Any] = {"kind": arrivals} if isinstance(arrivals, str) else dict(arrivals)
        kind = str(spec.pop("kind", "poisson"))
        rate: float | None = spec.pop("rate_per_s", rate_per_s)
        if rate is None or not rate > 0:
            raise ConfigError(f"arrivals.rate_per_s: a positive rate is needed for {kind!r}, got {rate!r}")
        if n is None and horizon_s is None:
            raise ConfigError("synthetic_requests: give n or horizon_s")
        if horizon_s is not None:
            times = generate(kind, rate, horizon_s, gen, **spec)
        else:
            span = 1.2 * n / rate + 10.0 / rate  # type: ignore[operator]
            times = generate(kind, rate, span, gen, **dict(spec))
            while len(times) < n:  # type: ignore[operator]
                span *= 2.0
                times = generate(kind, rate, span, gen, **dict(spec))
        source = f"synthetic:{kind}"
    else:
        times = np.sort(np.asarray(arrivals, dtype=np.float64))
        if horizon_s is not None:
            times = times[times < horizon_s]
        source = "synthetic"
    if n is not None:
        times = times[: int(n)]
    dist = length_dist(lengths)
    prompt, output = dist.sample(len(times), gen)
    return RequestTable.from_arrays(times, prompt, output, service=service,
                                    source=f"{source}+{dist.name}")
