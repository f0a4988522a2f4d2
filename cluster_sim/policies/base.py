"""The one base of every policy, the read-only array helper, and the training interface.

**Every policy of every family** (training stages, serving, pool) derives from :class:`Policy`:
class attributes ``name`` (its registry key) and ``family``; parameters declared as the keyword
arguments of ``__init__``, each with a default; ``get_params()``; a scikit-learn style ``repr``
showing only the parameters that differ from their defaults (``Packed()``,
``LeastLoaded(metric='kv')``); equality by (class, parameters). ``registry.make(family, ref)``
builds any of them from a name or ``{name, params}`` the same way.

The training scheduling cycle is ``admit -> order -> place -> preempt`` (DESIGN.md 3). Each
stage is a small class with ONE decision method (a :class:`typing.Protocol` below). The engine
hands it a read-only view (numpy arrays with ``writeable=False`` that track the live state, or
frozen dataclasses) and gets back a frozen decision that it validates before applying it: a
placement that over-allocates raises :class:`~cluster_sim.errors.PlacementError` naming the policy.

Card types in views are indices into ``ClusterView.card_types``; a job's ``type_mask`` is a
Python int whose bit ``t`` allows card type ``t`` of the *cluster* (the engine translates the job
table's own vocabulary once, at load).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Admission",
    "AdmissionPolicy",
    "ClusterView",
    "JobView",
    "JobsView",
    "OrderKeys",
    "OrderingPolicy",
    "Params",
    "Placement",
    "PlacementPolicy",
    "Policy",
    "Preemption",
    "PreemptionPolicy",
    "RunningView",
    "TenantUsage",
    "readonly",
]


def readonly(a: Any, dtype: Any = None) -> np.ndarray:
    """A non-writeable view of ``a`` (the data stays shared, so the view follows later changes)."""
    arr = np.asarray(a, dtype=dtype)
    v = arr.view()
    v.flags.writeable = False
    return v


_RESERVED = frozenset({"name", "family", "param_defaults"})
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _declared_params(cls: type) -> dict[str, Any]:
    """``cls.__init__``'s parameters (after ``self``) and their defaults, in signature order.

    Raises
    ------
    TypeError
        At class definition, for ``*args`` / ``**kwargs``, a positional-only parameter, one
        without a default, or a name that is reserved (``name``, ``family``) or private.
    """
    init = cls.__init__  # type: ignore[misc]
    if init is object.__init__:
        return {}
    out: dict[str, Any] = {}
    for k, p in list(inspect.signature(init).parameters.items())[1:]:
        where = f"{cls.__qualname__}.__init__ parameter {k!r}"
        if p.kind not in _NAMED:
            raise TypeError(f"{where}: policy parameters are named (no *args, **kwargs or positional-only)")
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{where}: every policy parameter needs a default")
        if k in _RESERVED or k.startswith("_"):
            raise TypeError(f"{where}: the name is reserved")
        out[k] = p.default
    return out


def _equal(a: Any, b: Any) -> bool:
    """Parameter values equal (numpy arrays element-wise, NaN equal to NaN)."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)


class Policy:
    """Base of every policy of every family: declared parameters, ``repr``, equality.

    A subclass declares its parameters as the keyword arguments of ``__init__``, each with a
    default, and stores each under an attribute of the same name (it may also derive private
    ``_`` attributes from them). A policy is stateless: a decision never changes its attributes,
    so one instance gives the same decisions in every run (no engine calls a ``reset()``; state
    a policy needs across calls comes in its view, e.g. ``RoutingView.sequence``).

    Class attributes
    ----------------
    name : str
        Registry key (``registry.make(family, name)``); defaults to the class name (or to a
        legacy ``registry_name`` class attribute).
    family : str
        Registry family (``placement``, ``routing``, ...); empty for an unregistered policy.
    param_defaults : mapping of str to object
        The declared parameters and their defaults (read-only, built from ``__init__``).

    Examples
    --------
    >>> class Demo(Policy):
    ...     name, family = "demo", "pool"
    ...     def __init__(self, *, share: float = 0.5, cap: int | None = None) -> None:
    ...         self.share, self.cap = share, cap
    >>> Demo(), Demo(share=0.25)
    (Demo(), Demo(share=0.25))
    >>> Demo(share=0.25).get_params(), Demo() == Demo(share=0.5)
    ({'share': 0.25, 'cap': None}, True)
    """

    name: ClassVar[str] = "Policy"
    family: ClassVar[str] = ""
    param_defaults: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = str(cls.__dict__.get("registry_name", cls.__name__))
        cls.param_defaults = MappingProxyType(_declared_params(cls))

    def get_params(self) -> dict[str, Any]:
        """The declared parameters and their current values (signature order)."""
        return {k: getattr(self, k) for k in type(self).param_defaults}

    def __repr__(self) -> str:
        defaults = type(self).param_defaults
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if repr(v) != repr(defaults[k]))
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self.get_params(), other.get_params()  # type: ignore[attr-defined]
        return all(_equal(v, theirs[k]) for k, v in mine.items())

    def __hash__(self) -> int:
        return hash(type(self))


