"""Provenance: the record of how a restored map was made.

Every output of the command line carries one (TIFF description, HDF5
attributes, NPZ entry and a JSON sidecar), so a restored map can be traced
to its input bytes, the method and every parameter, the PSF of each element
and how it was measured, and the software and device that ran it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata as _metadata
from pathlib import Path

__all__ = ["sha256_of", "software_versions", "make_record", "xrfgpu_command_line", "xrfgpu_git_state"]

_CHUNK = 1 << 20


def sha256_of(path):
    """SHA-256 (hex) of a file; of a folder, of its files' names and bytes in sorted order.

    The input is opened read-only, in binary, and streamed in 1 MiB chunks.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            digest.update(str(p.relative_to(path)).encode("utf-8") + b"\0")
            _update(digest, p)
        return digest.hexdigest()
    _update(digest, path)
    return digest.hexdigest()


def _update(digest, path):
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)


def _version(dist):
    try:
        return _metadata.version(dist)
    except _metadata.PackageNotFoundError:
        return None


def software_versions():
    """Versions of Python, xrfgpu and the libraries that can change the numbers.

    Returns
    -------
    dict
        ``python``, ``xrfgpu`` and each installed distribution of NumPy, SciPy, array-api-compat,
        CuPy, Dask, tifffile and h5py by name; ``fft_library``, the library behind the FFTs of NumPy
        arrays (:func:`xrfgpu._backend.fft_library`: ``"ducc0"``, or ``"scipy"`` where ducc0 is not
        installed or ``XRFGPU_FFT_LIBRARY=scipy`` chose it; CuPy arrays use cuFFT), and with ducc0 its
        version (``ducc0``). The two libraries round differently: on the HXN Fe map at σ 1.5 px the
        cross-validated stop ran 406 iterations with SciPy and 404 with ducc0.
    """
    from . import __version__
    from ._backend import fft_library

    out = {"python": platform.python_version(), "xrfgpu": __version__}
    for dist in ("numpy", "scipy", "array-api-compat", "cupy-cuda12x", "cupy-cuda13x", "cupy", "dask", "tifffile", "h5py"):
        v = _version(dist)
        if v is not None:
            out[dist] = v
    out["fft_library"] = fft_library()
    if out["fft_library"] == "ducc0":
        out["ducc0"] = _version("ducc0")
    return out


# the git subprocesses of xrfgpu_git_state may take this long together (seconds); past it the state is unknown
_GIT_TIMEOUT_S = 2.0


def xrfgpu_git_state(package_dir=None):
    """The git commit xrfgpu runs from, and whether its files differ from it; None outside a checkout.

    Parameters
    ----------
    package_dir : str or Path, optional
        The folder of the ``xrfgpu`` package (default: this module's folder).

    Returns
    -------
    dict or None
        ``{"commit": HEAD's 40 hex digits, "files_differ": bool}``, where ``files_differ`` is whether
        ``git status --porcelain`` lists any change (modified, added, deleted or untracked, not ignored)
        under the package folder or the ``kernels`` folder beside it, the sources a run uses. None when
        the package is no tracked part of a git checkout (an installed wheel, a copy; also a package
        installed in an ignored folder inside someone's checkout, such as a virtual environment), when
        git is not installed, or when git fails or takes over 2 s in all.

    Notes
    -----
    Git runs once per process and folder (the answer is cached), with ``--no-optional-locks`` so that
    it never writes the checkout's index, and without the caller's ``GIT_DIR``/``GIT_WORK_TREE``, which
    would point it at another repository. It never raises.
    """
    return _git_state(str(Path(__file__).resolve().parent if package_dir is None else Path(package_dir).resolve()))


@functools.lru_cache(maxsize=None)
def _git_state(package_dir):
    import time

    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    deadline = time.monotonic() + _GIT_TIMEOUT_S

    def git(*args):
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired("git", _GIT_TIMEOUT_S)
        done = subprocess.run(["git", "--no-optional-locks", "-C", package_dir, *args], capture_output=True,
                              text=True, timeout=left, env=env, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, "git")
        return done.stdout

    try:
        if not git("ls-files", "--", "__init__.py").strip():  # the package is no tracked part of a checkout
            return None
        commit = git("rev-parse", "HEAD").strip()
        here = Path(package_dir)
        changed = git("status", "--porcelain", "--", str(here), str(here.parent / "kernels")).strip()
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, too slow
        return None
    if len(commit) != 40:
        return None
    return {"commit": commit, "files_differ": bool(changed)}


