"""The notebooks in examples/: stripped in git, and each executes in a fresh kernel of this interpreter.

Each notebook runs through nbclient in a new ipykernel whose kernelspec (written to a temporary
folder, the only one the kernel manager searches) starts ``sys.executable``, so the kernel sees
the same environment as the tests, never a ``python3`` found elsewhere on the machine. The test
asserts no cell fails, the whole run stays within :data:`WALL_LIMIT_S`, the figures come out as
``image/png`` (inline backend, as in Jupyter), and the numbers the notebook prints are sane.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "examples").glob("*.ipynb"))
CELL_TIMEOUT_S = 120
WALL_LIMIT_S = 120.0
"""Each notebook takes ~6-15 s on 2 shared cores (kernel start included); the limit leaves room for a
busy machine while still catching a notebook that grew a long run."""


def test_the_notebooks_are_there():
    assert [p.name for p in NOTEBOOKS] == ["planner_what_if.ipynb", "policy_comparison.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stripped_in_git(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            assert c.outputs == [], f"{path.name} cell {i}: outputs are committed (strip them)"
            assert c.execution_count is None, f"{path.name} cell {i}: execution_count {c.execution_count}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "widgets" not in nb.metadata


def _kernel_manager(tmp: Path) -> AsyncKernelManager:
    spec = tmp / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tests)", "language": "python"}), encoding="utf-8")
    ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    assert km.kernel_spec is not None and km.kernel_spec.argv[0] == sys.executable
    return km


def _execute(path: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[nbformat.NotebookNode, float]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))       # the kernel imports this tree's cluster_sim
    monkeypatch.delenv("MPLBACKEND", raising=False)   # figures inline, as a user's fresh kernel has them
    nb = nbformat.read(path, as_version=4)
    work = tmp / "cwd"
    work.mkdir()
    client = NotebookClient(nb, km=_kernel_manager(tmp), timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(work)}})
    t0 = time.perf_counter()
    client.execute(cleanup_kc=True)   # raises CellExecutionError on the first failing cell
    wall = time.perf_counter() - t0
    assert list(work.iterdir()) == [], "a notebook should not write files where it runs"
    return nb, wall


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in _outputs(nb) if o["output_type"] == "stream")


def _common(nb: nbformat.NotebookNode, wall: float) -> None:
    assert wall < WALL_LIMIT_S, f"took {wall:.1f} s"
    outs = _outputs(nb)
    assert not [o for o in outs if o["output_type"] == "error"]
    assert [o for o in outs if "image/png" in o.get("data", {})], "no inline figure"
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")


_NUM = r"([-+]?\d[\d,]*\.?\d*)"


def _f(text: str) -> float:
    return float(text.replace(",", ""))


def test_planner_what_if(tmp_path, monkeypatch):
    nb, wall = _execute(REPO / "examples" / "planner_what_if.ipynb", tmp_path, monkeypatch)
    _common(nb, wall)
    html = [o["data"]["text/html"] for o in _outputs(nb) if "cluster-sim-result" in o.get("data", {}).get("text/html", "")]
    assert len(html) == 1 and "data:image/png;base64," in html[0]   # the Result's _repr_html_
    text = _text(nb)
    head = re.findall(rf"^(.+): SLO attainment {_NUM}, {_NUM} days to train, {_NUM} USD/day$", text, re.M)
    assert [h[0] for h in head] == ["8-card nodes (910B)", "384 supernode (910C)"], text
    for _, att, days, usd in head:
        assert 0.0 <= _f(att) <= 1.0 and _f(days) > 0 and _f(usd) > 0
    (_, _, d_nodes, c_nodes), (_, _, d_super, c_super) = head
    assert _f(d_super) < _f(d_nodes)      # 910C on UB trains faster ...
    assert _f(c_super) > _f(c_nodes)      # ... and costs more per day (list prices)
    load = re.findall(r"^(.+): attainment ([\d., ]+) at \[([\d, ]+)\] req/s", text, re.M)
    assert [x[0] for x in load] == ["8-card nodes (910B)", "384 supernode (910C)"], text
    for _, atts, rates in load:
        a = [float(x) for x in atts.split(", ")]
        assert len(a) == len(rates.split(", ")) >= 3
        assert all(0.0 <= x <= 1.0 for x in a)
        assert a[-1] < a[0]               # the highest rate overloads either fleet


def test_policy_comparison(tmp_path, monkeypatch):
    nb, wall = _execute(REPO / "examples" / "policy_comparison.ipynb", tmp_path, monkeypatch)
    _common(nb, wall)
    text = _text(nb)
    assert re.search(r"^25 runs: 25 executed, 0 from the store, 0 failed$", text, re.M), text
    rows = re.findall(rf"^(\w+): training\.jobs\.mfu mean {_NUM}, CI half-width {_NUM} \(t, n=(\d+)\)$", text, re.M)
    assert [r[0] for r in rows] == ["fifo", "sjf", "tiresias", "easy", "priority"], text
    for _, mean, half, n in rows:
        assert 0.0 < _f(mean) < 1.0 and _f(half) > 0.0 and int(n) == 5
    assert "same number of submitted jobs on each seed: True" in text
    paired = re.findall(rf"tiresias - fifo, ([\w.]+): {_NUM} \[{_NUM}, {_NUM}\] \(paired t, n=5\)", text)
    assert [p[0] for p in paired] == ["training.jobs.mfu", "utilization.busy"], text
    for _, mean, lo, hi in paired:
        assert _f(lo) < _f(mean) < _f(hi)
