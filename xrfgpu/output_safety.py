"""Where xrfgpu may write: outputs never land on, in or around an input, and appear whole or not at all.

Rules (checked by :func:`check_outputs`, enforced by :func:`write_outputs`):

1. An output is never an input, an input's sidecar (``scan.npy.json``), a
   folder that holds an input, a path inside an input folder, or the
   current working folder (or one that holds it).
2. An existing path is replaced only with ``overwrite=True``, and then only
   when it is an earlier xrfgpu output, recognised by its provenance record
   (the JSON sidecar, the record inside the TIFF/HDF5/NPZ, the figure's
   ``Software``/``Creator`` entry, the PSF table's first line); a folder
   only when it holds nothing but the files its ``xrfgpu.json`` lists.
3. Without ``overwrite`` a new output is published with no-replace
   semantics: :func:`os.link` of the finished temporary file (or
   ``renameat2(RENAME_NOREPLACE)``, or an ``O_EXCL`` reservation where
   neither works), so of two writers racing for one name exactly one wins
   and the other gets :class:`OutputExistsError`.
4. The files of one output (a map and its sidecar) are published together
   under a lock on their folder with SIGINT/SIGTERM/SIGHUP blocked: both
   land or, on any error, neither (replaced files are put back).
5. Temporary files and folders are hidden and named
   ``.<target>.xrfgpu-tmp-<host>-<pid>-<token>``; they end in no map
   suffix, so no xrfgpu reader takes them for input (folder readers also
   skip them by :func:`is_hidden_or_temp`). They are removed on error, on
   SIGTERM, SIGINT and SIGHUP (signal handlers, chained to any handler
   already set) and at interpreter exit; those left by a killed process
   (SIGKILL, power loss) are removed by the next write into that folder
   once their process is gone (or after a day when written from another
   host).

Messages name the switch that allows replacing as the caller spells it: ``overwrite=True`` for a
library call (:func:`xrfgpu.io.write_maps`, :func:`xrfgpu.dask.restore_zarr`, ...), ``--overwrite``
while the command line runs (it says so with :func:`overwrite_named`).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = [
    "Output",
    "OutputExistsError",
    "UnsafeOutputError",
    "check_outputs",
    "clean_stale_temps",
    "is_hidden_or_temp",
    "is_temp_name",
    "is_xrfgpu_output",
    "overwrite_named",
    "temp_name",
    "write_outputs",
]

TEMP_MARK = ".xrfgpu-tmp-"
STALE_OTHER_HOST_S = 24 * 3600.0
_TEMP_RE = re.compile(re.escape(TEMP_MARK) + r"([0-9a-f]{8})-(\d+)-[0-9a-z]+$")
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class UnsafeOutputError(ValueError):
    """An output path that would destroy or change an input, or replace a file xrfgpu did not write."""


class OutputExistsError(FileExistsError):
    """The output exists and ``overwrite`` was not given (or another run created it first)."""


#: how messages name the switch that allows replacing an earlier output: the library's keyword, unless a
#: caller with its own spelling (the command line's ``--overwrite``) says otherwise (:func:`overwrite_named`)
_OVERWRITE_NAME = contextvars.ContextVar("xrfgpu_overwrite_name", default="overwrite=True")


@contextlib.contextmanager
def overwrite_named(spelling):
    """Within the block, refusals name the overwrite switch as ``spelling`` (e.g. ``"--overwrite"``).

    Parameters
    ----------
    spelling : str
        How the caller's users ask to replace an earlier output; outside the
        block messages say ``overwrite=True``, the keyword the library's writers take.

    Examples
    --------
    >>> from xrfgpu.output_safety import overwrite_named
    >>> with overwrite_named("--overwrite"):
    ...     pass  # check_outputs, write_outputs: "... exists; pass --overwrite to replace it"
    """
    token = _OVERWRITE_NAME.set(str(spelling))
    try:
        yield
    finally:
        _OVERWRITE_NAME.reset(token)


# --------------------------------------------------------------------------- temporary names


def _host_tag():
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temp_name(target_name):
    """Hidden temporary name for ``target_name``: ``.<name>.xrfgpu-tmp-<host>-<pid>-<token>``.

    A long ``target_name`` is cut so the whole name stays within the usual
    255-byte limit of a file name.
    """
    tail = f"{TEMP_MARK}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"
    stem = str(target_name)
    while len(os.fsencode("." + stem + tail)) > 255:
        stem = stem[:-1]
    return f".{stem}{tail}"


def is_temp_name(name):
    """True for a name :func:`temp_name` makes (a file or folder xrfgpu is writing or was killed writing)."""
    return str(name).startswith(".") and _TEMP_RE.search(str(name)) is not None


def is_hidden_or_temp(name):
    """True for names that are never element maps: hidden files (``.x``, macOS ``._x``) and xrfgpu temporaries."""
    return str(name).startswith(".") or is_temp_name(name)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temps(folder):
    """Remove xrfgpu temporaries in ``folder`` whose writer is gone; returns what was removed.

    A temporary is stale when it was made on this host by a process that no
    longer exists, or on another host more than a day ago. Those of live
    processes (another run writing now) are left alone.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    me = _host_tag()
    now = time.time()
    for entry in entries:
        m = _TEMP_RE.search(entry.name)
        if m is None or not entry.name.startswith("."):
            continue
        host, pid = m.group(1), int(m.group(2))
        if host == me:
            stale = pid != os.getpid() and not _pid_alive(pid)
        else:
            try:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_OTHER_HOST_S
            except OSError:
                stale = False
        if stale:
            _remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def _remove(path):
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass


