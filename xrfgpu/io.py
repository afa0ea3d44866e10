"""Read and write micro-XRF element maps in the formats XRF users have.

Every reader returns an :class:`ElementMaps`: an ordered ``{name: 2-D map}``
with the pixel size (µm, when the file says it), a metadata dictionary and,
for synchrotron files, the scalers (I0, ...) that maps can be normalised by.
Maps keep the file's orientation: index ``[row, col]`` is the file's
``[row, col]``; nothing is transposed or flipped.

Formats
-------
=====================  =====================================================
TIFF (``.tif``)        one page per element, or one page of contiguous
                       samples (axes ``YXS``, a map per sample); names from
                       ImageJ ``Labels`` (what xrfgpu writes: an ImageJ
                       hyperstack), the xrfgpu header, ``PageName`` tags or
                       OME channel names; pixel size from the header, the
                       resolution tags (+ ImageJ unit; 72 or 96 per inch is
                       a screen default, not read) or OME ``PhysicalSizeX``
NumPy (``.npy``)       one 2-D map, or a (elements, rows, cols) stack whose
                       names are in the sidecar ``<file>.json``
NumPy (``.npz``)       one 2-D array per element (key = name), or ``maps`` +
                       ``names``; optional ``pixel_size_um``
CSV/TXT matrices       one file per element, or a folder of them (as
                       benchtop instruments such as the Bruker M4 export);
                       ``,`` ``;`` tab or blank separated, header lines skipped;
                       a blank cell (``1,,3``) is a missing pixel, NaN, counted
                       in ``metadata["blank_cells"]``; the header row and index
                       column of pandas' ``to_csv`` are dropped
PyXRF HDF5             ``xrfmap/<detsum|det1..>/xrf_fit`` (elements, rows,
                       cols) with ``xrf_fit_name``; scalers from
                       ``xrfmap/scalers/val`` (rows, cols, k) and ``name``
APS MAPS HDF5          ``MAPS/XRF_Analyzed/{Fitted,NNLS,ROI}/Counts_Per_Sec``
                       with ``Channel_Names``; scalers ``MAPS/Scalers``;
                       pixel size from ``MAPS/Scan/x_axis`` (mm); legacy v9
                       ``MAPS/XRF_fits|XRF_roi|XRF_roi_plus`` with
                       ``channel_names``/``channel_units``, scalers
                       ``MAPS/scalers`` + ``scaler_names``, pixel size from
                       ``MAPS/x_axis`` (mm). HDF5 output of MAPS (PyXRF)
                       input has the input's layout, dataset and dtype
xrfgpu HDF5            ``xrfgpu/maps`` + ``xrfgpu/names`` (what
                       :func:`write_maps` writes, with provenance attributes)
=====================  =====================================================

A name repeated within a file (ImageJ labels, PyXRF ``xrf_fit_name``, MAPS
``channel_names``) keeps every map: the later ones are ``<name>_2``, ...
(``metadata["renamed"]``); two files of a folder giving one name are refused.
Rectangular pixels keep ``pixel_size_um`` the x step and add
``metadata["pixel_size_y_um"]``. What a reader changed or dropped is also
said in a :class:`MapReadWarning`.

Inputs are only ever opened read-only; a corrupt, empty or truncated file
raises :class:`MapFileError` with one line naming the file and the problem.
:func:`write_maps` writes to hidden temporary files in the destination
folder and publishes the map and its sidecar together
(:mod:`xrfgpu.output_safety`): never on, in or around an input, never over
an existing file without ``overwrite=True``, and with it only over an
earlier xrfgpu output; a crash never leaves a half-written output.

TIFF and HDF5 need the ``io`` extra (``pip install 'xrfgpu[io]'``); a
missing library is reported with that command.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .output_safety import Output, write_outputs

__all__ = [
    "ElementMaps",
    "MapFileError",
    "MapReadWarning",
    "read_maps",
    "write_maps",
    "match_name",
    "element_name_from_stem",
    "sidecar_path",
    "TIFF_SUFFIXES",
    "HDF5_SUFFIXES",
    "TEXT_SUFFIXES",
]

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".h50", ".nxs", ".he5")
TEXT_SUFFIXES = (".csv", ".txt", ".dat", ".asc", ".tsv")
NUMPY_SUFFIXES = (".npy", ".npz")


class MapFileError(ValueError):
    """A map file that cannot be read or written; the message names the file and the problem."""


class MapReadWarning(UserWarning):
    """A map file read with a change the user should know of (a repeated map name renamed, a header
    dropped, rectangular pixels, a screen resolution taken for no pixel size); the message names the file."""


def _require(module, what):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - the test environment has them
        raise ImportError(
            f"{what} needs the Python package {module!r}; install it with: pip install 'xrfgpu[io]'"
        ) from exc


# --------------------------------------------------------------------------- names

_LINE = re.compile(r"^\s*([A-Za-z][a-z]?)(?:[\s_\-]*([KLMklm])(?:[A-Za-z0-9αβ]*)?)?\s*$")


def _line_key(name):
    """(element symbol, shell or None) of names such as 'Fe_K', 'Fe-Ka', 'fe ka1', 'Fe'; None if not a line."""
    m = _LINE.match(str(name))
    if m is None:
        return None
    symbol = m.group(1)[0].upper() + m.group(1)[1:].lower()
    shell = m.group(2).upper() if m.group(2) else None
    return symbol, shell


class NameNotFoundError(KeyError):
    """A name (element, guide, scaler) that the maps at hand do not hold, or that matches several of them.

    A :class:`KeyError`, as before, so existing ``except KeyError`` still catches it; its own type lets the
    command line tell this refusal of the user's input from a ``KeyError`` of a bug.
    """


def match_name(query, names, *, what="element", where=None):
    """Find ``query`` among ``names``: exact, then case-insensitive, then by element line.

    ``"Fe-Ka"`` finds PyXRF's ``"Fe_K"`` and MAPS's ``"Fe"``; ``"Fe"`` finds
    ``"Fe_K"`` when it is the only Fe line; a query in capitals reads as its element
    (``"FE"`` as Fe, ``"CO"`` as Co). A query given as bytes (a name from
    h5py, e.g. MAPS ``channel_names`` or ``scaler_names``) is decoded first.

    Raises
    ------
    NameNotFoundError
        A :class:`KeyError` whose message gives the query, where it was looked for and
        the names available (or the ambiguous candidates).
    """
    names = list(names)
    if isinstance(query, bytes):
        query = _decode(query)
    if query in names:
        return query
    lowered = [n for n in names if n.lower() == str(query).lower()]
    if len(lowered) == 1:
        return lowered[0]
    key = _line_key(query)
    if key is None and str(query).isupper():  # "FE", "SI_K": an element typed in capitals (not "S" + "I")
        key = _line_key(str(query).capitalize())
    candidates = []
    if key is not None:
        for n in names:
            k = _line_key(n)
            if k is None or k[0] != key[0]:
                continue
            if key[1] is None or k[1] is None or k[1] == key[1]:
                candidates.append(n)
        if len(candidates) > 1 and key[1] is not None:
            exact_shell = [n for n in candidates if _line_key(n)[1] == key[1]]
            candidates = exact_shell if len(exact_shell) == 1 else candidates
    place = f" in {where}" if where else ""
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise NameNotFoundError(f"{what} {query!r} is ambiguous{place}: it matches {', '.join(candidates)}")
    raise NameNotFoundError(f"{what} {query!r} not found{place}; available: {', '.join(names) or '(none)'}")


# --------------------------------------------------------------------------- container


@dataclass
class ElementMaps:
    """Element maps of one scan, in file order.

    Attributes
    ----------
    maps : dict of str -> ndarray, shape (rows, cols)
        Ordered element (line) name → map (NumPy, float). Names given as
        bytes (h5py's reading of MAPS ``channel_names``) are decoded as
        UTF-8; the masked pixels of a NumPy masked array become NaN
        (missing), in a floating copy.
    pixel_size_um : float or None
        Scan step in µm, when known.
    metadata : dict
        JSON-serialisable facts from the file (format, layout, dataset path,
        positions, instrument attributes, normalisation applied).
    scalers : dict of str -> ndarray
        Normalisation channels (I0, live time, ...), same shape as the maps.
    source : str or None
        Path the maps were read from.
    """

    maps: dict
    pixel_size_um: float | None = None
    metadata: dict = field(default_factory=dict)
    scalers: dict = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self):
        if not isinstance(self.maps, dict) or not self.maps:
            raise ValueError("ElementMaps needs at least one map (a non-empty dict name -> 2-D array)")
        shape = None
        clean = {}
        for name, m in self.maps.items():
            if isinstance(name, bytes):  # h5py reads MAPS channel_names as bytes (numpy.bytes_)
                name = _decode(name)
            if not isinstance(name, str) or not name:
                raise TypeError(f"element names must be non-empty strings, got {name!r}")
            if name in clean:
                raise ValueError(f"element name {name!r} is given twice")
            if isinstance(m, np.ma.MaskedArray):  # np.asarray would drop the mask: masked pixels are missing, NaN
                m = np.ma.filled(m.astype(np.result_type(m.dtype, np.float32)), np.nan)
            a = np.asarray(m)
            if a.ndim != 2:
                raise ValueError(f"map {name!r} must be 2-D (rows, cols), got shape {a.shape}")
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise TypeError(f"map {name!r} must be numeric, got dtype {a.dtype}")
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                raise ValueError(f"map {name!r} has shape {a.shape}, the others {shape}: all maps of a scan share one grid")
            clean[name] = a
        self.maps = clean
        if self.pixel_size_um is not None:
            p = float(self.pixel_size_um)
            if not (np.isfinite(p) and p > 0):
                raise ValueError(f"pixel_size_um must be a positive number of µm, got {self.pixel_size_um!r}")
            self.pixel_size_um = p
        for name, s in list(self.scalers.items()):
            s = np.asarray(s)
            if s.shape != shape:
                self.scalers.pop(name)  # a scaler on another grid cannot normalise these maps
            else:
                self.scalers[name] = s

    @property
    def names(self):
        """Element names in file order."""
        return list(self.maps)

    @property
    def shape(self):
        """(rows, cols) of every map."""
        return next(iter(self.maps.values())).shape

    def __len__(self):
        return len(self.maps)

    def __getitem__(self, name):
        return self.maps[match_name(name, self.maps, where=self.source)]

    def stack(self, dtype=np.float32):
        """All maps as one (elements, rows, cols) array."""
        return np.stack([np.asarray(m, dtype=dtype) for m in self.maps.values()])

    def find(self, name):
        """The stored name matching ``name`` (see :func:`match_name`)."""
        return match_name(name, self.maps, where=self.source)

    def select(self, names):
        """A new ElementMaps with only ``names`` (matched with :func:`match_name`), in that order."""
        if names is None:
            return self
        chosen = {}
        for q in names:
            key = self.find(q)
            chosen[key] = self.maps[key]
        return replace(self, maps=chosen, metadata=dict(self.metadata), scalers=dict(self.scalers))

    def with_maps(self, maps, **changes):
        """Same scan, other maps (e.g. restored ones); metadata and scalers are copied."""
        return replace(self, maps=dict(maps), metadata=dict(self.metadata), scalers=dict(self.scalers), **changes)

    def normalized(self, scaler, *, keep_scale=True):
        """Maps divided by a scaler (e.g. I0), scaled by its mean so counts stay counts.

        Pixels where the scaler is ≤ 0 or not finite (a beam dump, a lost
        readout) are missing, NaN, restored from their neighbours like any
        missing pixel; they used to become 0, a false zero signal that was
        restored as 0. Records the normalisation in
        ``metadata["normalization"]``, with the number of such pixels
        (``missing_pixels``).
        """
        key = match_name(scaler, self.scalers, what="scaler", where=self.source)
        s = np.asarray(self.scalers[key], dtype=np.float64)
        good = np.isfinite(s) & (s > 0)
        if not good.any():
            raise ValueError(f"scaler {key!r} in {self.source} has no positive values; cannot normalise by it")
        ref = float(s[good].mean()) if keep_scale else 1.0
        out = {}
        for name, m in self.maps.items():
            a = np.full(m.shape, np.nan, dtype=np.float64)
            np.divide(np.asarray(m, dtype=np.float64) * ref, s, out=a, where=good)
            out[name] = a
        new = self.with_maps(out)
        new.metadata["normalization"] = {"scaler": key, "reference": ref, "formula": "map * mean(scaler) / scaler",
                                         "missing_pixels": int(np.count_nonzero(~good))}
        return new


# --------------------------------------------------------------------------- helpers


def _decode(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace").strip().strip("\x00").strip()
    return str(v).strip()


def _jsonable(value):
    """Best-effort conversion of HDF5/TIFF metadata to JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return _decode(value)
    if isinstance(value, np.ndarray):
        if value.size > 64:
            return f"<array shape={value.shape} dtype={value.dtype}>"
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _carry_units(info, names, meta):
    """Copy the units of ``names`` (``{name: unit}``, e.g. MAPS's ug/cm^2) from an xrfgpu header into ``meta``,
    and the y step of rectangular pixels (``pixel_size_y_um`` with its ``pixel_size_note``).

    ``write_maps`` stores the input's metadata in its header; without this, a MAPS map written to
    TIFF, NPZ, NPY or a folder and read back had its units only inside ``input_metadata``.
    """
    units = (info.get("metadata") or {}).get("units")
    if isinstance(units, dict):
        kept = {str(n): units[str(n)] for n in names if str(n) in units}
        if kept:
            meta["units"] = kept
    for key in ("pixel_size_y_um", "pixel_size_note"):
        if (info.get("metadata") or {}).get(key) is not None:
            meta[key] = info["metadata"][key]
    return meta


def _warn_later(meta, text):
    """Record a :class:`MapReadWarning` for :func:`read_maps` to emit once the file is read.

    Kept in ``meta["read_warnings"]`` (so an output's record says it too) and emitted outside the
    readers' error handling: a warning turned into an error (``-W error``) is then that warning, not
    a "corrupt file".
    """
    meta.setdefault("read_warnings", []).append(text)


def _unique_names(names, path, meta):
    """``names`` with repeats made distinct, so that no map is lost to a name another map also holds.

    ``dict(zip(names, maps))`` kept one map per name: a file whose labels repeat (two detector channels
    both labelled ``Fe_K``) lost a map, and the one left under the name could be another element's. The
    second and later maps of a name are now ``<name>_2``, ``<name>_3``, ... (characters a folder output
    keeps in its file names; a name the file already holds is skipped), each recorded in
    ``meta["renamed"]`` as ``{"name", "position", "as"}`` (``position``: the map's index in the file's
    stack, from 0) and named in a :class:`MapReadWarning`.
    """
    names = [str(n) for n in names]
    if len(set(names)) == len(names):
        return names
    taken = set(names)
    out, seen, renamed = [], {}, []
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i)
        if len(seen[name]) == 1:
            out.append(name)
            continue
        k = len(seen[name])
        while f"{name}_{k}" in taken:
            k += 1
        taken.add(f"{name}_{k}")
        out.append(f"{name}_{k}")
        renamed.append({"name": name, "position": i, "as": f"{name}_{k}"})
    meta.setdefault("renamed", []).extend(renamed)
    for name, where in seen.items():
        if len(where) > 1:
            later = [r["as"] for r in renamed if r["name"] == name]
            _warn_later(meta, f"input {str(path)!r}: the map name {name!r} is given to {len(where)} maps (positions "
                              f"{', '.join(map(str, where))} in the file, counting from 0); all are kept, the first "
                              f"as {name!r}, the others as {', '.join(map(repr, later))}")
    return out


