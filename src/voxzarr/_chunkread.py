"""Direct chunk reading: fetch stored chunks concurrently and decode them in parallel.

:func:`read_region` reads a box of a zarr array for the layouts :func:`voxzarr._chunkwrite.layout`
describes (bytes + Blosc, optionally inside shards with a CRC32C-protected index at the end,
zarr v2 with a Blosc compressor). It is the engine under :func:`voxzarr.open_image`, the
xarray backend and ``numpy.asarray`` of an opened image:

- every chunk the box touches is fetched once, on any store: a shard the box covers is
  fetched whole (one request), of any other shard its index and then only the inner chunks
  needed, by byte range. Local files are read on the codec pool; other stores get all
  requests issued together on zarr's event loop, so object-store reads are concurrent;
- chunks are decoded on the shared codec pool (:mod:`voxzarr._pool`; Blosc releases the
  GIL), straight into the output where the destination is contiguous, else through a
  per-chunk buffer;
- missing chunks (and absent inner chunks of a shard) read as the fill value 0.

Anything else (other codecs, strided or integer keys) is read by zarr.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from operator import getitem
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ._chunkwrite import (
    SHARD_EMPTY,
    Layout,
    get_object,
    layout,
    read_shard_index,
    shard_index_nbytes,
)
from ._pool import cores, pmap
from ._store import local_root

__all__ = ["ChunkDecodeError", "StoredArray", "read_region", "stored_dask_array"]

_SERIAL_BYTES = 1 << 20  # below this much decoded data a region is read in the caller's thread


@dataclass
class _Piece:
    """One stored chunk the box touches: where its bytes are and where its values go."""

    key: str                       # store key of the chunk, or of the shard holding it
    byte_range: tuple[int, int] | None  # (start, length) inside a shard, None: whole object
    src: tuple[slice, ...]         # region of the decoded chunk to take
    dst: tuple[slice, ...]         # where it goes in the output
    whole: bool                    # the chunk is taken whole (src is the full chunk)
    index: tuple[int, ...] = ()    # the chunk's index in the array's chunk grid


def read_region(arr: zarr.Array, key: tuple[Any, ...]) -> np.ndarray:
    """``arr[key]`` for a box of ``slice`` keys, read and decoded directly where the
    layout allows (see the module docstring); zarr reads anything else.

    Parameters
    ----------
    arr
        An opened zarr array.
    key
        One ``slice`` (step 1 or ``None``) per axis.

    Returns
    -------
    numpy.ndarray
        A new, writable array of ``arr``'s dtype.
    """
    lay = layout(arr)
    if (lay is None or len(key) != arr.ndim
            or not all(isinstance(s, slice) and s.step in (None, 1) for s in key)):
        return arr[key]
    starts = [min(max(s.start or 0, 0), n) for s, n in zip(key, arr.shape, strict=True)]
    stops = [min(s.stop if s.stop is not None else n, n) for s, n in zip(key, arr.shape,
                                                                         strict=True)]
    if any(s.start is not None and s.start < 0 or s.stop is not None and s.stop < 0
           for s in key):
        return arr[key]  # negative bounds: zarr's normalisation
    shape = [max(sp - st, 0) for st, sp in zip(starts, stops, strict=True)]
    out = np.zeros(shape, dtype=lay.dtype)
    if out.size == 0:
        return out.astype(arr.dtype, copy=False)
    store = arr.store
    root = local_root(store)
    if lay.inner is not None:
        pieces, fetched = _shard_pieces(lay, starts, stops, store, root, arr.shape)
        pmap(lambda pr: _decode_into(lay, pr[1], pr[0], out), fetched)
    else:
        pieces = _chunk_pieces(lay, starts, stops)
    if root is not None:
        _run_local(lay, pieces, out, root)
    else:
        _run_remote(lay, pieces, out, store)
    return out.astype(arr.dtype, copy=False)


# --------------------------------------------------------------------------- planning
def _overlap(idx: Sequence[int], unit: Sequence[int], starts: Sequence[int],
             stops: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...], bool]:
    """Source slices in a unit at grid index ``idx`` and destination slices in the output."""
    src, dst, whole = [], [], True
    for i, u, st, sp in zip(idx, unit, starts, stops, strict=True):
        lo, hi = max(i * u, st), min((i + 1) * u, sp)
        src.append(slice(lo - i * u, hi - i * u))
        dst.append(slice(lo - st, hi - st))
        whole = whole and lo == i * u and hi == (i + 1) * u
    return tuple(src), tuple(dst), whole


def _grid(unit: Sequence[int], starts: Sequence[int], stops: Sequence[int]) -> Any:
    return product(*(range(st // u, -(-sp // u)) for st, sp, u in zip(starts, stops, unit,
                                                                      strict=True)))


def _chunk_pieces(lay: Layout, starts: list[int], stops: list[int]) -> list[_Piece]:
    return [_Piece(lay.key_of(idx), None, *_overlap(idx, lay.unit, starts, stops),
                   tuple(idx)) for idx in _grid(lay.unit, starts, stops)]


def _index_nbytes(lay: Layout) -> int:
    return shard_index_nbytes(lay.per_unit)


def _shard_pieces(lay: Layout, starts: list[int], stops: list[int], store: Any,
                  root: Path | None, shape: Sequence[int]) -> tuple[list[_Piece],
                                                                 list[tuple[_Piece, Any]]]:
    """Inner chunks of every shard the box touches: ``(to_fetch, fetched)``.

    Shards the box covers whole are fetched whole (one request each, their index read from
    the tail of the bytes): their inner chunks come back with their bytes. Of the other
    shards only the index is fetched, and their inner chunks carry byte ranges to fetch.
    """
    shards = list(_grid(lay.unit, starts, stops))
    covered, partial = [], []
    for sidx in shards:
        whole = all(i * u >= st and min((i + 1) * u, n) <= sp for i, u, st, sp, n
                    in zip(sidx, lay.unit, starts, stops, shape, strict=True))
        (covered if whole else partial).append(sidx)
    fetched: list[tuple[_Piece, Any]] = []
    raws = _fetch_whole(lay, [lay.key_of(s) for s in covered], store, root)
    for sidx, raw in zip(covered, raws, strict=True):
        if raw is None:
            continue  # missing shard: fill value
        view = memoryview(raw)
        index = _parse_index(lay, bytes(view[-_index_nbytes(lay):]))
        fetched.extend((p, view[p.byte_range[0]:p.byte_range[0] + p.byte_range[1]])
                       for p in _inner_pieces(lay, sidx, index, starts, stops))
    indexes = _shard_indexes(lay, [lay.key_of(s) for s in partial], store, root)
    to_fetch = [p for sidx, index in zip(partial, indexes, strict=True) if index is not None
                for p in _inner_pieces(lay, sidx, index, starts, stops)]
    return to_fetch, fetched


def _inner_pieces(lay: Layout, sidx: Sequence[int], index: np.ndarray, starts: list[int],
                  stops: list[int]) -> list[_Piece]:
    """The stored inner chunks of shard ``sidx`` that the box touches."""
    inner = lay.inner
    assert inner is not None
    per = lay.per_unit
    base = [i * u for i, u in zip(sidx, lay.unit, strict=True)]
    lo = [max(st - b, 0) for st, b in zip(starts, base, strict=True)]
    hi = [min(sp - b, u) for sp, b, u in zip(stops, base, lay.unit, strict=True)]
    pieces = []
    for local in _grid(inner, lo, hi):
        if any(i >= p for i, p in zip(local, per, strict=True)):
            continue
        off, nbytes = (int(v) for v in index[local])
        if off == SHARD_EMPTY:
            continue
        cidx = [(b + i * c) // c for b, i, c in zip(base, local, inner, strict=True)]
        pieces.append(_Piece(lay.key_of(sidx), (off, nbytes),
                             *_overlap(cidx, inner, starts, stops), tuple(cidx)))
    return pieces


def _fetch_whole(lay: Layout, keys: list[str], store: Any, root: Path | None
                 ) -> list[bytes | None]:
    """Whole stored objects (``None`` where missing), fetched concurrently."""
    if not keys:
        return []
    if root is None:
        return _get_many(store, [(k, None) for k in keys])
    return pmap(lambda key: get_object(store, root, key), keys)


def _parse_index(lay: Layout, raw: bytes) -> np.ndarray:
    """A shard's (offset, length) index from its last bytes, checked against its CRC32C."""
    return read_shard_index(raw, lay.per_unit)


