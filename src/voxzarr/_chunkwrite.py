"""Fast paths for writing whole chunks (or shards) of a fresh zarr array.

zarr-python's array API spends a large share of a write in its own machinery (async loop,
buffer copies, per-chunk bookkeeping) rather than in compression. For the layouts voxzarr
writes itself (bytes + Blosc, optionally inside a shard with a CRC32C-protected index at the
end, or zarr v2 with a Blosc compressor) this module encodes each chunk with numcodecs and
stores the bytes directly, which is exactly what zarr would store. Anything else, and any
region that is not made of whole chunks (or shards), falls back to zarr's own ``__setitem__``.

Use :func:`chunk_target` as the target of ``dask.array.store`` for a *freshly created* array:
chunks equal to the fill value are not written (as zarr does by default), so existing chunk
objects are never removed.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from ._pool import pmap
from ._store import local_root

__all__ = ["SHARD_EMPTY", "Layout", "chunk_target", "layout", "read_shard_index",
           "shard_index_nbytes", "shard_parts"]

_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE,
            "bitshuffle": Blosc.BITSHUFFLE}
#: offset and length a shard index gives an absent inner chunk
SHARD_EMPTY = np.iinfo(np.uint64).max
_PARALLEL_BYTES = 1 << 20  # smaller writes encode in the calling thread


# --------------------------------------------------------------------------- shard format
def shard_parts(encoded: Iterable[tuple[tuple[int, ...], bytes | None]],
                per: Sequence[int]) -> list[bytes] | None:
    """One shard as the parts to store one after another; ``None`` when it holds no chunk.

    ``encoded`` gives each inner chunk's index in the shard and its stored bytes (``None``:
    absent), in the order they are to be stored; ``per`` is the number of inner chunks per
    axis. A shard is its present chunks, then the index (offset and length of each inner
    chunk, :data:`SHARD_EMPTY` for absent ones; little-endian ``uint64``) and the index's
    CRC32C: what zarr's sharding codec reads with ``index_location="end"`` and index codecs
    ``bytes`` + ``crc32c`` (zarr itself stores the inner chunks in Morton order, readers
    follow the index).
    """
    index = np.full((*per, 2), SHARD_EMPTY, dtype="<u8")
    parts: list[bytes] = []
    offset = 0
    for local, enc in encoded:
        if enc is None:
            continue
        index[local] = (offset, len(enc))
        parts.append(enc)
        offset += len(enc)
    if not parts:
        return None
    raw = index.tobytes()
    return [*parts, raw, np.array([google_crc32c.value(raw)], dtype="<u4").tobytes()]


def shard_index_nbytes(per: Sequence[int]) -> int:
    """Size of the index (and its CRC32C) at the end of a shard of ``per`` inner chunks."""
    return 16 * math.prod(per) + 4


def read_shard_index(raw: bytes, per: Sequence[int]) -> np.ndarray:
    """The ``(*per, 2)`` (offset, length) index from a shard's last
    :func:`shard_index_nbytes` bytes; :class:`ValueError` when it is truncated or fails its
    CRC32C check."""
    body, crc = raw[:-4], int.from_bytes(raw[-4:], "little")
    if len(raw) != shard_index_nbytes(per) or google_crc32c.value(body) != crc:
        raise ValueError("shard index is truncated or fails its CRC32C check")
    return np.frombuffer(body, dtype="<u8").reshape((*per, 2))


class _FastTarget:
    """``__setitem__`` target encoding whole chunks / shards straight into the store."""

    def __init__(self, arr: zarr.Array, lay: Layout):
        self.arr = arr  # fallback for anything that is not whole units
        self.lay = lay
        self.inner = lay.inner  # inner chunk shape when sharded
        self.key_of = lay.key_of
        self.unit = lay.unit
        self.dtype = lay.dtype
        self.shape = arr.shape
        self.ndim = arr.ndim
        self.store = arr.store
        self.root = local_root(self.store)

    # dask.array.store calls target[region] = block
    def __setitem__(self, key: tuple[slice, ...], value: np.ndarray) -> None:
        starts = [s.start or 0 for s in key]
        stops = [s.stop if s.stop is not None else n for s, n in zip(key, self.shape,
                                                                    strict=True)]
        aligned = all(
            st % u == 0 and (sp % u == 0 or sp == n)
            for st, sp, u, n in zip(starts, stops, self.unit, self.shape, strict=True)
        )
        if not aligned or not isinstance(value, np.ndarray):
            self.arr[key] = value
            return
        value = np.asarray(value, dtype=self.dtype)
        ranges = [range(st // u, -(-sp // u)) for st, sp, u in zip(starts, stops, self.unit,
                                                                    strict=True)]
        units = []
        for idx in product(*ranges):
            lo = [i * u - st for i, u, st in zip(idx, self.unit, starts, strict=True)]
            units.append((idx, value[tuple(slice(a, a + u)
                                            for a, u in zip(lo, self.unit, strict=True))]))
        # encode every chunk (inner chunks of every shard) on the codec pool, then store
        # each unit: a task holding a few large shards still uses every core
        jobs = [(k, local, sub) for k, (_, block) in enumerate(units)
                for local, sub in self.lay.inner_blocks(block)]
        serial = value.nbytes < _PARALLEL_BYTES
        encs = ([self.lay.encode(j[2]) for j in jobs] if serial
                else pmap(lambda j: self.lay.encode(j[2]), jobs))
        per_unit: list[list[tuple[Any, bytes | None]]] = [[] for _ in units]
        for (k, local, _), enc in zip(jobs, encs, strict=True):
            per_unit[k].append((local, enc))
        writes = [(self.key_of(idx), parts) for (idx, _), encoded in zip(units, per_unit,
                                                                         strict=True)
                  if (parts := self.lay.unit_parts(encoded)) is not None]
        if serial:
            for w in writes:
                self._put(*w)
        else:
            pmap(lambda w: self._put(*w), writes)

    def _put(self, key: str, parts: list[bytes]) -> None:
        put_object(self.store, self.root, key, parts)


def put_object(store: Any, root: Path | None, key: str, parts: Sequence[bytes]) -> None:
    """Store one object made of ``parts``: in a local store (``root``:
    :func:`voxzarr._store.local_root`) a file written aside and renamed into place, so a
    reader never sees half an object, as zarr's LocalStore does, but without a round trip
    through zarr's event loop; in any other store through zarr."""
    if root is not None:
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with open(part, "wb") as fh:
                fh.writelines(parts)
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return
    data = default_buffer_prototype().buffer.from_bytes(b"".join(parts))
    sync(store.set(key, data))


