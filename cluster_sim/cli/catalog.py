"""``cluster-sim catalog list``."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from .. import catalog
from ._common import emit_json

__all__ = ["register"]


def _fields(spec: object) -> dict[str, object]:
    return {f: getattr(spec, f) for f in spec.__dataclass_fields__ if f != "field_sources"}  # type: ignore[attr-defined]


def _cmd_list(args: argparse.Namespace, console: Console) -> int:
    accs = catalog.accelerators()
    syss = catalog.systems()
    if args.json:
        emit_json({"accelerators": {k: _fields(v) for k, v in accs.items()},
                   "systems": {k: _fields(v) for k, v in syss.items()}})
        return 0
    t = Table(title="Accelerators (dense peaks)", title_justify="left")
    for col in ("name", "vendor", "BF16 TFLOPS", "FP8 TFLOPS", "HBM GB", "HBM TB/s", "scale-up GB/s",
                "NIC Gb/s", "TDP W", "$/h", "eff. flops/hbm", "conf."):
        t.add_column(col, justify="left" if col in ("name", "vendor") else "right", no_wrap=True)
    for a in sorted(accs.values(), key=lambda a: (a.vendor, a.name)):
        t.add_row(a.name, a.vendor, f"{a.bf16_tflops_dense:g}",
                  f"{a.fp8_tflops_dense:g}" if a.fp8_tflops_dense else "-",
                  f"{a.hbm_gb:g}", f"{a.hbm_tbyte_s:g}", f"{a.scaleup_gbyte_s_bidir:g}", f"{a.nic_gbit_s:g}",
                  f"{a.tdp_w:g}", f"{a.price_usd_per_hour:.2f}",
                  f"{a.flops_efficiency:.2f}/{a.hbm_efficiency:.2f}", a.confidence)
    console.print(t)
    s = Table(title="Systems (scale-up domains)", title_justify="left")
    for col in ("name", "accelerator", "cards/node", "domain cards", "fabric", "NICs x Gb/s", "node W", "conf."):
        s.add_column(col, no_wrap=True)
    for x in sorted(syss.values(), key=lambda x: x.name):
        s.add_row(x.name, x.accelerator, str(x.cards_per_node), str(x.domain_cards), x.scaleup_fabric,
                  f"{x.nics_per_node} x {x.nic_gbit_s:g}", f"{x.node_power_w:g}", x.confidence)
    console.print(s)
    console.print("Sources and confidence per field: cluster_sim/catalog/data/*.toml; docs/catalog.md")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``catalog`` command."""
    cat = sub.add_parser("catalog", help="list the hardware catalog", description="The hardware catalog.")
    cat_sub = cat.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    cl = cat_sub.add_parser("list", help="print accelerators and systems as tables",
                            description="Print every accelerator and system with its key numbers.")
    cl.add_argument("--json", action="store_true", help="machine-readable output")
    cl.set_defaults(handler=_cmd_list)
