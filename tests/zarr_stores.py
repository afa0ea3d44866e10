"""Zarr stores for the tests, written the same way under zarr-python 2 and 3.

xrfgpu supports ``zarr>=2.16`` (pyproject's ``dask`` extra). zarr 3 creates
arrays with ``zarr.create_array`` / ``Group.create_array``; zarr 2 has neither
and uses ``zarr.open_array(mode="w")`` / ``Group.create_dataset``. These two
helpers let one test body run under either.
"""

from __future__ import annotations

import zarr

ZARR_MAJOR = int(str(zarr.__version__).split(".")[0])


def new_array(path, *, shape, chunks, dtype):
    """A new, empty Zarr array store at ``path`` (a folder), open for writing."""
    if ZARR_MAJOR >= 3:
        return zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype=dtype)
    return zarr.open_array(store=str(path), mode="w", shape=shape, chunks=chunks, dtype=dtype)


def new_member(group, name, *, shape, chunks, dtype):
    """A new array ``name`` (a path such as ``"maps/fe"``) inside a Zarr group."""
    if ZARR_MAJOR >= 3:
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype)
    return group.create_dataset(name, shape=shape, chunks=chunks, dtype=dtype)