# --------------------------------------------------------------------------- cleanup on signals and exit

_LIVE: set = set()
_LIVE_LOCK = threading.RLock()
_PREVIOUS: dict = {}
_USERS = 0
_PUBLISHING = 0
_DEFERRED: list = []


def _remove_live():
    with _LIVE_LOCK:
        paths = list(_LIVE)
        _LIVE.clear()
    for p in paths:
        _remove(p)


atexit.register(_remove_live)


def _on_signal(signum, frame):
    if _PUBLISHING:  # a signal taken by another thread runs here even while ours is blocked: finish first
        _DEFERRED.append(signum)
        return
    _remove_live()
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # e.g. Python's SIGINT handler raises KeyboardInterrupt
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)  # die of the signal, as without xrfgpu
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def _cleanup_on_signals():
    """Remove registered temporaries on SIGINT/SIGTERM/SIGHUP while the block runs (main thread only)."""
    global _USERS
    main = threading.current_thread() is threading.main_thread()
    if main:
        with _LIVE_LOCK:
            if _USERS == 0:
                for s in _SIGNALS:
                    try:
                        previous = signal.getsignal(s)
                        if previous == signal.SIG_IGN:
                            continue
                        _PREVIOUS[s] = previous
                        signal.signal(s, _on_signal)
                    except (ValueError, OSError):  # pragma: no cover - not the main interpreter
                        _PREVIOUS.pop(s, None)
            _USERS += 1
    try:
        yield
    finally:
        if main:
            with _LIVE_LOCK:
                _USERS -= 1
                if _USERS == 0:
                    for s, previous in list(_PREVIOUS.items()):
                        with contextlib.suppress(ValueError, OSError, TypeError):
                            signal.signal(s, previous if previous is not None else signal.SIG_DFL)
                    _PREVIOUS.clear()


@contextlib.contextmanager
def _signals_blocked():
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends (publishing must not stop half-way).

    The signals are masked in this thread, and a handler run meanwhile (for
    a signal another thread received) is deferred to the end of the block.
    """
    global _PUBLISHING
    block = getattr(signal, "pthread_sigmask", None)
    old = block(signal.SIG_BLOCK, set(_SIGNALS)) if block is not None else None
    _PUBLISHING += 1
    try:
        yield
    finally:
        _PUBLISHING -= 1
        if block is not None:
            block(signal.SIG_SETMASK, old)
        if not _PUBLISHING and _DEFERRED:
            signum = _DEFERRED[0]
            _DEFERRED.clear()
            _on_signal(signum, None)


@contextlib.contextmanager
def _folder_locks(folders):
    """Exclusive ``flock`` on each folder (sorted), so xrfgpu writers into one folder publish one at a time."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fds = []
    held = set()  # (device, inode) of each folder locked: one folder under two names is locked once
    try:
        # one folder may come under two names ("." and its absolute path, a symlink): a second flock
        # on a second descriptor of a folder this process holds would wait for itself forever
        for folder in sorted({os.path.realpath(str(f)) for f in folders}):
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in held:
                os.close(fd)
                continue
            held.add((st.st_dev, st.st_ino))
            fds.append(fd)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# --------------------------------------------------------------------------- no-replace moves


