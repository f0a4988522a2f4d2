"""Alibaba cluster traces: GPU 2023 "openb" nodes and pods, PAI 2020 machines, spot-GPU 2026 nodes.

Card-type names are mapped to catalog names where the catalog has the card
(:data:`CARD_TYPE_NAMES`); undisclosed or mixed types (openb ``G2``/``G3``, PAI ``MISC``, spot
``GPU-series-1/2``) are kept verbatim as opaque type names.

Pods become a :class:`~cluster_sim.workload.jobs.JobTable` (:func:`read_openb_pods`):

* only GPU pods (``num_gpu >= 1``); CPU-only pods are left out and counted by :func:`openb_pods_stats`;
* ``num_cards = num_gpu``, ``card_milli = gpu_milli``, ``type_mask`` from ``gpu_spec`` (empty = any);
* ``submit_s = creation_time``;
* ``duration_s = deletion_time - scheduled_time``, or ``deletion_time - creation_time`` for pods
  never scheduled (Pending); durations below ``min_duration_s`` (one Pending pod has 0 s) are
  raised to it. A pod with no ``deletion_time`` (none in the published files) is dropped;
* ``priority`` from ``qos``: Guaranteed 3, LS 2, Burstable 1, BE 0; ``preemptible = (qos == BE)``;
* ``kind`` = :data:`~cluster_sim.workload.jobs.KIND_TRACE`, ``name`` = pod name, one tenant ``openb``,
  ``job_id`` = 0-based row number in the file.

The ``multigpu*`` variants have no time columns; pass ``default_duration_s`` (all pods then
arrive at ``t = 0`` in file order) or :class:`~cluster_sim.errors.TraceError` is raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import TraceError
from ..jobs import ANY_TYPE, KIND_TRACE, MAX_CARD_TYPES, JobTable
from .common import PathLike, count_values, describe, read_csv

__all__ = [
    "CARD_TYPE_NAMES",
    "OPENB_CARD_TYPES",
    "QOS_PRIORITY",
    "NodeInventory",
    "card_type_name",
    "openb_nodes_stats",
    "openb_pods_stats",
    "pai_machines_stats",
    "read_openb_nodes",
    "read_openb_pods",
    "read_pai_machines",
    "read_spot_nodes",
    "spot_nodes_stats",
]

CARD_TYPE_NAMES = {
    "P100": "p100", "T4": "t4", "V100M16": "v100-16gb", "V100M32": "v100-32gb", "A10": "a10",
    "V100": "v100-16gb",  # PAI 2020: "V100" is the 16 GB part next to "V100M32"
    "A100-SXM4-80GB": "a100-80gb", "A800-SXM4-80GB": "a800", "H800": "h800",
}
"""Trace GPU model -> catalog accelerator name. Models not listed keep their trace name."""

OPENB_CARD_TYPES = ("G2", "t4", "G3", "p100", "v100-32gb", "v100-16gb", "a10")
"""The openb cluster's card types (mapped names), most GPUs first: the default pod vocabulary."""

QOS_PRIORITY = {"Guaranteed": 3, "LS": 2, "Burstable": 1, "BE": 0}
_PHASES = ("Running", "Succeeded", "Failed", "Pending")
_POD_BASE = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
_POD_TIMED = ("gpu_spec", "qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time")


def card_type_name(raw: str) -> str:
    """Catalog name for a trace GPU model (``'V100M32'`` -> ``'v100-32gb'``); unknown kept as is."""
    return CARD_TYPE_NAMES.get(raw, raw)


