"""Where a restoration runs: ``device="auto" | "cpu" | "gpu"``.

Maps may be passed as NumPy arrays and restored on the GPU; the result comes
back in the caller's namespace (NumPy in, NumPy out). The rules:

``"cpu"``
    Run on the host. CuPy input is copied to NumPy for the run.
``"gpu"``
    Run on the current CUDA device with CuPy. Host input (NumPy, or any
    namespace that exports DLPack to the CPU) is copied there and the
    result copied back. Raises :class:`GPUUnavailableError` with the reason
    when CuPy is missing or no device is usable.
``"auto"``
    CuPy input stays on its GPU; NumPy input goes to the GPU when CuPy and a
    device are usable, else stays on the CPU; other namespaces (for example
    ``array_api_strict``) run where they are.

``import xrfgpu.device`` never imports CuPy; the checks do, on first call.
"""

from __future__ import annotations

import functools

from ._backend import array_namespace, is_cupy_namespace, is_numpy_namespace, to_numpy

__all__ = [
    "DEVICES",
    "GPUUnavailableError",
    "require_cupy",
    "gpu_available",
    "gpu_status",
    "check_device",
    "resolve_device",
    "to_compute",
    "to_caller",
]

DEVICES = ("auto", "cpu", "gpu")


class GPUUnavailableError(RuntimeError):
    """CuPy was asked for but is not installed, or no CUDA device is usable."""


@functools.lru_cache(maxsize=1)
def _probe():
    """(cupy module or None, reason string or None), probed once per process."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library failing to load
        return None, (
            f"CuPy is not installed or failed to import ({type(exc).__name__}: {exc}); "
            "install it with `pip install xrfgpu[cuda12]` (or cuda13) on a machine with an NVIDIA GPU"
        )
    try:
        usable = bool(cupy.is_available())
    except Exception as exc:  # pragma: no cover - driver errors
        usable, detail = False, f"{type(exc).__name__}: {exc}"
    else:
        detail = "cupy.is_available() is False"
    if not usable:
        return None, f"CuPy {cupy.__version__} is installed but no CUDA device is usable ({detail})"
    return cupy, None


def require_cupy():
    """Return the ``cupy`` module, or raise :class:`GPUUnavailableError` saying why not."""
    cupy, reason = _probe()
    if cupy is None:
        raise GPUUnavailableError(reason)
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and a CUDA device is usable."""
    return _probe()[0] is not None


def gpu_status() -> str:
    """One line: the current CUDA device and its free memory, or why there is none."""
    cupy, reason = _probe()
    if cupy is None:
        return reason
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    free, total = dev.mem_info
    return f"device {dev.id}: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free"


def check_device(device: str) -> str:
    """Validate a ``device`` argument; returns it lower-cased."""
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device.lower()


def resolve_device(device: str, *arrays) -> str:
    """``"cpu"`` or ``"gpu"``: where a call on ``arrays`` runs (module docstring).

    Raises
    ------
    ValueError
        Unknown ``device``.
    GPUUnavailableError
        ``device="gpu"`` without CuPy or a usable device.
    """
    device = check_device(device)
    xp = array_namespace(*arrays)
    if device == "gpu":
        require_cupy()
        return "gpu"
    if device == "cpu":
        return "cpu"
    if is_cupy_namespace(xp):
        return "gpu"
    if is_numpy_namespace(xp) and gpu_available():
        return "gpu"
    return "cpu"


def to_compute(array, where: str):
    """``array`` in the namespace that runs on ``where`` (``"cpu"``/``"gpu"``).

    ``"gpu"``: a CuPy array (copied from the host when needed). ``"cpu"``:
    CuPy arrays are copied to NumPy; host arrays of any namespace are
    returned unchanged (array_api_strict stays array_api_strict).
    """
    xp = array_namespace(array)
    if where == "gpu":
        if is_cupy_namespace(xp):
            return array
        return require_cupy().asarray(to_numpy(array))
    if is_cupy_namespace(xp):
        return to_numpy(array)
    return array


def to_caller(result, like):
    """``result`` moved back to the namespace (and device) of the caller's array ``like``."""
    xp_like = array_namespace(like)
    xp_res = array_namespace(result)
    if xp_res is xp_like or xp_res.__name__ == xp_like.__name__:
        return result
    if is_cupy_namespace(xp_like):
        cupy = require_cupy()
        with cupy.cuda.Device(like.device.id):
            return cupy.asarray(to_numpy(result))
    host = to_numpy(result)
    if is_numpy_namespace(xp_like):
        return host
    return xp_like.asarray(host)
