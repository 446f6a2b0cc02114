"""``HaloArray``: a stored halo level as blocks that each need exactly one read."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from .._chunkread import read_region
from ..errors import HaloError, StaleHaloError
from .graph import run_on_block
from .layout import HaloLayout, HaloMeta
from .store import (
    _depth_vector,
    check_fresh,
    halo_array,
    level_array,
    open_image_group,
    read_meta,
    write_halo,
)

__all__ = ["HaloArray", "HaloBlock", "open_halo"]


@dataclass(frozen=True)
class HaloBlock:
    """One block read from the halo store.

    Attributes
    ----------
    index
        Block (core chunk) index.
    data
        The block's real voxels: core plus halo, cropped at the image edge (wrapped around
        on periodic axes).
    span
        Image positions ``(start, stop)`` per axis that ``data`` covers (outside ``[0, n)``
        only on periodic axes, where position ``p`` holds voxel ``p mod n``).
    core
        Where the core chunk sits inside ``data``.
    outside
        Out-of-image extent ``(before, after)`` per axis: halo voxels that fall beyond the
        image edge and so are not in ``data`` (apply the boundary mode there).
    """

    index: tuple[int, ...]
    data: np.ndarray
    span: tuple[tuple[int, int], ...]
    core: tuple[slice, ...]
    outside: tuple[tuple[int, int], ...]


class _ReadBlock:
    """Dask task body: one stored read, crop to ``depth``, run ``fn``, keep the core."""

    def __init__(self, array: zarr.Array, layout: HaloLayout, depth: tuple[int, ...],
                 fn: Callable[[np.ndarray], Any]):
        self.array, self.layout, self.depth, self.fn = array, layout, depth, fn
        self.cropped = layout.with_depth(depth)

    def __call__(self, block_id: tuple[int, ...] | None = None) -> Any:
        assert block_id is not None
        # exactly one stored object, read and decoded directly (a shard's inner chunks on
        # the codec pool)
        stored = read_region(self.array, self.layout.stored_slices(block_id))
        valid = stored[self.layout.valid_in_stored(block_id)]
        region = valid[self.layout.crop(block_id, self.depth)]
        return run_on_block(self.fn, region, self.cropped.core_in_valid(block_id))


class HaloArray:
    """One level of an OME-Zarr image read through its stored halo.

    Obtain with :func:`open_halo`. Every block (core chunk plus ``depth`` real neighbour
    voxels) is one stored chunk, so any chunk can be processed alone with one read.
    """

    def __init__(self, array: zarr.Array, meta: HaloMeta, image: xr.DataArray, where: str):
        self.array = array
        self.meta = meta
        self.layout = meta.layout
        self._image = image
        self.where = where

    # ------------------------------------------------------------------ description
    @property
    def dims(self) -> tuple[str, ...]:
        return self.meta.dims

    @property
    def shape(self) -> tuple[int, ...]:
        return self.meta.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta.dtype)

    @property
    def depth(self) -> dict[str, int]:
        """Stored halo depth per dim."""
        return dict(zip(self.dims, self.meta.depth, strict=True))

    @property
    def core_chunks(self) -> tuple[int, ...]:
        return self.meta.core_chunks

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Core chunks, dask style (the chunks of every result)."""
        return self.layout.chunks

    @property
    def numblocks(self) -> tuple[int, ...]:
        return self.layout.numblocks

    @property
    def periodic(self) -> tuple[str, ...]:
        """Dims whose halo holds the opposite face."""
        return self.meta.periodic

    @property
    def periodic_axes(self) -> tuple[bool, ...]:
        return tuple(d in self.meta.periodic for d in self.dims)

    @property
    def generation(self) -> int:
        return self.meta.generation

    @property
    def level(self) -> str:
        return self.meta.source_level

    def __repr__(self) -> str:
        return (f"<HaloArray {self.where} level {self.level!r} dims {self.dims} shape "
                f"{self.shape} {self.dtype} core chunks {self.core_chunks} depth "
                f"{self.meta.depth} periodic {list(self.periodic)} generation "
                f"{self.generation}>")

    # ------------------------------------------------------------------ access
    def _index(self, index: Sequence[int] | int) -> tuple[int, ...]:
        idx = (index,) if isinstance(index, int | np.integer) else tuple(index)
        if len(idx) != len(self.dims) or any(
                not isinstance(k, int | np.integer) or not 0 <= k < n
                for k, n in zip(idx, self.numblocks, strict=True)):
            raise HaloError(f"block index {index!r} is outside the block grid "
                            f"{self.numblocks}", path=self.where, field="index")
        return tuple(int(k) for k in idx)

    def block(self, index: Sequence[int] | int) -> HaloBlock:
        """Read one block (one stored chunk): its real voxels and where its core sits."""
        idx = self._index(index)
        stored = read_region(self.array, self.layout.stored_slices(idx))
        data = stored[self.layout.valid_in_stored(idx)]
        axes = self.layout.axes
        return HaloBlock(
            index=idx, data=data,
            span=tuple(a.valid(k) for a, k in zip(axes, idx, strict=True)),
            core=self.layout.core_in_valid(idx),
            outside=tuple(a.outside(k) for a, k in zip(axes, idx, strict=True)),
        )

    def _depth(self, depth: Any) -> tuple[int, ...]:
        if depth is None:
            return self.meta.depth
        want = _depth_vector(depth, self.dims)
        short = {d: (w, h) for d, w, h in zip(self.dims, want, self.meta.depth, strict=True)
                 if w > h}
        if short:
            raise HaloError(f"needs more halo than is stored on {sorted(short)} "
                            f"(needed, stored): {short}; rebuild with a larger depth",
                            path=self.where, field="depth")
        return want

    def map_blocks(self, fn: Callable[[np.ndarray], Any], depth: Any = None,
                   dtype: Any = None, *, name: str | None = None) -> xr.DataArray:
        """Apply ``fn`` to every block seam-free: one stored read and one task per chunk.

        Parameters
        ----------
        fn
            Takes a block's real voxels (numpy; core plus ``depth``, cropped at the image
            edge, wrapped on periodic axes) and returns an array of the same shape. Apply
            any boundary mode inside ``fn``: the crop puts the block edge at the true image
            edge, so e.g. ``lambda b: ndi.gaussian_filter(b, 2, mode="nearest")`` with
            depth 8 equals the whole-image filter exactly.
        depth
            Halo ``fn`` needs (int for every spatial axis, ``{dim: n}`` or per axis);
            default the stored depth. More than stored raises :class:`HaloError`.
        dtype
            dtype of ``fn``'s result (default the image dtype).

        Returns
        -------
        xarray.DataArray
            Lazy result with the image's coordinates, chunked by the core chunks.
        """
        want = self._depth(depth)
        out_dtype = np.dtype(dtype if dtype is not None else self.dtype)
        task = _ReadBlock(self.array, self.layout, want, fn)
        data = da.map_blocks(task, chunks=self.chunks, dtype=out_dtype,
                             meta=np.empty((0,) * len(self.dims), dtype=out_dtype),
                             name=name or f"voxzarr-halo-map-{uuid.uuid4().hex}")
        img = self._image
        out = xr.DataArray(data, dims=img.dims, coords=img.coords, attrs=dict(img.attrs))
        out.name = img.name  # not the dask key of a nameless input
        return out

    @property
    def core(self) -> xr.DataArray:
        """The canonical image, cut back out of the halo blocks (equal to it exactly)."""
        return self.map_blocks(_identity, depth=(0,) * len(self.dims))