# ---- node inventories -----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NodeInventory:
    """Nodes of a traced cluster as per-node arrays.

    Attributes
    ----------
    source : str
        File name the inventory was read from.
    node : ndarray of str
        Node names (or ids).
    gpus : ndarray of int32
        GPUs per node (0 = CPU-only node).
    card_type : ndarray of str
        Mapped GPU type per node (:func:`card_type_name`); ``''`` for CPU-only nodes.
    raw_model : ndarray of str
        GPU model as written in the trace.
    cpu_milli : ndarray of int64
        CPU capacity in thousandths of a core.
    memory_mib : ndarray of int64
        Host memory in MiB (-1 = not given by the trace).
    """

    source: str
    node: np.ndarray
    gpus: np.ndarray
    card_type: np.ndarray
    raw_model: np.ndarray
    cpu_milli: np.ndarray
    memory_mib: np.ndarray

    def __len__(self) -> int:
        return int(self.gpus.size)

    @property
    def total_gpus(self) -> int:
        """GPUs over all nodes."""
        return int(self.gpus.sum())

    def gpu_types(self) -> tuple[str, ...]:
        """Mapped card types present, most GPUs first (ties by name)."""
        gpu = self.gpus > 0
        counts = count_values(np.repeat(self.card_type[gpu], self.gpus[gpu]))
        return tuple(counts)

    def to_cluster_spec(self) -> dict[str, Any]:
        """A plain description topology builders can use.

        Returns ``{"source", "node_groups": [(card_type, gpus_per_node, node_count), ...],
        "cpu_only_nodes", "total_gpus", "total_nodes"}``; groups are sorted by card type
        (as in :meth:`gpu_types`) then gpus per node, descending.
        """
        order = {t: k for k, t in enumerate(self.gpu_types())}
        groups: dict[tuple[str, int], int] = {}
        for t, g in zip(self.card_type[self.gpus > 0], self.gpus[self.gpus > 0], strict=True):
            groups[(str(t), int(g))] = groups.get((str(t), int(g)), 0) + 1
        node_groups = [(t, g, c) for (t, g), c in sorted(groups.items(), key=lambda kv: (order[kv[0][0]],
                                                                                         -kv[0][1]))]
        return {"source": self.source, "node_groups": node_groups,
                "cpu_only_nodes": int((self.gpus == 0).sum()), "total_gpus": self.total_gpus,
                "total_nodes": len(self)}

    def host_groups(self, scale: float = 1.0) -> list[tuple[str, int, int, int, int]]:
        """GPU node groups with host resources: ``[(card_type, gpus_per_node, node_count,
        cpu_milli, memory_mib), ...]``, in the order of :meth:`to_cluster_spec`'s groups, each
        split by (cpu_milli, memory_mib) ascending. ``memory_mib = -1`` = not given by the trace.

        ``scale`` multiplies each (type, gpus) group's node count first (rounded, at least 1, as
        ``cluster.topology.scale`` does), then shares it over its host variants by largest
        remainder (ties: the variant listed first), so the scaled GPU count does not depend on
        how many host variants a group has.
        """
        gpu = self.gpus > 0
        out: list[tuple[str, int, int, int, int]] = []
        for t, g, c in self.to_cluster_spec()["node_groups"]:
            sel = gpu & (self.card_type == t) & (self.gpus == g)
            keys, counts = np.unique(np.stack([self.cpu_milli[sel], self.memory_mib[sel]], axis=1),
                                     axis=0, return_counts=True)
            target = max(1, round(c * scale)) if scale != 1.0 else c
            exact = counts * (target / c)
            n = np.floor(exact).astype(np.int64)
            rest = exact - n
            for i in np.lexsort((np.arange(rest.size), -rest))[: target - int(n.sum())].tolist():
                n[i] += 1
            out += [(t, g, int(k), int(cpu), int(mem)) for (cpu, mem), k in zip(keys.tolist(), n.tolist(),
                                                                                strict=True) if k]
        return out

    def stats(self) -> dict[str, Any]:
        """Node, GPU and per-type counts (the numbers quoted in the traces README)."""
        gpu = self.gpus > 0
        by_type = {}
        for t in self.gpu_types():
            sel = self.card_type == t
            by_type[t] = {"gpus": int(self.gpus[sel].sum()), "nodes": int(sel.sum()),
                          "trace_name": str(self.raw_model[sel][0])}
        return {"nodes": len(self), "cpu_only_nodes": int((~gpu).sum()), "gpu_nodes": int(gpu.sum()),
                "gpus": self.total_gpus, "by_type": by_type,
                "gpus_per_node": {k: v for k, v in count_values(self.gpus[gpu]).items()},
                "cpu_milli": count_values(self.cpu_milli, top=5)}


def _inventory(source: str, node, gpus, raw, cpu_milli, memory_mib) -> NodeInventory:
    raw = np.asarray(raw, dtype=object)
    mapped = np.array([card_type_name(r) if g > 0 else "" for r, g in zip(raw, gpus, strict=True)],
                      dtype=object)
    return NodeInventory(source=source, node=np.asarray(node, dtype=object), gpus=np.asarray(gpus, np.int32),
                         card_type=mapped, raw_model=raw, cpu_milli=np.asarray(cpu_milli, np.int64),
                         memory_mib=np.asarray(memory_mib, np.int64))