Params = Policy
"""Former name of :class:`Policy` (a mixin with ``registry_name``), kept for existing subclasses."""


# ---- views -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobView:
    """One job as a policy sees it (engine row ``idx``; times in seconds).

    ``duration_s`` is the isolated run time at reference speed (the scheduler's estimate);
    ``attained_s`` the wall-clock seconds it has run so far; ``single_node`` jobs (trace pods)
    must be placed on one node.
    """

    idx: int
    job_id: int
    num_cards: int
    card_milli: int
    type_mask: int
    kind: int
    tenant: int
    priority: int
    preemptible: bool
    submit_s: float
    duration_s: float
    attained_s: float = 0.0
    single_node: bool = False
    cpu_milli: int = 0
    memory_mib: int = 0

    @property
    def host(self) -> bool:
        """True when the job asks for host CPU (``cpu_milli``, thousandths of a core) or memory
        (``memory_mib``, MiB), split over its nodes in proportion to its cards."""
        return self.cpu_milli > 0 or self.memory_mib > 0

    @property
    def whole(self) -> bool:
        """True when the job wants whole cards (``card_milli == 1000``)."""
        return self.card_milli >= 1000

    @property
    def demand_cards(self) -> float:
        """Cards asked for, fractional shares counted as fractions."""
        return self.num_cards * self.card_milli / 1000.0


@dataclass(frozen=True, eq=False)
class JobsView:
    """A batch of jobs as read-only columns (for ordering keys). Row order = engine order."""

    idx: np.ndarray
    submit_s: np.ndarray
    duration_s: np.ndarray
    num_cards: np.ndarray
    card_milli: np.ndarray
    priority: np.ndarray
    tenant: np.ndarray
    attained_s: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return int(self.idx.size)


@dataclass(frozen=True, eq=False)
class TenantUsage:
    """Cards held (running) and asked for (queued) per tenant, and tenant names."""

    tenants: tuple[str, ...]
    running_cards: np.ndarray
    queued_cards: np.ndarray


@dataclass(frozen=True, eq=False)
class RunningView:
    """Running jobs (one row each, sorted by engine row): what a preemption policy may evict."""

    idx: np.ndarray
    priority: np.ndarray
    preemptible: np.ndarray
    start_s: np.ndarray
    card_milli: np.ndarray
    cards: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return int(self.idx.size)


