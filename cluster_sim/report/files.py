"""File names and file writes shared by every writer (run directories, drawings, compare tables).

A name that comes from user input (a topology or experiment name, a compared value) becomes a
file name only through :func:`safe_filename`, so it can never climb out of the output folder;
single files are written through :func:`write_bytes_atomic` (a temporary file beside the
target, renamed when complete), so an error never leaves half a file.

>>> safe_filename("../escaped/evil")
'escaped_evil'
>>> safe_filename("h100-rail-1024")
'h100-rail-1024'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ConfigError

__all__ = ["MAX_NAME", "os_error", "safe_filename", "write_bytes_atomic"]

MAX_NAME = 100
"""Longest file name :func:`safe_filename` returns (characters, before any suffix)."""


def safe_filename(name: object, default: str = "unnamed") -> str:
    """``name`` as one path component: letters, digits, ``-``, ``_`` and ``.`` kept, the rest ``_``.

    Path separators, ``..``, leading dots (hidden files) and control characters cannot survive;
    an empty result becomes ``default``. The result is at most :data:`MAX_NAME` characters.
    """
    text = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
    text = text.strip("._")[:MAX_NAME].rstrip("._")
    return text or default


def os_error(path: str | os.PathLike[str], exc: OSError, action: str = "cannot write") -> ConfigError:
    """One-line error for a failed file operation on ``path`` (no traceback in the CLI)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ConfigError(f"{path}: {action}: {reason}")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The parent folders are created. On any error the temporary file is removed and an
    existing ``path`` is left as it was; an :class:`OSError` becomes one :class:`ConfigError`.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{safe_filename(p.name)}.tmp-", dir=p.parent)
    except OSError as exc:
        raise os_error(p, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is for the temporary name only
        os.replace(tmp, p)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise os_error(p, exc) from None
        raise
    return p