def _note_rectangular(meta, x_um, y_um, path):
    """Record (``pixel_size_y_um``, ``pixel_size_note``) and warn when the y step differs from the x step by
    more than 1 %; ``pixel_size_um`` stays the x (fast axis) step."""
    if not x_um or not y_um or abs(y_um - x_um) <= 0.01 * x_um:
        return
    meta["pixel_size_y_um"] = float(y_um)
    meta["pixel_size_note"] = (f"x step {x_um:.6g} µm, y step {y_um:.6g} µm: pixels are not square; "
                               "pixel_size_um is the x (fast axis) step")
    _warn_later(meta, f"input {str(path)!r}: {meta['pixel_size_note']}")


def sidecar_path(path):
    """The JSON sidecar next to an output: ``restored.tif`` → ``restored.tif.json``; a folder → ``folder/xrfgpu.json``."""
    path = Path(path)
    if path.is_dir() or _is_folder_target(path):
        return path / "xrfgpu.json"
    return path.with_name(path.name + ".json")


def _is_folder_target(path):
    return Path(path).suffix == "" or str(path).endswith(os.sep)


def _read_sidecar(path):
    side = sidecar_path(path)
    if side.is_file():
        try:
            return json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return None


# --------------------------------------------------------------------------- readers


def read_maps(path, *, dataset=None, normalize=None):
    """Read element maps from a file or folder, choosing the reader by suffix and content.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff``, ``.npy``, ``.npz``, ``.csv``/``.txt`` file, an
        HDF5 file (PyXRF, APS MAPS or xrfgpu layout), or a folder of
        CSV/TXT/TIFF maps (one element per file).
    dataset : str, optional
        HDF5 only: PyXRF detector group (``"detsum"``, ``"det1"``, ...) or MAPS
        dataset (``"Fitted"``, ``"NNLS"``, ``"ROI"``, legacy ``"XRF_fits"``,
        ``"XRF_roi"``, ``"XRF_roi_plus"``, or the path such as
        ``"MAPS/XRF_roi"``; case-insensitive); default the first present.
    normalize : str, optional
        Name of a scaler (e.g. ``"i0"``) to divide the maps by (see
        :meth:`ElementMaps.normalized`).

    Returns
    -------
    ElementMaps

    Raises
    ------
    FileNotFoundError
        No such file or folder.
    MapFileError
        Unknown format, or a file that is not what its suffix says; the
        message names the file.
    ImportError
        A TIFF or HDF5 file without tifffile/h5py installed (names the extra).

    Warns
    -----
    MapReadWarning
        The file was read with a change to say: a repeated map name given to a later map as
        ``<name>_2`` (``metadata["renamed"]``), pandas' CSV header and index dropped
        (``metadata["csv_layout"]``), pixels that are not square (``metadata["pixel_size_y_um"]``).
        The messages are also in ``metadata["read_warnings"]``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {str(path)!r}: no such file or folder")
    _refuse_unreadable(path)
    dataset, normalize = (_decode(v) if isinstance(v, bytes) else v for v in (dataset, normalize))
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            em = _read_folder(path)
        elif suffix in TIFF_SUFFIXES:
            em = _read_tiff(path)
        elif suffix == ".npy":
            em = _read_npy(path)
        elif suffix == ".npz":
            em = _read_npz(path)
        elif suffix in TEXT_SUFFIXES:
            a, blank, layout = _read_text_matrix(path)
            name = element_name_from_stem(path.stem)
            meta = {"format": "text"}
            if blank:
                meta["blank_cells"] = [_blank_cell_note(path.name, name, blank)]
            if layout:
                meta["csv_layout"] = layout
                _warn_later(meta, _csv_layout_warning(path, layout, a.shape))
            em = ElementMaps({name: a}, source=str(path), metadata=meta)
        elif suffix in HDF5_SUFFIXES or _looks_like_hdf5(path):
            em = _read_hdf5(path, dataset=dataset)
        else:
            raise MapFileError(
                f"input {str(path)!r}: unknown map format {suffix or '(no suffix)'!r}; "
                "use .tif, .npy, .npz, .csv/.txt, an HDF5 file (.h5) or a folder of maps"
            )
        _check_map_sides(em, path)
    except (MapFileError, ImportError):
        raise
    except OSError as exc:
        raise MapFileError(f"input {str(path)!r}: cannot read it ({_one_line(exc)})") from exc
    except (ValueError, TypeError) as exc:
        raise MapFileError(f"input {str(path)!r}: {_one_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - a corrupt or truncated file breaks readers in any way
        raise MapFileError(
            f"input {str(path)!r}: corrupt or truncated {_format_name(path)} file "
            f"({type(exc).__name__}: {_one_line(exc)})"
        ) from exc
    em.source = str(path)
    for text in em.metadata.get("read_warnings") or []:
        warnings.warn(text, MapReadWarning, stacklevel=2)
    if normalize:
        if not em.scalers:
            raise MapFileError(f"input {str(path)!r} has no scalers to normalise by (asked for {normalize!r})")
        try:
            em = em.normalized(normalize)
        except KeyError as exc:
            raise MapFileError(exc.args[0]) from None
    return em


def _check_map_sides(em, path):
    """Refuse, or warn of, a file whose maps look like element maps stored on the last axis (channels last).

    ``tifffile.imwrite(path, numpy.dstack(maps))`` (and ``numpy.save`` of a dstack) store a ``(rows, cols, n)``
    array that reads as ``rows`` maps of ``cols × n`` pixels: the file says pages, not which axis holds the
    elements. The rule is :func:`xrfgpu.stack.check_stack_map_sides`'s for arrays: maps narrower than
    :data:`xrfgpu.stack.MIN_STACK_MAP_SIDE_PX` are refused (``ValueError``, which :func:`read_maps` names the
    file in); a shape that is more likely ``n`` maps on the last axis is read as stored, with a
    :class:`MapReadWarning` (``metadata["read_warnings"]``).
    """
    from .stack import ChannelsLastWarning, check_stack_map_sides

    if len(em) < 2:
        return
    shape = (len(em), *em.shape)

    def for_a_file(text):  # the arrays' advice, as a file's
        return "the file's " + str(text).replace(
            "pass numpy.moveaxis(stack, -1, 0)", "save the stack as (maps, rows, cols): numpy.moveaxis(stack, -1, 0)")

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ChannelsLastWarning)
            check_stack_map_sides(shape)
    except ValueError as exc:
        raise ValueError(for_a_file(exc)) from None
    for w in caught:
        if issubclass(w.category, ChannelsLastWarning):
            _warn_later(em.metadata, f"input {str(path)!r}: {for_a_file(w.message)}")


def _one_line(exc):
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return " ".join(str(text).split()) or type(exc).__name__


def _format_name(path):
    suffix = path.suffix.lower()
    if path.is_dir():
        return "map folder"
    for names, label in ((TIFF_SUFFIXES, "TIFF"), (HDF5_SUFFIXES, "HDF5"), (NUMPY_SUFFIXES, "NumPy"),
                         (TEXT_SUFFIXES, "text")):
        if suffix in names:
            return label
    return "map"


class _HeldLogs:
    """Hold a library's log records (tifffile logs corrupt files to stderr) while one file is read.

    If the read fails, the first record goes into the error message instead,
    so the command prints one line; if it succeeds, the records are passed
    on as the library would have logged them.
    """

    def __init__(self, name):
        import logging

        self.logger = logging.getLogger(name)
        self.records = []
        self.handler = logging.Handler()
        self.handler.emit = self.records.append

    def __enter__(self):
        self.propagate = self.logger.propagate
        self.logger.addHandler(self.handler)
        self.logger.propagate = False
        return self

    def __exit__(self, kind, exc, tb):
        self.logger.removeHandler(self.handler)
        self.logger.propagate = self.propagate
        if kind is None:
            for record in self.records:
                self.logger.handle(record)
        return False

    def first(self):
        return f"; {' '.join(self.records[0].getMessage().split())}" if self.records else ""


def _file_errors(kind):
    """Decorator for one-file readers: any failure becomes a MapFileError naming that file (also inside a folder)."""
    import functools

    def wrap(reader):
        @functools.wraps(reader)
        def read(path, *args, **kwargs):
            path = Path(path)
            try:
                with _HeldLogs("tifffile") as logs:
                    return reader(path, *args, **kwargs)
            except (MapFileError, ImportError):
                raise
            except OSError as exc:
                raise MapFileError(f"input {str(path)!r}: cannot read it ({_one_line(exc)}{logs.first()})") from exc
            except (ValueError, TypeError) as exc:
                _refuse_unreadable(path)  # empty file: say so
                raise MapFileError(f"input {str(path)!r}: {_one_line(exc)}{logs.first()}") from exc
            except Exception as exc:  # noqa: BLE001 - corrupt or truncated bytes break readers in any way
                _refuse_unreadable(path)
                raise MapFileError(
                    f"input {str(path)!r}: corrupt or truncated {kind} file "
                    f"({type(exc).__name__}: {_one_line(exc)}{logs.first()})"
                ) from exc

        return read

    return wrap


def _refuse_unreadable(path):
    """One clear error for inputs no reader should try: xrfgpu temporaries, empty files, non-files."""
    from .output_safety import is_temp_name

    if is_temp_name(path.name):
        raise MapFileError(f"input {str(path)!r} is an unfinished xrfgpu temporary file, not a map")
    if path.is_dir():
        return
    if not path.is_file():
        raise MapFileError(f"input {str(path)!r} is not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise MapFileError(f"input {str(path)!r}: cannot read it ({exc.strerror or exc})") from exc
    if size == 0:
        raise MapFileError(f"input {str(path)!r} is empty (0 bytes)")


def _looks_like_hdf5(path):
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


@_file_errors("TIFF")
def _read_tiff(path):
    tifffile = _require("tifffile", "reading TIFF")
    with tifffile.TiffFile(path) as tif:
        pages = list(tif.pages)
        series = tif.series[0] if tif.series else None
        stacked = [ax for ax, n in zip(series.axes, series.shape) if ax not in "YXS" and n > 1] if series else []
        if len(stacked) > 1:  # e.g. an ImageJ ZCYX hyperstack: which axis holds the elements is not known
            raise MapFileError(f"input {str(path)!r} is a {series.axes} stack of shape {tuple(series.shape)}; "
                               "element maps are 2-D maps along one stack axis (CYX, ZYX or one page each): "
                               f"split its {', '.join(stacked)} axes first")
        arrays = []
        for page in pages:
            a = page.asarray()
            colour = int(getattr(page, "photometric", 1) or 1) in (2, 6, 8)  # RGB, YCbCr (JPEG), CIELab
            if a.ndim == 3 and (colour or (a.shape[-1] in (3, 4) and len(pages) == 1
                                           and int(getattr(page, "samplesperpixel", 1) or 1) == 1)):
                raise MapFileError(f"input {str(path)!r} is an RGB image, not element maps")
            if a.ndim == 3 and int(getattr(page, "samplesperpixel", 1) or 1) == a.shape[-1] > 1 \
                    and int(getattr(page, "planarconfig", 1) or 1) == 1:
                # contiguous samples (axes YXS): the maps are along the last axis; splitting the first
                # made (rows) maps of (cols × samples) pixels
                a = np.moveaxis(a, -1, 0)
            if a.ndim == 3:  # one page holding a stack (planar samples, or contiguous ones moved first)
                arrays.extend(list(a))
            elif a.ndim == 2:
                arrays.append(a)
            else:
                raise MapFileError(f"input {str(path)!r}: page of shape {a.shape} is not a 2-D map")
        first = pages[0]
        ij = tif.imagej_metadata or {}
        # the xrfgpu header: ImageJ 'Info' (what write_maps writes), or the JSON page description
        # of files from xrfgpu before ImageJ hyperstacks
        info = {}
        for text in (ij.get("Info"), first.description):
            if isinstance(text, str) and text.lstrip().startswith("{"):
                try:
                    info = json.loads(text).get("xrfgpu", {})
                except (ValueError, AttributeError):
                    info = {}
                if info:
                    break
        names = info.get("elements")
        pixel = info.get("pixel_size_um")
        if not names and ij.get("Labels"):
            labels = ij["Labels"]
            names = [labels] if isinstance(labels, str) else list(labels)
        if not names:
            tagged = []
            for page in pages:
                tag = page.tags.get("PageName") if hasattr(page, "tags") else None
                tagged.append(_decode(tag.value) if tag is not None else None)
            if all(tagged):  # repeats are kept under distinct names (_unique_names)
                names = tagged
        meta = {"format": "tiff", "pages": len(pages)}
        if pixel is None:
            pixel, pixel_y, note = _tiff_pixel_size(first, ij)
            if note:
                meta["pixel_size_note"] = note
            _note_rectangular(meta, pixel, pixel_y, path)
        if not names or pixel is None:
            ome_names, ome_pixel, ome_pixel_y = _ome_names_and_pixel(tif)
            names = names or (ome_names if len(ome_names) == len(arrays) else None)
            if pixel is None and ome_pixel:
                pixel = ome_pixel
                meta.pop("pixel_size_note", None)
                _note_rectangular(meta, ome_pixel, ome_pixel_y, path)
    if names is None or len(names) != len(arrays):
        names = [element_name_from_stem(path.stem)] if len(arrays) == 1 else [f"map{i}" for i in range(len(arrays))]
    if info.get("provenance"):
        meta["provenance"] = info["provenance"]
    if info.get("metadata"):
        meta["input_metadata"] = info["metadata"]
    names = _unique_names(names, path, meta)
    _carry_units(info, names, meta)
    return ElementMaps(dict(zip(names, arrays)), pixel_size_um=pixel, metadata=meta)


#: Lengths of the units a TIFF's ImageJ ``unit`` entry or ResolutionUnit tag may give, in µm.
_LENGTH_UNITS_UM = {"um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
                    "mm": 1e3, "nm": 1e-3, "cm": 1e4, "inch": 25400.0, "in": 25400.0, "m": 1e6}

#: Pixels per inch that are screen defaults, not scan steps: 72 (the TIFF and ImageJ default, what Fiji
#: gives a PNG or JPEG) and 96 (Windows).
_SCREEN_DPI = (72.0, 96.0)


def _tiff_pixel_size(page, ij):
    """Pixel size in µm, x and y, from the resolution tags and ImageJ ``unit`` or the TIFF ResolutionUnit.

    Returns
    -------
    x_um, y_um : float or None
        The x (XResolution) and y (YResolution) steps in µm; None when the file gives no length (no tags,
        ResolutionUnit NONE, an ImageJ unit such as ``pixel``).
    note : str or None
        Why a resolution that is there was not read as a pixel size: exactly 72 or 96 pixels per inch is
        a screen default (the TIFF default; what ImageJ/Fiji gives an image opened from a PNG or JPEG),
        not a scan step (before, 72 dpi with ImageJ unit ``inch`` read as a 352.8 µm step).
    """
    def per_unit(name):
        tag = page.tags.get(name)
        if tag is None:
            return None
        num, den = tag.value if isinstance(tag.value, tuple) else (tag.value, 1)
        return num / den if num and den and num / den > 0 else None

    x, y = per_unit("XResolution"), per_unit("YResolution")
    if x is None:
        return None, None, None
    unit = str(ij.get("unit", "")).strip().lower().replace("\\u00b5", "µ")
    unit_um = _LENGTH_UNITS_UM.get(unit)
    if unit_um is None:
        ru = page.tags.get("ResolutionUnit")
        ru = int(ru.value) if ru is not None else 2  # the TIFF default unit is the inch
        unit_um = {3: 1e4, 2: 25400.0}.get(ru)
    if unit_um is None:
        return None, None, None
    if unit_um == 25400.0 and any(abs(x - dpi) < 1e-6 for dpi in _SCREEN_DPI) and (y is None or y == x):
        return None, None, (f"resolution {x:g} pixels per inch is a screen default (the TIFF default; what "
                            "ImageJ gives a PNG or JPEG), not a scan step: no pixel size read")
    return unit_um / x, (unit_um / y if y else None), None


def _ome_names_and_pixel(tif):
    """Channel names and PhysicalSizeX/Y (µm) of an OME-TIFF's first image: ``(names, x_um, y_um)``.

    ``([], None, None)`` for other TIFFs or what cannot be read (the XML is read with
    :mod:`xml.etree.ElementTree`; a unit other than a length leaves the pixel size unread).
    """
    text = getattr(tif, "ome_metadata", None) if getattr(tif, "is_ome", False) else None
    if not text:
        return [], None, None
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return [], None, None
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return [], None, None
    names = [c.get("Name") for c in pixels if c.tag.rsplit("}", 1)[-1] == "Channel"]
    names = names if all(names) else []

    def size(axis):
        try:
            value = float(pixels.get(f"PhysicalSize{axis}"))
        except (TypeError, ValueError):
            return None
        unit_um = _LENGTH_UNITS_UM.get(str(pixels.get(f"PhysicalSize{axis}Unit", "µm")).strip().lower())
        return value * unit_um if unit_um and np.isfinite(value) and value > 0 else None

    return names, size("X"), size("Y")


@_file_errors("NumPy .npy")
def _read_npy(path):
    with open(path, "rb") as fh:
        a = np.load(fh, allow_pickle=False)
    side = _read_sidecar(path) or {}
    info = side.get("xrfgpu", side)
    pixel = info.get("pixel_size_um")
    if a.ndim == 2:
        names = info.get("elements") or [element_name_from_stem(path.stem)]
        return ElementMaps({str(names[0]): a}, pixel_size_um=pixel,
                           metadata=_carry_units(info, names[:1], {"format": "npy"}))
    if a.ndim == 3:
        names = info.get("elements")
        if not names or len(names) != a.shape[0]:
            names = [f"map{i}" for i in range(a.shape[0])]
        meta = {"format": "npy"}
        names = _unique_names(names, path, meta)
        return ElementMaps(dict(zip(names, a)), pixel_size_um=pixel, metadata=_carry_units(info, names, meta))
    raise MapFileError(f"input {str(path)!r}: array of shape {a.shape} is neither a map (2-D) nor a stack (3-D)")


@_file_errors("NumPy .npz")
def _read_npz(path):
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # our handle: closed even when unzip fails
        keys = list(z.files)
        meta = {"format": "npz"}
        pixel = float(z["pixel_size_um"]) if "pixel_size_um" in keys else None
        if "__xrfgpu__" in keys:
            info = json.loads(str(z["__xrfgpu__"]))
            pixel = info.get("pixel_size_um", pixel)
            if info.get("provenance"):
                meta["provenance"] = info["provenance"]
            _carry_units(info, info.get("elements") or [], meta)
        name_key = next((k for k in ("names", "elements") if k in keys), None)
        if "maps" in keys and z["maps"].ndim == 3:
            stack = z["maps"]
            names = [_decode(n) for n in z[name_key]] if name_key else [f"map{i}" for i in range(len(stack))]
            if len(names) != len(stack):
                raise MapFileError(f"input {str(path)!r}: {len(names)} names for {len(stack)} maps")
            maps = dict(zip(_unique_names(names, path, meta), stack))
        else:
            maps = {}
            for k in keys:
                if k in ("pixel_size_um", "__xrfgpu__", "names", "elements"):
                    continue
                a = z[k]
                if a.ndim != 2:
                    raise MapFileError(f"input {str(path)!r}: array {k!r} of shape {a.shape} is not a 2-D map")
                maps[k] = a
            if not maps:
                raise MapFileError(f"input {str(path)!r} holds no 2-D maps")
    return ElementMaps(maps, pixel_size_um=pixel, metadata=meta)


_NUMBER = re.compile(r"^[\s]*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|^\s*(nan|NaN|inf)")


def _split(line, delimiter):
    parts = line.split(delimiter) if delimiter else line.split()
    if delimiter and parts and parts[-1].strip() == "":
        parts = parts[:-1]  # trailing separator, as some exporters write
    return parts


def _text_cell(cell, delimiter):
    """One cell of a text matrix as a float; a blank cell is NaN (a missing pixel). ValueError if not a number."""
    cell = cell.strip()
    if not cell:
        return math.nan
    return float(cell.replace(",", ".") if delimiter in (";", "\t") else cell)


#: What :func:`_read_text_matrix` dropped of a CSV that pandas wrote (``metadata["csv_layout"]``).
PANDAS_HEADER_AND_INDEX = "pandas header and index dropped"
PANDAS_HEADER = "pandas header dropped"


def _pandas_layout(data, delimiter):
    """Which of pandas' ``DataFrame.to_csv`` layouts the rows ``data`` ([(line number, text)]) are in, or None.

    ``to_csv(path)``: a first row of the column labels ``0 … n-1`` after an empty cell, and a first column of
    the row labels ``0 … m-1`` (:data:`PANDAS_HEADER_AND_INDEX`); ``to_csv(path, index=False)``: the first row
    ``0 … n-1`` alone (:data:`PANDAS_HEADER`). Exactly those: every row below the header as long as the others,
    the labels whole numbers in order from 0. Any other numeric first row is data.
    """
    if len(data) < 2:
        return None
    split = (lambda line: line.rstrip(" ").split(delimiter)) if delimiter else str.split
    head = [c.strip() for c in split(data[0][1])]
    body = [split(line) for _, line in data[1:]]
    if any(len(row) != len(body[0]) for row in body):
        return None
    labels = head[1:] if head and head[0] == "" else head
    if not labels or labels != [str(k) for k in range(len(labels))]:
        return None
    if len(body[0]) == len(labels) + 1 and [row[0].strip() for row in body] == [str(k) for k in range(len(body))]:
        return PANDAS_HEADER_AND_INDEX
    if len(body[0]) == len(labels) and head[0] != "":
        return PANDAS_HEADER
    return None


def _csv_layout_warning(path, layout, shape):
    """The warning for a pandas CSV whose header (and index) were dropped; ``shape`` is the map's."""
    what = ("first row (the column labels 0 … {c}) and first column (the row labels 0 … {r})" if
            layout == PANDAS_HEADER_AND_INDEX else "first row (the column labels 0 … {c})")
    return (f"input {str(path)!r}: the {what.format(r=shape[0] - 1, c=shape[1] - 1)} are what pandas' "
            f"DataFrame.to_csv writes, not map values: dropped; the map is {shape[0]} × {shape[1]}")


