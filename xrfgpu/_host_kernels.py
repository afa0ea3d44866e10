"""The host dTV engine: ``kernels/host_dtv.cpp`` built by the host C++ compiler, on demand, for the NumPy engine.

:func:`xrfgpu._elementwise.dtv_denoise_numpy` (the dual iterations of the dTV denoiser on NumPy arrays)
runs each block of maps through ``xrfgpu_host_dtv_f32`` / ``_f64`` of ``kernels/host_dtv.cpp`` when
this library is available: the NumPy code's operations in its order, each rounded once, so its numbers
are that code's bit for bit, signs of zeros included (``tests/test_host_kernels.py``), with loops shaped
for the CPU (the projected dual computed once per pixel into a row buffer, boundaries peeled, one map's
iterations in cache) that the compiler vectorises. This module builds the file into a shared library
the first time it is asked for, loads it with :mod:`ctypes` (which releases the GIL during each call,
so the blocks run in parallel threads) and caches it on disk.

The flags (:data:`HOST_ENGINE_CXX_FLAGS`) are :data:`HOST_CXX_FLAGS`, with which the CUDA kernels'
host builds are proved bit-identical to the NumPy code (``tests/test_kernels_host.py``,
``tests/test_dtv_fused_kernels.py``): C++17, no FMA contraction (``-ffp-contract=off``), no
fast-math; then, after ``-fno-fast-math``, ``-fvect-cost-model=dynamic -fno-math-errno
-fno-trapping-math``. The first lets ``-O2`` vectorise where its cost model finds a gain (``-O3`` ran the
joint at the same speed, with the same bits, and took 12.5 s to build against 8.1 s). The last two
change no IEEE result of +, −, ×, ÷ or the square root: ``-fno-math-errno`` lets ``std::sqrt`` of a
negative number skip setting ``errno`` (it still returns NaN, so the compiler may use the vector square
root instruction, correctly rounded as the scalar one), and ``-fno-trapping-math`` lets the compiler
assume no floating-point exception traps (none is enabled in Python), so it may compute both sides of
``max(1, |u|)``'s select and vectorise it; neither reassociates, contracts or flushes denormals, which
``-ffast-math`` would. With GCC on x86-64 Linux the source asks for two clones of its driver
(``target_clones("avx2", "default")``): the loader's ifunc resolver picks the AVX2 one on CPUs that
have AVX2 and the baseline x86-64 one elsewhere, so the default build has no ``-march`` and one library
serves every x86-64 CPU; ``-ffp-contract=off`` holds in both (the test suite checks the disassembly for
FMA instructions) and both give the same bits.

Settings (environment variables, read when the library is first asked for):

``XRFGPU_HOST_KERNELS``
    ``0`` (or ``off``, ``false``, ``no``) turns the host engine off, ``1`` (or ``on``, ``true``, ``yes``)
    on; unset: :data:`DEFAULT_ON`, which is True. Measured on 27 November 2026 (2-core AMD EPYC, g++
    12, the AVX2 clone): whole joint restorations took 0.48–0.51 times as long as with the NumPy code,
    the same stacks and records (``benchmarks/joint_speed.py``; ``docs/performance.md``, "Host
    kernels"). Without a compiler, or where the build fails, the NumPy code runs.
``XRFGPU_HOST_CXX``
    The compiler (a name on ``PATH`` or a path); default ``g++``, else ``c++``.
``XRFGPU_CACHE_DIR``
    xrfgpu's cache folder (default the user cache folder: ``$XDG_CACHE_HOME/xrfgpu`` or
    ``~/.cache/xrfgpu``; ``~/Library/Caches/xrfgpu`` on macOS, ``%LOCALAPPDATA%\\xrfgpu`` on
    Windows); the libraries go to its ``host_kernels`` folder, never into the package or a checkout.

Cache: one library per key, the SHA-256 of the source, the flags and the compiler's path and
``--version`` text, named ``xrfgpu_host_<key>-<digest>.so`` where ``<digest>`` is the start of the
SHA-256 of the library file itself. A build (about 8 s with g++ 12 on one core) writes a temporary
file in the same folder and :func:`os.replace` s it into place, so a reader never sees a partial file
and two processes building at once both end with a whole library (the same name if the compiler is
deterministic, two names otherwise, each loadable). A file whose content does not match its name (a
truncated or corrupt copy) is never loaded: it is removed and the library rebuilt.

A failed build (no compiler, a compiler error, a library that does not load) is remembered for the
process with its reason (:func:`status`, shown by ``xrfgpu info``) and :func:`library` returns
None: the NumPy code runs, with the same numbers. No warning is raised: the results do not
change, only the time, and a warning would turn into an error in test suites run with warnings as
errors (this project's included); the reason is logged once (``logging``, level INFO) and
``xrfgpu info`` prints it.

Backends
--------
NumPy only (ctypes on C-contiguous NumPy buffers).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["HOST_CXX_FLAGS", "HOST_ENGINE_CXX_FLAGS", "HOST_SOURCES", "DEFAULT_ON", "library", "status", "cache_dir",
           "compiler"]

#: The host compiler's flags, those the bit-identity tests build with: C++17, optimised, no FMA
#: contraction (``-ffp-contract=off``: GCC contracts ``a * b + c`` by default), no fast-math (IEEE
#: division, square root, NaN and denormals), position independent, a shared library.
HOST_CXX_FLAGS = ("-x", "c++", "-std=c++17", "-O2", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared")

#: The host engine's flags: :data:`HOST_CXX_FLAGS`, then (after ``-fno-fast-math``) optimisation and the
#: two flags that let GCC vectorise the square root and the max select without changing an IEEE result
#: (see the module notes).
HOST_ENGINE_CXX_FLAGS = HOST_CXX_FLAGS + ("-fvect-cost-model=dynamic", "-fno-math-errno", "-fno-trapping-math")

#: Whether the host engine runs when ``XRFGPU_HOST_KERNELS`` is unset: on, since every whole joint run measured
#: took about half the time with it, with the same numbers (see the module notes).
DEFAULT_ON = True

#: The source file of the host engine (``kernels/``).
HOST_SOURCES = ("host_dtv.cpp",)

#: Seconds a build may take before it counts as failed.
BUILD_TIMEOUT_S = 180

_LOG = logging.getLogger(__name__)
_LOCK = threading.Lock()
_STATE: dict = {}  # settings key -> (library or None, reason)

_P, _LL, _I = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_int
# function name -> argument types; "T" is a scalar of the array dtype (float or double)
_SIGNATURES = {
    "xrfgpu_host_dtv": [_P, _P, _P, _P, _P, _P, _LL, _P, _I, _P, _LL, _I, _P, _LL, "T", _I, _P, _LL, _LL, _LL, _I],
}


def _enabled() -> bool:
    value = os.environ.get("XRFGPU_HOST_KERNELS", "").strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    return DEFAULT_ON


def _off_reason() -> str:
    if os.environ.get("XRFGPU_HOST_KERNELS", "").strip():
        return f"off (XRFGPU_HOST_KERNELS={os.environ['XRFGPU_HOST_KERNELS'].strip()})"
    return "off by default; XRFGPU_HOST_KERNELS=1 turns it on" if not DEFAULT_ON else "off"


def compiler() -> str | None:
    """The host C++ compiler: ``XRFGPU_HOST_CXX`` (resolved on ``PATH``), else ``g++`` or ``c++``; None if none."""
    wanted = os.environ.get("XRFGPU_HOST_CXX", "").strip()
    if wanted:
        return shutil.which(wanted)
    return shutil.which("g++") or shutil.which("c++")


def cache_dir() -> Path:
    """The folder of the host libraries: ``<xrfgpu cache>/host_kernels`` (see the module notes)."""
    root = os.environ.get("XRFGPU_CACHE_DIR", "").strip()
    if root:
        base = Path(root).expanduser()
    elif sys.platform == "win32":  # pragma: no cover - not run here
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "xrfgpu"
    elif sys.platform == "darwin":  # pragma: no cover - not run here
        base = Path.home() / "Library" / "Caches" / "xrfgpu"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache") / "xrfgpu"
    return base / "host_kernels"


def _sources():
    """``(kernel folder, [(name, bytes)])`` of :data:`HOST_SOURCES`."""
    from .cuda import kernel_dir

    folder = kernel_dir()
    return folder, [(name, (folder / name).read_bytes()) for name in HOST_SOURCES]


def _compiler_version(cxx: str) -> str:
    proc = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{cxx} --version failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}")
    return proc.stdout


def _build_key(cxx: str, sources) -> str:
    h = hashlib.sha256()
    for name, text in sources:
        h.update(name.encode() + b"\0" + hashlib.sha256(text).digest())
    h.update("\0".join(HOST_ENGINE_CXX_FLAGS).encode() + b"\0" + cxx.encode() + b"\0")
    h.update(_compiler_version(cxx).encode())
    return h.hexdigest()[:24]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


_SUFFIX = ".dll" if sys.platform == "win32" else ".so"


def _cached(folder: Path, key: str) -> Path | None:
    """A library of ``key`` whose content matches its name; mismatching files are removed."""
    for path in sorted(folder.glob(f"xrfgpu_host_{key}-*{_SUFFIX}")):
        digest = path.name[len(f"xrfgpu_host_{key}-"):-len(_SUFFIX)]
        try:
            if _digest(path) == digest:
                return path
        except OSError:
            continue
        try:  # a partial or corrupt copy: never loaded
            path.unlink()
        except OSError:
            pass
    return None


def _compile(cxx: str, kdir: Path, folder: Path, key: str) -> Path:
    """Build into a temporary file beside the cache entry, then rename it into place."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".xrfgpu_host_{key}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp)
    try:
        cmd = [cxx, *HOST_ENGINE_CXX_FLAGS, "-o", str(tmp)] + [str(kdir / name) for name in HOST_SOURCES]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
        if tmp.stat().st_size == 0:
            raise RuntimeError(f"{cxx} wrote an empty library")
        path = folder / f"xrfgpu_host_{key}-{_digest(tmp)}{_SUFFIX}"
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        return path
    finally:
        if tmp.exists():
            tmp.unlink()


