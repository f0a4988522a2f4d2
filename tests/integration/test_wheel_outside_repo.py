"""The wheel works outside the repository: shipped topologies, workloads and ``init`` by name.

Builds the wheel from this checkout (``pip wheel --no-deps --no-build-isolation``: hatchling
comes from the dev extra, so no network), makes a fresh venv in a temporary folder whose
dependencies come from this interpreter's site-packages (a ``.pth`` file; those folders' own
``.pth`` files, such as an editable install of cluster_sim, are not processed), installs the
wheel there with ``--no-deps --no-index --ignore-installed`` (nothing outside that venv is
touched), and runs the commands from an empty directory with no ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import cluster_sim

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert res.returncode == 0, f"{' '.join(argv)}: exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(venv bin folder, empty working directory, environment) with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(MPLBACKEND="Agg", PYTHONNOUSERSITE="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("CLUSTER_SIM_TRACES", None)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(REPO)], root, env, timeout=300)
    wheels = list(dist.glob("cluster_sim-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    for f in ("cluster_sim/_shipped/topologies/h100-rail-1024.yaml", "cluster_sim/_shipped/workloads/demo.yaml",
              "cluster_sim/_shipped/examples/README.md", "cluster_sim/catalog/data/accelerators.toml"):
        assert f in names, f
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        root, env).stdout.strip())
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]])
    (purelib / "_deps_from_the_test_env.pth").write_text("".join(f"{p}\n" for p in ours))
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
          str(wheels[0])], root, env, timeout=300)
    empty = root / "empty"
    empty.mkdir()
    where = _run([str(py), "-c", "import cluster_sim; print(cluster_sim.__file__)"], empty, env).stdout.strip()
    assert Path(where).is_relative_to(venv), where   # the wheel, not this checkout
    return venv / "bin", empty, env


def test_version(installed):
    bin_dir, empty, env = installed
    out = _run([str(bin_dir / "cluster-sim"), "--version"], empty, env).stdout
    assert out == f"cluster-sim {cluster_sim.__version__}\n"


def test_topology_by_name(installed):
    bin_dir, empty, env = installed
    out = _run([str(bin_dir / "cluster-sim"), "topology", "show", "h100-rail-1024", "--json"], empty, env).stdout
    assert json.loads(out)["name"] == "h100-rail-1024" and json.loads(out)["n_cards"] == 1024


def test_demo_writes_its_run_directory(installed):
    bin_dir, empty, env = installed
    res = _run([str(bin_dir / "cluster-sim"), "demo", "--out", "runs/demo"], empty, env, timeout=300)
    assert "wrote runs/demo/" in res.stdout and res.stderr == ""   # not a TTY: no progress bar
    run = empty / "runs" / "demo"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["experiment"] == "demo" and summary["cluster.topology"] == "h100-rail-1024"
    assert "<html" in (run / "report.html").read_text()[:500].lower()


def test_load_config_by_name(installed):
    bin_dir, empty, env = installed
    out = _run([str(bin_dir / "python"), "-c", "import cluster_sim as cs; c = cs.load_config('demo'); "
                "print(c.name, c.base_dir)"], empty, env).stdout.split()
    assert out[0] == "demo" and "_shipped" in Path(out[1]).parts


def test_init(installed):
    bin_dir, empty, env = installed
    _run([str(bin_dir / "cluster-sim"), "init", "mine"], empty, env)
    assert (empty / "mine" / "README.md").is_file() and (empty / "mine" / "workloads" / "demo.yaml").is_file()
    out = _run([str(bin_dir / "cluster-sim"), "validate", "workloads/train_llama3_70b.yaml"], empty / "mine", env)
    assert "h100-rail-1024" in out.stdout