@_file_errors("text")
def _read_text_matrix(path):
    """One map from a CSV/TXT matrix: ``(map, blank cells, layout)``; rows are scan rows, header lines skipped.

    A blank cell between separators (``1,,3``, a pixel the instrument dropped or one deleted in a
    spreadsheet) is a missing pixel, NaN, as a written ``nan`` is; a row of blank cells between data
    rows is a lost scan line, and blank rows after the last data row (spreadsheet exports) are no rows.
    A separator ending every row (``1,2,3,``, as some exporters write) is not a blank cell. ``blank
    cells`` is ``(count, (line, column) of the first)``, 1-based as an editor shows them, or None.

    A CSV as pandas writes a map (``DataFrame(a).to_csv(path)``: a first row ``,0,1,…,n-1`` and a first
    column ``0 … m-1``; or ``index=False``: a first row ``0,1,…,n-1``) has that header and index dropped
    (they were read as a row and a column of the map); ``layout`` says so (:func:`_pandas_layout`), else None.
    """
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    lines = [(number, ln) for number, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    delimiter = None
    start = None
    for i, (_, line) in enumerate(lines):
        # the first separator that makes the line a row of numbers (blank cells allowed, one number at
        # least); with ';' or tab a ',' is a decimal comma ("0,0123;0,0456", a European export), so ';'
        # is tried before ','
        for delim in [d for d in (";", ",", "\t") if d in line] or [None]:
            try:
                values = [_text_cell(c, delim) for c in _split(line, delim)]
            except ValueError:
                continue
            if not all(math.isnan(v) for v in values):
                start, delimiter = i, delim
                break
        if start is not None:
            break
    if start is None:
        raise MapFileError(f"input {str(path)!r}: no rows of numbers found")
    data = lines[start:]
    # blank rows after the last row with a number are the end of a spreadsheet's range, not scan lines
    while data and all(c.strip() == "" for c in _split(data[-1][1], delimiter)):
        data.pop()
    layout = _pandas_layout(data, delimiter)
    if layout is not None:
        data = data[1:]
    # a separator ending every row is the exporter's habit; ending some rows, it closes a blank last cell
    trailing = delimiter is not None and all(line.rstrip(" ").endswith(delimiter) for _, line in data)
    rows, blanks, first_blank = [], 0, None
    for number, line in data:
        cells = line.rstrip(" ").split(delimiter) if delimiter else line.split()
        if trailing:
            cells = cells[:-1]
        if layout == PANDAS_HEADER_AND_INDEX:
            cells = cells[1:]
        try:
            row = [_text_cell(c, delimiter) for c in cells]
        except ValueError:
            raise MapFileError(f"input {str(path)!r}: line {number} is not a row of numbers: {line[:60]!r}") from None
        empty = [k for k, c in enumerate(cells) if not c.strip()]
        if empty:
            blanks += len(empty)
            first_blank = first_blank or (number, empty[0] + 1)
        rows.append(row)
        if len(rows[-1]) != len(rows[0]):
            raise MapFileError(
                f"input {str(path)!r}: line {number} has {len(rows[-1])} values, the first row {len(rows[0])}"
            )
    return np.asarray(rows, dtype=np.float64), ((blanks, first_blank) if blanks else None), layout


def _blank_cell_note(file_name, map_name, blank):
    """The metadata entry for a text map's blank cells (what the command line reports)."""
    count, (line, column) = blank
    return {"file": file_name, "map": map_name, "count": count, "first": {"line": line, "column": column}}


_ELEMENTS = frozenset(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr "
    "Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W "
    "Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf".split()
)
_SHELL = re.compile(r"^[KLM](?:[a-z]\d?|\d)?$")


def element_name_from_stem(stem):
    """The element (line) a map file is named after: the file name's tail from the element symbol on.

    ``SUM_maps_XRF_Fe_K`` → ``Fe_K``, ``sample7-Ca-Ka`` → ``Ca-Ka``,
    ``scan12_Fe`` → ``Fe``, ``Fe-Ka`` → ``Fe-Ka``; a stem that does not end
    in an element symbol (optionally followed by a shell K, L, M, Ka, Lb1...)
    is returned whole. Single files and files in a folder are named by this
    one rule, so the same file gives the same name either way.
    """
    tail = _element_tail(str(stem))
    return str(stem) if tail is None else tail


def _element_tail(stem):
    """The tail of ``stem`` from its final element symbol on (see :func:`element_name_from_stem`), or None."""
    tokens = [(m.start(), m.group()) for m in re.finditer(r"[^_\-\s.]+", stem)]
    if len(tokens) >= 2 and tokens[-2][1] in _ELEMENTS and _SHELL.match(tokens[-1][1]):
        return stem[tokens[-2][0]:]
    if tokens and tokens[-1][1] in _ELEMENTS:
        return stem[tokens[-1][0]:]
    return None


def _common_prefix(stems):
    if len(stems) < 2:
        return ""
    prefix = os.path.commonprefix(stems)
    cut = max(prefix.rfind("_"), prefix.rfind(" "), prefix.rfind("-"))
    if cut < 0:
        return ""
    prefix = prefix[: cut + 1]
    return prefix if all(len(s) > len(prefix) for s in stems) else ""


def _folder_names(stems):
    """Map names for a folder's files: each file's element (line) when every file has one, else the
    stems without their common prefix."""
    names = [_element_tail(s) for s in stems]
    if all(n is not None for n in names) and len(set(names)) == len(names):
        return names
    prefix = _common_prefix(stems)
    return [s[len(prefix):] for s in stems]


def _read_folder(path):
    from .output_safety import is_hidden_or_temp

    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + TIFF_SUFFIXES + (".npy",)
        and not is_hidden_or_temp(p.name)  # xrfgpu temporaries, macOS ._ files
    )
    if not files:
        raise MapFileError(f"input folder {str(path)!r} holds no .csv/.txt/.tif/.npy maps")
    arrays, skipped, pixel, blanks, layouts, carried = {}, [], None, {}, {}, {}
    for p in sorted(path.iterdir()):  # other files (notes, figures) are named too, not passed over in silence
        sidecar = p.name == "xrfgpu.json" or (p.suffix.lower() == ".json" and p.with_suffix("") in files)
        if p.is_file() and p not in files and not sidecar and not is_hidden_or_temp(p.name):
            skipped.append({"file": p.name, "reason": "not a map file (maps are read from the folder's "
                                                      f"{', '.join(TEXT_SUFFIXES + TIFF_SUFFIXES)} and .npy files)"})
    for p in files:
        try:
            if p.suffix.lower() in TEXT_SUFFIXES:
                a, blank, layout = _read_text_matrix(p)
                if blank:
                    blanks[p] = blank
                if layout:
                    layouts[p] = layout
            else:
                sub = _read_tiff(p) if p.suffix.lower() in TIFF_SUFFIXES else _read_npy(p)
                if len(sub) != 1:
                    raise MapFileError(f"holds {len(sub)} maps, a folder of maps needs one map per file")
                a = next(iter(sub.maps.values()))
                if pixel is None and sub.pixel_size_um:  # the pixel size (and its notes) of the first file that has one
                    pixel = sub.pixel_size_um
                    carried = {k: (list(v) if isinstance(v, list) else v) for k, v in sub.metadata.items()
                               if k in ("pixel_size_y_um", "pixel_size_note", "read_warnings")}
        except (MapFileError, ValueError, OSError) as exc:
            if p.suffix.lower() not in TEXT_SUFFIXES:
                # a TIFF or .npy that does not read is a damaged map, not a stray file: refuse the folder
                # (issue 15) rather than restore the other elements without it
                raise MapFileError(f"input folder {str(path)!r}: {exc}") from None
            reason = str(exc).replace(f"input {str(p)!r}: ", "").replace(f"input {str(p)!r} ", "")
            skipped.append({"file": p.name, "reason": f"not a map ({reason})"})
            continue
        if min(a.shape) < 2:  # a table of a few numbers (an instrument log), not an image
            skipped.append({"file": p.name, "reason": f"not a map (a table of {a.shape[0]} × {a.shape[1]} values)"})
            continue
        arrays[p] = a
    # the folder's grid is the shape most of its maps share (the first in name order on a tie), so an
    # overview or a table that sorts first does not turn the maps themselves into "other sizes"
    shapes = [a.shape for a in arrays.values()]
    grid = max(shapes, key=shapes.count) if shapes else None
    for p, a in list(arrays.items()):
        if a.shape != grid:
            skipped.append({"file": p.name, "reason": f"map shape {a.shape} differs from the {grid} of the "
                                                      f"folder's other maps"})
            del arrays[p]
    if not arrays:
        why = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped)
        raise MapFileError(f"input folder {str(path)!r} holds no readable maps ({why})")
    names = _folder_names([p.stem for p in arrays])
    side = _read_sidecar(path) or {}
    info = side.get("xrfgpu", side)
    written = info.get("files")
    written = written if isinstance(written, dict) and all((path / f).is_file() for f in written.values()) else None
    if written is None:
        # two files giving one map name (Fe_K.csv and Fe_K.tif: the same element exported twice, or two
        # different maps): which one is the map is not known, and the second replaced the first in silence
        by_name = {}
        for name, p in zip(names, arrays):
            by_name.setdefault(name, []).append(p.name)
        clash = {name: files for name, files in by_name.items() if len(files) > 1}
        if clash:
            raise MapFileError(f"input folder {str(path)!r}: " + "; ".join(
                f"{' and '.join(map(repr, files))} both give the map {name!r}" for name, files in clash.items())
                + ": which one is the map is not known; move or rename all but one of them")
    maps = dict(zip(names, arrays.values()))
    pixel = info.get("pixel_size_um", pixel)
    meta = {"format": "folder", "files": [p.name for p in arrays]}
    if info.get("pixel_size_um") is None:
        meta.update(carried)
    if skipped:
        meta["skipped"] = skipped
    notes = [_blank_cell_note(p.name, name, blanks[p]) for name, p in zip(names, arrays) if p in blanks]
    csv_layouts = [{"file": p.name, "map": name, "layout": layouts[p]} for name, p in zip(names, arrays) if p in layouts]
    if written is not None:
        # a folder xrfgpu wrote: names and order from its sidecar
        maps, notes, csv_layouts = {}, [], []
        for name, f in written.items():
            maps[name], blank, _ = _read_text_matrix(path / f)
            if blank:
                notes.append(_blank_cell_note(f, name, blank))
        if info.get("provenance"):
            meta["provenance"] = info["provenance"]
        _carry_units(info, list(maps), meta)
    if notes:
        meta["blank_cells"] = notes
    if csv_layouts:
        meta["csv_layout"] = csv_layouts
        for entry in csv_layouts:
            _warn_later(meta, _csv_layout_warning(path / entry["file"], entry["layout"], maps[entry["map"]].shape))
    return ElementMaps(maps, pixel_size_um=pixel, metadata=meta)


