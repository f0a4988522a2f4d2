"""Admission policies: whether an arriving job may join the queue.

The engine rejects, before asking the policy, any job that can never fit the cluster (more
cards than exist of its allowed types, no such type present, a single-node job larger than
every node); the policy decides about the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..base import Admission, JobView, Policy, TenantUsage

__all__ = ["AcceptAll", "TenantQuota"]


class AcceptAll(Policy):
    """Admit every job."""

    name = "accept_all"
    family = "admission"

    def admit(self, job: JobView, usage: TenantUsage) -> Admission:
        """Always accept."""
        return Admission(True)


class TenantQuota(Policy):
    """Reject a job when its tenant would hold or wait for more cards than its quota.

    Parameters
    ----------
    quota_cards : float
        Default quota per tenant: most cards (fractional shares count as fractions) a tenant may
        have running plus queued at once.
    per_tenant : mapping of str to float, optional
        Quotas of named tenants, overriding ``quota_cards``.
    """

    name = "tenant_quota"
    family = "admission"

    def __init__(self, *, quota_cards: float = 1024.0, per_tenant: Mapping[str, float] | None = None) -> None:
        self.quota_cards = quota_cards
        self.per_tenant = per_tenant

    def admit(self, job: JobView, usage: TenantUsage) -> Admission:
        """Accept if running + queued + this job's cards stay within the tenant's quota."""
        name = usage.tenants[job.tenant] if job.tenant < len(usage.tenants) else str(job.tenant)
        quota = float((self.per_tenant or {}).get(name, self.quota_cards))
        held = float(usage.running_cards[job.tenant] + usage.queued_cards[job.tenant])
        if held + job.demand_cards > quota:
            return Admission(False, f"tenant {name!r} quota {quota:g} cards exceeded "
                                    f"({held:g} held or queued + {job.demand_cards:g})")
        return Admission(True)
