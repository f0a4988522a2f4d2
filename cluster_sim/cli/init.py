"""``cluster-sim init DIR``: copy an editable set of shipped workloads and topologies into DIR.

The copy is self-contained: every topology file the copied workloads name is copied too (the
paths inside them, ``topologies/<name>.yaml``, resolve from ``DIR/workloads/``), and a README
says what is there and how to run it. A non-empty DIR is refused; the set is written to a
temporary folder beside DIR and renamed into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from .. import shipped
from ..errors import ConfigError
from ._common import emit_json

__all__ = ["INIT_TOPOLOGIES", "INIT_WORKLOADS", "README", "register", "write_example_set"]

INIT_WORKLOADS = ("demo", "train_llama3_70b", "serving_13b_colocated_vs_pd", "pool_static_partition")
"""The shipped workloads ``init`` copies: training, scaling on three fabrics, serving, a pool."""

INIT_TOPOLOGIES = ("h100-rail-1024", "h100-fattree-4to1-1024", "h100-ethernet-1024")
"""The shipped topologies they name (``demo``'s scaling section compares all three)."""

README = """# cluster-sim experiments

Written by `cluster-sim init`: editable copies of shipped experiments. Change a field, or copy a
file and make it yours; paths inside a workload are relative to its folder and the folders above
(so `topologies/h100-rail-1024.yaml` is the file here).

| file | what it simulates |
|---|---|
| `workloads/demo.yaml` | Llama-3-70B pretraining on 1,024 H100s: MFU, step breakdown, days to train, scaling on three fabrics |
| `workloads/train_llama3_70b.yaml` | the same job's step-time estimate alone |
| `workloads/serving_13b_colocated_vs_pd.yaml` | Llama-2-13B serving on 8 A100s, colocated vs prefill/decode split |
| `workloads/pool_static_partition.yaml` | training and serving on one 64-card cluster, a fixed partition |
| `topologies/*.yaml` | rail-optimized InfiniBand, a 4:1 fat-tree and Ethernet, 1,024 H100s each |

Run one (from this folder):

    cluster-sim run workloads/demo.yaml --out runs/demo
    cluster-sim train workloads/train_llama3_70b.yaml --set training.jobs.0.parallel.pp=8
    cluster-sim topology show topologies/h100-rail-1024.yaml

Every shipped workload and topology also runs by name from anywhere, e.g.
`cluster-sim run demo` or `cluster-sim topology show h100-rail-1024`.
"""


def write_example_set(target: Path) -> list[Path]:
    """Copy the example set into ``target`` (absent or empty); returns the files written, relative.

    Raises
    ------
    ConfigError
        ``target`` is a file or a non-empty folder, or a shipped file is missing.
    """
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"{target}: not empty; give a new or empty directory (nothing was written)")
    sources = [("workloads", shipped.require(n, "workloads", "workload")) for n in INIT_WORKLOADS]
    sources += [("topologies", shipped.require(n, "topologies", "topology")) for n in INIT_TOPOLOGIES]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    written: list[Path] = []
    try:
        for kind, src in sources:
            (tmp / kind).mkdir(exist_ok=True)
            shutil.copyfile(src, tmp / kind / src.name)
            written.append(Path(kind) / src.name)
        (tmp / "README.md").write_text(README, encoding="utf-8")
        written.append(Path("README.md"))
        tmp.chmod(0o777 & ~_umask())
        os.replace(tmp, target)  # an empty target folder is replaced, a new one created
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _cmd_init(args: argparse.Namespace, console: Console) -> int:
    target = Path(args.dir)
    written = write_example_set(target)
    if args.json:
        emit_json({"dir": str(target), "files": [str(p) for p in written]})
        return 0
    console.print(f"wrote {len(written)} files to {target}/: README.md, workloads/ "
                  f"({len(INIT_WORKLOADS)} experiments), topologies/ ({len(INIT_TOPOLOGIES)} fabrics)")
    console.print(f"next: cd {target} && cluster-sim run workloads/demo.yaml --out runs/demo")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``init`` command."""
    p = sub.add_parser(
        "init", help="copy editable example workloads and topologies into a new directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Copy shipped experiments (workloads/: " + ", ".join(f"{n}.yaml" for n in INIT_WORKLOADS)
        + "), the topologies they name and a README into DIR, to edit and run. DIR must be new or "
        "empty.\n\nexample:\n  cluster-sim init my-experiments")
    p.add_argument("dir", metavar="DIR", help="new or empty directory to write")
    p.add_argument("--json", action="store_true", help="print {dir, files} as JSON")
    p.set_defaults(handler=_cmd_init)
