"""Output directories that never lose the user's files and are never half-written.

Every output directory (a run directory, a ``compare`` directory) is written into a temporary
sibling ``.<name>.tmp-XXXX`` and renamed onto the target only when complete; it carries a
marker file, :data:`MARKER`, listing the files the simulator wrote. Writing over an existing
directory:

* missing or empty: created;
* a previous run (it has the marker, or is a run directory of an older version: it has
  ``summary.json`` and ``config.resolved.yaml``): the simulator's files are replaced, every
  other file in it (a ``notes.txt`` the user put there) is kept;
* anything else (non-empty, not written by the simulator): refused with a
  :class:`~cluster_sim.errors.ConfigError`, nothing touched.

An error while writing removes the temporary directory and leaves the target as it was; a
file-system error (read-only, a path under a file, ``/proc``) is one ``ConfigError``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError
from ..report.files import os_error, safe_filename

__all__ = ["MARKER", "check_out_dir", "owned_files", "staged_dir", "write_marker"]

MARKER = ".cluster_sim_run"
"""Marker file of every output directory: JSON ``{"kind": ..., "files": [relative paths]}``."""

# What a run directory of a version without the marker may contain (store.py's files).
_LEGACY_FILES = frozenset({
    "summary.json", "config.resolved.yaml", "jobs.parquet", "requests.parquet", "timeline.parquet",
    "serving_timeline.parquet", "topology.json", "report.html", "trace.json", "estimates.json",
    "scaling.csv", "segments.parquet", "replicas.parquet", "services.parquet",
})
_LEGACY_PLOTS = frozenset({"breakdown", "scaling", "utilization", "queue_length", "jct_cdf", "latency_cdf",
                           "kv_occupancy"})


def _is_legacy_run(d: Path) -> bool:
    return (d / "summary.json").is_file() and (d / "config.resolved.yaml").is_file()


def _legacy_files(d: Path, prefix: str = "") -> set[str]:
    out = {prefix + n for n in _LEGACY_FILES if (d / n).is_file()}
    out |= {f"{prefix}plots/{n}.png" for n in _LEGACY_PLOTS if (d / "plots" / f"{n}.png").is_file()}
    return out


def owned_files(d: Path) -> set[str] | None:
    """Relative paths of the files the simulator wrote in ``d``; ``None``: ``d`` is not its directory.

    An empty directory owns nothing (``set()``).
    """
    marker = d / MARKER
    if marker.is_file():
        try:
            files = json.loads(marker.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{marker}: unreadable marker file ({exc}); remove it or choose another "
                              "output directory") from None
        return {str(f) for f in files}
    if _is_legacy_run(d):
        return _legacy_files(d)
    if (d / "compare.csv").is_file():  # a compare directory of an older version
        out = {"compare.csv"}
        for sub in d.iterdir():
            if sub.is_dir() and _is_legacy_run(sub):
                out |= _legacy_files(sub, f"{sub.name}/")
        return out
    try:
        return None if any(d.iterdir()) else set()
    except OSError as exc:
        raise os_error(d, exc, "cannot read") from None


def check_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Check that ``out_dir`` can become an output directory, before anything runs.

    Raises
    ------
    ConfigError
        ``out_dir`` is a file, lies under a file, is the working directory (or contains it), or
        is a non-empty directory the simulator did not write.
    """
    out = Path(out_dir)
    if not out.name or out.name in (".", ".."):
        raise ConfigError(f"{out}: give a directory name for the output, e.g. runs/exp")
    full = out.resolve()
    cwd = Path.cwd().resolve()
    if full == cwd or full in cwd.parents:
        raise ConfigError(f"{out}: is the working directory (or contains it); choose a subdirectory, "
                          "e.g. runs/exp")
    for parent in (full, *full.parents):
        if parent.exists() and not parent.is_dir():
            what = "exists and is not a directory" if parent == full else f"{parent} is a file"
            raise ConfigError(f"{out}: {what}")
    if full.is_dir():
        owned = owned_files(full)
        if owned is None:
            names = sorted(p.name for p in full.iterdir())
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise ConfigError(f"{out}: directory is not empty ({shown}) and is not a cluster-sim output "
                              "directory; choose a new or empty directory (nothing was written)")
    return out


def _foreign(old: Path, owned: set[str], rel: str = "") -> Iterator[str]:
    """Entries of ``old`` (relative paths) the simulator did not write; whole folders when none of it is ours."""
    dirs = {p.split("/")[0] for p in owned if "/" in p}
    for entry in sorted(old.iterdir()):
        name = rel + entry.name
        if entry.name == MARKER and not rel:
            continue
        if entry.is_dir() and not entry.is_symlink() and entry.name in dirs:
            sub = {p.split("/", 1)[1] for p in owned if p.startswith(entry.name + "/")}
            yield from _foreign(entry, sub, name + "/")
        elif entry.name not in owned:
            yield name


def _files_of(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)).replace(os.sep, "/") for p in root.rglob("*") if p.is_file())


def _commit(tmp: Path, full: Path, shown: Path) -> None:
    """Rename the complete ``tmp`` onto ``full``, carrying over the files the simulator did not write."""
    if not full.exists():
        os.replace(tmp, full)
        return
    owned = owned_files(full)
    if owned is None:  # changed since check_out_dir
        raise ConfigError(f"{shown}: directory is not empty and is not a cluster-sim output directory")
    keep = list(_foreign(full, owned))
    clash = [k for k in keep if (tmp / k).exists()]
    if clash:
        raise ConfigError(f"{shown}: {clash[0]} was not written by cluster-sim and the new output has a "
                          "file of that name; move it away (nothing was written)")
    moved: list[str] = []
    try:
        for k in keep:
            (tmp / k).parent.mkdir(parents=True, exist_ok=True)
            os.replace(full / k, tmp / k)
            moved.append(k)
        old = Path(tempfile.mkdtemp(prefix=f".{safe_filename(full.name)}.old-", dir=full.parent))
        try:
            os.replace(full, old / "run")
            try:
                os.replace(tmp, full)
            except BaseException:
                os.replace(old / "run", full)
                raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        for k in moved:  # give the user's files back
            if (tmp / k).exists() and full.is_dir():
                os.replace(tmp / k, full / k)
        raise


@contextmanager
def staged_dir(out_dir: str | os.PathLike[str], kind: str = "run") -> Iterator[Path]:
    """Yield an empty temporary directory; on normal exit it becomes ``out_dir`` (see the module doc).

    The marker file listing what was written is added on exit. On an exception nothing is left
    behind and ``out_dir`` is unchanged; an :class:`OSError` is re-raised as one ``ConfigError``.
    """
    shown = check_out_dir(out_dir)
    full = shown.resolve()
    try:
        full.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{safe_filename(full.name)}.tmp-", dir=full.parent))
    except OSError as exc:
        raise os_error(shown, exc, "cannot create the output directory") from None
    try:
        yield tmp
        _write_marker(tmp, kind, _files_of(tmp))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 was for the temporary name only
        _commit(tmp, full, shown)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise os_error(shown, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_marker(folder: Path, kind: str, files: Iterable[str]) -> None:
    body = {"kind": kind, "files": sorted(files),
            "note": "written by cluster-sim; files not listed here are not the simulator's and are kept"}
    (folder / MARKER).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


def write_marker(folder: Path, kind: str = "run") -> None:
    """Mark ``folder`` (inside a staged directory) as an output directory of its own."""
    _write_marker(folder, kind, _files_of(folder))
