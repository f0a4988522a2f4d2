"""Pool policies: how training and serving share the cluster's cards (DESIGN.md 3).

Each is a :class:`~cluster_sim.policies.base.Policy` with ``family = "pool"``, registered in
``registry.POOL``, whose one decision is ``partition(PoolView) -> PoolPlan`` (``partition.py``):
``separate`` (no sharing, two simulations) and ``static_partition`` (silos sized in the config,
one simulation on one card ledger); ``sharing.py``: ``shared_pool`` and ``peak_shaving``, which
also decide during the run which replica slots start (``start_order``) and which lend their
cards to training (``lend``). The family-independent contract
(``tests/policies/test_policy_contract.py``) runs every registered one.
"""

from .partition import PoolPlan, PoolView, Separate, StaticPartition
from .sharing import OffSlot, PeakShaving, SharedPool, SlotView

__all__ = ["OffSlot", "PeakShaving", "PoolPlan", "PoolView", "Separate", "SharedPool", "SlotView", "StaticPartition"]