def _names(ds):
    return [_decode(v) for v in np.asarray(ds[()]).ravel()]


def _attrs(obj):
    return {k: _jsonable(v) for k, v in obj.attrs.items()}


def _read_hdf5(path, *, dataset=None):
    h5py = _require("h5py", "reading HDF5")
    with h5py.File(path, "r") as f:
        if "xrfgpu" in f and "maps" in f["xrfgpu"]:
            em = _read_xrfgpu_h5(f, path)
            held = str(em.metadata.get("dataset") or "xrfgpu/maps")  # the input dataset it was restored from
            want = None if dataset is None else str(dataset).strip().strip("/").lower()
            if want is not None and not (held.lower() == want or held.lower().endswith("/" + want)
                                         or f"/{want}/" in held.lower()):
                raise MapFileError(f"input {str(path)!r}: dataset {dataset!r} not found; this xrfgpu output "
                                   f"holds the maps of {held}")
            return em
        if "xrfmap" in f:
            return _read_pyxrf(f, path, dataset)
        if "MAPS" in f:
            return _read_aps_maps(f, path, dataset)
        raise MapFileError(
            f"input {str(path)!r}: HDF5 layout not recognised (top-level groups: {', '.join(f.keys()) or 'none'}); "
            "expected PyXRF 'xrfmap', APS 'MAPS' or xrfgpu 'xrfgpu'"
        )


