"""Accelerator (card) specifications, loaded from ``catalog/data/accelerators.toml``.

Every number carries its unit in the field name and, in the data file, a source and a
confidence tag (V verified, S secondary, R primary-not-rechecked, D derived, U
uncertain; see ``docs/catalog.md``). Specs are frozen; use :func:`dataclasses.replace`
to make a what-if variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..units import GB, GIB, TFLOPS

__all__ = ["AcceleratorSpec"]


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator model.

    FLOPS are dense (no 2:4 sparsity). ``scaleup_gbyte_s_bidir`` is the bidirectional
    aggregate per chip (NVLink4: 900); per direction is half.
    """

    name: str
    vendor: str
    display_name: str
    bf16_tflops_dense: float
    hbm_gb: float
    hbm_tbyte_s: float
    tdp_w: float
    scaleup_gbyte_s_bidir: float
    nic_gbit_s: float
    fp8_tflops_dense: float = 0.0
    int8_tops_dense: float = 0.0
    idle_w: float = 0.0
    nics_per_card: float = 1.0
    price_usd_per_hour: float = 0.0
    hbm_usable_fraction: float = 0.97
    flops_efficiency: float = 0.75
    hbm_efficiency: float = 0.80
    scaleup_efficiency: float = 0.80
    source: str = ""
    confidence: str = "U"
    field_sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    # ---- derived, SI units -------------------------------------------------------------
    @property
    def peak_flops(self) -> float:
        """Dense BF16 peak in FLOP/s."""
        return self.bf16_tflops_dense * TFLOPS

    def peak_flops_for(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype`` ('bf16', 'fp16', 'fp8', 'int8'); falls back to BF16."""
        if dtype == "fp8" and self.fp8_tflops_dense > 0:
            return self.fp8_tflops_dense * TFLOPS
        if dtype == "int8" and self.int8_tops_dense > 0:
            return self.int8_tops_dense * TFLOPS
        return self.peak_flops

    @property
    def achievable_flops(self) -> float:
        """FLOP/s a large GEMM reaches: peak x ``flops_efficiency``."""
        return self.peak_flops * self.flops_efficiency

    @property
    def hbm_bytes(self) -> float:
        """Usable HBM in bytes.

        HBM stacks are binary-sized: a vendor's "80 GB" part holds 80 GiB, less driver,
        ECC and context reservations (``hbm_usable_fraction``; DOMAIN.md 0).
        """
        return self.hbm_gb * GIB * self.hbm_usable_fraction

    @property
    def hbm_bytes_per_s(self) -> float:
        """Peak HBM bandwidth in bytes/s."""
        return self.hbm_tbyte_s * 1e12

    @property
    def achievable_hbm_bytes_per_s(self) -> float:
        """HBM bandwidth a streaming kernel reaches."""
        return self.hbm_bytes_per_s * self.hbm_efficiency

    @property
    def scaleup_bytes_per_s_uni(self) -> float:
        """Scale-up bandwidth per direction in bytes/s (line rate)."""
        return self.scaleup_gbyte_s_bidir * GB / 2

    @property
    def nic_bytes_per_s(self) -> float:
        """Scale-out NIC line rate per card in bytes/s (all NICs of the card)."""
        return self.nic_gbit_s * 1e9 / 8 * self.nics_per_card

    @property
    def ridge_flop_per_byte(self) -> float:
        """Roofline ridge point: peak FLOP/s over peak HBM bytes/s."""
        return self.peak_flops / self.hbm_bytes_per_s