def _load(path: Path):
    lib = ctypes.CDLL(str(path))  # CDLL (not PyDLL): the GIL is released during each call
    for name, sig in _SIGNATURES.items():
        for suffix, scalar in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [scalar if s == "T" else s for s in sig]
            fn.restype = ctypes.c_int
    return lib


def _settings():
    return (os.environ.get("XRFGPU_HOST_KERNELS"), os.environ.get("XRFGPU_HOST_CXX"),
            os.environ.get("XRFGPU_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"), os.environ.get("PATH"))


def _obtain():
    """``(library or None, reason, path or None, compiled: bool)`` for the current settings."""
    if not _enabled():
        return None, _off_reason(), None, False
    cxx = compiler()
    if cxx is None:
        wanted = os.environ.get("XRFGPU_HOST_CXX", "").strip()
        return None, (f"compiler {wanted!r} (XRFGPU_HOST_CXX) not found" if wanted else
                      "no host C++ compiler (g++ or c++) on PATH; set XRFGPU_HOST_CXX"), None, False
    try:
        kdir, sources = _sources()
        key = _build_key(cxx, sources)
        folder = cache_dir()
        path = _cached(folder, key) if folder.is_dir() else None
        compiled = path is None
        if compiled:
            path = _compile(cxx, kdir, folder, key)
        return _load(path), f"built with {cxx}" if compiled else f"loaded from the cache ({cxx})", path, compiled
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as exc:
        return None, f"host build failed: {type(exc).__name__}: {exc}", None, False