class ClusterView:
    """Read-only view of the cluster's live state (cards, nodes, domains, leaves, types).

    Every array attribute is a non-writeable numpy view; the ones marked *live* change as the
    engine allocates and releases cards. ``node_cards`` is ``(n_nodes, max_cards_per_node)``,
    padded with ``n_cards`` (a sentinel whose free capacity, ``card_free_ext[n_cards]``, is 0).

    Attributes (per card): ``card_type``, ``card_node``, ``card_domain``, ``card_leaf``,
    ``card_dc``, ``card_free_milli`` (live, 0..1000), ``card_free_ext`` (live, with sentinel),
    ``card_down`` (live, failed cards). Per node: ``node_type``, ``node_size``, ``node_domain``,
    ``node_leaf``, ``node_cards``, ``node_free_whole`` (live: cards with 1000 milli free),
    ``node_free_milli`` (live). Per domain/leaf: ``domain_size``, ``domain_free_whole`` (live),
    ``leaf_size``, ``leaf_free_whole`` (live). Per type: ``type_capacity``, ``type_free_whole``
    (live), ``type_free_milli`` (live), ``type_nodes`` / ``type_cards`` (tuples of id arrays),
    ``type_node_size`` (largest node), ``level_count`` (live ``(types, max+1)``: nodes of each type
    with exactly ``f`` whole free cards), ``type_max_free`` (live: most whole free cards on one node
    of each type); ``first_node(type, f)`` is the lowest node id in a level (-1 if empty).
    ``throughput`` is the ``(kinds, types)`` matrix of
    relative job throughput (Gavel-like). ``recent_*`` hold the latest request sizes (live ring
    buffer of ``recent_len[0]`` valid rows) for fragmentation-aware placement.
    Host resources: ``has_host`` (the layout models them), ``node_cpu_free`` (live, thousandths of a
    core) and ``node_mem_free`` (live, MiB) per node (``1 << 62`` = unlimited), and the recent
    requests' ``recent_cpu_milli`` / ``recent_memory_mib``.
    """

    def __init__(self, **arrays: Any) -> None:
        for k, v in arrays.items():
            object.__setattr__(self, k, readonly(v) if isinstance(v, np.ndarray) else v)
        object.__setattr__(self, "_memo", {})

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("ClusterView is read-only")

    # attributes are set dynamically; declare the common ones for type checkers
    card_types: tuple[str, ...]
    n_cards: int
    n_nodes: int
    card_type: np.ndarray
    card_node: np.ndarray
    card_domain: np.ndarray
    card_leaf: np.ndarray
    card_dc: np.ndarray
    card_free_milli: np.ndarray
    card_free_ext: np.ndarray
    card_down: np.ndarray
    node_type: np.ndarray
    node_size: np.ndarray
    node_domain: np.ndarray
    node_leaf: np.ndarray
    node_cards: np.ndarray
    node_free_whole: np.ndarray
    node_free_milli: np.ndarray
    domain_size: np.ndarray
    domain_free_whole: np.ndarray
    leaf_size: np.ndarray
    leaf_free_whole: np.ndarray
    type_capacity: np.ndarray
    type_free_whole: np.ndarray
    type_free_milli: np.ndarray
    type_nodes: tuple[np.ndarray, ...]
    type_cards: tuple[np.ndarray, ...]
    type_node_size: np.ndarray
    level_count: np.ndarray
    type_max_free: np.ndarray
    throughput: np.ndarray
    recent_num_cards: np.ndarray
    recent_milli: np.ndarray
    recent_mask: np.ndarray
    recent_len: np.ndarray
    has_host: bool
    node_cpu_free: np.ndarray
    node_mem_free: np.ndarray
    recent_cpu_milli: np.ndarray
    recent_memory_mib: np.ndarray
    first_node: Any  # bound method (type, free) -> lowest node id in that level, -1 if empty

    def host_cards(self, nodes: np.ndarray, job: JobView) -> np.ndarray:
        """Per node in ``nodes``: the most of ``job``'s cards (at most ``num_cards``) its free host
        CPU and memory allow, i.e. the largest ``j`` with ``ceil(request * j / num_cards) <= free``."""
        k = job.num_cards
        out = np.full(nodes.size, k, np.int64)
        for req, free in ((job.cpu_milli, self.node_cpu_free), (job.memory_mib, self.node_mem_free)):
            if req > 0:
                out = np.minimum(out, np.minimum(free[nodes], req) * k // req)
        return out

    # ---- cached helpers (pure functions of the static layout) -------------------------------
    def types_of(self, mask: int) -> np.ndarray:
        """Card-type indices allowed by ``mask`` (ascending)."""
        key = ("t", mask)
        out = self._memo.get(key)  # type: ignore[attr-defined]
        if out is None:
            out = readonly(np.array([t for t in range(len(self.card_types)) if mask >> t & 1],
                                    dtype=np.int64))
            self._memo[key] = out  # type: ignore[attr-defined]
        return out

    def nodes_of(self, mask: int) -> np.ndarray:
        """Node ids whose card type ``mask`` allows (ascending)."""
        key = ("n", mask)
        out = self._memo.get(key)  # type: ignore[attr-defined]
        if out is None:
            parts = [self.type_nodes[t] for t in self.types_of(mask)]
            out = readonly(np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64))
            self._memo[key] = out  # type: ignore[attr-defined]
        return out

    def cards_of(self, mask: int) -> np.ndarray:
        """Card ids whose type ``mask`` allows (ascending)."""
        key = ("c", mask)
        out = self._memo.get(key)  # type: ignore[attr-defined]
        if out is None:
            parts = [self.type_cards[t] for t in self.types_of(mask)]
            out = readonly(np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64))
            self._memo[key] = out  # type: ignore[attr-defined]
        return out

    def free_whole_in(self, mask: int) -> int:
        """Whole free cards of the types ``mask`` allows (live)."""
        return int(self.type_free_whole[self.types_of(mask)].sum())

    def max_node_free(self, mask: int) -> int:
        """Largest number of whole free cards on one node of the allowed types (live)."""
        tmf = self.type_max_free
        return max((int(tmf[t]) for t in self.type_list(mask)), default=0)

    def type_list(self, mask: int) -> list[int]:
        """Card-type indices allowed by ``mask`` as a Python list (cached)."""
        key = ("l", mask)
        out = self._memo.get(key)  # type: ignore[attr-defined]
        if out is None:
            out = self._memo[key] = self.types_of(mask).tolist()  # type: ignore[attr-defined]
        return out

    def node_with(self, mask: int, k: int, best: bool = True) -> int:
        """Node with the fewest (``best``) or most whole free cards, at least ``k``, among the
        allowed types; ties go to the lowest node id. -1 if none. Uses the engine's bucket index
        (``first_node(type, free)``), so it costs O(types x cards per node), not O(nodes)."""
        types = self.type_list(mask)
        lc = self.level_count
        top = max((int(self.type_max_free[t]) for t in types), default=0)
        if top < k:
            return -1
        levels = range(k, top + 1) if best else range(top, k - 1, -1)
        for f in levels:
            cands = [self.first_node(t, f) for t in types if f < lc.shape[1] and lc[t, f] > 0]
            if cands:
                return min(cands)
        return -1


