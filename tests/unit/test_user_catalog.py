"""User-defined models and cards (issue #15 item 7): inline ``models:``, ``catalog:`` TOML files.

A user's copy of a shipped spec must give exactly the shipped answer; the user's entries are
visible only inside :func:`cluster_sim.config.user_scope`; bad entries are one path-qualified
error and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from cluster_sim import catalog
from cluster_sim.catalog import AcceleratorSpec, SystemSpec
from cluster_sim.cli import main
from cluster_sim.config import load_config, user_scope
from cluster_sim.errors import CatalogError, ConfigError
from cluster_sim.experiment import estimate_jobs, load_cluster
from cluster_sim.workload.models import ModelSpec, model

SKIP = {"name", "field_sources"}


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple):
        return json.dumps(list(v))
    return repr(v)


def _table(header: str, spec: object, **changes: object) -> str:
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)  # type: ignore[arg-type]
              if f.name not in SKIP}
    fields.update(changes)
    return f"[{header}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items() if v not in (None, ()))


def _model_fields(name: str) -> dict[str, object]:
    m = model(name)
    return {f.name: getattr(m, f.name) for f in dataclasses.fields(ModelSpec) if f.name != "name"}


def _write_user_catalog(tmp: Path, **acc_changes: object) -> Path:
    text = (_table("accelerators.my-h100", catalog.accelerator("h100-sxm"), **acc_changes) + "\n"
            + _table("systems.my-hgx", catalog.system("hgx-h100"), accelerator="my-h100"))
    path = tmp / "my_cards.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _experiment(tmp: Path, *, user: bool, cat: Path | None = None) -> Path:
    job = {"name": "j", "model": "my-llama" if user else "llama3-70b", "cards": 64,
           "parallel": {"tp": 8, "pp": 2, "recompute": "selective"}, "seq_len": 8192, "global_batch": 64}
    exp: dict[str, object] = {
        "name": "user" if user else "shipped",
        "cluster": {"topology": {"builder": "rail", "system": "my-hgx" if user else "hgx-h100", "nodes": 8,
                                 "fabric": "ib_ndr"}},
        "training": {"jobs": [job]},
    }
    if user:
        exp["models"] = {"my-llama": _model_fields("llama3-70b")}
        exp["catalog"] = str(cat or _write_user_catalog(tmp))
    path = tmp / f"{exp['name']}.yaml"
    path.write_text(yaml.safe_dump(exp), encoding="utf-8")
    return path


def _estimate(path: Path) -> dict[str, object]:
    cfg = load_config(path)
    with user_scope(cfg):
        topo = load_cluster(cfg.cluster.topology, cfg.base_dir)
        (est,) = estimate_jobs(cfg, topo)
        return {k: est.as_dict()[k] for k in ("step_time_s", "breakdown", "tokens_per_s", "mfu")}


def test_user_model_and_card_give_the_shipped_answer(tmp_path):
    shipped = _estimate(_experiment(tmp_path, user=False))
    user = _estimate(_experiment(tmp_path, user=True))
    assert user == shipped  # exact: same spec, same numbers
    assert shipped["mfu"] > 0.2


def test_user_entries_are_visible_only_inside_the_scope(tmp_path):
    cfg = load_config(_experiment(tmp_path, user=True))
    with pytest.raises(CatalogError, match="unknown accelerator 'my-h100'"):
        catalog.accelerator("my-h100")
    with user_scope(cfg):
        assert catalog.accelerator("my-h100").bf16_tflops_dense == 989.4
        assert catalog.system("my-hgx").accelerator == "my-h100"
        assert model("my-llama").layers == 80
    with pytest.raises(CatalogError, match="unknown accelerator"):
        catalog.accelerator("my-h100")
    with pytest.raises(CatalogError, match="unknown model 'my-llama'"):
        model("my-llama")


def test_two_runs_with_different_user_cards_do_not_leak(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    slow = _write_user_catalog(tmp_path / "a", bf16_tflops_dense=494.7)
    fast = _write_user_catalog(tmp_path / "b")
    a = _estimate(_experiment(tmp_path / "a", user=True, cat=slow))
    b = _estimate(_experiment(tmp_path / "b", user=True, cat=fast))
    a2 = _estimate(_experiment(tmp_path / "a", user=True, cat=slow))
    assert a == a2 and a != b
    assert a["step_time_s"] > b["step_time_s"]  # half the FLOPS: slower, and nothing carried over
    cfg_a, cfg_b = load_config(_experiment(tmp_path / "a", user=True, cat=slow)), \
        load_config(_experiment(tmp_path / "b", user=True, cat=fast))
    with user_scope(cfg_a):
        assert catalog.accelerator("my-h100").bf16_tflops_dense == 494.7
        with user_scope(cfg_b):  # a run nested in another's scope sees only its own cards
            assert catalog.accelerator("my-h100").bf16_tflops_dense == 989.4
        assert catalog.accelerator("my-h100").bf16_tflops_dense == 494.7
    with pytest.raises(CatalogError, match="unknown accelerator"):
        catalog.accelerator("my-h100")


def test_user_catalog_reuses_the_shipped_validation(tmp_path):
    path = _write_user_catalog(tmp_path)
    user = catalog.load_catalog(path)
    assert isinstance(user.accelerators["my-h100"], AcceleratorSpec)
    assert isinstance(user.systems["my-hgx"], SystemSpec)
    shipped = dataclasses.replace(catalog.accelerator("h100-sxm"), name="my-h100")
    assert user.accelerators["my-h100"] == shipped


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def _bad_catalog(tmp: Path, text: str) -> Path:
    cat = tmp / "bad.toml"
    cat.write_text(text, encoding="utf-8")
    return _experiment(tmp, user=True, cat=cat)


H100_TABLE = _table("accelerators.my-h100", catalog.accelerator("h100-sxm"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (H100_TABLE.replace("hbm_gb = 80.0\n", "hbm = 80.0\n"),
         r"catalog\[0\]: .*bad.toml: accelerators.my-h100.hbm: unknown field \(units are part of the field "
         r"name: did you mean hbm_gb or .*hbm_tbyte_s\?\)"),
        (H100_TABLE.replace("hbm_gb = 80.0\n", 'hbm_gb = "80 GB"\n'),
         r"accelerators.my-h100.hbm_gb: expected a number, got '80 GB' \(units are part of the field name"),
        (H100_TABLE.replace("nic_gbit_s = 400.0\n", "nic_gbit_s = -400.0\n"),
         r"bad.toml: accelerators.my-h100.nic_gbit_s: must be a finite number >= 0, got -400.0"),
        (H100_TABLE.replace("hbm_tbyte_s = 3.35\n", ""), r"accelerators.my-h100: missing field 'hbm_tbyte_s'"),
        (H100_TABLE.replace("[accelerators.my-h100]", "[accelerators.h100-sxm]"),
         r"accelerators.h100-sxm: already defined in shipped"),
        ('[systems.x]\ndisplay_name = "x"\naccelerator = "nope"\ncards_per_node = 8\ndomain_cards = 8\n'
         'scaleup_fabric = "switched"\nnics_per_node = 8\nnic_gbit_s = 400.0\nsource = "s"\n',
         r"systems.x.accelerator: unknown accelerator 'nope'"),
        ('[fabrics.f]\ndisplay_name = "f"\nkind = "roce"\ntier = "scaleout"\nline_rate_gbit_s = 400.0\n'
         'latency_s = 1e-6\nnic_latency_s = 2e-6\nefficiency = 1.5\nsource = "s"\n',
         r"fabrics.f: fabric f: efficiency must be in \(0, 1\], got 1.5"),
        ("[accelerators.x\n", r"bad.toml: .*line 1"),
        ("[gpus.x]\nvendor = 'v'\n", r"bad.toml: gpus: unknown section"),
    ],
)
def test_bad_user_catalog_is_one_line_with_the_field_path(tmp_path, capsys, text, message):
    path = _bad_catalog(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    code, err = _cli(["train", str(path)], capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("error: ") and str(path) in err


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"layers": 2, "hidden": 1000, "heads": 3, "vocab": 100},
         r"models.my-model.heads: 3 heads do not divide hidden = 1000"),
        ({"layers": 2, "hidden": 1024, "heads": 16, "kv_heads": 3, "vocab": 100},
         r"models.my-model.kv_heads: 3 KV heads do not divide heads = 16"),
        ({"layers": 2, "hidden": 1024, "vocab": 100}, r"models.my-model: missing field 'heads'"),
        ({"layers": 2, "hidden": 1024, "heads": 16, "vocab": 100, "hidden_size": 3},
         r"models.my-model.hidden_size: unknown field"),
        ({"layers": -2, "hidden": 1024, "heads": 16, "vocab": 100},
         r"models.my-model.layers: expected a whole number >= 0, got -2"),
        ({"layers": 2, "hidden": "1k", "heads": 16, "vocab": 100},
         r"models.my-model.hidden: expected a whole number"),
        ({"layers": 2, "hidden": 1024, "heads": 16, "vocab": 100, "attention": "flash"},
         r"models.my-model.attention: one of mha, gqa, mla"),
    ],
)
def test_bad_inline_model_is_one_line_with_the_field_path(tmp_path, capsys, fields, message):
    exp = {"cluster": {"topology": {"builder": "fat_tree", "system": "hgx-h100", "nodes": 1}},
           "models": {"my-model": fields},
           "training": {"jobs": [{"name": "j", "model": "my-model", "cards": 8}]}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    code, err = _cli(["train", str(path)], capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err and str(path) in err


def test_inline_model_may_not_shadow_a_shipped_one():
    with pytest.raises(ConfigError, match="models.llama3-70b: a shipped model has this name"):
        load_config({"cluster": {"topology": "topologies/h100-rail-1024.yaml"},
                     "models": {"llama3-70b": _model_fields("llama3-70b")}})


def test_heads_check_allows_an_explicit_head_dim():
    # Qwen3-style: head_dim given, heads x head_dim != hidden is fine
    cfg = load_config({"cluster": {"topology": "topologies/h100-rail-1024.yaml"},
                       "models": {"wide": {"layers": 2, "hidden": 1000, "heads": 3, "head_dim": 128,
                                           "vocab": 100, "source": "test"}}})
    with user_scope(cfg):
        assert model("wide").head_dim == 128


@pytest.mark.parametrize("command", ["train", "validate", "run"])
def test_user_model_and_card_work_from_every_cli_command(tmp_path, capsys, command):
    """The CLI keeps the experiment's own models and cards in scope for the whole command, and a
    `run` (simulate) or `train` of the user copy prints exactly what the shipped spec prints."""
    outputs = []
    for user in (False, True):
        path = _experiment(tmp_path, user=user)
        assert main([command, str(path), "--json"] if command != "validate" else [command, str(path)]) == 0
        outputs.append(capsys.readouterr().out)
    if command == "validate":
        assert "my-llama on 64 my-h100" in outputs[1] and "valid" in outputs[1]
        return
    shipped, user = (json.loads(o) for o in outputs)
    if command == "run":  # names and wall clock differ; every number the model produces must not
        for key in ("training.step_time_s", "training.mfu", "training.tokens_per_s", "training.job.j.memory_per_card_gib"):
            assert user[key] == shipped[key], key
    else:
        assert user["j"] == shipped["j"]