def library():
    """The host build of :data:`HOST_SOURCES` (a :class:`ctypes.CDLL`), or None (see :func:`status`).

    Built (or loaded from the cache) on the first call for the current settings and remembered for
    the process, failures included: a failed build is not retried until a setting changes.
    """
    key = _settings()
    entry = _STATE.get(key)
    if entry is None:
        with _LOCK:
            entry = _STATE.get(key)
            if entry is None:
                lib, reason, path, compiled = _obtain()
                entry = _STATE[key] = {"library": lib, "reason": reason, "path": path, "compiled": compiled}
                if lib is None:
                    _LOG.info("xrfgpu host kernels not used: %s", reason)
    return entry["library"]


def status(build: bool = False) -> dict:
    """What the host engine uses, for ``xrfgpu info``.

    Parameters
    ----------
    build : bool
        Build or load the library if this process has not (default False: only report; nothing is
        compiled, so ``xrfgpu info`` stays fast).

    Returns
    -------
    dict
        ``state`` (``"loaded"``, ``"cached"`` (built earlier, not loaded by this process),
        ``"not built"``, ``"off"``, ``"unavailable"``), ``reason``, ``path`` (the library or None),
        ``cache_dir``, ``compiler`` (path or None), ``flags``.
    """
    if build:
        library()
    out = {"cache_dir": str(cache_dir()), "compiler": compiler(), "flags": list(HOST_ENGINE_CXX_FLAGS), "path": None}
    entry = _STATE.get(_settings())
    if entry is not None:
        state = "loaded" if entry["library"] is not None else "off" if not _enabled() else "unavailable"
        out.update(state=state, reason=entry["reason"], path=None if entry["path"] is None else str(entry["path"]))
        return out
    if not _enabled():
        return dict(out, state="off", reason=_off_reason())
    if out["compiler"] is None:
        return dict(out, state="unavailable", reason=_obtain()[1])
    try:
        key = _build_key(out["compiler"], _sources()[1])
        path = _cached(cache_dir(), key) if cache_dir().is_dir() else None
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return dict(out, state="unavailable", reason=f"{type(exc).__name__}: {exc}")
    if path is not None:
        return dict(out, state="cached", reason="built earlier; loaded on first use", path=str(path))
    return dict(out, state="not built", reason=f"compiled on first use with {out['compiler']}")


def _forget():
    """Forget every remembered build (tests)."""
    with _LOCK:
        _STATE.clear()