def _shard_indexes(lay: Layout, keys: list[str], store: Any,
                   root: Path | None) -> list[np.ndarray | None]:
    """The (offset, length) index of each shard (``None`` where the shard is missing)."""
    size = _index_nbytes(lay)

    def parse(raw: Any) -> np.ndarray | None:
        return None if raw is None else _parse_index(lay, bytes(raw))

    if root is not None:
        def tail(key: str) -> bytes | None:
            try:
                with open(root / key, "rb") as fh:
                    fh.seek(-size, os.SEEK_END)
                    return fh.read(size)
            except FileNotFoundError:
                return None
        return [parse(r) for r in pmap(tail, keys)]
    from zarr.abc.store import SuffixByteRequest

    reqs = [(k, SuffixByteRequest(size)) for k in keys]
    return [parse(r) for r in _get_many(store, reqs)]


# --------------------------------------------------------------------------- running
class ChunkDecodeError(Exception):
    """A stored chunk could not be decoded; ``index`` is its place in the chunk grid."""

    def __init__(self, index: tuple[int, ...], err: Exception):
        self.index, self.err = index, err
        super().__init__(f"chunk {index}: {type(err).__name__}: {err}")


def _decode_into(lay: Layout, raw: Any, piece: _Piece, out: np.ndarray) -> None:
    try:
        _decode(lay, raw, piece, out)
    except Exception as err:
        raise ChunkDecodeError(piece.index, err) from err