def _check_model_vs_gpus(t, raw: np.ndarray, gpus: np.ndarray, model_col: str, cpu_values: tuple[str, ...]) -> None:
    cpu = np.isin(raw, list(cpu_values))
    bad = (cpu & (gpus > 0)) | (~cpu & (gpus == 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise t.error(i, model_col, f"GPU model {raw[i]!r} does not agree with a GPU count of {gpus[i]}")


def read_openb_nodes(path: PathLike) -> NodeInventory:
    """Read an openb node list (``openb_node_list_*.csv``: ``sn,cpu_milli,memory_mib,gpu,model``)."""
    t = read_csv(path, ("sn", "cpu_milli", "memory_mib", "gpu", "model"))
    gpus = t.ints("gpu", min_value=0, max_value=64)
    raw = t.text("model")
    _check_model_vs_gpus(t, raw, gpus, "model", ("",))
    return _inventory(t.name, t.text("sn"), gpus, raw, t.ints("cpu_milli", min_value=0),
                      t.ints("memory_mib", min_value=0))


def read_pai_machines(path: PathLike) -> NodeInventory:
    """Read the PAI 2020 machine spec (``machine,gpu_type,cap_cpu,cap_mem,cap_gpu``).

    ``cap_cpu`` cores become ``cpu_milli`` (x1000); ``cap_mem`` GB is taken as GiB
    (x1024 MiB); ``gpu_type`` ``CPU`` marks CPU-only machines.
    """
    t = read_csv(path, ("machine", "gpu_type", "cap_cpu", "cap_mem", "cap_gpu"))
    gpus = t.ints("cap_gpu", min_value=0, max_value=64)
    raw = t.text("gpu_type")
    _check_model_vs_gpus(t, raw, gpus, "gpu_type", ("CPU", ""))
    cpu = np.round(t.floats("cap_cpu", min_value=0) * 1000).astype(np.int64)
    mem = np.round(t.floats("cap_mem", min_value=0) * 1024).astype(np.int64)
    return _inventory(t.name, t.text("machine"), gpus, raw, cpu, mem)


def read_spot_nodes(path: PathLike) -> NodeInventory:
    """Read the spot-GPU v2026 node list (``gpu_model,gpu_capacity_num,cpu_num,node_name``).

    ``cpu_num`` vCPUs become ``cpu_milli``; memory is not given (``memory_mib = -1``).
    """
    t = read_csv(path, ("gpu_model", "gpu_capacity_num", "cpu_num", "node_name"))
    gpus = t.ints("gpu_capacity_num", min_value=0, max_value=64)
    raw = t.text("gpu_model")
    _check_model_vs_gpus(t, raw, gpus, "gpu_model", ("",))
    cpu = np.round(t.floats("cpu_num", min_value=0) * 1000).astype(np.int64)
    return _inventory(t.name, t.text("node_name"), gpus, raw, cpu, np.full(len(t), -1))


def openb_nodes_stats(path: PathLike) -> dict[str, Any]:
    """Statistics of an openb node list."""
    return read_openb_nodes(path).stats()


def pai_machines_stats(path: PathLike) -> dict[str, Any]:
    """Statistics of the PAI 2020 machine spec."""
    inv = read_pai_machines(path)
    out = inv.stats()
    out["cpu_cores"] = count_values(inv.cpu_milli // 1000)
    out["memory_gb"] = count_values(inv.memory_mib // 1024)
    return out


def spot_nodes_stats(path: PathLike) -> dict[str, Any]:
    """Statistics of the spot-GPU v2026 node list."""
    return read_spot_nodes(path).stats()


# ---- pods -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _PodTimes:
    """The columns only the timed pod lists have."""

    qos: np.ndarray
    phase: np.ndarray
    creation: np.ndarray
    scheduled: np.ndarray  # NaN = never scheduled
    deletion: np.ndarray  # NaN = not deleted


@dataclass(frozen=True, eq=False)
class _Pods:
    """Parsed pod columns (all rows, CPU-only included)."""

    source: str
    name: np.ndarray
    num_gpu: np.ndarray
    gpu_milli: np.ndarray
    cpu_milli: np.ndarray
    memory_mib: np.ndarray
    gpu_spec: np.ndarray | None
    times: _PodTimes | None


def _load_pods(path: PathLike) -> _Pods:
    t = read_csv(path, _POD_BASE, optional=_POD_TIMED)
    num_gpu = t.ints("num_gpu", min_value=0, max_value=64)
    gpu_milli = t.ints("gpu_milli", min_value=0, max_value=1000)
    cpu = t.ints("cpu_milli", min_value=0, max_value=2**31 - 1)
    mem = t.ints("memory_mib", min_value=0, max_value=2**31 - 1)
    bad = (num_gpu > 0) & (gpu_milli == 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise t.error(i, "gpu_milli", f"must be in 1..1000 for a GPU pod (num_gpu={num_gpu[i]}), got 0")
    bad = (num_gpu > 1) & (gpu_milli != 1000)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise t.error(i, "gpu_milli", f"a multi-GPU pod (num_gpu={num_gpu[i]}) must use whole GPUs "
                      f"(1000), got {gpu_milli[i]}")
    timed = t.has("creation_time")
    if timed:
        missing = [c for c in _POD_TIMED if not t.has(c)]
        if missing:
            raise TraceError(f"{t.name}: missing column(s) {', '.join(missing)}; found: {', '.join(t.header)}")
        creation = t.floats("creation_time", min_value=0)
        scheduled = t.floats("scheduled_time", allow_empty=True, min_value=0)
        deletion = t.floats("deletion_time", allow_empty=True, min_value=0)
        for col, early, what in (("scheduled_time", scheduled < creation, "creation_time"),
                                 ("deletion_time", deletion < creation, "creation_time"),
                                 ("deletion_time", deletion < scheduled, "scheduled_time")):
            if early.any():
                i = int(np.flatnonzero(early)[0])
                raise t.error(i, col, f"earlier than {what}")
        times = _PodTimes(t.choices("qos", tuple(QOS_PRIORITY)), t.choices("pod_phase", _PHASES),
                          creation, scheduled, deletion)
        return _Pods(t.name, t.text("name"), num_gpu, gpu_milli, cpu, mem, t.text("gpu_spec"), times)
    spec = t.text("gpu_spec") if t.has("gpu_spec") else None
    return _Pods(t.name, t.text("name"), num_gpu, gpu_milli, cpu, mem, spec, None)


def _spec_masks(specs: np.ndarray, card_types: list[str]) -> np.ndarray:
    """uint64 masks for ``|``-separated GPU specs; new type names are appended to ``card_types``."""
    uniq, inv = np.unique(specs.astype(str), return_inverse=True)
    masks = np.empty(uniq.size, dtype=np.uint64)
    for k, spec in enumerate(uniq):
        if not spec:
            masks[k] = ANY_TYPE
            continue
        m = 0
        for raw in spec.split("|"):
            name = card_type_name(raw.strip())
            if name not in card_types:
                card_types.append(name)
                if len(card_types) > MAX_CARD_TYPES:
                    raise TraceError(f"gpu_spec: more than {MAX_CARD_TYPES} card types ({name!r})")
            m |= 1 << card_types.index(name)
        masks[k] = m
    return masks[inv]


def read_openb_pods(path: PathLike, *, default_duration_s: float | None = None,
                    card_types: Sequence[str] | None = None, min_duration_s: float = 1.0) -> JobTable:
    """Read an openb pod list (default, gpuspec33 or any ``variants/*.csv.gz``) as GPU jobs.

    Parameters
    ----------
    path : path-like
    default_duration_s : float, optional
        Run time for every pod of a file without time columns (``multigpu*``); ignored otherwise.
    card_types : sequence of str, optional
        Type vocabulary of the table (default :data:`OPENB_CARD_TYPES`); types named by
        ``gpu_spec`` but missing are appended.
    min_duration_s : float
        Floor for run times (a Pending pod deleted at creation has 0 s).

    Returns
    -------
    JobTable
        One row per GPU pod, ``job_id`` = row number in the file (see the module docstring).
    """
    pods = _load_pods(path)
    types = list(OPENB_CARD_TYPES if card_types is None else card_types)
    gpu = pods.num_gpu > 0
    n_rows = pods.num_gpu.size
    pt = pods.times
    if pt is None:
        if default_duration_s is None:
            raise TraceError(f"{pods.source}: has no creation/scheduled/deletion times "
                             "(a multigpu variant); pass default_duration_s to use it")
        if not default_duration_s > 0:
            raise TraceError(f"{pods.source}: default_duration_s must be > 0, got {default_duration_s!r}")
        submit = np.zeros(n_rows)
        duration = np.full(n_rows, float(default_duration_s))
        priority = np.zeros(n_rows, np.int8)
        preemptible = np.zeros(n_rows, bool)
    else:
        start = np.where(np.isnan(pt.scheduled), pt.creation, pt.scheduled)
        duration = np.maximum(pt.deletion - start, min_duration_s)
        gpu &= ~np.isnan(pt.deletion)
        submit = pt.creation
        priority = np.array([QOS_PRIORITY[q] for q in pt.qos], dtype=np.int8)
        preemptible = np.asarray(pt.qos == "BE", dtype=bool)
    masks = (_spec_masks(pods.gpu_spec, types) if pods.gpu_spec is not None
             else np.full(n_rows, ANY_TYPE, dtype=np.uint64))
    idx = np.flatnonzero(gpu)
    return JobTable(job_id=idx.astype(np.int64), submit_s=submit[idx], num_cards=pods.num_gpu[idx],
                    duration_s=duration[idx], card_milli=pods.gpu_milli[idx], type_mask=masks[idx],
                    priority=priority[idx], preemptible=preemptible[idx], kind=KIND_TRACE,
                    cpu_milli=pods.cpu_milli[idx], memory_mib=pods.memory_mib[idx],
                    name=pods.name[idx], card_types=tuple(types), tenants=("openb",))


def openb_pods_stats(path: PathLike) -> dict[str, Any]:
    """Statistics of an openb pod list, defined as in the traces README (section 3)."""
    p = _load_pods(path)
    gpu = p.num_gpu > 0
    share = gpu & (p.num_gpu == 1) & (p.gpu_milli < 1000)
    cap = p.num_gpu * p.gpu_milli
    total_cap = int(cap.sum())
    out: dict[str, Any] = {
        "rows": int(p.num_gpu.size),
        "pods": {"gpu": int(gpu.sum()), "cpu_only": int((~gpu).sum()), "sharing": int(share.sum()),
                 "sharing_fraction_of_gpu_pods": float(share.sum() / max(gpu.sum(), 1)),
                 "sharing_median_gpu_milli": float(np.median(p.gpu_milli[share])) if share.any() else None},
        "num_gpu": count_values(p.num_gpu),
        "gpu_capacity": {"requested_gpus": total_cap / 1000.0,
                         "sharing_fraction": float(cap[share].sum() / total_cap) if total_cap else 0.0,
                         "multi_gpu_fraction": float(cap[p.num_gpu > 1].sum() / total_cap) if total_cap else 0.0},
    }
    if p.gpu_spec is not None:
        constrained = gpu & (p.gpu_spec != "")
        out["gpu_spec"] = {"constrained": int(constrained.sum()),
                           "constrained_fraction_of_gpu_pods": float(constrained.sum() / max(gpu.sum(), 1)),
                           "top": count_values(p.gpu_spec[constrained], top=8)}
    pt = p.times
    if pt is None:
        out["times"] = None
        return out
    out["qos"] = count_values(pt.qos)
    out["pod_phase"] = count_values(pt.phase)
    sched = ~np.isnan(pt.scheduled)
    span = float(pt.creation.max() - pt.creation.min()) if pt.creation.size else 0.0
    out["times"] = {
        "creation_min_s": float(pt.creation.min()), "creation_max_s": float(pt.creation.max()),
        "span_days": span / 86400.0, "pods_per_day": pt.creation.size / (span / 86400.0) if span else None,
        "creation_sorted": bool((np.diff(pt.creation) >= 0).all()),
        "scheduled_pods": int(sched.sum()),
        "run_time_s": describe(pt.deletion[sched] - pt.scheduled[sched]),
        "queueing_s": describe(pt.scheduled[sched] - pt.creation[sched]),
    }
    no_del = gpu & np.isnan(pt.deletion)
    out["job_table"] = {"gpu_jobs": int((gpu & ~no_del).sum()), "dropped_no_deletion_time": int(no_del.sum()),
                        "unscheduled_gpu_pods": int((gpu & ~sched).sum())}
    return out
