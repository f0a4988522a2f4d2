"""``compare``: one run per value of a config field, side by side (``cluster-sim compare``).

A variant is the experiment exactly as ``run --set FACTOR=VALUE`` would load it: the file's
own mapping (plus the caller's overrides) with the factor as one more override, validated by
:func:`~cluster_sim.config.load_config`. Never a dump of the validated model: that would mark
every default as set by the user, so ``policy.training.scheduler`` presets (whose stages and
backfill apply only where the file leaves them unset) would silently stop applying.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ExperimentConfig, load_config
from ..errors import ClusterSimError, ConfigError
from ..report.files import safe_filename
from .build import training_policies
from .outdir import MARKER, check_out_dir, staged_dir
from .run import HEADLINE_KEYS, simulate
from .store import write_run

__all__ = ["compare", "run_dir_names", "variant_source"]

Source = ExperimentConfig | str | os.PathLike[str] | Mapping[str, Any]


NOTES = "__notes__"  # a row's notes travel beside its summary until the table is built


def variant_source(cfg: Source) -> str | os.PathLike[str] | Mapping[str, Any]:
    """What ``load_config`` re-reads for each variant: a file path or mapping as given, or, for an
    already validated config, only the fields the user set (``exclude_unset``), so defaults stay
    defaults and presets keep applying."""
    if isinstance(cfg, ExperimentConfig):
        return cfg.model_dump(mode="python", exclude_unset=True)
    return cfg


def run_dir_names(values: Sequence[Any]) -> list[str]:
    """One safe, distinct folder name per compared value (``a/b`` -> ``a_b``, repeats get ``-2``)."""
    used = {"compare.csv", MARKER}
    out = []
    for v in values:
        base = safe_filename(v, default="value")
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        out.append(name)
    return out


def _load_variant(source: Any, overrides: Mapping[str, Any], factor: str, value: Any) -> ExperimentConfig:
    try:
        cfg = load_config(source, overrides={**overrides, factor: value})
        if cfg.training is not None:
            training_policies(cfg.policy.training)  # a bad scheduler or stage name fails before any run
        return cfg
    except ClusterSimError as exc:
        msg = str(exc).removeprefix("<config>: ")
        raise type(exc)(f"--factor {factor}={value}: {msg}") from None


def compare(cfg: Source, factor: str, values: Sequence[Any], *,
            overrides: Mapping[str, Any] | None = None,
            out_dir: str | os.PathLike[str] | None = None,
            progress: Callable[[float, float], None] | None = None) -> pd.DataFrame:
    """Run ``cfg`` once per value of the dotted ``factor``; one row per value, headline metrics first.

    Each row's summary equals ``simulate(load_config(file, overrides={**overrides, factor: value}))``,
    i.e. ``cluster-sim run FILE --set FACTOR=VALUE``, wall-clock keys aside.

    Parameters
    ----------
    cfg : ExperimentConfig, path or mapping
        The experiment; a path or mapping is re-read per variant exactly as ``run --set`` reads it.
    factor : str
        Dotted config path, e.g. ``policy.training.scheduler``.
    values : sequence
        Values of the factor (strings are parsed as ``--set`` values are).
    overrides : mapping, optional
        Further ``--set`` overrides applied to every variant (before the factor).
    out_dir : path, optional
        Write each run to ``out_dir/<value>/`` (names made safe by
        :func:`~cluster_sim.report.files.safe_filename`) and the table to ``out_dir/compare.csv``,
        all at once when every run is done (see :mod:`~cluster_sim.experiment.outdir`).

    >>> compare(cfg, "policy.training.placement", ["packed", "topology_aware"])  # doctest: +SKIP
    """
    if not values:
        raise ConfigError(f"--factor {factor}: give at least one value")
    if out_dir is not None:
        check_out_dir(out_dir)  # before hours of simulation, not after
    source = variant_source(cfg)
    runs = [_load_variant(source, overrides or {}, factor, v) for v in values]  # all validated before any run
    names = run_dir_names(values)
    if out_dir is None:
        return _table(factor, [_row(i, factor, v, c, None, progress, len(values))
                               for i, (v, c) in enumerate(zip(values, runs, strict=True))])
    with staged_dir(out_dir, "compare") as tmp:
        rows = [_row(i, factor, v, c, tmp / names[i], progress, len(values))
                for i, (v, c) in enumerate(zip(values, runs, strict=True))]
        df = _table(factor, rows)
        df.to_csv(tmp / "compare.csv", index=False)
    return df


def _row(i: int, factor: str, value: Any, run_cfg: ExperimentConfig, folder: Path | None,
         progress: Callable[[float, float], None] | None, total: int) -> dict[str, Any]:
    if progress is not None:
        progress(i, total)
    res = simulate(run_cfg)
    if folder is not None:
        write_run(res, folder)
    if progress is not None and i == total - 1:
        progress(total, total)
    return {factor: value, **res.summary, NOTES: list(res.notes)}


def _table(factor: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Numeric summary columns, headline keys first; each variant's notes in ``df.attrs["notes"]``
    (``{value: [note, ...]}``), so a warning of one run is not lost in the table."""
    notes = {str(r[factor]): r.pop(NOTES) for r in rows}
    df = pd.DataFrame(rows)
    numeric = [c for c in df.columns if c != factor and pd.api.types.is_numeric_dtype(df[c])]
    order = [k for k in HEADLINE_KEYS if k in numeric] + [c for c in numeric if c not in HEADLINE_KEYS]
    out = df[[factor, *order]]
    out.attrs["notes"] = notes
    return out