def xrfgpu_command_line(argv=None):
    """The xrfgpu command line this process runs, ``["xrfgpu", *arguments]``, or None when it is not one.

    Parameters
    ----------
    argv : list of str, optional
        The process arguments (default ``sys.argv``).

    Returns
    -------
    list of str or None
        For the ``xrfgpu`` script (``argv[0]`` named ``xrfgpu``) or ``python -m xrfgpu`` (``argv[0]``
        ``.../xrfgpu/__main__.py``): the command with its arguments. For anything else (a notebook
        kernel, ``python -``, ``python -c``, a user's script, pytest): None, since ``sys.argv`` then
        says nothing about what xrfgpu was asked to do.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return None
    first = Path(str(argv[0]))
    script = first.name.lower() in ("xrfgpu", "xrfgpu.exe", "xrfgpu-script.py")
    module = first.name == "__main__.py" and first.parent.name == "xrfgpu"
    return ["xrfgpu", *map(str, argv[1:])] if (script or module) else None


def make_record(*, method, parameters, psf, backend, input_path=None, input_format=None, elements=None,
                command=None, call=None, timings=None, extra=None):
    """Assemble a provenance record (a JSON-serialisable dict).

    Parameters
    ----------
    method : str
        Restoration method (``"rl"``, ``"wiener"``, ...).
    parameters : dict
        Every parameter passed to the algorithm (iterations, background,
        regularisation weights, boundary, ...), per run.
    psf : dict
        Per element: ``{"sigma_um", "sigma_px", "source"}`` where ``source``
        says how σ was obtained (command line, PSF file and its own record,
        estimated from the map, blind kernel).
    backend : dict
        ``{"namespace", "device"}`` the work ran on.
    input_path : str or Path, optional
        Input file or folder; its SHA-256 is recorded.
    input_format : str, optional
    elements : list of str, optional
        Elements restored, in output order.
    command : list of str, optional
        The command line. Default: :func:`xrfgpu_command_line` (``sys.argv`` only when this process is
        the ``xrfgpu`` command); the record has no ``command`` when there is none.
    call : dict, optional
        For a record made by a library function: ``{"function": "xrfgpu.dask.restore_zarr",
        "arguments": {...}}``, recorded as ``call`` (the function's dotted name) and ``arguments``.
    timings : dict, optional
        Seconds per element and total.
    extra : dict, optional
        Anything else to record.

    Returns
    -------
    dict
        ``software``, ``xrfgpu_version``, ``xrfgpu_git_commit`` and ``xrfgpu_files_differ_from_commit``
        (:func:`xrfgpu_git_state`: the commit of the checkout xrfgpu runs from and whether its package or
        kernel files differ from it; both None outside a checkout), ``created``, ``command``, ``method``,
        ``parameters``, ``psf``, ``backend``, ``elements``, ``versions`` (:func:`software_versions`, the
        FFT library included), ``host``, and as given ``call``/``arguments``, ``input`` (path, format,
        SHA-256) with ``input_sha256``, ``timings_s`` and the ``extra`` entries.
    """
    from . import __version__

    git_state = xrfgpu_git_state()
    record = {
        "software": "xrfgpu",
        "xrfgpu_version": __version__,
        # the checkout's commit xrfgpu ran from and whether its files differed from it (None: not a checkout)
        "xrfgpu_git_commit": None if git_state is None else git_state["commit"],
        "xrfgpu_files_differ_from_commit": None if git_state is None else git_state["files_differ"],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command) if command is not None else xrfgpu_command_line(),
        "method": method,
        "parameters": parameters,
        "psf": psf,
        "backend": backend,
        "elements": list(elements) if elements is not None else None,
        "versions": software_versions(),
        "host": {"platform": platform.platform(), "machine": platform.machine()},
    }
    if record["command"] is None:
        del record["command"]  # not the xrfgpu command line: sys.argv would name the caller's program
    if call is not None:
        record["call"] = str(call["function"])
        record["arguments"] = call.get("arguments", {})
    if input_path is not None:
        p = Path(input_path)
        record["input"] = {"path": str(p.resolve()), "format": input_format, "sha256": sha256_of(p)}
        record["input_sha256"] = record["input"]["sha256"]
    if timings is not None:
        record["timings_s"] = timings
    if extra:
        record.update(extra)
    return record
