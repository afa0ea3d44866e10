"""Atomic outputs: every file xrfgpu writes appears whole or not at all.

Data go to a temporary file (or folder) beside the target, which is renamed
over the target only when writing succeeded (:func:`os.replace` is atomic on
one file system); on any error the temporary is removed and an existing
target is left as it was. The machinery (temporary names, cleanup on
signals, no-replace publishing) lives in :mod:`xrfgpu.output_safety`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["atomic_file", "atomic_folder", "atomic_write_bytes", "atomic_write_text", "umask_mode"]


def umask_mode(mode=0o666):
    """``mode`` reduced by the process umask (temporary files are created 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def atomic_file(path, write):
    """Run ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    Replaces an existing ``path``; the temporary is named and cleaned up as
    described in :mod:`xrfgpu.output_safety` (never read as input, removed on
    error, SIGINT/SIGTERM and at exit). Commands that must not replace foreign
    files use :func:`xrfgpu.output_safety.write_outputs` with its checks.
    """
    from .output_safety import Output, write_outputs

    write_outputs([Output(Path(path), write)], overwrite=True, check=False)
    return Path(path)


def atomic_folder(path, write):
    """Run ``write(tmp_folder)`` on a temporary folder beside ``path``, then swap it into place."""
    from .output_safety import Output, write_outputs

    write_outputs([Output(Path(path), write, folder=True)], overwrite=True, check=False)
    return Path(path)


def atomic_write_bytes(path, data: bytes):
    """Write ``data`` to ``path`` atomically."""
    return atomic_file(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path, text: str):
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_file(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
