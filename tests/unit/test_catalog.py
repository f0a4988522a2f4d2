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


# ---- issue #15 item 7: TPUs, domestic cards and supernodes -----------------------------------
NEW_ACCELERATORS = ["tpu-v4", "tpu-v5p", "kunlun-p800", "hygon-k100-ai", "mtt-s4000", "mlu590",
                    "tiangai-100", "tiangai-150"]
NEW_SYSTEMS = ["tpu-v4-pod", "tpu-v5p-pod", "kuae-s4000", "kunlun-p800-8", "hygon-k100-8", "mlu590-8",
               "tiangai-100-8", "tiangai-150-8", "zte-nebula-2048"]
DOMESTIC = ["kunlun-p800", "hygon-k100-ai", "mtt-s4000", "mlu590", "tiangai-100", "tiangai-150"]


@pytest.mark.parametrize("name", NEW_ACCELERATORS)
def test_new_accelerators_exist_with_sources(name):
    test_required_accelerators_exist(name)


@pytest.mark.parametrize("name", NEW_SYSTEMS)
def test_new_systems_exist(name):
    test_required_systems_exist(name)


def test_tpu_numbers_are_the_cloud_tpu_docs():
    v4, v5p = catalog.accelerator("tpu-v4"), catalog.accelerator("tpu-v5p")
    assert (v4.bf16_tflops_dense, v4.hbm_gb, v4.hbm_tbyte_s, v4.tdp_w) == (275.0, 32.0, 1.2, 192.0)
    assert v4.hbm_bytes == pytest.approx(32 * 2**30 * v4.hbm_usable_fraction)  # docs quote GiB
    assert (v5p.bf16_tflops_dense, v5p.fp8_tflops_dense, v5p.hbm_gb, v5p.hbm_tbyte_s) == (459.0, 459.0, 95.0, 2.765)
    assert v5p.scaleup_gbyte_s_bidir == 1200.0  # bidirectional ICI per chip
    pod4, pod5 = catalog.system("tpu-v4-pod"), catalog.system("tpu-v5p-pod")
    assert (pod4.scaleup_fabric, pod4.torus_dims, pod4.domain_cards) == ("torus", (16, 16, 16), 4096)
    assert (pod5.torus_dims, pod5.domain_cards, pod5.cards_per_node) == ((16, 16, 24), 6144, 4)
    assert pod5.nic_bytes_per_s_per_card == pytest.approx(50e9 / 8)  # 50 Gb/s DCN per chip


def test_domestic_cards_are_tagged_as_claims_or_placeholders():
    for name in DOMESTIC:
        a = catalog.accelerator(name)
        assert a.confidence in ("S", "U"), name  # vendor claims and placeholders, never "verified"
        assert a.field_sources, name
    assert catalog.accelerator("mtt-s4000").hbm_tbyte_s == 0.768  # DOMAIN.md 3.1
    nebula = catalog.system("zte-nebula-2048")
    assert nebula.domain_cards == 2048 and nebula.confidence == "U"
    assert nebula.field_sources["accelerator"].startswith("U:")


def test_every_field_source_starts_with_its_confidence_tag():
    specs = [*catalog.accelerators().values(), *catalog.systems().values(), *catalog.fabrics().values()]
    for spec in specs:
        for key, text in spec.field_sources.items():
            assert text[:2] in ("V:", "S:", "R:", "D:", "U:"), (spec.name, key, text)