def _decode(lay: Layout, raw: Any, piece: _Piece, out: np.ndarray) -> None:
    dest = out[piece.dst]
    if piece.whole and dest.flags.c_contiguous and lay.blosc is not None:
        lay.blosc.decode(raw, out=dest)  # straight into the output: no buffer
        return
    chunk = lay.decode(raw)
    dest[...] = chunk[piece.src]


def _run_local(lay: Layout, pieces: list[_Piece], out: np.ndarray, root: Path) -> None:
    def one(group: list[_Piece]) -> None:
        path = root / group[0].key
        try:
            with open(path, "rb") as fh:
                if group[0].byte_range is None:
                    _decode_into(lay, fh.read(), group[0], out)
                    return
                for p in group:
                    off, n = p.byte_range  # type: ignore[misc]
                    fh.seek(off)
                    _decode_into(lay, fh.read(n), p, out)
        except FileNotFoundError:
            return  # missing chunk: the output already holds the fill value

    groups = _by_object(pieces) if lay.inner is not None else [[p] for p in pieces]
    if out.nbytes < _SERIAL_BYTES:
        for g in groups:
            one(g)
        return
    pmap(one, groups)


def _by_object(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Inner-chunk pieces grouped per shard file, each group read by one thread."""
    groups: dict[str, list[_Piece]] = {}
    for p in pieces:
        groups.setdefault(p.key, []).append(p)
    # split big shards so one shard's many inner chunks still decode on several threads
    out = []
    for g in groups.values():
        step = max(1, -(-len(g) // cores()))
        out.extend(g[i:i + step] for i in range(0, len(g), step))
    return out


def _run_remote(lay: Layout, pieces: list[_Piece], out: np.ndarray, store: Any) -> None:
    from zarr.abc.store import RangeByteRequest

    reqs = [(p.key, None if p.byte_range is None
             else RangeByteRequest(p.byte_range[0], p.byte_range[0] + p.byte_range[1]))
            for p in pieces]
    raws = _get_many(store, reqs)
    todo = [(p, r) for p, r in zip(pieces, raws, strict=True) if r is not None]
    if out.nbytes < _SERIAL_BYTES:
        for p, r in todo:
            _decode_into(lay, r, p, out)
        return
    pmap(lambda pr: _decode_into(lay, pr[1], pr[0], out), todo)


def _get_many(store: Any, reqs: list[tuple[str, Any]]) -> list[memoryview | None]:
    """Every ``store.get`` at once on zarr's event loop (concurrent requests)."""
    import asyncio

    if not reqs:
        return []  # no round trip through the event loop for nothing
    proto = default_buffer_prototype()

    async def fetch() -> list[Any]:
        return await asyncio.gather(*(store.get(k, prototype=proto, byte_range=r)
                                      for k, r in reqs))

    bufs = sync(fetch())
    # views of the fetched buffers: a whole shard is not copied once more
    return [None if b is None else memoryview(b.as_numpy_array()) for b in bufs]


# --------------------------------------------------------------------------- dask
def _assemble(results: Any, chunks: tuple[tuple[int, ...], ...], dtype: np.dtype) -> Any:
    """dask's final concatenation of computed chunks, with the copies run on the pool."""
    from dask.array.core import slices_from_chunks
    from dask.core import flatten

    blocks = list(flatten(results, container=(list, tuple)))
    if not all(isinstance(b, np.ndarray) for b in blocks) or len(blocks) == 1:
        from dask.array.core import finalize

        return finalize(results)
    whole = _tiled_views_of(blocks, slices_from_chunks(chunks))
    if whole is not None:  # the chunks are views of one whole read: nothing to copy
        return whole
    out = np.empty(tuple(map(sum, chunks)), dtype=dtype)

    def put(item: tuple[tuple[slice, ...], np.ndarray]) -> None:
        out[item[0]] = item[1]

    pmap(put, list(zip(slices_from_chunks(chunks), blocks, strict=True)))
    return out


def _tiled_views_of(blocks: list[np.ndarray],
                    slices: list[tuple[slice, ...]]) -> np.ndarray | None:
    """The array the blocks are views of, if each block is exactly its own slice of it
    (what :meth:`StoredArray.__dask_optimize__` produces); else None."""
    base = blocks[0].base
    if not isinstance(base, np.ndarray) or base.ndim != blocks[0].ndim:
        return None
    start = base.__array_interface__["data"][0]
    for b, sl in zip(blocks, slices, strict=True):
        want = tuple(s.stop - s.start for s in sl)
        offset = sum(s.start * st for s, st in zip(sl, base.strides, strict=True))
        if (b.base is not base or b.shape != want or b.strides != base.strides
                or b.__array_interface__["data"][0] != start + offset):
            return None
    total = tuple(sl.stop for sl in slices[-1])
    return base if base.shape == total else None


def _read_box(reader: Any, box: tuple[slice, ...]) -> np.ndarray:
    # an array that owns its memory, so the chunk views taken of it share one base
    out = np.asarray(reader[box])
    return out if out.base is None and out.flags.c_contiguous else np.array(out)


def stored_dask_array(reader: Any, chunks: Any, name: str) -> Any:
    """``dask.array.from_array(reader, ...)`` for a stored array, with two fast paths.

    ``numpy.asarray`` of the result (so ``DataArray.values``) reads the whole array with one
    :func:`read_region` in this process (unless a ``dask.distributed`` client is the
    scheduler: then the workers read): chunks are fetched and decoded in parallel straight
    into the result, with no per-chunk arrays and no concatenation. ``compute()`` assembles
    the computed chunks on the codec pool. A box of it (slices with step 1, as
    ``DataArray.isel`` takes) keeps both fast paths, so a region read issues all its
    requests at once; any other operation gives a plain dask array.
    """
    base = da.from_array(reader, chunks=chunks, asarray=False, name=name, lock=False)
    return StoredArray(base.dask, base.name, base.chunks, meta=base._meta, reader=reader)


class StoredArray(da.Array):
    """The dask array :func:`stored_dask_array` returns (see there): a box of a stored
    array (``origin``: where the box starts), which boxes of it (slices with step 1) keep
    being."""

    def __new__(cls, dsk: Any, name: str, chunks: Any, *, meta: Any, reader: Any,
                origin: tuple[int, ...] | None = None) -> Any:
        self = super().__new__(cls, dsk, name, chunks, meta=meta)
        self._voxzarr_reader = reader
        self._voxzarr_origin = origin or (0,) * len(self.chunks)
        return self

    def __reduce__(self) -> Any:  # pickles as the plain dask array it is
        return da.Array, (self.dask, self.name, self.chunks, self.dtype, self._meta)

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        keys = key if isinstance(key, tuple) else (key,)
        if (len(keys) > self.ndim or not all(isinstance(k, slice) for k in keys)
                or not isinstance(out, da.Array) or out.ndim != self.ndim):
            return out
        keys = keys + (slice(None),) * (self.ndim - len(keys))
        bounds = [k.indices(n) for k, n in zip(keys, self.shape, strict=True)]
        if any(step != 1 for _, _, step in bounds):
            return out
        origin = tuple(o + b[0] for o, b in zip(self._voxzarr_origin, bounds, strict=True))
        return StoredArray(out.dask, out.name, out.chunks, meta=out._meta,
                           reader=self._voxzarr_reader, origin=origin)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        from ._cluster import current_client

        if current_client() is not None:  # a cluster is in use: the workers read
            return np.asarray(self.compute(), dtype=dtype)
        box = tuple(slice(o, o + n) for o, n in zip(self._voxzarr_origin, self.shape,
                                                    strict=True))
        return np.asarray(self._voxzarr_reader[box], dtype=dtype)

    def __dask_postcompute__(self) -> Any:
        return _assemble, (self.chunks, self.dtype)

    def __dask_optimize__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Computed in this process, the box is read whole like ``.values`` (every chunk
        fetched and decoded at once on the codec pool) and each chunk's task becomes a view
        of that one read, so ``compute()`` runs no per-chunk reads and, in
        :func:`_assemble`, no concatenation. Under a ``dask.distributed`` client the
        ordinary per-chunk graph runs, so the workers read."""
        from dask.array.core import slices_from_chunks
        from dask.core import flatten
        from dask.optimization import cull
        from dask.utils import ensure_dict

        from ._cluster import current_client

        own = list(flatten(self.__dask_keys__()))
        if current_client() is not None or len(own) == 1:
            return da.Array.__dask_optimize__(dsk, keys, **kwargs)
        box = tuple(slice(o, o + n) for o, n in zip(self._voxzarr_origin, self.shape,
                                                    strict=True))
        whole = (f"{self.name}-whole",)
        graph = ensure_dict(dsk)
        graph[whole] = (_read_box, self._voxzarr_reader, box)
        for key, sl in zip(own, slices_from_chunks(self.chunks), strict=True):
            graph[key] = (getitem, whole, sl)
        return cull(graph, list(flatten(keys)))[0]
