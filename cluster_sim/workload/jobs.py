"""Training jobs: one explicit job (:class:`TrainingJob`) and the columnar table the engine runs on.

A :class:`JobTable` holds one row per job in numpy columns (a million jobs take 74 MB and
build in well under a second). Card types are a per-table vocabulary ``card_types``; a job's
allowed types are a ``uint64`` bitmask over it (bit ``k`` = ``card_types[k]``), with all ones
(:data:`ANY_TYPE`) meaning "any type". Fractional GPU sharing (Alibaba openb ``gpu_milli``) is
``num_cards == 1`` with ``card_milli < 1000``.

>>> t = JobTable(job_id=[0, 1], submit_s=[5.0, 0.0], num_cards=[8, 1], duration_s=[3600.0, 60.0],
...              card_milli=[1000, 250], card_types=("t4", "a10"), type_mask=[ANY_TYPE, 0b10])
>>> len(t), t.sorted().job_id.tolist(), t.allowed_types(1)
(2, [1, 0], ('a10',))
>>> t.card_demand.tolist()
[8.0, 0.25]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .parallelism import ParallelPlan

__all__ = [
    "ANY_TYPE",
    "COLUMNS",
    "KIND_FINETUNE",
    "KIND_MID",
    "KIND_NAMES",
    "KIND_OFFLINE",
    "KIND_PRETRAIN",
    "KIND_TRACE",
    "MAX_CARD_TYPES",
    "JobTable",
    "TrainingJob",
]

KIND_FINETUNE, KIND_PRETRAIN, KIND_TRACE, KIND_MID, KIND_OFFLINE = 0, 1, 2, 3, 4
KIND_NAMES = ("finetune", "pretrain", "trace", "mid", "offline_inference")
"""``kind`` codes: 0 fine-tune / small (<= 8 cards), 1 pretrain / large, 2 trace pod, 3 mid-size,
4 offline (batch) inference (``training.offline_jobs``; run time from the serving perf model)."""
ANY_TYPE = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
MAX_CARD_TYPES = 64

# name -> (dtype, default for a missing column or None if required)
_SPEC: dict[str, tuple[type, Any]] = {
    "job_id": (np.int64, None),
    "submit_s": (np.float64, None),
    "num_cards": (np.int32, None),
    "card_milli": (np.int16, 1000),
    "type_mask": (np.uint64, ANY_TYPE),
    "duration_s": (np.float64, None),
    "model_idx": (np.int16, -1),
    "tenant": (np.int16, 0),
    "priority": (np.int8, 0),
    "preemptible": (np.bool_, False),
    "kind": (np.int8, KIND_FINETUNE),
    "spec_idx": (np.int32, -1),
    "cpu_milli": (np.int32, 0),
    "memory_mib": (np.int32, 0),
    "release_s": (np.float64, None),  # None here: defaults to submit_s (see __post_init__)
    "deadline_s": (np.float64, np.inf),
    "deferrable": (np.bool_, False),
}
COLUMNS = tuple(_SPEC)
"""The numpy columns of a :class:`JobTable`, in order (``name`` is an optional extra)."""


@dataclass(frozen=True)
class TrainingJob:
    """One explicit training job, as written in an experiment file.

    Parameters
    ----------
    name : str
        Job name (unique within an experiment).
    model : str or None
        Model name (``workload/data/models.toml``), or None for an opaque job.
    cards : int
        Whole cards wanted.
    card_type : str or None
        The card type wanted; None = any (or see ``allowed_types``).
    allowed_types : tuple of str
        Card types the job may run on; empty = ``(card_type,)`` if given, else any type.
    parallel : ParallelPlan or None
        Parallel plan; when given it must use exactly ``cards`` cards.
    seq_len : int
        Sequence length in tokens.
    global_batch_tokens : float or None
        Tokens per optimizer step.
    tokens : float or None
        Tokens to train on. A job needs ``tokens`` or ``duration_s``.
    duration_s : float or None
        Isolated run time in seconds on the requested cards at reference speed.
    submit_s : float
        Submission time in seconds from the start of the run.
    tenant : str
        Tenant (team) name.
    priority : int
        Larger is more important (-128..127).
    preemptible : bool
        Whether a scheduler may preempt the job.
    checkpoint_interval_s : float or None
        Seconds between checkpoints (None = never checkpoints).
    card_milli : int
        Thousandths of a card per card (1000 = whole cards; < 1000 only with ``cards == 1``).
    kind : str or None
        One of :data:`KIND_NAMES`; None picks from the size: > 128 cards ``pretrain``,
        > 8 ``mid``, else ``finetune``.
    deferrable : bool
        Whether an off-peak policy may hold the job until cheap electricity hours.
    deadline_s : float or None
        Seconds after ``submit_s`` by which the job should finish (None = no deadline).
    """

    name: str
    model: str | None = None
    cards: int = 1
    card_type: str | None = None
    allowed_types: tuple[str, ...] = ()
    parallel: ParallelPlan | None = None
    seq_len: int = 4096
    global_batch_tokens: float | None = None
    tokens: float | None = None
    duration_s: float | None = None
    submit_s: float = 0.0
    tenant: str = "default"
    priority: int = 0
    preemptible: bool = False
    checkpoint_interval_s: float | None = None
    card_milli: int = 1000
    kind: str | None = None
    deferrable: bool = False
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        where = f"job {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"job name must be a non-empty string, got {self.name!r}")
        if isinstance(self.cards, bool) or not isinstance(self.cards, int) or self.cards < 1:
            raise ConfigError(f"{where}: cards: must be a positive integer, got {self.cards!r}")
        if not 0 < self.card_milli <= 1000 or (self.card_milli < 1000 and self.cards != 1):
            raise ConfigError(f"{where}: card_milli: must be in 1..1000 (fractions only with 1 card), "
                              f"got {self.card_milli!r}")
        object.__setattr__(self, "allowed_types", tuple(self.allowed_types))
        if self.card_type and self.allowed_types and self.card_type not in self.allowed_types:
            raise ConfigError(f"{where}: card_type {self.card_type!r} is not in allowed_types "
                              f"{list(self.allowed_types)}")
        if self.parallel is not None:
            self.parallel.check_cards(self.cards, where=f"{where}: parallel")
        if self.tokens is None and self.duration_s is None:
            raise ConfigError(f"{where}: needs tokens or duration_s")
        for attr in ("tokens", "duration_s", "checkpoint_interval_s", "global_batch_tokens", "deadline_s"):
            v = getattr(self, attr)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ConfigError(f"{where}: {attr}: must be a positive number, got {v!r}")
        if not np.isfinite(self.submit_s) or self.submit_s < 0:
            raise ConfigError(f"{where}: submit_s: must be >= 0, got {self.submit_s!r}")
        if not -128 <= self.priority <= 127:
            raise ConfigError(f"{where}: priority: must be in -128..127, got {self.priority!r}")
        if self.kind is None:
            kind = "pretrain" if self.cards > 128 else "mid" if self.cards > 8 else "finetune"
            object.__setattr__(self, "kind", kind)
        elif self.kind not in KIND_NAMES:
            raise ConfigError(f"{where}: kind: must be one of {', '.join(KIND_NAMES)}, got {self.kind!r}")

    def types(self) -> tuple[str, ...]:
        """Allowed card types; empty means any type."""
        if self.allowed_types:
            return self.allowed_types
        return (self.card_type,) if self.card_type else ()


def _bad(col: str, i: int, msg: str) -> ConfigError:
    return ConfigError(f"job table: column {col}: row {i}: {msg}")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _unique_names(what: str, names: Iterable[str]) -> tuple[str, ...]:
    out = tuple(str(x) for x in names)
    if len(set(out)) != len(out):
        dup = sorted({x for x in out if out.count(x) > 1})
        raise ConfigError(f"job table: {what}: duplicate name(s) {', '.join(dup)}")
    return out


@dataclass(frozen=True, eq=False)
class JobTable:
    """Training jobs as numpy columns (read-only arrays, one row per job).

    Columns: ``job_id`` int64 (unique), ``submit_s`` float64 (>= 0), ``num_cards`` int32 (>= 1,
    whole cards; 1 for a sharing pod), ``card_milli`` int16 (thousandths of a card per card,
    1..1000; < 1000 only with one card), ``type_mask`` uint64 (bits over ``card_types``;
    :data:`ANY_TYPE` = any), ``duration_s`` float64 (isolated run time at reference speed on the
    requested cards, > 0), ``model_idx`` int16 (into ``models``, -1 = none), ``tenant`` int16 (into
    ``tenants``), ``priority`` int8, ``preemptible`` bool, ``kind`` int8 (:data:`KIND_NAMES`),
    ``spec_idx`` int32 (into ``specs``, the :class:`TrainingJob` a row came from, -1 = none),
    ``cpu_milli`` int32 and ``memory_mib`` int32 (host CPU in thousandths of a core and host memory
    in MiB the job asks for in total, split over its nodes in proportion to its cards; 0 = no
    request, >= 0), ``release_s`` float64 (earliest start, >= ``submit_s``; default ``submit_s``:
    a later one is an off-peak hold), ``deadline_s`` float64 (seconds after submit by which the
    job should finish, > 0; ``inf`` = none), ``deferrable`` bool (an off-peak policy may move its
    release) and an optional ``name`` (object array of str, or None). Columns other than ``job_id``, ``submit_s``,
    ``num_cards`` and ``duration_s`` default to their "nothing special" value; scalars broadcast.
    Invalid input raises :class:`~cluster_sim.errors.ConfigError` naming the column and first bad row.
    """

    job_id: Any = field(repr=False)
    submit_s: Any = field(repr=False)
    num_cards: Any = field(repr=False)
    duration_s: Any = field(repr=False)
    card_milli: Any = field(default=None, repr=False)
    type_mask: Any = field(default=None, repr=False)
    model_idx: Any = field(default=None, repr=False)
    tenant: Any = field(default=None, repr=False)
    priority: Any = field(default=None, repr=False)
    preemptible: Any = field(default=None, repr=False)
    kind: Any = field(default=None, repr=False)
    spec_idx: Any = field(default=None, repr=False)
    cpu_milli: Any = field(default=None, repr=False)
    memory_mib: Any = field(default=None, repr=False)
    release_s: Any = field(default=None, repr=False)
    deadline_s: Any = field(default=None, repr=False)
    deferrable: Any = field(default=None, repr=False)
    name: Any = field(default=None, repr=False)
    card_types: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ("default",)
    specs: tuple[TrainingJob, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        ids = np.asarray(self.job_id)
        n = int(ids.size) if ids.ndim else 1
        if self.release_s is None:
            s(self, "release_s", self.submit_s)
        for col, (dtype, default) in _SPEC.items():
            s(self, col, self._column(col, getattr(self, col), dtype, default, n))
        if self.name is not None:
            s(self, "name", self._column("name", self.name, object, None, n))
        s(self, "card_types", _unique_names("card_types", self.card_types))
        s(self, "models", _unique_names("models", self.models))
        s(self, "tenants", _unique_names("tenants", self.tenants))
        s(self, "specs", tuple(self.specs))
        self._validate(n)
        for col in (*COLUMNS, "name"):
            arr = getattr(self, col)
            if arr is not None:
                arr.flags.writeable = False

    @staticmethod
    def _column(col: str, value: Any, dtype: type, default: Any, n: int) -> np.ndarray:
        if value is None:
            if default is None:
                raise ConfigError(f"job table: column {col} is required")
            value = default
        if dtype is np.uint64 and not isinstance(value, np.ndarray):
            try:  # a list mixing np.uint64 and int would otherwise become float64
                value = np.array(value, dtype=np.uint64)
            except (OverflowError, TypeError, ValueError) as exc:
                raise ConfigError(f"job table: column {col}: expected unsigned 64-bit masks ({exc})") from None
        arr = np.asarray(value)
        if arr.ndim == 0:
            arr = np.full(n, arr)
        if arr.ndim != 1 or arr.size != n:
            raise ConfigError(f"job table: column {col} has shape {arr.shape}, expected ({n},) "
                              "(the length of job_id)")
        if dtype is object:
            return arr.astype(object)
        if arr.dtype.kind in "OUS" or (arr.dtype.kind == "b" and dtype is not np.bool_):
            raise ConfigError(f"job table: column {col}: expected numbers, got dtype {arr.dtype}")
        if arr.dtype.kind == "f":
            bad = np.isnan(arr) | (arr == -np.inf) if col == "deadline_s" else ~np.isfinite(arr)
            if bad.any():
                raise _bad(col, _first(bad), f"not a finite number ({arr[_first(bad)].item()!r})")
            if np.dtype(dtype).kind in "iub":
                frac = arr != np.round(arr)
                if frac.any():
                    raise _bad(col, _first(frac), f"not an integer ({arr[_first(frac)].item()!r})")
        if np.dtype(dtype).kind in "iu" and arr.size:
            info = np.iinfo(dtype)
            out = arr > info.max if arr.dtype.kind == "u" else (arr < info.min) | (arr > info.max)
            if out.any():
                raise _bad(col, _first(out), f"{arr[_first(out)].item()!r} out of range for {np.dtype(dtype)}")
        return np.array(arr, dtype=dtype, copy=True)

    def _validate(self, n: int) -> None:
        if len(self.card_types) > MAX_CARD_TYPES:
            raise ConfigError(f"job table: card_types: at most {MAX_CARD_TYPES} types, got {len(self.card_types)}")
        if not self.tenants:
            raise ConfigError("job table: tenants: at least one tenant name is required")
        if n > 1 and not (self.job_id[1:] > self.job_id[:-1]).all():  # fast path: increasing ids
            order = np.argsort(self.job_id, kind="stable")
            dups = np.flatnonzero(np.diff(self.job_id[order]) == 0)
            if dups.size:
                i = int(order[dups + 1].min())
                raise _bad("job_id", i, f"duplicate job_id {int(self.job_id[i])}")
        checks = [
            ("submit_s", self.submit_s < 0, "must be >= 0"),
            ("num_cards", self.num_cards < 1, "must be >= 1"),
            ("card_milli", (self.card_milli < 1) | (self.card_milli > 1000), "must be in 1..1000"),
            ("card_milli", (self.card_milli < 1000) & (self.num_cards != 1),
             "a fractional card share needs num_cards == 1"),
            ("duration_s", self.duration_s <= 0, "must be > 0"),
            ("model_idx", (self.model_idx < -1) | (self.model_idx >= len(self.models)),
             f"must be -1 or an index into models ({len(self.models)} names)"),
            ("tenant", (self.tenant < 0) | (self.tenant >= len(self.tenants)),
             f"must index tenants ({len(self.tenants)} names)"),
            ("kind", (self.kind < 0) | (self.kind >= len(KIND_NAMES)), f"must be 0..{len(KIND_NAMES) - 1}"),
            ("cpu_milli", self.cpu_milli < 0, "must be >= 0"),
            ("memory_mib", self.memory_mib < 0, "must be >= 0"),
            ("release_s", self.release_s < self.submit_s, "must be >= submit_s"),
            ("deadline_s", self.deadline_s <= 0, "must be > 0 (inf = no deadline)"),
            ("spec_idx", (self.spec_idx < -1) | (self.spec_idx >= len(self.specs)),
             f"must be -1 or an index into specs ({len(self.specs)})"),
        ]
        valid_bits = np.uint64((1 << len(self.card_types)) - 1) if self.card_types else np.uint64(0)
        stray = (self.type_mask != ANY_TYPE) & ((self.type_mask & ~valid_bits) != 0)
        checks.append(("type_mask", self.type_mask == 0, "empty mask (no allowed card type)"))
        checks.append(("type_mask", stray, f"bits beyond the {len(self.card_types)} card_types"))
        for col, bad, msg in checks:
            if bad.any():
                i = _first(bad)
                raise _bad(col, i, f"{msg}, got {getattr(self, col)[i].item()!r}")

    # ---- basics ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.job_id.size)

    def __repr__(self) -> str:
        return (f"JobTable({len(self)} jobs, card_types={list(self.card_types)}, "
                f"models={len(self.models)}, tenants={len(self.tenants)})")

    @property
    def nbytes(self) -> int:
        """Bytes held by the numpy columns (excluding names and specs)."""
        return sum(getattr(self, c).nbytes for c in COLUMNS)

    def _columns(self) -> dict[str, np.ndarray]:
        return {c: getattr(self, c) for c in (*COLUMNS, "name") if getattr(self, c) is not None}

    def replace(self, **changes: Any) -> JobTable:
        """A new table with some columns or vocabularies replaced (validated again); a new
        ``submit_s`` without a new ``release_s`` keeps each job's hold ``release_s - submit_s``."""
        if "submit_s" in changes and "release_s" not in changes:
            changes["release_s"] = np.asarray(changes["submit_s"]) + (self.release_s - self.submit_s)
        return dataclasses.replace(self, **changes)

    def take(self, idx: Sequence[int] | np.ndarray) -> JobTable:
        """The rows at ``idx`` (integer indices or a boolean mask), in that order."""
        idx = np.asarray(idx)
        return dataclasses.replace(self, **{c: a[idx] for c, a in self._columns().items()})

    def sorted(self) -> JobTable:
        """Rows ordered by ``(submit_s, job_id)``: the order in which jobs arrive."""
        return self.take(np.lexsort((self.job_id, self.submit_s)))

    # ---- derived quantities ----------------------------------------------------------------
    @property
    def card_demand(self) -> np.ndarray:
        """Cards occupied per job (float64): ``num_cards * card_milli / 1000``."""
        return self.num_cards * (self.card_milli / 1000.0)

    @property
    def card_seconds(self) -> np.ndarray:
        """Card-seconds per job at reference speed (float64): ``card_demand * duration_s``."""
        return self.card_demand * self.duration_s

    def mask_of(self, types: Iterable[str]) -> np.uint64:
        """Bitmask of card type names over this table's ``card_types`` (empty -> :data:`ANY_TYPE`)."""
        types = list(types)
        if not types:
            return ANY_TYPE
        unknown = [t for t in types if t not in self.card_types]
        if unknown:
            raise ConfigError(f"job table: unknown card type(s) {', '.join(unknown)}; "
                              f"known: {', '.join(self.card_types) or '(none)'}")
        return np.uint64(sum(1 << self.card_types.index(t) for t in set(types)))

    def allowed_types(self, row: int) -> tuple[str, ...]:
        """Card types row ``row`` may run on; empty means any type."""
        m = int(self.type_mask[row])
        if m == int(ANY_TYPE):
            return ()
        return tuple(t for k, t in enumerate(self.card_types) if m >> k & 1)

    def allows(self, card_type: str) -> np.ndarray:
        """Boolean per job: may it run on ``card_type``? (Unknown types allow only ANY jobs.)"""
        if card_type not in self.card_types:
            return self.type_mask == ANY_TYPE
        bit = np.uint64(1 << self.card_types.index(card_type))
        return (self.type_mask & bit) != 0

    def with_card_types(self, card_types: Sequence[str]) -> JobTable:
        """The same jobs with masks re-expressed over another vocabulary (e.g. the cluster's types).

        Bits for types missing from ``card_types`` are dropped; a job left with no allowed type
        raises :class:`ConfigError` naming it.
        """
        card_types = _unique_names("card_types", card_types)
        if card_types == self.card_types:
            return self
        new = np.zeros(len(self), dtype=np.uint64)
        for k, t in enumerate(self.card_types):
            if t in card_types:
                bit_old, bit_new = np.uint64(1 << k), np.uint64(1 << card_types.index(t))
                new[(self.type_mask & bit_old) != 0] |= bit_new
        anyt = self.type_mask == ANY_TYPE
        new[anyt] = ANY_TYPE
        empty = new == 0
        if empty.any():
            i = _first(empty)
            raise _bad("type_mask", i, f"job {int(self.job_id[i])} allows only {list(self.allowed_types(i))}, "
                       f"none of which is in {list(card_types)}")
        return dataclasses.replace(self, type_mask=new, card_types=card_types)

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def empty(cls, card_types: Sequence[str] = ()) -> JobTable:
        """A table with no jobs."""
        return cls(job_id=np.zeros(0, np.int64), submit_s=np.zeros(0), num_cards=np.zeros(0, np.int32),
                   duration_s=np.zeros(0), card_types=tuple(card_types))

    @classmethod
    def from_jobs(cls, jobs: Sequence[TrainingJob], *, card_types: Sequence[str] | None = None,
                  duration_fn: Callable[[TrainingJob], float] | None = None, first_id: int = 0) -> JobTable:
        """Build a table from explicit jobs (row ``i`` gets ``job_id = first_id + i``).

        Parameters
        ----------
        jobs : sequence of TrainingJob
        card_types : sequence of str, optional
            Type vocabulary; default = the types the jobs name, in first-seen order.
        duration_fn : callable, optional
            ``job -> isolated run time in seconds``, used for jobs given by ``tokens`` only
            (the engine passes one built from the perf model).
        first_id : int
        """
        jobs = list(jobs)
        if card_types is None:
            card_types = list(dict.fromkeys(t for j in jobs for t in j.types()))
        models = tuple(dict.fromkeys(j.model for j in jobs if j.model))
        tenants = tuple(dict.fromkeys(j.tenant for j in jobs)) or ("default",)
        durations = []
        for j in jobs:
            if j.duration_s is not None:
                durations.append(float(j.duration_s))
            elif duration_fn is not None:
                durations.append(float(duration_fn(j)))
            else:
                raise ConfigError(f"job {j.name!r}: has tokens but no duration_s, and no duration_fn "
                                  "(a perf model) was given to turn tokens into a run time")
        table = cls.empty(card_types)
        if not jobs:
            return table
        masks = [table.mask_of(j.types()) for j in jobs]
        return cls(
            job_id=np.arange(first_id, first_id + len(jobs), dtype=np.int64),
            submit_s=[j.submit_s for j in jobs], num_cards=[j.cards for j in jobs],
            duration_s=np.array(durations, dtype=np.float64), card_milli=[j.card_milli for j in jobs],
            type_mask=np.array(masks, dtype=np.uint64),
            model_idx=[models.index(j.model) if j.model else -1 for j in jobs],
            tenant=[tenants.index(j.tenant) for j in jobs], priority=[j.priority for j in jobs],
            preemptible=np.array([j.preemptible for j in jobs], dtype=bool),
            kind=[KIND_NAMES.index(j.kind or "finetune") for j in jobs],
            deferrable=np.array([j.deferrable for j in jobs], dtype=bool),
            deadline_s=[np.inf if j.deadline_s is None else j.deadline_s for j in jobs],
            spec_idx=np.arange(len(jobs)), name=np.array([j.name for j in jobs], dtype=object),
            card_types=tuple(card_types), models=models, tenants=tenants, specs=tuple(jobs),
        )

    @classmethod
    def concat(cls, tables: Sequence[JobTable], *, renumber: bool = False) -> JobTable:
        """Stack tables, merging their vocabularies (card types, models, tenants, specs).

        With ``renumber=True`` job ids become ``0..n-1`` in the stacked order; otherwise they must
        already be unique across tables.
        """
        tables = list(tables)
        if not tables:
            return cls.empty()
        card_types = tuple(dict.fromkeys(t for tab in tables for t in tab.card_types))
        models = tuple(dict.fromkeys(m for tab in tables for m in tab.models))
        tenants = tuple(dict.fromkeys(t for tab in tables for t in tab.tenants))
        parts: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
        names: list[np.ndarray] = []
        specs: list[TrainingJob] = []
        for tab in tables:
            tab = tab.with_card_types(card_types)
            for c in COLUMNS:
                parts[c].append(getattr(tab, c))
            mmap = np.array([models.index(m) for m in tab.models] + [-1], dtype=np.int16)
            parts["model_idx"][-1] = mmap[tab.model_idx]  # -1 indexes the trailing -1
            parts["tenant"][-1] = np.array([tenants.index(t) for t in tab.tenants], np.int16)[tab.tenant]
            parts["spec_idx"][-1] = np.where(tab.spec_idx >= 0, tab.spec_idx + len(specs), -1)
            specs.extend(tab.specs)
            names.append(tab.name if tab.name is not None else np.full(len(tab), None, dtype=object))
        cols = {c: np.concatenate(v) for c, v in parts.items()}
        if renumber:
            cols["job_id"] = np.arange(cols["job_id"].size, dtype=np.int64)
        any_names = any(t.name is not None for t in tables)
        return cls(**cols, name=np.concatenate(names) if any_names else None, card_types=card_types,
                   models=models, tenants=tenants, specs=tuple(specs))

    # ---- output ------------------------------------------------------------------------------
    def to_frame(self) -> Any:
        """A :class:`pandas.DataFrame`: the columns plus decoded ``model``, ``tenant_name``,
        ``kind_name`` and ``allowed_types`` (``|``-joined, empty = any)."""
        import pandas as pd

        df = pd.DataFrame({c: getattr(self, c) for c in COLUMNS})
        if self.name is not None:
            df.insert(1, "name", self.name)
        df["model"] = np.array([*self.models, None], dtype=object)[self.model_idx]
        df["tenant_name"] = np.array(self.tenants, dtype=object)[self.tenant]
        df["kind_name"] = np.array(KIND_NAMES, dtype=object)[self.kind]
        uniq, inv = np.unique(self.type_mask, return_inverse=True)
        labels = []
        for m in uniq:
            m = int(m)
            labels.append("" if m == int(ANY_TYPE) else
                          "|".join(t for k, t in enumerate(self.card_types) if m >> k & 1))
        df["allowed_types"] = np.array(labels, dtype=object)[inv] if len(self) else []
        return df
