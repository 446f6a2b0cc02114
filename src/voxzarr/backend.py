"""xarray backend: ``xr.open_dataset(path, engine="voxzarr")``, ``open_groups``, ``open_datatree``.

Variables come back lazily indexed (a :class:`~xarray.backends.BackendArray` over the zarr
array), not as dask arrays, so xarray's own ``chunks=`` / ``cache=`` handling applies as for
its zarr engine: ``encoding["preferred_chunks"]`` is the stored chunk shape (the inner chunk of
a sharded array, as xarray's zarr engine reports it) and ``encoding["shards"]`` the shard shape.
Coordinates are built by the same code as :func:`voxzarr.open_image`.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from xarray import conventions
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from . import _store
from .io import (
    IMAGE_VAR,
    _ChunkReader,
    canonical_dims,
    level_attrs,
    level_coords,
    level_index,
    note_axis_order,
    read_multiscale_metadata,
    resolve_image_group,
)
from .ngff import Level, Multiscale

__all__ = ["VoxzarrBackendArray", "VoxzarrBackendEntrypoint"]

#: group attribute keys that mark an NGFF group (0.4 and older, or inside ``"ome"`` for 0.5)
_NGFF_KEYS = ("multiscales", "plate", "well", "bioformats2raw.layout")

#: one run of consecutive stored chunks along an axis: the stored range ``[lo, hi)``, where
#: its values go in the output, and which of them it holds (relative to ``lo``)
_Run = tuple[int, int, slice | np.ndarray, slice | np.ndarray]


# --------------------------------------------------------------------------- lazy array
def _runs_of(index: np.ndarray, step: int | None, n: int, unit: int) -> list[_Run]:
    """Group the positions ``index`` of one axis by runs of consecutive stored chunks.

    ``step`` is the stride when ``index`` comes from a slice (its runs stay slices, so
    numpy reads them as views); ``None`` for integer arrays in any order.
    """
    if index.size == 0:
        return []
    cid = index // unit
    if step is not None:  # sorted: a run ends where the chunk id jumps by more than one
        bounds = [0, *(np.flatnonzero(np.diff(cid) > 1) + 1).tolist(), index.size]
        runs: list[_Run] = []
        for p0, p1 in zip(bounds[:-1], bounds[1:], strict=False):
            lo = int(cid[p0]) * unit
            hi = min((int(cid[p1 - 1]) + 1) * unit, n)
            src = slice(int(index[p0]) - lo, int(index[p1 - 1]) - lo + 1, step)
            runs.append((lo, hi, slice(p0, p1), src))
        return runs
    ucid = np.unique(cid)
    splits = np.split(ucid, np.flatnonzero(np.diff(ucid) > 1) + 1)
    runs = []
    for group in splits:
        c0, c1 = int(group[0]), int(group[-1])
        lo, hi = c0 * unit, min((c1 + 1) * unit, n)
        pos = np.flatnonzero((cid >= c0) & (cid <= c1))
        out: slice | np.ndarray = slice(0, index.size) if pos.size == index.size else pos
        runs.append((lo, hi, out, index[pos] - lo))
    return runs


def _take(block: np.ndarray, sel: Iterable[slice | np.ndarray]) -> np.ndarray:
    """Outer (orthogonal) indexing of ``block``: slices first (views), then each array."""
    sel = list(sel)
    out = block[tuple(s if isinstance(s, slice) else slice(None) for s in sel)]
    for ax, s in enumerate(sel):
        if not isinstance(s, slice):
            out = np.take(out, s, axis=ax)
    return out


class VoxzarrBackendArray(BackendArray):
    """Lazily indexed view of one zarr level array that reads only the chunks asked for.

    Supports basic and outer indexing (xarray decomposes vectorized keys). A request is cut
    into runs of consecutive stored chunks per axis; each block of runs is one aligned read
    through voxzarr's direct chunk reader (:func:`voxzarr._chunkwrite.read_region`), which
    decodes whole chunks without zarr's per-chunk overhead where the layout allows and
    falls back to zarr (partial shard reads) otherwise. A corrupt chunk raises
    :class:`~voxzarr.errors.ChunkError` naming array and chunk.

    Parameters
    ----------
    array
        The level array (opened, not read).
    where
        Display path of the array, for error messages.
    order
        Stored axis shown as each axis of this view (``numpy.transpose`` order), for arrays
        whose axes are stored out of t, c, z, y, x order; ``None`` shows the stored order.
    """

    def __init__(self, array: zarr.Array, where: str, order: tuple[int, ...] | None = None):
        self._reader = _ChunkReader(array, where)
        self._stored_shape = tuple(int(n) for n in array.shape)
        self._order = None if order == tuple(range(array.ndim)) else order
        self.shape = (self._stored_shape if self._order is None
                      else tuple(self._stored_shape[a] for a in self._order))
        self.dtype = np.dtype(array.dtype)
        self._unit = tuple(int(c) for c in array.chunks)  # read granularity (inner chunks)

    def __deepcopy__(self, memo: dict) -> VoxzarrBackendArray:
        # read-only: a deep copy would also copy the store (a zip store reopens its file)
        return self

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        if self._order is None:
            return self._read_stored(key)
        # the key is in view order: read the same region of the stored array, then transpose
        stored: list[Any] = [None] * len(key)
        for k, axis in zip(key, self._order, strict=True):
            stored[axis] = k
        out = self._read_stored(tuple(stored))
        kept = [a for a in range(len(key)) if isinstance(stored[a], slice) or np.ndim(stored[a])]
        return np.transpose(out, [kept.index(a) for a in self._order if a in kept])

    def _read_stored(self, key: tuple[Any, ...]) -> np.ndarray:
        """Outer-indexed read of the array in its stored axis order."""
        plans: list[list[_Run]] = []
        shape: list[int] = []
        keep: list[slice | int] = []  # integer keys drop their axis at the end
        for k, n, unit in zip(key, self._stored_shape, self._unit, strict=True):
            step: int | None = None
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                index = np.arange(start, stop, step)
                if step < 0:
                    step = None  # xarray sends positive steps; any other order as an array
            else:
                index = np.asarray(k)
                if index.dtype == bool:
                    index = np.flatnonzero(index)
                index = np.where(index < 0, index + n, index).astype(np.intp).ravel()
            keep.append(0 if np.ndim(k) == 0 and not isinstance(k, slice) else slice(None))
            plans.append(_runs_of(index, step, n, unit))
            shape.append(index.size)
        if not all(plans):  # an empty selection reads nothing
            return np.zeros(shape, dtype=self.dtype)[tuple(keep)]
        pieces = list(product(*plans))
        out: np.ndarray | None = None
        for piece in pieces:
            block = _take(self._reader[tuple(slice(r[0], r[1]) for r in piece)],
                          (r[3] for r in piece))
            dest = [r[2] for r in piece]
            if len(pieces) == 1 and all(isinstance(d, slice) for d in dest):
                out = block  # one block covers the request: no copy
                break
            if out is None:
                out = np.empty(shape, dtype=self.dtype)
            if all(isinstance(d, slice) for d in dest):
                out[tuple(dest)] = block
            else:
                out[np.ix_(*(np.arange(m)[d] if isinstance(d, slice) else d
                             for d, m in zip(dest, shape, strict=True)))] = block
        assert out is not None
        return out[tuple(keep)]


# --------------------------------------------------------------------------- helpers
def _ngff_attrs(attrs: Any) -> bool:
    return isinstance(attrs, Mapping) and (
        "ome" in attrs or any(k in attrs for k in _NGFF_KEYS))


def _has_ngff_metadata(path: Path) -> bool:
    """Whether the root group of a local store (directory or zip) has NGFF attributes.

    Reads only ``zarr.json`` (zarr v3: ``attributes.ome``) or ``.zattrs`` (zarr v2).
    """
    if path.is_dir():
        meta = path / "zarr.json"
        if meta.is_file():
            return _ngff_attrs(json.loads(meta.read_bytes()).get("attributes"))
        attrs = path / ".zattrs"
        return attrs.is_file() and _ngff_attrs(json.loads(attrs.read_bytes()))
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in ("zarr.json", ".zattrs"):
                try:
                    raw = zf.read(name)
                except KeyError:
                    continue
                meta = json.loads(raw)
                return _ngff_attrs(meta.get("attributes") if name == "zarr.json" else meta)
    return False


def _close_store(store: Any) -> None:
    # zarr's ZipStore.close fails on a store never opened; closing twice is harmless
    if getattr(store, "_is_open", False):
        store.close()


def _closer(location: Any, store: Any) -> Callable[[], None] | None:
    """Close callback for a store opened here from a path or URL (``None`` for stores,
    groups and arrays the caller passed in: those are the caller's to close).

    A ``partial`` of a module function, so a Dataset holding it still pickles.
    """
    if not isinstance(location, str | os.PathLike):
        return None
    return partial(_close_store, store)


def _drop_set(drop_variables: str | Iterable[str] | None) -> set[str]:
    if drop_variables is None:
        return set()
    if isinstance(drop_variables, str):
        return {drop_variables}
    return {str(v) for v in drop_variables}


def _level_dataset(ms: Multiscale, lv: Level, arr: zarr.Array, where: str, *,
                   drop: set[str], decoders: dict[str, Any]) -> xr.Dataset:
    """One level as a Dataset: the lazily indexed image variable and ``open_image``'s coords.

    Axes stored out of t, c, z, y, x order are shown in that order, as :func:`open_image`
    does: the backend array maps every request back to the stored axes.
    """
    dims = canonical_dims(ms.dims)
    order = tuple(ms.dims.index(d) for d in dims)
    variables: dict[str, xr.Variable] = {}
    if IMAGE_VAR not in drop:
        chunks = tuple(int(arr.chunks[a]) for a in order)
        shards = getattr(arr, "shards", None)
        # as xarray's zarr engine: xarray chunks along these (chunks={}, "auto", partial dicts)
        encoding = {"chunks": chunks, "preferred_chunks": dict(zip(dims, chunks, strict=True)),
                    "shards": tuple(int(shards[a]) for a in order) if shards else None}
        data = indexing.LazilyIndexedArray(
            VoxzarrBackendArray(arr, f"{where.rstrip('/')}/{lv.path}", order))
        variables[IMAGE_VAR] = xr.Variable(dims, data, level_attrs(ms), encoding)
        # NGFF arrays carry no CF attributes, so this changes nothing today; it is here so
        # the CF keywords mean what they mean for xarray's own engines. Coordinates are
        # defined by NGFF metadata and are never CF-decoded.
        variables, _, _ = conventions.decode_cf_variables(variables, {}, **decoders)
    # make_coords' result goes in as is, so custom indexes it may build survive
    ds = xr.Dataset(variables, coords=level_coords(ms, lv, arr.shape))
    coords_to_drop = [name for name in ds.coords if str(name) in drop]
    return ds.drop_vars(coords_to_drop) if coords_to_drop else ds


# --------------------------------------------------------------------------- entry point
class VoxzarrBackendEntrypoint(BackendEntrypoint):
    """Open OME-Zarr images with physical coordinates through xarray's own functions.

    ``xr.open_dataset(path, engine="voxzarr", level=0)`` gives one level as a Dataset with
    the variable ``"image"``; ``xr.open_groups`` / ``xr.open_datatree`` give every level as
    sibling groups ``/0``, ``/1``, ... under a root holding the image ``name`` and
    ``ngff_version``. ``series``, ``well``, ``field``, ``label`` select the image in
    bioformats2raw, plate and labels layouts as in :func:`voxzarr.open_image`.

    CF decoding keywords (``mask_and_scale``, ``decode_times``, ``concat_characters``,
    ``decode_coords``, ``use_cftime``, ``decode_timedelta``, and ``decode_cf`` through
    xarray) are accepted and applied to the image variable with xarray's CF decoding. NGFF
    arrays carry no CF attributes, so they are no-ops in practice: in particular the zarr
    ``fill_value`` is never read as missing (0 is a valid intensity), and the coordinates,
    which NGFF defines, are never CF-decoded (a ``t`` axis stays physical time values).
    """

    description = "OME-Zarr images with physical pixel-centre coordinates (voxzarr)"
    url = "https://github.com/voxzarr/voxzarr"
    supports_groups = True
    open_dataset_parameters = (
        "filename_or_obj", "drop_variables", "mask_and_scale", "decode_times",
        "concat_characters", "decode_coords", "use_cftime", "decode_timedelta", "level",
        "series", "well", "field", "label", "storage_options",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        mask_and_scale: bool = True,
        decode_times: Any = True,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        use_cftime: bool | None = None,
        decode_timedelta: Any = None,
        level: int | str = 0,
        series: int | str | None = None,
        well: str | None = None,
        field: int | None = None,
        label: str | None = None,
        storage_options: dict | None = None,
    ) -> xr.Dataset:
        """One level of the image as a Dataset holding the lazily indexed ``"image"``.

        Parameters
        ----------
        filename_or_obj
            Local path, ``.zip`` file, fsspec URL, zarr store or group. A store opened here
            from a path or URL is closed by ``ds.close()``; one passed in is left open.
        drop_variables
            ``"image"`` and/or coordinate names to leave out.
        mask_and_scale, decode_times, concat_characters, decode_coords, use_cftime, \
decode_timedelta
            xarray's CF decoding, applied to the image variable (no-ops for NGFF data; see
            the class docstring).
        level
            Level index (0 = full resolution) or dataset path.
        series, well, field, label
            Which image of a bioformats2raw, plate or labels layout, as for
            :func:`voxzarr.open_image`.
        storage_options
            fsspec options for URLs.

        Returns
        -------
        xarray.Dataset
            ``"image"`` with ``encoding["chunks"]``, ``["preferred_chunks"]`` and
            ``["shards"]``; coordinates as :func:`voxzarr.open_image` builds them;
            ``attrs["name"]``.
        """
        decoders = dict(mask_and_scale=mask_and_scale, decode_times=decode_times,
                        concat_characters=concat_characters, decode_coords=decode_coords,
                        use_cftime=use_cftime, decode_timedelta=decode_timedelta)
        root = _store.open_root(filename_or_obj, storage_options=storage_options)
        close = _closer(filename_or_obj, root.store)
        try:
            group, where = resolve_image_group(root, location=filename_or_obj, series=series,
                                               well=well, field=field, label=label)
            ms, arrays = read_multiscale_metadata(group, where)
            note_axis_order(ms, where)
            idx = level_index(ms, level, where)
            ds = _level_dataset(ms, ms.levels[idx], arrays[idx], where,
                                drop=_drop_set(drop_variables), decoders=decoders)
        except BaseException:
            if close is not None:
                close()
            raise
        ds.attrs["name"] = ms.name or IMAGE_VAR
        ds.set_close(close)
        return ds

    def open_groups_as_dict(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        mask_and_scale: bool = True,
        decode_times: Any = True,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        use_cftime: bool | None = None,
        decode_timedelta: Any = None,
        series: int | str | None = None,
        well: str | None = None,
        field: int | None = None,
        label: str | None = None,
        storage_options: dict | None = None,
    ) -> dict[str, xr.Dataset]:
        """Every level as a group: ``{"/": root, "/0": level 0, "/1": ...}``.

        ``drop_variables`` applies to every level (``"image"`` or coordinate names).
        Every Dataset closes the one store: closing any of them releases it.
        """
        decoders = dict(mask_and_scale=mask_and_scale, decode_times=decode_times,
                        concat_characters=concat_characters, decode_coords=decode_coords,
                        use_cftime=use_cftime, decode_timedelta=decode_timedelta)
        root = _store.open_root(filename_or_obj, storage_options=storage_options)
        close = _closer(filename_or_obj, root.store)
        drop = _drop_set(drop_variables)
        try:
            group, where = resolve_image_group(root, location=filename_or_obj, series=series,
                                               well=well, field=field, label=label)
            ms, arrays = read_multiscale_metadata(group, where)
            note_axis_order(ms, where)
            groups = {"/": xr.Dataset(attrs={"name": ms.name or IMAGE_VAR,
                                             "ngff_version": ms.version})}
            for lv, arr in zip(ms.levels, arrays, strict=True):
                groups[f"/{lv.path.strip('/')}"] = _level_dataset(
                    ms, lv, arr, where, drop=drop, decoders=decoders)
        except BaseException:
            if close is not None:
                close()
            raise
        for ds in groups.values():
            ds.set_close(close)
        return groups

    def open_datatree(  # type: ignore[override]
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        mask_and_scale: bool = True,
        decode_times: Any = True,
        concat_characters: bool = True,
        decode_coords: bool | str = True,
        use_cftime: bool | None = None,
        decode_timedelta: Any = None,
        series: int | str | None = None,
        well: str | None = None,
        field: int | None = None,
        label: str | None = None,
        storage_options: dict | None = None,
    ) -> xr.DataTree:
        """The levels as sibling DataTree nodes, built from :meth:`open_groups_as_dict`."""
        from xarray.backends.common import datatree_from_dict_with_io_cleanup

        groups = self.open_groups_as_dict(
            filename_or_obj, drop_variables=drop_variables, mask_and_scale=mask_and_scale,
            decode_times=decode_times, concat_characters=concat_characters,
            decode_coords=decode_coords, use_cftime=use_cftime,
            decode_timedelta=decode_timedelta, series=series, well=well, field=field,
            label=label, storage_options=storage_options)
        return datatree_from_dict_with_io_cleanup(groups)

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Claim ``*.ome.zarr`` (and ``*.ome.zarr.zip``) stores whose root has NGFF metadata.

        Local stores are checked by reading only the root ``zarr.json`` / ``.zattrs``, so
        a plain zarr store that happens to be named ``*.ome.zarr`` is left to xarray's zarr
        engine. Remote URLs are claimed by name alone: they cannot be read without the
        caller's ``storage_options``, and a guess must not touch the network. Never raises.
        """
        try:
            if not isinstance(filename_or_obj, str | os.PathLike):
                return False
            name = os.fspath(filename_or_obj)
            if not isinstance(name, str):
                return False
            name = name.rstrip("/")
            if not name.endswith((".ome.zarr", ".ome.zarr.zip")):
                return False
            path = _store.local_path(name)
            return True if path is None else _has_ngff_metadata(path.expanduser())
        except Exception:  # unreadable, malformed JSON, permissions: not ours to claim
            return False
