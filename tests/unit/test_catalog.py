import dataclasses

import pytest

from cluster_sim import catalog
from cluster_sim.errors import CatalogError

REQUIRED_ACCELERATORS = [
    "a100-40gb", "a100-80gb", "h100-sxm", "h800", "h20", "h200", "b200", "l40s",
    "ascend-910b", "ascend-910c", "mi300x",
]
REQUIRED_SYSTEMS = ["dgx-a100", "hgx-h100", "hgx-h20", "atlas-800t-a2", "cloudmatrix384", "gb200-nvl72"]


@pytest.mark.parametrize("name", REQUIRED_ACCELERATORS)
def test_required_accelerators_exist(name):
    spec = catalog.accelerator(name)
    assert spec.bf16_tflops_dense > 0 and spec.hbm_gb > 0 and spec.hbm_tbyte_s > 0
    assert 0 < spec.flops_efficiency <= 1 and 0 < spec.hbm_efficiency <= 1
    assert spec.source and spec.confidence in "VSRDU"


@pytest.mark.parametrize("name", REQUIRED_SYSTEMS)
def test_required_systems_exist(name):
    s = catalog.system(name)
    assert s.domain_cards % s.cards_per_node == 0
    assert catalog.accelerator(s.accelerator)


def test_published_numbers():
    h100 = catalog.accelerator("h100-sxm")
    assert h100.peak_flops == pytest.approx(989.4e12)
    assert h100.scaleup_bytes_per_s_uni == pytest.approx(450e9)
    assert h100.nic_bytes_per_s == pytest.approx(50e9)
    assert h100.ridge_flop_per_byte == pytest.approx(295, rel=0.01)  # DOMAIN.md 5: ~295 FLOP/byte
    assert catalog.accelerator("a100-80gb").peak_flops == 312e12
    assert catalog.system("cloudmatrix384").domain_cards == 384
    assert catalog.system("gb200-nvl72").domain_cards == 72
    assert catalog.system("dgx-a100").nic_bytes_per_s_per_card == pytest.approx(25e9)


def test_every_number_has_a_source():
    for spec in list(catalog.accelerators().values()) + list(catalog.systems().values()):
        assert spec.source, spec.name
        for key in spec.field_sources:
            assert key in {f.name for f in dataclasses.fields(spec)}, (spec.name, key)


def test_lookup_is_forgiving_but_unknown_lists_names():
    assert catalog.accelerator("H100_SXM").name == "h100-sxm"
    with pytest.raises(CatalogError, match="unknown accelerator 'h300'; known: .*h100-sxm"):
        catalog.accelerator("h300")
    with pytest.raises(CatalogError, match="unknown system"):
        catalog.system("dgx-z")


def test_specs_are_frozen():
    spec = catalog.accelerator("h100-sxm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.tdp_w = 1  # type: ignore[misc]
    what_if = dataclasses.replace(spec, hbm_gb=141)
    assert what_if.hbm_gb == 141 and catalog.accelerator("h100-sxm").hbm_gb == 80
