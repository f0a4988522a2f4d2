"""Pool policies: how training and serving share cards (DESIGN.md 3). None is built yet.

A pool policy will be a :class:`~cluster_sim.policies.base.Policy` with ``family = "pool"``,
registered in ``registry.POOL``; the family-independent contract
(``tests/policies/test_policy_contract.py``) covers it from the moment it is registered.
"""