def _renameat2_noreplace(src, dst):
    """``renameat2(src, dst, RENAME_NOREPLACE)``; NotImplementedError where the C library or file system lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        raise NotImplementedError from None
    at_fdcwd, rename_noreplace = -100, 1
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(str(src)), at_fdcwd, os.fsencode(str(dst)), rename_noreplace) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1)):
        raise NotImplementedError
    raise OSError(err, os.strerror(err), str(dst))


def _exists_error(dst):
    return OutputExistsError(
        f"output {str(dst)!r} exists (another run may have written it first); pass {_OVERWRITE_NAME.get()} "
        "to replace it"
    )


def _move_noreplace(src, dst, *, folder):
    """Move the finished temporary ``src`` to ``dst`` only if ``dst`` does not exist (atomically)."""
    if os.name == "nt":  # pragma: no cover - os.rename never replaces on Windows
        try:
            os.rename(src, dst)
        except FileExistsError:
            raise _exists_error(dst) from None
        return
    if not folder:
        try:
            os.link(src, dst, follow_symlinks=False)
        except FileExistsError:
            raise _exists_error(dst) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EMLINK, errno.EXDEV, getattr(errno, "ENOTSUP", -1),
                                 getattr(errno, "EOPNOTSUPP", -1), errno.EACCES):
                raise
        else:
            os.unlink(src)
            return
    try:
        _renameat2_noreplace(src, dst)
        return
    except FileExistsError:
        raise _exists_error(dst) from None
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise _exists_error(dst) from None
        raise
    except NotImplementedError:
        pass
    # Last resort: reserve the name exclusively, then rename over the reservation.
    try:
        if folder:
            os.mkdir(dst)
        else:
            os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise _exists_error(dst) from None
    os.replace(src, dst)


# --------------------------------------------------------------------------- recognising xrfgpu outputs


def _json_record(path):
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("xrfgpu"), dict) else None


def _sidecar_of(path):
    return path.with_name(path.name + ".json")


def _png_says_xrfgpu(path):
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return False
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind in (b"tEXt", b"iTXt", b"zTXt") and length < 1 << 16:
                data = fh.read(length)
                key, _, value = data.partition(b"\0")
                if key == b"Software" and b"xrfgpu" in value:
                    return True
                fh.seek(4, 1)
            elif kind == b"IEND":
                return False
            else:
                fh.seek(length + 4, 1)


def _bytes_say_xrfgpu(path, pattern):
    """The Creator entry Matplotlib writes for ``metadata={"Creator": "xrfgpu ..."}``, near either end of the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if re.search(pattern, fh.read(1 << 16)):
            return True
        if size > 1 << 16:
            fh.seek(size - (1 << 16))
            return re.search(pattern, fh.read()) is not None
    return False


def _zarr_attrs_say_xrfgpu(path):
    """A Zarr store (v3 ``zarr.json`` or v2 ``.zattrs``) whose attributes hold an ``"xrfgpu"`` record."""
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            doc = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        attrs = doc.get(key) if key else doc
        if isinstance(attrs, dict) and isinstance(attrs.get("xrfgpu"), dict):
            return True
    return False


