"""Accelerator (card) specifications, loaded from ``catalog/data/accelerators.toml``.

Every number carries its unit in the field name and, in the data file, a source and a
confidence tag (V verified, S secondary, R primary-not-rechecked, D derived, U
uncertain; see ``docs/catalog.md``). Specs are frozen; use :func:`dataclasses.replace`
to make a what-if variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CatalogError
from ..units import GB, GIB, TFLOPS

__all__ = ["AcceleratorSpec"]

# Defaults of the optional serving fields, documented in docs/catalog.md: the 3 ms per-iteration
# overhead ReplicaPerf always used (vLLM-class engines with CUDA graphs: ~1-5 ms CPU/launch time
# per step; assumed, U) and no small-transfer penalty (Hockney n_1/2 = 0).
DEFAULT_ITERATION_OVERHEAD_MS = 3.0


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator model.

    FLOPS are dense (no 2:4 sparsity). ``scaleup_gbyte_s_bidir`` is the bidirectional
    aggregate per chip (NVLink4: 900); per direction is half.

    Optional fields (a missing field keeps the old behaviour):

    * ``fp8_flops_efficiency``: fraction of the FP8 dense peak that FP8 GEMMs reach; ``0`` means
      "as ``flops_efficiency``" (the BF16 one).
    * ``iteration_overhead_ms``: fixed host-side cost of one serving iteration (scheduling,
      sampling, kernel launches); default 3 ms.
    * ``hbm_half_bandwidth_mbyte``: Hockney ``n_1/2`` of HBM, the transfer size (1e6 bytes) at
      which one memory-bound kernel reaches half of the streaming bandwidth; a kernel moving
      ``S`` bytes takes ``(S + n_1/2) / (BW x hbm_efficiency)``. ``0`` = no small-transfer penalty.
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
    fp8_flops_efficiency: float = 0.0
    iteration_overhead_ms: float = DEFAULT_ITERATION_OVERHEAD_MS
    hbm_half_bandwidth_mbyte: float = 0.0
    source: str = ""
    confidence: str = "U"
    field_sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for key in ("fp8_flops_efficiency",):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise CatalogError(f"accelerator {self.name}.{key}: must be in [0, 1] "
                                   f"(0 = as flops_efficiency), got {value!r}")

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
        """FLOP/s a large BF16 GEMM reaches: peak x ``flops_efficiency``."""
        return self.peak_flops * self.flops_efficiency

    def flops_efficiency_for(self, dtype: str = "bf16") -> float:
        """GEMM efficiency in ``dtype``: ``fp8_flops_efficiency`` for FP8 on a card with an FP8
        peak when it is set, else ``flops_efficiency`` (the peak falls back the same way)."""
        if dtype == "fp8" and self.fp8_tflops_dense > 0 and self.fp8_flops_efficiency > 0:
            return self.fp8_flops_efficiency
        return self.flops_efficiency

    def achievable_flops_for(self, dtype: str = "bf16") -> float:
        """FLOP/s a large GEMM reaches in ``dtype``: ``peak_flops_for x flops_efficiency_for``."""
        return self.peak_flops_for(dtype) * self.flops_efficiency_for(dtype)

    @property
    def iteration_overhead_s(self) -> float:
        """Fixed cost of one serving iteration in seconds (``iteration_overhead_ms``)."""
        return self.iteration_overhead_ms * 1e-3

    @property
    def hbm_half_bandwidth_bytes(self) -> float:
        """Hockney ``n_1/2`` of HBM in bytes (``hbm_half_bandwidth_mbyte``)."""
        return self.hbm_half_bandwidth_mbyte * 1e6

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