def delete_object(store: Any, root: Path | None, key: str) -> None:
    """Remove one object (nothing when it is not there)."""
    if root is not None:
        (root / key).unlink(missing_ok=True)
        return
    sync(store.delete(key))


def get_object(store: Any, root: Path | None, key: str) -> Any:
    """One whole object's bytes, or ``None`` when it is not stored."""
    if root is not None:
        try:
            return (root / key).read_bytes()
        except FileNotFoundError:
            return None
    buf = sync(store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else buf.as_numpy_array()


def _blosc_from(config: dict[str, Any]) -> Blosc | None:
    shuffle = config.get("shuffle")
    if isinstance(shuffle, str):
        shuffle = _SHUFFLE.get(shuffle)
    if shuffle is None:
        return None
    return Blosc(cname=str(config["cname"]), clevel=int(config["clevel"]), shuffle=shuffle,
                 blocksize=int(config.get("blocksize", 0) or 0))


class Layout:
    """What the direct paths need to know of an array, and its one chunk codec.

    ``blosc`` is ``None`` for arrays stored with the ``bytes`` codec alone; ``inner`` is the
    inner chunk shape of sharded arrays; ``unit`` is the shard (or chunk) shape; ``dtype``
    is the little-endian dtype of the stored bytes. The fill value is 0.
    """

    def __init__(self, blosc: Blosc | None, inner: tuple[int, ...] | None, key_of: Any,
                 unit: tuple[int, ...], dtype: np.dtype):
        self.blosc, self.inner, self.key_of, self.unit, self.dtype = (
            blosc, inner, key_of, unit, dtype)

    @property
    def chunk(self) -> tuple[int, ...]:
        """Shape of one stored (inner) chunk."""
        return self.inner or self.unit

    @property
    def per_unit(self) -> tuple[int, ...]:
        """Stored chunks per write unit along each axis (all 1 when unsharded)."""
        return tuple(u // c for u, c in zip(self.unit, self.chunk, strict=True))

    def encode(self, block: np.ndarray) -> bytes | None:
        """Bytes zarr stores for one chunk (an edge chunk is padded with the fill value),
        or ``None`` when it holds only the fill value (zarr leaves such chunks out)."""
        if block.shape != self.chunk:
            padded = np.zeros(self.chunk, dtype=self.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        data = np.ascontiguousarray(block, dtype=self.dtype)
        if not data.any():  # tested on the contiguous copy: a strided test is slower
            return None
        return data.tobytes() if self.blosc is None else self.blosc.encode(data)

    def inner_blocks(self, block: np.ndarray) -> list[tuple[tuple[int, ...], np.ndarray]]:
        """The chunks of one write unit, each with its index in the unit: the unit itself
        when unsharded, else its inner chunks in C order (those wholly outside an edge
        shard's valid part left out)."""
        if self.inner is None:
            return [((), block)]
        out = []
        for local in product(*(range(p) for p in self.per_unit)):
            sub = block[tuple(slice(i * c, (i + 1) * c)
                              for i, c in zip(local, self.inner, strict=True))]
            if sub.size:
                out.append((local, sub))
        return out

    def unit_parts(self, encoded: list[tuple[tuple[int, ...], bytes | None]]
                   ) -> list[bytes] | None:
        """Bytes of one write unit from its encoded chunks (:meth:`inner_blocks` order), as
        parts to store one after another; ``None`` when every chunk holds only the fill
        value (nothing is stored). A shard is its non-empty inner chunks in C order, then
        its index (:func:`shard_parts`).
        """
        if self.inner is None:
            enc = encoded[0][1]
            return None if enc is None else [enc]
        return shard_parts(encoded, self.per_unit)

    def encode_unit(self, block: np.ndarray) -> list[bytes] | None:
        """Bytes of one write unit (``block`` may be an edge unit's valid part), encoded in
        this thread; see :meth:`unit_parts`."""
        return self.unit_parts([(local, self.encode(sub))
                                for local, sub in self.inner_blocks(block)])

    def decode(self, raw: Any, out: np.ndarray | None = None) -> np.ndarray:
        """One stored chunk decoded to its full chunk shape (little-endian dtype); into
        ``out`` (C-contiguous, chunk shape and dtype) when given, which saves allocating
        and faulting in a fresh buffer per chunk."""
        if out is not None and self.blosc is not None:
            self.blosc.decode(raw, out=out)
            return out
        if self.blosc is not None:
            raw = self.blosc.decode(raw)
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.chunk)


def layout(arr: zarr.Array) -> Layout | None:
    """The layout of ``arr`` when the fast paths handle it, else ``None``."""
    meta = arr.metadata
    dtype = np.dtype(arr.dtype)
    if dtype.byteorder == ">" or dtype.kind not in "uif" or meta.fill_value != 0:
        return None
    prefix = f"{arr.path}/" if arr.path else ""
    if meta.zarr_format == 2:
        comp = meta.compressor
        if (meta.filters or meta.order != "C" or not isinstance(comp, Blosc)
                or dtype.newbyteorder("<") != dtype.newbyteorder("=")):
            return None
        sep = meta.dimension_separator or "."
        blosc = _blosc_from(comp.get_config())
        if blosc is None:
            return None
        return Layout(blosc, None, lambda idx: prefix + sep.join(map(str, idx)),
                       tuple(arr.chunks), dtype.newbyteorder("<"))
    codecs = list(meta.codecs)
    inner = None
    if len(codecs) == 1 and type(codecs[0]).__name__ == "ShardingCodec":
        sc = codecs[0]
        if (str(getattr(sc.index_location, "value", sc.index_location)) != "end"
                or [type(c).__name__ for c in sc.index_codecs] != ["BytesCodec", "Crc32cCodec"]):
            return None
        inner = tuple(sc.chunk_shape)
        codecs = list(sc.codecs)
    names = [type(c).__name__ for c in codecs]
    if names not in (["BytesCodec"], ["BytesCodec", "BloscCodec"]) or math.prod(arr.shape) == 0:
        return None
    endian = getattr(codecs[0].endian, "value", codecs[0].endian)
    if dtype.itemsize > 1 and endian != "little":
        return None
    blosc = None
    if len(codecs) == 2:
        blosc = _blosc_from(codecs[1].to_dict()["configuration"])
        if blosc is None:
            return None
    enc = meta.chunk_key_encoding
    sep = getattr(enc, "separator", "/")
    if type(enc).__name__ == "DefaultChunkKeyEncoding":
        def key_of(idx):
            return prefix + "c" + sep + sep.join(map(str, idx))
    else:
        def key_of(idx):
            return prefix + sep.join(map(str, idx))
    unit = tuple(arr.shards) if inner else tuple(arr.chunks)
    return Layout(blosc, inner, key_of, unit, dtype.newbyteorder("<"))


def chunk_target(arr: zarr.Array) -> Any:
    """The fastest correct ``dask.array.store`` target for a fresh array ``arr``."""
    lay = layout(arr)
    if lay is None:
        return arr
    return _FastTarget(arr, lay)
