"""Training scheduling-cycle policies: admission, ordering, placement, preemption, presets."""

from .admission import AcceptAll, TenantQuota
from .ordering import FIFO, LAS, SJF, PriorityOrder
from .placement import FragmentationAware, HeterogeneityAware, Packed, Spread, TopologyAware
from .preemption import NoPreemption, PriorityPreemption
from .presets import PRESETS

__all__ = ["FIFO", "LAS", "PRESETS", "SJF", "AcceptAll", "FragmentationAware", "HeterogeneityAware",
           "NoPreemption", "Packed", "PriorityOrder", "PriorityPreemption", "Spread", "TenantQuota",
           "TopologyAware"]
