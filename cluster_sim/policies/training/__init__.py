"""Training scheduling-cycle policies: admission, ordering, placement, preemption, presets."""

from .admission import AcceptAll, TenantQuota
from .ordering import FIFO, LAS, SJF, PriorityOrder, Tiresias
from .placement import FragmentationAware, HeterogeneityAware, Packed, Spread, TopologyAware
from .preemption import KeyedRunningView, NoPreemption, OrderPreemption, PriorityPreemption
from .presets import PRESETS

__all__ = ["FIFO", "LAS", "PRESETS", "SJF", "AcceptAll", "FragmentationAware", "HeterogeneityAware",
           "KeyedRunningView", "NoPreemption", "OrderPreemption", "Packed", "PriorityOrder",
           "PriorityPreemption", "Spread", "TenantQuota", "Tiresias", "TopologyAware"]