def _read_xrfgpu_h5(f, path):
    g = f["xrfgpu"]
    stack = g["maps"][()]
    names = _names(g["names"])
    info = json.loads(g.attrs.get("xrfgpu", "{}"))
    meta = {"format": "hdf5", "layout": "xrfgpu"}
    if info.get("provenance"):
        meta["provenance"] = info["provenance"]
    # an output of MAPS or PyXRF input: carry that layout on, so restoring it again writes the same shape
    source_meta = info.get("metadata") or {}
    if source_meta.get("layout") in ("maps", "pyxrf"):
        for key in ("layout", "dataset", "dtype", "units", "channel_units_table", "channel_names", "x_axis",
                    "y_axis", "scaler_units", "scan_metadata"):
            if key in source_meta:
                meta[key] = source_meta[key]
    scalers = {}
    if "scalers" in g:
        scalers = {k: g["scalers"][k][()] for k in g["scalers"]}
    for key in ("pixel_size_y_um", "pixel_size_note"):  # rectangular pixels, as the input said
        if source_meta.get(key) is not None:
            meta[key] = source_meta[key]
    names = _unique_names(names, path, meta)
    return ElementMaps(dict(zip(names, stack)), pixel_size_um=info.get("pixel_size_um"), metadata=meta, scalers=scalers)