def _file_record_says_xrfgpu(path):
    """The provenance record inside a file xrfgpu writes (no sidecar needed)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                texts = [page.description or ""]
                software = page.tags.get("Software")
                if software is not None:
                    texts.append(str(software.value))
                return any('"xrfgpu"' in t or t.startswith("xrfgpu") for t in texts)
        if suffix in (".h5", ".hdf5", ".hdf", ".h50", ".nxs", ".he5"):
            import h5py

            with h5py.File(path, "r") as f:
                return "xrfgpu" in f and "provenance" in f["xrfgpu"].attrs
        if suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as z:
                return "__xrfgpu__" in z.files
        if suffix == ".png":
            return _png_says_xrfgpu(path)
        if suffix == ".pdf":
            return _bytes_say_xrfgpu(path, rb"/Creator \(xrfgpu ")
        if suffix == ".svg":
            return _bytes_say_xrfgpu(path, rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>xrfgpu ")
        if suffix == ".toml":
            with open(path, "rb") as fh:
                return fh.readline().startswith(b"# xrfgpu")
        if suffix == ".json":
            return _json_record(path) is not None
    except Exception:  # noqa: BLE001 - an unreadable file is simply not recognised
        return False
    return False


def is_xrfgpu_output(path):
    """(True, "") if ``path`` is an earlier xrfgpu output, else (False, why not).

    A file is recognised by its sidecar ``<file>.json`` holding an
    ``"xrfgpu"`` record, or by the record inside it; a folder by its
    ``xrfgpu.json`` and by holding nothing but the files that record lists.
    """
    path = Path(path)
    if path.is_symlink():
        return False, f"{str(path)!r} is a symbolic link"
    if path.is_dir():
        if _zarr_attrs_say_xrfgpu(path):
            return True, ""
        record = _json_record(path / "xrfgpu.json")
        if record is None:
            return False, (f"folder {str(path)!r} has no xrfgpu.json record and is no Zarr store with an xrfgpu "
                           "record in its attributes, so xrfgpu did not write it")
        listed = record["xrfgpu"].get("files") or {}
        allowed = {"xrfgpu.json", *(str(v) for v in (listed.values() if isinstance(listed, dict) else listed))}
        foreign = sorted(p.name for p in path.iterdir() if p.name not in allowed and not is_temp_name(p.name))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            return False, f"folder {str(path)!r} holds files xrfgpu did not write ({shown})"
        return True, ""
    if not path.is_file():
        return False, f"{str(path)!r} is not a regular file"
    if _file_record_says_xrfgpu(path):
        return True, ""
    suffix = path.suffix.lower()
    if suffix not in RECORD_INSIDE_SUFFIXES:
        # a format that holds no record of its own (.npy, CSV/TXT): its sidecar speaks for it, if the file
        # still has the shape that record says
        sidecar = _json_record(_sidecar_of(path))
        if sidecar is not None:
            if _shape_agrees_with_record(path, sidecar["xrfgpu"]):
                return True, ""
            return False, (f"{str(path)!r} does not have the shape its xrfgpu sidecar "
                           f"{str(_sidecar_of(path))!r} records, so it was replaced after xrfgpu wrote it")
    elif _json_record(_sidecar_of(path)) is not None:
        return False, (f"{str(path)!r} carries no xrfgpu provenance record inside it, though xrfgpu writes one "
                       f"in every {suffix} file: it was replaced after xrfgpu wrote it (its sidecar "
                       f"{str(_sidecar_of(path))!r} is left from the earlier run)")
    return False, f"{str(path)!r} carries no xrfgpu provenance record, so xrfgpu did not write it"


#: suffixes of the files xrfgpu writes with its provenance record inside (TIFF description, HDF5 attribute,
#: NPZ member, PNG text, PDF/SVG creator, TOML comment, JSON): such a file is recognised by that record
#: alone. A sidecar beside one whose record is gone was left by an earlier run, and the file is the user's.
RECORD_INSIDE_SUFFIXES = (".tif", ".tiff", ".h5", ".hdf5", ".hdf", ".h50", ".nxs", ".he5", ".npz", ".png", ".pdf",
                          ".svg", ".toml", ".json")


def _shape_agrees_with_record(path, record):
    """Whether a file without a record of its own (.npy, CSV/TXT) has the shape its sidecar ``record`` gives:
    (rows, cols) for one map, (n, rows, cols) for a stack in one .npy. A file that cannot be read does not;
    a record that gives no map shape (a table's sidecar) has nothing to compare, and the sidecar decides."""
    shape = record.get("shape")
    elements = record.get("elements") or []
    if not (isinstance(shape, list) and len(shape) == 2):
        return True
    expected = tuple(int(n) for n in shape)
    try:
        if path.suffix.lower() == ".npy":
            import numpy as np

            found = tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
            return found == expected or (len(elements) > 1 and found == (len(elements),) + expected)
        rows, cols = 0, None
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                rows += 1
                n = len([v for v in re.split(r"[,\s]+", line.strip()) if v != ""])
                if cols is None:
                    cols = n
                elif n != cols:
                    return False
        return (rows, cols) == expected
    except (OSError, ValueError, UnicodeDecodeError):
        return False


# --------------------------------------------------------------------------- the checks


def _real(path):
    # realpath follows each link before the ".." after it, as the file system does; os.path.abspath would
    # first drop "link/..", so "link/../x" would be checked in the working folder and written elsewhere
    return Path(os.path.realpath(os.fspath(path)))


def _inside(child, parent):
    """True if ``child`` is ``parent`` or lies below it (resolved paths)."""
    try:
        child.relative_to(parent)
    except ValueError:
        return False
    return True


def _protected(inputs):
    """Resolved input paths with their sidecars: (path, is_folder, label)."""
    out = []
    for p in inputs:
        if p is None:
            continue
        p = Path(p)
        real = _real(p)
        out.append((real, p.is_dir(), str(p)))
        if not p.is_dir():
            out.append((_real(_sidecar_of(p)), False, f"{str(_sidecar_of(p))} (the sidecar of input {str(p)!r})"))
    return out


def check_outputs(outputs, inputs=(), *, overwrite=False):
    """Refuse output paths that would touch an input or replace a file xrfgpu did not write.

    Parameters
    ----------
    outputs : sequence of str or Path
        Every path the command will create (map, sidecar, figure, PSF table).
    inputs : sequence of str or Path
        Every file or folder the command reads (``None`` entries ignored).
    overwrite : bool
        Whether existing earlier xrfgpu outputs may be replaced.

    Raises
    ------
    UnsafeOutputError
        An output is, holds or lies inside an input (or an input's sidecar),
        is or holds the current folder, is named twice, its folder is
        missing or not writable, or it exists and is not an earlier xrfgpu
        output.
    OutputExistsError
        An output exists and ``overwrite`` is false.
    """
    protected = _protected(inputs)
    cwd = _real(os.getcwd())
    seen = {}
    for out in outputs:
        out = Path(out)
        real = _real(out)
        if real in seen:
            raise UnsafeOutputError(f"outputs {seen[real]!r} and {str(out)!r} are the same path; give different names")
        seen[real] = str(out)
        if real.parent.is_dir() and len(os.fsencode(real.name)) > _name_max(real.parent):
            raise UnsafeOutputError(f"output {str(out)!r}: the name is longer than this file system allows "
                                    f"({_name_max(real.parent)} bytes)")
        for inp, is_folder, label in protected:
            same = real == inp or (out.exists() and inp.exists() and _samefile(out, inp))
            if same:
                if " (the sidecar" in label:
                    what = label
                else:
                    what = f"the input {'folder' if is_folder else 'file'} {label!r}"
                raise UnsafeOutputError(f"output {str(out)!r} is {what}; choose another output name")
            if _inside(inp, real):
                raise UnsafeOutputError(
                    f"output {str(out)!r} holds the input {label!r}; writing there would replace it. "
                    "Choose a new output name")
            if is_folder and _inside(real, inp):
                raise UnsafeOutputError(
                    f"output {str(out)!r} lies inside the input folder {label!r}; a later run would read it "
                    "as input. Write it elsewhere")
        if _inside(cwd, real):
            raise UnsafeOutputError(
                f"output {str(out)!r} is the current folder (or holds it); give a new file or folder name")
        # the folder the output lands in: a symbolic link's target's (a dangling link's folder may not exist)
        named, folder = str(out), str(out.parent)
        if os.path.islink(out):
            named, folder = f"{str(out)!r} (a symbolic link to {os.readlink(out)!r})", str(real.parent)
        else:
            named = repr(named)
        if not real.parent.is_dir():
            state = "is not a folder" if real.parent.exists() else "does not exist"
            raise UnsafeOutputError(f"output {named}: {folder!r} {state}")
        if not os.access(real.parent, os.W_OK | os.X_OK):  # a read-only mount: say so before the work
            raise UnsafeOutputError(f"output {named}: folder {folder!r} is not writable (a read-only "
                                    "file system, or no permission); choose another folder")
        if os.path.lexists(out):
            if not overwrite:
                raise OutputExistsError(f"output {str(out)!r} exists; pass {_OVERWRITE_NAME.get()} to replace it")
            ok, why = is_xrfgpu_output(out)
            if not ok:
                raise UnsafeOutputError(
                    f"output {str(out)!r} exists and {_OVERWRITE_NAME.get()} replaces only earlier xrfgpu outputs: "
                    f"{why}. "
                    "Move it away or choose another output name")


def _name_max(folder):
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - Windows, odd file systems
        return 255


def _samefile(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --------------------------------------------------------------------------- writing


@dataclass
class Output:
    """One path to create: ``write(tmp)`` fills a temporary file (or, with ``folder``, an empty temporary folder)."""

    path: Path
    write: Callable
    folder: bool = False


def _umask_mode(mode):
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def _new_temp(target, *, folder):
    parent = Path(target).parent
    for _ in range(100):
        tmp = parent / temp_name(Path(target).name)
        try:
            if folder:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write output {str(target)!r}: folder {str(parent)!r}: "
                                     f"{exc.strerror or exc}") from None
        with _LIVE_LOCK:
            _LIVE.add(tmp)
        return tmp
    raise FileExistsError(f"cannot create a temporary name beside {str(target)!r}")  # pragma: no cover


def _forget(path):
    with _LIVE_LOCK:
        _LIVE.discard(path)


def _publish(staged, *, overwrite):
    """Move every finished temporary to its target; on failure undo the ones already moved.

    An earlier output being replaced is kept under a temporary name (a hard
    link for a file, the moved folder) until every target is in place, and
    put back if any step fails.
    """
    done = []  # (target, backup or None): targets this call has placed
    pending = None  # (target, backup, moved_away) of the item being placed
    try:
        for tmp, out in staged:
            target = Path(out.path)
            if overwrite and os.path.lexists(target):
                backup = target.parent / temp_name(target.name)
                with _LIVE_LOCK:
                    _LIVE.add(backup)
                if out.folder or target.is_dir():
                    os.rename(target, backup)
                    pending = (target, backup, True)
                    _move_noreplace(tmp, target, folder=out.folder)
                else:
                    try:
                        os.link(target, backup, follow_symlinks=False)
                    except OSError:
                        _forget(backup)
                        backup = None
                    pending = (target, backup, False)
                    os.replace(tmp, target)
                done.append((target, backup))
            else:
                _move_noreplace(tmp, target, folder=out.folder)
                done.append((target, None))
            pending = None
            _forget(tmp)
    except BaseException:
        if pending is not None:
            target, backup, moved_away = pending
            if backup is not None:
                if moved_away and not os.path.lexists(target):
                    with contextlib.suppress(OSError):
                        os.rename(backup, target)
                _remove(backup)
                _forget(backup)
        for target, backup in reversed(done):
            if backup is not None and os.path.lexists(backup):
                with contextlib.suppress(OSError):
                    if os.path.isdir(backup) and not os.path.islink(backup):
                        _remove(target)
                        os.rename(backup, target)
                    else:
                        os.replace(backup, target)  # the earlier file is back in one step
                _forget(backup)
            else:
                _remove(target)
        raise
    for _target, backup in done:
        if backup is not None:
            _remove(backup)
            _forget(backup)


def write_outputs(outputs, *, inputs=(), overwrite=False, check=True):
    """Write a set of outputs (e.g. a map and its sidecar) safely: all land or none does.

    Parameters
    ----------
    outputs : sequence of Output
    inputs : sequence of str or Path
        Files and folders read by the command; no output may touch them.
    overwrite : bool
        Replace earlier xrfgpu outputs (only those; see :func:`check_outputs`).
    check : bool
        Apply :func:`check_outputs`. ``False`` (with ``overwrite=True``)
        gives plain atomic replacement, for files a command owns outright.

    Returns
    -------
    list of Path
        The paths written, in the order given.

    Raises
    ------
    UnsafeOutputError, OutputExistsError
        See :func:`check_outputs`; raised before any writing, and again
        (without writing) if another run created an output meanwhile.
    """
    outputs = [Output(Path(o.path), o.write, bool(o.folder)) for o in outputs]
    paths = [o.path for o in outputs]
    if check:
        check_outputs(paths, inputs, overwrite=overwrite)
    parents = {o.path.parent for o in outputs}
    for parent in parents:
        clean_stale_temps(parent)
    staged = []
    with _cleanup_on_signals():
        try:
            for o in outputs:
                tmp = _new_temp(o.path, folder=o.folder)
                staged.append((tmp, o))
                try:
                    o.write(tmp)
                except OSError as exc:  # e.g. a full disk: say which output could not be written
                    if str(o.path) in str(exc):
                        raise
                    raise OSError(exc.errno, f"cannot write output {str(o.path)!r}: "
                                             f"{exc.strerror or exc}") from exc
                if o.folder:
                    for p in tmp.iterdir():
                        if p.is_file():
                            os.chmod(p, _umask_mode(0o666))
                    os.chmod(tmp, _umask_mode(0o777))
                else:
                    os.chmod(tmp, _umask_mode(0o666))
            with _folder_locks(parents), _signals_blocked():
                if check:
                    check_outputs(paths, inputs, overwrite=overwrite)
                _publish(staged, overwrite=overwrite)
        finally:
            for tmp, _o in staged:
                if os.path.lexists(tmp):
                    _remove(tmp)
                _forget(tmp)
    return paths