# ---- decisions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Admission:
    """Accept a job into the queue, or reject it with a reason."""

    accept: bool
    reason: str = ""


@dataclass(frozen=True, eq=False)
class Placement:
    """The cards a job gets (each at the job's ``card_milli``). ``cards`` is made read-only."""

    cards: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "cards", readonly(np.array(self.cards, dtype=np.int64, copy=True)))


@dataclass(frozen=True)
class OrderKeys:
    """One float sort key per job of a :class:`JobsView` (smaller runs first; ties by submit, id)."""

    keys: np.ndarray = field(compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", readonly(np.array(self.keys, dtype=np.float64, copy=True)))


@dataclass(frozen=True)
class Preemption:
    """Running jobs (engine rows) to preempt so that the waiting job can start."""

    victims: tuple[int, ...] = ()


# ---- protocols -----------------------------------------------------------------------------
@runtime_checkable
class AdmissionPolicy(Protocol):
    """Decides, on arrival, whether a job may join the queue."""

    def admit(self, job: JobView, usage: TenantUsage) -> Admission: ...


@runtime_checkable
class OrderingPolicy(Protocol):
    """Gives queued jobs their sort keys (computed when a job enters the queue)."""

    def keys(self, jobs: JobsView) -> OrderKeys: ...


@runtime_checkable
class PlacementPolicy(Protocol):
    """Chooses cards for one job now, or None when it cannot (or will not) place it."""

    def place(self, job: JobView, cluster: ClusterView) -> Placement | None: ...


@runtime_checkable
class PreemptionPolicy(Protocol):
    """Chooses running jobs to evict so that a blocked job can start (empty = none)."""

    def select(self, job: JobView, running: RunningView, cluster: ClusterView) -> Preemption: ...
