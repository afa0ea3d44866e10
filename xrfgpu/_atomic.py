"""Atomic outputs: every file xrfgpu writes appears whole or not at all.

Data go to a temporary file (or folder) beside the target, which is renamed
over the target only when writing succeeded (:func:`os.replace` is atomic on
one file system); on any error the temporary is removed and an existing
target is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_file", "atomic_folder", "atomic_write_bytes", "atomic_write_text", "umask_mode"]


def umask_mode(mode=0o666):
    """``mode`` reduced by the process umask (temporary files are created 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_file(path, write):
    """Run ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part" + path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_folder(path, write):
    """Run ``write(tmp_folder)`` on a temporary folder beside ``path``, then swap it into place."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.part"))
    try:
        write(tmp)
        os.chmod(tmp, umask_mode(0o777))
        for p in tmp.iterdir():
            os.chmod(p, umask_mode(0o666))
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old"))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def atomic_write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` atomically."""
    return atomic_file(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path, text: str):
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_file(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