def _read_pyxrf(f, path, dataset):
    root = f["xrfmap"]
    fitted = [k for k in root if isinstance(root[k], type(root)) and "xrf_fit" in root[k]]
    if dataset is not None:
        if dataset not in root or "xrf_fit" not in root[dataset]:
            raise MapFileError(
                f"input {str(path)!r}: PyXRF group 'xrfmap/{dataset}' has no fitted maps; "
                f"groups with fits: {', '.join(fitted) or 'none'}"
            )
        group = dataset
    elif "detsum" in fitted:
        group = "detsum"
    elif fitted:
        group = fitted[0]
    else:
        raise MapFileError(
            f"input {str(path)!r}: PyXRF file has no fitted maps (xrfmap/detsum/xrf_fit); fit the spectra in PyXRF first"
        )
    g = root[group]
    stack = g["xrf_fit"][()]
    names = _names(g["xrf_fit_name"]) if "xrf_fit_name" in g else [f"map{i}" for i in range(stack.shape[0])]
    if stack.ndim != 3 or stack.shape[0] != len(names):
        raise MapFileError(f"input {str(path)!r}: xrfmap/{group}/xrf_fit has shape {stack.shape} for {len(names)} names")
    scalers = {}
    if "scalers" in root and "val" in root["scalers"]:
        val = root["scalers"]["val"][()]
        snames = _names(root["scalers"]["name"]) if "name" in root["scalers"] else [f"scaler{i}" for i in range(val.shape[-1])]
        if val.ndim == 3 and val.shape[-1] == len(snames):
            scalers = {n: val[..., i] for i, n in enumerate(snames)}
    meta = {"format": "hdf5", "layout": "pyxrf", "dataset": f"xrfmap/{group}/xrf_fit", "dtype": str(g["xrf_fit"].dtype)}
    if "scan_metadata" in root:
        meta["scan_metadata"] = _attrs(root["scan_metadata"])
    if "positions" in root and "pos" in root["positions"]:
        pos = root["positions"]["pos"][()]
        meta["positions"] = {"names": _names(root["positions"]["name"]) if "name" in root["positions"] else None,
                             "shape": list(pos.shape)}
        if pos.ndim == 3 and pos.shape[0] >= 2 and pos.shape[1] > 1 and pos.shape[2] > 1:
            meta["positions"]["step_x"] = float(np.median(np.diff(pos[0], axis=1)))
            meta["positions"]["step_y"] = float(np.median(np.diff(pos[1], axis=0)))
    pixel = None
    if "scan_metadata" in root:
        pixel = _jsonable(root["scan_metadata"].attrs.get("xrfgpu_pixel_size_um"))
    step_x, step_y = (abs((meta.get("positions") or {}).get(k) or 0.0) for k in ("step_x", "step_y"))
    if step_x and step_y and abs(step_y - step_x) > 0.01 * step_x:  # the positions' unit is not known: their ratio is
        if pixel:
            _note_rectangular(meta, float(pixel), float(pixel) * step_y / step_x, path)
        else:
            meta["pixel_size_note"] = (f"x step {step_x:.6g}, y step {step_y:.6g} (xrfmap/positions, in the file's "
                                       "unit): pixels are not square")
            _warn_later(meta, f"input {str(path)!r}: {meta['pixel_size_note']}")
    names = _unique_names(names, path, meta)
    return ElementMaps(dict(zip(names, stack)), pixel_size_um=pixel, metadata=meta, scalers=scalers)


#: Legacy (MAPS v9) analyses in ``/MAPS`` and the row of ``MAPS/channel_units`` that holds their units
#: (MAPS's order of the three analyses: ROI, ROI+, fitted).
_MAPS_LEGACY = {"XRF_fits": 2, "XRF_roi_plus": 1, "XRF_roi": 0}
_MAPS_ANALYSES = ("Fitted", "NNLS", "ROI")


def _maps_datasets(root):
    """{full dataset path: (kind, key)} of the element-map stacks in a MAPS file, default first."""
    found = {}
    analyzed = root.get("XRF_Analyzed")
    for k in _MAPS_ANALYSES:
        if analyzed is not None and k in analyzed and "Counts_Per_Sec" in analyzed[k]:
            found[f"MAPS/XRF_Analyzed/{k}/Counts_Per_Sec"] = ("analyzed", k)
    for k in _MAPS_LEGACY:
        if k in root and getattr(root[k], "ndim", 0) == 3:
            found[f"MAPS/{k}"] = ("legacy", k)
    return found


def _pick_maps_dataset(found, dataset, path):
    """The dataset path for ``--dataset``: a full path, the path without ``MAPS/``, or the analysis name."""
    if dataset is None:
        return next(iter(found))
    want = str(dataset).strip().strip("/").lower()
    for full, (kind, key) in found.items():
        aliases = {full.lower(), full[len("MAPS/"):].lower(), key.lower()}
        if kind == "analyzed":
            aliases |= {f"maps/xrf_analyzed/{key}".lower(), f"xrf_analyzed/{key}".lower()}
        if want in aliases:
            return full
    names = ", ".join(f"{key} ({full})" for full, (kind, key) in found.items())
    raise MapFileError(f"input {str(path)!r}: MAPS dataset {dataset!r} not found; available: {names or 'none'}")


