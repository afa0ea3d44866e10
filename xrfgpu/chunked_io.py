"""Chunked storage for maps larger than memory: Zarr and HDF5 in, Zarr out.

Readers return lazy :class:`dask.array.Array` objects that read one chunk at
a time; the writer streams a Dask array into a Zarr array chunk by chunk and
publishes it atomically (written under a temporary name next to the target,
then renamed), with a provenance record in the array's attributes. Input
files are opened read-only and never written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["HDF5_SUFFIXES", "INCOMPLETE_KEY", "check_zarr_name", "is_hdf5", "is_zarr", "open_chunked", "write_zarr"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".he5")
#: suffixes of the other map formats: a Zarr store (a folder) named with one would be taken for such a file
OTHER_FORMAT_SUFFIXES = HDF5_SUFFIXES + (".h50", ".tif", ".tiff", ".npy", ".npz", ".csv", ".txt", ".dat", ".asc",
                                         ".tsv", ".json", ".toml", ".png")
#: attribute of a store being written; the finished store has the record (``"xrfgpu"``) instead
INCOMPLETE_KEY = "xrfgpu_incomplete"
_INCOMPLETE_TEXT = ("not finished: an xrfgpu run is writing this store (or was stopped while writing it); "
                    "unwritten chunks read as NaN. A finished store has its 'xrfgpu' record instead")


def check_zarr_name(path):
    """Refuse a Zarr output named as a file of another format (``out.h5``, ``out.tif``, ...).

    Raises
    ------
    ValueError
        The name ends in a suffix of another map format: the store (a
        folder) would be taken for that file by users and by xrfgpu's readers.
    """
    suffix = Path(path).suffix.lower()
    if suffix in OTHER_FORMAT_SUFFIXES:
        raise ValueError(f"output {str(path)!r} is written as a Zarr store (a folder), but its name ends in {suffix!r}, "
                         "a file format h5py/tifffile/numpy users and xrfgpu's readers would try to open it as; "
                         "name it e.g. 'restored.zarr'")


def is_hdf5(path) -> bool:
    """True for a file with an HDF5 suffix or the HDF5 signature."""
    p = Path(path)
    if p.suffix.lower() in HDF5_SUFFIXES:
        return True
    if p.is_file():
        with open(p, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    return False


def _zarr_major():
    """The major version of the installed zarr-python (2 or 3)."""
    import zarr

    return int(str(zarr.__version__).split(".")[0])


def _nested_array_names(group):
    """The paths of every array in a Zarr group, nested ones included, sorted.

    zarr-python 3 lists them with ``Group.members(max_depth=None)``; zarr 2
    has no ``members`` and walks its hierarchy with ``Group.visititems``.
    """
    import zarr

    if hasattr(group, "members"):
        return sorted(name for name, member in group.members(max_depth=None) if isinstance(member, zarr.Array))
    names = []
    group.visititems(lambda name, member: names.append(name) if isinstance(member, zarr.Array) else None)
    return sorted(names)


def is_zarr(path) -> bool:
    """True for a Zarr store (a folder with Zarr v2 or v3 metadata)."""
    p = Path(path)
    return p.is_dir() and any((p / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


class _HDF5Source:
    """Picklable read-only view of an HDF5 dataset for :func:`dask.array.from_array`.

    Opens the file for every read, so tasks can run in other processes or on
    other machines of a cluster (an open ``h5py.Dataset`` cannot be pickled).
    """

    def __init__(self, path, dataset):
        import h5py

        self.path = str(Path(path).resolve())
        self.dataset = dataset
        with h5py.File(self.path, "r") as fh:
            if dataset not in fh:
                names = []
                fh.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
                raise ValueError(f"{path} has no dataset {dataset!r}; datasets: {names}")
            d = fh[dataset]
            if not isinstance(d, h5py.Dataset):
                raise ValueError(f"{dataset!r} in {path} is a group, not a dataset")  # noqa: TRY004
            self.shape = tuple(d.shape)
            self.dtype = d.dtype
            self.chunks = d.chunks
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        import h5py

        with h5py.File(self.path, "r") as fh:
            return fh[self.dataset][key]


def open_chunked(path, dataset=None, *, chunks=None):
    """Open a Zarr array or an HDF5 dataset as a lazy Dask array.

    Parameters
    ----------
    path : str or Path
        A Zarr store (folder) or an HDF5 file.
    dataset : str, optional
        Array path inside a Zarr group or an HDF5 file. Optional for a Zarr
        array store, or a group/file holding exactly one array.
    chunks : int or tuple, optional
        Dask chunks; default the storage's own chunks (HDF5 datasets stored
        contiguously are read in 1024² pieces).

    Returns
    -------
    array : dask.array.Array

    Raises
    ------
    FileNotFoundError
        No such file or folder.
    ValueError
        Neither Zarr nor HDF5; dataset missing or ambiguous.
    """
    import dask.array as da

    from .output_safety import is_temp_name

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or Zarr store: {path}")
    if is_temp_name(p.name):  # an HDF5 file or Zarr store xrfgpu was still writing (or was killed writing)
        raise ValueError(f"{path} is an xrfgpu output that is not finished (a temporary of a run still going, or "
                         "stopped or killed while writing): not read as input")
    if is_zarr(p):
        import zarr

        if dataset is None:
            node = zarr.open(store=str(p), mode="r")
        else:
            try:
                node = zarr.open(store=str(p), mode="r", path=dataset)
            except (KeyError, FileNotFoundError, ValueError) as exc:  # zarr's GroupNotFoundError is a KeyError
                root = zarr.open(store=str(p), mode="r")
                arrays = _nested_array_names(root) if isinstance(root, zarr.Group) else []
                raise ValueError(f"{path} has no dataset {dataset!r}; datasets: {arrays}") from exc
        if isinstance(node, zarr.Group):
            # every array of the group, nested ones too (as for HDF5): "arrays []" hid 'maps/fe', 'maps/ca'
            arrays = _nested_array_names(node)
            if len(arrays) != 1:
                raise ValueError(f"{path} is a Zarr group with arrays {arrays}; name one with dataset=")
            node = node[arrays[0]]
        if INCOMPLETE_KEY in node.attrs:
            raise ValueError(f"{path} is an xrfgpu output that is not finished (written by a run still going, or "
                             "stopped or killed while writing; its unwritten chunks read as NaN): not read as input")
        return da.from_zarr(node, chunks=chunks if chunks is not None else node.chunks)
    if is_hdf5(p):
        import h5py

        if dataset is None:
            with h5py.File(p, "r") as fh:
                names = []
                fh.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            if len(names) != 1:
                raise ValueError(f"{path} holds datasets {names}; name one with dataset=")
            dataset = names[0]
        source = _HDF5Source(p, dataset)
        if source.ndim not in (2, 3) or not np.issubdtype(source.dtype, np.number):  # before Dask's chunking
            raise ValueError(f"{path}: dataset {dataset!r} of shape {tuple(source.shape)} and dtype {source.dtype} "
                             "is not a map (rows, cols) or a stack (maps, rows, cols) of numbers")
        if chunks is None:
            chunks = source.chunks if source.chunks is not None else (1,) * (source.ndim - 2) + (1024, 1024)
        return da.from_array(source, chunks=chunks, asarray=True, fancy=False, meta=np.empty((0,) * source.ndim, source.dtype))
    raise ValueError(f"{path} is neither a Zarr store nor an HDF5 file")


def _compute_to_the_last_task(delayed):
    """Compute ``delayed`` and, when a task fails, return (raise) only once no task is running.

    On Dask's threaded scheduler the first error reaches the caller while other threads still restore
    and write their chunks; the caller then removes the temporary store, and those threads wrote into
    it again, leaving ``.out.zarr.xrfgpu-tmp-...`` behind (restore_zarr on the MAPS ``XRF_roi_plus``
    maps, 3 runs of 3). Here the threads are ours: on an error the pool drops the queued tasks and
    waits for the running ones. Other schedulers (synchronous, processes, dask.distributed) are used
    as they are.
    """
    import dask
    import dask.threaded
    from concurrent.futures import ThreadPoolExecutor

    if dask.base.get_scheduler(collections=[delayed]) is not dask.threaded.get:
        return delayed.compute()
    pool = ThreadPoolExecutor(dask.config.get("num_workers", None) or dask.system.CPU_COUNT)
    try:
        return delayed.compute(pool=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def write_zarr(array, path, *, attrs=None, overwrite=False, compute=True, inputs=()):
    """Stream a Dask array into a new Zarr array store, atomically.

    The array is written chunk by chunk under a temporary name in the same
    folder and renamed to ``path`` when complete, so a crash never leaves a
    half-written store under the final name. The temporary store itself
    does not look finished either: a float array's fill value is NaN, so
    unwritten chunks read as NaN (never as plausible zeros), and its
    attributes hold ``"xrfgpu_incomplete"`` (:data:`INCOMPLETE_KEY`) until
    the data are written, when ``attrs`` replace it. :func:`open_chunked`
    refuses such a store.

    Parameters
    ----------
    array : dask.array.Array
        NumPy-backed chunks (move CuPy chunks to the host first); regular
        chunks (all equal but the last along each axis).
    path : str or Path
        Target store (folder).
    attrs : dict or callable, optional
        JSON-serialisable attributes (the provenance record), or a function
        returning them, called once the data are written (so a record can
        include the run time) and before the store is renamed into place.
    overwrite : bool
        Replace an existing store at ``path``, if it is an earlier xrfgpu
        output (its attributes hold an ``"xrfgpu"`` record); otherwise an
        existing ``path`` is an error.
    compute : bool
        Compute ``array`` into the store (the default). False creates the
        store (shape, chunks, dtype, fill value NaN) and publishes it with
        ``attrs`` and the incomplete mark kept, for a caller that writes the
        data itself and then replaces the attributes.
    inputs : sequence of str or Path
        Files or stores the array was read from; the output may not be,
        hold or lie inside one of them.

    Returns
    -------
    path : Path

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (also when another run
        created it while this one was writing).
    ValueError
        ``path`` touches an input, or exists and is not an xrfgpu store
        (:class:`xrfgpu.output_safety.UnsafeOutputError`).

    Notes
    -----
    The store is written under a hidden temporary name and published with
    no-replace semantics (:func:`xrfgpu.output_safety.write_outputs`).
    """
    import dask.array as da
    import zarr

    from .output_safety import Output, check_outputs, write_outputs

    target = Path(path)
    check_zarr_name(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    check_outputs([target], inputs, overwrite=overwrite)
    # unwritten chunks of a store left by a killed run read NaN, not the default fill 0
    fill = {"fill_value": float("nan")} if np.issubdtype(array.dtype, np.floating) else {}

    def write_store(tmp):
        nonlocal attrs
        mark = {INCOMPLETE_KEY: _INCOMPLETE_TEXT}
        if _zarr_major() >= 3:  # the mark in the array's own metadata write
            stored = da.to_zarr(array, str(tmp), compute=False, overwrite=False, attributes=mark, **fill)
        else:  # zarr 2's create ignores attributes= (with a warning): the mark is put before any chunk is written
            stored = da.to_zarr(array, str(tmp), compute=False, overwrite=False, **fill)
            zarr.open_array(store=str(tmp), mode="r+").attrs.put(mark)
        if compute:
            _compute_to_the_last_task(stored)
        if callable(attrs):
            attrs = attrs()
        final = dict(attrs or {})
        if not compute:  # the data are still to be written by the caller
            final[INCOMPLETE_KEY] = _INCOMPLETE_TEXT
        z = zarr.open_array(store=str(tmp), mode="r+")
        z.attrs.put(final)  # the record replaces the incomplete mark, in one metadata write

    write_outputs([Output(target, write_store, folder=True)], inputs=inputs, overwrite=overwrite)
    return target