def _identity(block: np.ndarray) -> np.ndarray:
    return block


def open_halo(location: Any, level: int | str = 0, *, rebuild: bool = False,
              storage_options: dict | None = None) -> HaloArray:
    """Open the stored halo of one level of the OME-Zarr image at ``location``.

    Parameters
    ----------
    location
        The image (path, URL, store or group).
    level
        Level index or dataset path.
    rebuild
        When the halo is stale (the image changed since it was built), rebuild it with the
        same depth, chunks and periodic axes instead of raising :class:`StaleHaloError`.

    Raises
    ------
    HaloError
        No halo for this level, or its metadata is malformed.
    StaleHaloError
        The image's generation no longer matches the halo's (and ``rebuild`` is False).
    """
    from ..io import open_image

    group, where = open_image_group(location, storage_options=storage_options)
    _, path, src = level_array(group, where, level)
    harr = halo_array(group, where, path)
    meta = read_meta(harr, where)
    try:
        check_fresh(meta, group, src, where)
    except StaleHaloError:
        if not rebuild:
            raise
        write_halo(None, location, depth=meta.depth, levels=[path],
                   periodic=list(meta.periodic), chunks=meta.core_chunks,
                   storage_options=storage_options)
        return open_halo(location, level=path, storage_options=storage_options)
    image = open_image(group, level=path)
    return HaloArray(harr, meta, image, where)