def _axis_step_um(values):
    """Median step of a positioner axis in mm, as µm (MAPS stores motor positions in mm); None if < 2 points."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        return None
    step = float(np.median(np.abs(np.diff(v)))) * 1e3
    # positions are often float32 motor readbacks: 6 significant digits (10.0000001 µm -> 10 µm)
    return float(f"{step:.6g}") if np.isfinite(step) and step > 0 else None


def _read_aps_maps(f, path, dataset):
    root = f["MAPS"]
    found = _maps_datasets(root)
    if not found:
        raise MapFileError(
            f"input {str(path)!r}: MAPS file has no element maps (XRF_Analyzed/Fitted|NNLS|ROI/Counts_Per_Sec, "
            "or legacy XRF_fits, XRF_roi, XRF_roi_plus)"
        )
    where = _pick_maps_dataset(found, dataset, path)
    kind, key = found[where]
    ds = f[where]
    stack = ds[()]
    meta = {"format": "hdf5", "layout": "maps", "dataset": where, "dtype": str(ds.dtype),
            "datasets_available": list(found)}
    if kind == "analyzed":
        g = root["XRF_Analyzed"][key]
        names_ds = g["Channel_Names"] if "Channel_Names" in g else root["XRF_Analyzed"].get("Channel_Names")
        units_ds = g.get("Channel_Units")
        units = _names(units_ds) if units_ds is not None else None
        axes_group = root.get("Scan")
    else:
        names_ds = root.get("channel_names")
        units = None
        if "channel_units" in root:
            table = np.asarray(root["channel_units"][()])
            if table.ndim == 2 and table.shape[0] > _MAPS_LEGACY[key]:
                units = [_decode(u) for u in table[_MAPS_LEGACY[key]]]
                meta["channel_units_table"] = [[_decode(u) for u in row] for row in table]
            elif table.ndim == 1:
                units = [_decode(u) for u in table]
        axes_group = root
    names = _names(names_ds) if names_ds is not None else [f"map{i}" for i in range(stack.shape[0])]
    names = names[: stack.shape[0]]
    if stack.ndim != 3 or stack.shape[0] != len(names):
        raise MapFileError(f"input {str(path)!r}: {where} has shape {stack.shape} for {len(names)} channel names")
    meta["channel_names"] = list(names)  # as the file gives them: MAPS output looks their units up in this order
    names = _unique_names(names, path, meta)
    if units is not None and len(units) >= len(names):
        meta["units"] = dict(zip(names, units[: len(names)]))
    scalers = {}
    if "Scalers" in root and "Values" in root["Scalers"] and "Names" in root["Scalers"]:
        val = root["Scalers"]["Values"][()]
        snames = _names(root["Scalers"]["Names"])
        sunits = _names(root["Scalers"]["Units"]) if "Units" in root["Scalers"] else None
    elif "scalers" in root and "scaler_names" in root:  # v9
        val = root["scalers"][()]
        snames = _names(root["scaler_names"])
        sunits = _names(root["scaler_units"]) if "scaler_units" in root else None
    else:
        val, snames, sunits = None, [], None
    if val is not None and val.ndim == 3 and val.shape[0] == len(snames):
        scalers = {n: val[i] for i, n in enumerate(snames)}
        if sunits is not None and len(sunits) == len(snames):
            meta["scaler_units"] = dict(zip(snames, sunits))
    pixel = None
    if axes_group is not None:
        steps = {}
        for axis in ("x_axis", "y_axis"):
            if axis in axes_group:
                v = np.asarray(axes_group[axis][()], dtype=np.float64).ravel()
                meta[axis] = [float(x) for x in v]  # mm, kept so a MAPS output carries them
                steps[axis] = _axis_step_um(v)
                if steps[axis] is not None:
                    meta[f"{axis}_step_um"] = steps[axis]
        pixel = steps.get("x_axis") or steps.get("y_axis")
        _note_rectangular(meta, steps.get("x_axis"), steps.get("y_axis"), path)
    return ElementMaps(dict(zip(names, stack)), pixel_size_um=pixel, metadata=meta, scalers=scalers)


# --------------------------------------------------------------------------- writers


def _output_paths(path, sidecar=True):
    """Every path :func:`write_maps` creates for ``path``: the output, and its sidecar beside a file."""
    path = Path(path)
    return [path] if _is_folder_target(path) or not sidecar else [path, path.with_name(path.name + ".json")]


def _inputs(source):
    return [source] if isinstance(source, (str, os.PathLike)) else list(source or ())


def _check_target(path, overwrite, source, sidecar=True):
    """Refuse an output that touches an input or a file xrfgpu did not write (see :mod:`xrfgpu.output_safety`)."""
    from .output_safety import check_outputs

    check_outputs(_output_paths(path, sidecar), _inputs(source), overwrite=overwrite)


def _header(em, provenance):
    return {
        "xrfgpu": {
            "elements": em.names,
            "shape": list(em.shape),
            "pixel_size_um": em.pixel_size_um,
            "orientation": "row-major [row, col] as in the input; not flipped or transposed",
            "metadata": _jsonable(em.metadata),
            "provenance": _jsonable(provenance) if provenance is not None else None,
        }
    }


def write_maps(path, maps, *, provenance=None, overwrite=False, source=None, dtype=None, sidecar=True):
    """Write element maps, their metadata and provenance; atomically.

    The format follows the suffix of ``path``: ``.tif``/``.tiff`` (an ImageJ
    hyperstack, float32: ``tifffile.imread`` and ``skimage.io.imread`` give
    the (elements, rows, cols) stack, ImageJ ``Labels`` the names, the
    resolution in pixels per µm with ``unit=um`` the pixel size, ImageJ
    ``Info`` the JSON header with the provenance), ``.npy`` (stack; names
    in the sidecar), ``.npz``, ``.h5``/``.hdf5`` (``xrfgpu/maps`` and
    ``xrfgpu/names`` plus, for PyXRF or MAPS input, the same maps linked
    into that layout so those programs open the result; the input's scalers
    and metadata are copied), ``.csv``/``.txt`` (one element only; commas in
    ``.csv``, tabs in ``.tsv``/``.txt``/``.dat``/``.asc``), or no
    suffix: a folder with one CSV per element. A JSON sidecar
    (:func:`sidecar_path`) with the same header is written beside it.

    Parameters
    ----------
    path : str or Path
        Output file (or folder).
    maps : ElementMaps
    provenance : dict, optional
        Record of how the maps were made (see :mod:`xrfgpu.provenance`).
    overwrite : bool
        Replace an existing output. Default refuse.
    source : str or Path or sequence of them, optional
        The input file(s) or folder(s); an output that is, holds or lies
        inside one of them (or an input's sidecar) is refused. Default
        ``maps.source``.
    dtype : dtype, optional
        Stored dtype of the maps. Default float32, except HDF5 output of a
        MAPS or PyXRF input, which keeps the input dataset's dtype
        (``maps.metadata["dtype"]``, e.g. MAPS's float64). TIFF is always
        float32 (ImageJ hyperstacks). An integer dtype stores each map
        rounded to the nearest whole number; a map with NaN, inf or values
        outside the dtype's range is refused (a restored map may be negative).
    sidecar : bool
        Also write the JSON sidecar.

    Returns
    -------
    list of Path
        The files written (output first).

    Raises
    ------
    xrfgpu.output_safety.OutputExistsError
        ``path`` or its sidecar exists and ``overwrite`` is false (also
        when another run created it while this one was writing).
    xrfgpu.output_safety.UnsafeOutputError
        The output is, holds or lies inside an input, its folder is
        missing, or it exists and is not an earlier xrfgpu output.
    MapFileError
        An unknown suffix, several maps for a single CSV file, or a
        ``dtype`` that cannot hold the maps (not a number type; NaN, inf or
        values out of range for an integer dtype).

    Notes
    -----
    The map and its sidecar are written to hidden temporary files and
    published together (:func:`xrfgpu.output_safety.write_outputs`): both
    land or neither does, and without ``overwrite`` an output that appears
    meanwhile is never replaced.
    """
    if not isinstance(maps, ElementMaps):
        raise TypeError(f"maps must be an ElementMaps, got {type(maps).__name__}")
    path = Path(path)
    source = maps.source if source is None else source
    header = _header(maps, provenance)
    suffix = path.suffix.lower()
    if dtype is None:
        keep = suffix in HDF5_SUFFIXES and maps.metadata.get("layout") in ("maps", "pyxrf")
        dtype = np.dtype(maps.metadata.get("dtype") or "float32") if keep else np.dtype(np.float32)
        if dtype.kind != "f":
            dtype = np.dtype(np.float32)  # restored maps are real-valued: integer counts become float32
    else:
        maps = _as_stored(maps, np.dtype(dtype), path)
    if _is_folder_target(path):
        def write_folder(tmp):
            files = {}
            for i, (name, m) in enumerate(maps.maps.items()):
                safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
                fname = f"{safe}.csv" if f"{safe}.csv" not in files.values() else f"{safe}_{i}.csv"
                files[name] = fname
                np.savetxt(Path(tmp) / fname, np.asarray(m, dtype=np.float64), delimiter=",", fmt="%.7g")
            header["xrfgpu"]["files"] = files
            if sidecar:
                (Path(tmp) / "xrfgpu.json").write_text(json.dumps(header, indent=2), encoding="utf-8")

        _check_target(path, overwrite, source)
        write_outputs([Output(path, write_folder, folder=True)], inputs=_inputs(source), overwrite=overwrite)
        return [path]
    if suffix in TIFF_SUFFIXES:
        writer = _write_tiff
    elif suffix == ".npy":
        writer = _write_npy
    elif suffix == ".npz":
        writer = _write_npz
    elif suffix in HDF5_SUFFIXES:
        writer = _write_hdf5
    elif suffix in TEXT_SUFFIXES:
        if len(maps) != 1:
            raise MapFileError(
                f"output {str(path)!r}: a CSV/TXT file holds one map, not {len(maps)}; give a folder name (no suffix) instead"
            )
        import functools

        writer = functools.partial(_write_text, delimiter=TEXT_DELIMITERS.get(suffix, "\t"))
    else:
        raise MapFileError(f"output {str(path)!r}: unknown output format {suffix!r} (use .tif, .h5, .npz, .npy, .csv or a folder)")
    _check_target(path, overwrite, source, sidecar)
    outputs = [Output(path, lambda tmp: writer(tmp, maps, header, dtype))]
    if sidecar:  # published first: a record without its map is recognised (and replaced) by the next run
        outputs.insert(0, Output(sidecar_path(path),
                                 lambda tmp: Path(tmp).write_text(json.dumps(header, indent=2), encoding="utf-8")))
    return write_outputs(outputs, inputs=_inputs(source), overwrite=overwrite)[::-1]


def _as_stored(maps, dtype, path):
    """``maps`` ready for a given ``dtype``: an integer dtype gets the maps rounded to the nearest
    whole number, and refuses values it cannot hold (``astype`` would truncate 1.7 to 1, wrap -3 to 65533
    in uint16 and turn NaN into 0, without a word)."""
    if dtype.kind not in "fiu":
        raise MapFileError(f"output {str(path)!r}: dtype {dtype} is not a real number type; use a float or integer dtype")
    if dtype.kind == "f":
        return maps
    info = np.iinfo(dtype)
    rounded = {}
    for name, m in maps.maps.items():
        a = np.asarray(m)
        if a.dtype.kind in "iub":
            low, high = (int(a.min()), int(a.max())) if a.size else (0, 0)
            bad = low < info.min or high > info.max
        else:
            a = np.rint(a.astype(np.float64))
            finite = np.isfinite(a)
            low, high = (float(a[finite].min()), float(a[finite].max())) if finite.any() else (0.0, 0.0)
            if not finite.all():
                raise MapFileError(f"output {str(path)!r}: map {name!r} has NaN or infinite values, which dtype "
                                   f"{dtype} cannot hold; write a float dtype")
            bad = low < info.min or high > info.max
        if bad:
            raise MapFileError(f"output {str(path)!r}: map {name!r} spans {low:g} to {high:g}, outside dtype {dtype} "
                               f"({info.min} to {info.max}); write a float dtype or a wider integer")
        rounded[name] = a
    return maps.with_maps(rounded)


def _write_tiff(tmp, em, header, dtype):
    """One ImageJ hyperstack (axes ``CYX``, float32): what ImageJ/Fiji, napari, scikit-image and
    plain ``tifffile.imread`` open as a (elements, rows, cols) stack.

    Element names are the ImageJ channel ``Labels``; the pixel size is the
    resolution in pixels per µm with ImageJ ``unit=um`` (ImageJ's own
    convention; the TIFF ResolutionUnit is then NONE): XResolution from
    ``pixel_size_um``, YResolution from ``metadata["pixel_size_y_um"]`` where
    the input's pixels were not square (else the same). The xrfgpu header
    (names, pixel size, input metadata, provenance) is JSON in ImageJ's
    ``Info`` entry, stored in the IJMetadata tag (50839), which ImageJ shows
    under *Image > Show Info* and which no reader takes for image layout; the
    ImageDescription holds only ImageJ's own ``key=value`` lines. ImageJ
    hyperstacks are float32, so float64 maps are stored as float32.
    """
    tifffile = _require("tifffile", "writing TIFF")
    from . import __version__

    stack = em.stack(np.float32)
    metadata = {"axes": "CYX" if len(em) > 1 else "YX", "Labels": em.names,
                "Info": json.dumps(header, ensure_ascii=False)}
    res = None
    if em.pixel_size_um:
        y_um = em.metadata.get("pixel_size_y_um") or em.pixel_size_um  # rectangular pixels keep their y step
        res = (1.0 / em.pixel_size_um, 1.0 / float(y_um))  # pixels per µm
        metadata["unit"] = "um"
    tifffile.imwrite(tmp, stack if len(em) > 1 else stack[0], imagej=True, resolution=res, metadata=metadata,
                     software=f"xrfgpu {__version__}")


def _write_npy(tmp, em, header, dtype):
    with open(tmp, "wb") as fh:
        np.save(fh, em.stack(dtype) if len(em) > 1 else np.asarray(next(iter(em.maps.values())), dtype=dtype))


def _write_npz(tmp, em, header, dtype):
    arrays = {name: np.asarray(m, dtype=dtype) for name, m in em.maps.items()}
    arrays["__xrfgpu__"] = np.asarray(json.dumps(header["xrfgpu"]))
    if em.pixel_size_um:
        arrays["pixel_size_um"] = np.asarray(em.pixel_size_um)
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


#: The separator of a one-map text output, by suffix: commas in ``.csv``, tabs in the others (``.tsv``,
#: ``.txt``, ``.dat``, ``.asc``), which ``numpy.loadtxt(path)`` reads with or without ``delimiter="\t"``
#: (and spreadsheets as tab-delimited text).
TEXT_DELIMITERS = {".csv": ","}


def _write_text(tmp, em, header, dtype, delimiter=","):
    np.savetxt(tmp, np.asarray(next(iter(em.maps.values())), dtype=np.float64), delimiter=delimiter, fmt="%.7g")


def _write_hdf5(tmp, em, header, dtype):
    h5py = _require("h5py", "writing HDF5")
    info = header["xrfgpu"]
    string = h5py.string_dtype()
    with h5py.File(tmp, "w") as f:
        g = f.create_group("xrfgpu")
        maps = g.create_dataset("maps", data=em.stack(dtype), compression="gzip", compression_opts=4)
        maps.attrs["axes"] = "element, row, col"
        g.create_dataset("names", data=np.asarray(em.names, dtype=object), dtype=string)
        g.attrs["xrfgpu"] = json.dumps(info)
        if em.pixel_size_um:
            g.attrs["pixel_size_um"] = em.pixel_size_um
        prov = info.get("provenance") or {}
        g.attrs["provenance"] = json.dumps(prov)
        for key in ("xrfgpu_version", "method", "created", "input_sha256"):
            if key in prov:
                g.attrs[key] = str(prov[key])
        g.create_dataset("input_metadata", data=json.dumps(info.get("metadata") or {}), dtype=string)
        if prov.get("parameters") is not None:
            g.create_dataset("parameters", data=json.dumps(prov["parameters"]), dtype=string)
        if em.scalers:
            s = g.create_group("scalers")
            for name, v in em.scalers.items():
                s.create_dataset(name, data=np.asarray(v))
        layout = em.metadata.get("layout")
        if layout == "pyxrf":
            _write_pyxrf_layout(f, maps, em)
        elif layout == "maps":
            _write_maps_layout(f, maps, em)


def _ascii(names):
    return np.asarray([str(n).encode() for n in names])


def _write_pyxrf_layout(f, maps, em):
    """PyXRF's ``xrfmap``: the maps (hard link) in the detector group they were read from."""
    dataset = str(em.metadata.get("dataset") or "xrfmap/detsum/xrf_fit")
    group = dataset.rsplit("/", 1)[0] if dataset.startswith("xrfmap/") else "xrfmap/detsum"
    det = f.create_group(group)
    det["xrf_fit"] = maps  # hard link: PyXRF opens the restored maps, no copy
    det.create_dataset("xrf_fit_name", data=_ascii(em.names))
    if em.scalers:
        sc = f.create_group("xrfmap/scalers")
        sc.create_dataset("val", data=np.stack([np.asarray(v) for v in em.scalers.values()], axis=-1))
        sc.create_dataset("name", data=_ascii(em.scalers))
    md = f.create_group("xrfmap/scan_metadata")
    for k, v in (em.metadata.get("scan_metadata") or {}).items():
        md.attrs[k] = json.dumps(v) if isinstance(v, (dict, list)) or v is None else v
    if em.pixel_size_um:
        md.attrs["xrfgpu_pixel_size_um"] = em.pixel_size_um


def _axis_at_pixel_size(positions_mm, pixel_size_um, read_pixel_size_um):
    """A MAPS scan axis (positions in mm) for the maps' pixel size.

    The input's axis as it was, unless the pixel size was given (``--pixel-size``) and differs from the
    one read from the axes (``read_pixel_size_um``): then the same first position, direction and length
    with steps of ``pixel_size_um``. A viewer reads the pixel size from the axes, which kept the input's
    steps while the record said the given size.
    """
    if (pixel_size_um is None or read_pixel_size_um is None or positions_mm.size < 2
            or abs(pixel_size_um - read_pixel_size_um) <= 1e-6 * read_pixel_size_um):
        return positions_mm
    direction = 1.0 if float(np.median(np.diff(positions_mm))) >= 0 else -1.0
    return positions_mm[0] + direction * (pixel_size_um / 1000.0) * np.arange(positions_mm.size)


def _write_maps_layout(f, maps, em):
    """APS MAPS: the maps (hard link) at the dataset they were read from, with its names, units, axes, scalers.

    Legacy v9 input (``MAPS/XRF_fits``, ``XRF_roi``, ``XRF_roi_plus``) gives
    ``MAPS/<same>`` with ``channel_names``, ``channel_units`` (the input's
    table, columns of the written elements), ``x_axis``/``y_axis`` (mm),
    ``scalers``/``scaler_names``/``scaler_units``; current input
    (``MAPS/XRF_Analyzed/<analysis>/Counts_Per_Sec``) gives the same path
    with ``Channel_Names``/``Channel_Units``, ``MAPS/Scalers`` and
    ``MAPS/Scan/x_axis``/``y_axis``.
    """
    meta = em.metadata
    dataset = str(meta.get("dataset") or "MAPS/XRF_Analyzed/Fitted/Counts_Per_Sec")
    units = meta.get("units") or {}
    legacy = not dataset.startswith("MAPS/XRF_Analyzed/")
    f[dataset] = maps
    if units:
        maps.attrs["units"] = json.dumps({n: units.get(n) for n in em.names})
    if legacy:
        root = f["MAPS"]
        root.create_dataset("channel_names", data=_ascii(em.names))
        table = meta.get("channel_units_table")
        if table:
            every = list(meta.get("channel_names") or [])
            rows = [[row[every.index(n)] if n in every and every.index(n) < len(row) else units.get(n, "")
                     for n in em.names] for row in table]
            root.create_dataset("channel_units", data=np.asarray([[u.encode() for u in r] for r in rows]))
        elif units:
            root.create_dataset("channel_units", data=_ascii([units.get(n, "") for n in em.names]))
        axes, sc_values, sc_names, sc_units = root, "scalers", "scaler_names", "scaler_units"
    else:
        g = f[dataset.rsplit("/", 1)[0]]
        g.create_dataset("Channel_Names", data=_ascii(em.names))
        if units:
            g.create_dataset("Channel_Units", data=_ascii([units.get(n, "") for n in em.names]))
        axes = f.require_group("MAPS/Scan")
        f.require_group("MAPS/Scalers")  # the scalers are written below, under it
        sc_values, sc_names, sc_units = "Scalers/Values", "Scalers/Names", "Scalers/Units"
    for axis in ("x_axis", "y_axis"):
        if meta.get(axis):
            read_pixel = meta.get("x_axis_step_um") or meta.get("y_axis_step_um")  # what the input's axes gave
            axes.create_dataset(axis, data=_axis_at_pixel_size(np.asarray(meta[axis], dtype=np.float64),
                                                              em.pixel_size_um, read_pixel))
    if em.scalers:
        root = f["MAPS"]
        root.create_dataset(sc_values, data=np.stack([np.asarray(v) for v in em.scalers.values()]))
        root.create_dataset(sc_names, data=_ascii(em.scalers))
        su = meta.get("scaler_units") or {}
        if su:
            root.create_dataset(sc_units, data=_ascii([su.get(n, "") for n in em.scalers]))
    if legacy:
        f["MAPS"].create_dataset("version", data=np.int32(9))
