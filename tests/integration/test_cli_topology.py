"""`cluster-sim topology show`: tables on stdout, a PNG, JSON mode, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_sim.cli import main

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_show_prints_summary_and_writes_png(tmp_path, capsys):
    out_png = tmp_path / "drawing.png"
    rc = main(["topology", "show", str(REPO / "topologies/two-dc-300km.yaml"), "--png", str(out_png)])
    out = capsys.readouterr().out
    assert rc == 0
    for text in ("two-dc-300km", "2,048 cards in 2 sites", "h100-sxm", "256 x 8", "leaf-spine", "16:1",
                 "300 km", "1.52 ms", "Bisection bandwidth", "3.2 TB/s", f"Drawing written to {out_png}"):
        assert text in out, text
    assert out_png.read_bytes().startswith(PNG_MAGIC)


def test_default_png_goes_under_runs_topology_not_the_cwd(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["topology", "show", str(REPO / "topologies/h100-fattree-4to1-1024.yaml")]) == 0
    out = capsys.readouterr().out
    assert "4:1" in out and "Drawing written to runs/topology/h100-fattree-4to1-1024.png" in out
    assert (tmp_path / "runs" / "topology" / "h100-fattree-4to1-1024.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert main(["topology", "show", str(REPO / "topologies/h100-fattree-4to1-1024.yaml"), "--out", "pics"]) == 0
    assert (tmp_path / "pics" / "h100-fattree-4to1-1024.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("name,file", [("../escaped/evil", "escaped_evil.png"), ("/etc/passwd", "etc_passwd.png"),
                                       ("..", "topology.png"), (".hidden", "hidden.png")])
def test_a_topology_name_cannot_write_outside_the_output_folder(tmp_path, capsys, monkeypatch, name, file):
    """Issue item 14: a topology named ``../escaped/evil`` used to write ``../escaped/evil.png``."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    topo = tmp_path / "t.yaml"
    topo.write_text(f"name: {json.dumps(name)}\nbuilder: fat_tree\nsystem: hgx-h100\nnodes: 2\n")
    assert main(["topology", "show", str(topo)]) == 0
    assert f"Drawing written to runs/topology/{file}" in capsys.readouterr().out
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*.png")]
    assert written == [Path("work/runs/topology") / file]


def test_png_into_a_directory_or_under_a_file_is_one_error(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    for target in (tmp_path, tmp_path / "f" / "d.png"):
        assert main(["topology", "show", str(REPO / "topologies/h100-rail-1024.yaml"), "--png", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {target}: ") and "\n" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_json_mode_writes_no_png(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["topology", "show", str(REPO / "topologies/h100-rail-1024.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_cards"] == 1024 and data["bisection_Bps"] == pytest.approx(25.6e12)
    assert data["cards_by_type"] == {"h100-sxm": 1024}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("body", [None, "builder: fat_tree\nsystem: dgx-h300\nnodes: 4\n"])
def test_bad_file_exits_2_with_one_line(tmp_path, capsys, monkeypatch, body):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    if body is not None:
        path.write_text(body)
    assert main(["topology", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(path) in err and "\n" not in err
    assert not list(tmp_path.glob("*.png"))
