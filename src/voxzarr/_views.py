"""In-memory arrays (NumPy or CuPy) as dask arrays, without copying them."""

from __future__ import annotations

import uuid
from typing import Any

import dask.array as da

__all__ = ["dask_view"]


class _NoCopy:
    """Array-like view that ``dask.array.from_array`` neither copies nor hashes.

    dask copies any input that has a ``copy`` method and hashes it for a name: for a large
    in-memory image that is a second full copy. voxzarr never modifies such an input.
    """

    def __init__(self, arr: Any):
        self.arr = arr
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key: Any) -> Any:
        return self.arr[key]


def dask_view(data: Any, chunks: Any) -> da.Array:
    """A dask array over an in-memory (NumPy or CuPy) array, without copying it."""
    meta = data[tuple(slice(0, 0) for _ in data.shape)]
    return da.from_array(_NoCopy(data), chunks=chunks, asarray=False, meta=meta,
                         name=f"voxzarr-view-{uuid.uuid4().hex}")
