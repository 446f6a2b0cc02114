"""Plan an image <-> series chunk-layout transpose under a memory budget.

Pure arithmetic, no I/O: given the array shape, the source chunk grid, the target write unit
(a shard, or a chunk when unsharded) and the budget, decide how the copy is cut into tasks.
The rules are written down in ``spec/series.md``; the numbers here are the ones it quotes.

Memory model
------------
A task holds its whole region in one buffer and keeps at most ``threads`` source chunks being
decoded and ``threads`` target units being encoded at once; a chunk being decoded is counted
three times (raw bytes, decoded, slice), one being encoded four times (contiguous slice,
serialised bytes, encoded bytes, slack)::

    peak = region + threads * (3 * source_chunk + 4 * write_unit)        (bytes)

Every phase of a plan keeps ``peak <= budget``.

Plans
-----
*direct*: one phase; each task is a region made of whole target units, grown over the axes
from the last (``x``) to the first (``t``) as far as the budget allows, and reads that region
from the source. When the source chunks are larger than a task along an axis (a frame chunked
whole while the task is a band of rows), each source chunk is decoded once per task touching
it: the *amplification*.

*staged*: two phases through a scratch array in the target store. Phase ``stage`` reads whole
source chunks (amplification 1) and writes scratch chunks, phase ``write`` reads whole scratch
chunks and writes whole target units. It costs one uncompressed (local) or lz4 round trip
through the store instead of repeated decoding, and is chosen when the direct amplification
reaches ``STAGING_THRESHOLD``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.utils import format_bytes, parse_bytes

from ..coords import SPATIAL
from ..errors import ArgumentError, VoxzarrError
from ..ngff.layouts import SERIES_LAYOUT, SERIES_VERSION

__all__ = [
    "LAYOUT",
    "LAYOUT_VERSION",
    "CHUNK_BYTES",
    "MAX_UNSHARDED_CHUNKS",
    "SHARD_BYTES",
    "STAGING_THRESHOLD",
    "STAGING_CHUNK_BYTES",
    "Phase",
    "TransposePlan",
    "parse_memory",
    "choose_block",
    "plan_to_series",
    "plan_to_images",
    "amplification",
]

#: the series layout of ``spec/series.md`` and the version new stores record
LAYOUT, LAYOUT_VERSION = SERIES_LAYOUT, SERIES_VERSION
#: target uncompressed size of one series chunk (time x spatial block)
CHUNK_BYTES = 1 << 20
#: above this many series chunks the layout groups them into shards
MAX_UNSHARDED_CHUNKS = 4096
#: target uncompressed shard size (also at most budget / (4 (1 + 4 threads)))
SHARD_BYTES = 64 << 20
#: direct plans that would decode each source chunk this many times or more are staged
STAGING_THRESHOLD = 3.0
#: largest scratch chunk of a staged plan (also at most budget / (56 threads))
STAGING_CHUNK_BYTES = 8 << 20
#: copies of a chunk alive while it is decoded (decoded, slice, raw bytes)
READ_FACTOR = 3
#: copies of a chunk or shard alive while it is encoded (slice, serialised, encoded, slack)
WRITE_FACTOR = 4


def parse_memory(memory: str | int | float, *, field: str = "memory") -> int:
    """Bytes from ``"512MB"``, ``"2GiB"``, ``"1e9"`` or a number (decimal and binary units)."""
    try:
        value = parse_bytes(memory) if isinstance(memory, str) else int(memory)
    except (ValueError, TypeError):
        raise ArgumentError(f"cannot read {memory!r} as a memory size such as '512MB' or "
                            "'2GiB'", field=field) from None
    if value <= 0:
        raise ArgumentError(f"memory budget must be positive, got {memory!r}", field=field)
    return int(value)


# ----------------------------------------------------------------------------- phases
@dataclass(frozen=True)
class Phase:
    """One pass of a plan: copy ``source`` to ``target`` in tasks of ``task_shape``.

    Each task's region is made of whole write units of the target, so no two tasks write
    one chunk or shard. ``peak`` is the modelled memory of one task in bytes.
    """

    name: str
    source: str
    target: str
    shape: tuple[int, ...]
    task_shape: tuple[int, ...]
    peak: int

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(-(-n // r) for n, r in zip(self.shape, self.task_shape, strict=True))

    @property
    def n_tasks(self) -> int:
        return math.prod(self.grid)

    def region(self, index: int) -> tuple[slice, ...]:
        """The region of task ``index`` (tasks are numbered in C order over the grid)."""
        pos = np.unravel_index(index, self.grid)
        return tuple(slice(int(p) * r, min(n, (int(p) + 1) * r))
                     for p, r, n in zip(pos, self.task_shape, self.shape, strict=True))

    def regions(self) -> Iterator[tuple[int, tuple[slice, ...]]]:
        for i in range(self.n_tasks):
            yield i, self.region(i)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "target": self.target,
                "task_shape": list(self.task_shape), "tasks": self.n_tasks, "peak": self.peak}


@dataclass(frozen=True)
class TransposePlan:
    """How one conversion runs: target chunking, optional scratch chunking, phases."""

    direction: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    staging_chunks: tuple[int, ...] | None
    phases: tuple[Phase, ...]
    budget: int
    threads: int
    amplification: float

    @property
    def write_unit(self) -> tuple[int, ...]:
        return self.shards or self.chunks

    @property
    def peak(self) -> int:
        return max(p.peak for p in self.phases)

    def to_json(self) -> dict[str, Any]:
        """JSON form stored while converting, compared on resume."""
        return {
            "direction": self.direction,
            "dims": list(self.dims),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "chunks": list(self.chunks),
            "shards": list(self.shards) if self.shards else None,
            "staging_chunks": list(self.staging_chunks) if self.staging_chunks else None,
            "phases": [p.to_json() for p in self.phases],
            "budget": self.budget,
            "threads": self.threads,
            "amplification": round(self.amplification, 4),
        }


# ----------------------------------------------------------------------------- helpers
def _spatial_axes(dims: Sequence[str]) -> list[int]:
    return [i for i, d in enumerate(dims) if d in SPATIAL]


def _double_round_robin(start: list[int], shape: Sequence[int], axes: Sequence[int],
                        max_elems: int) -> list[int]:
    """Double ``start`` along ``axes`` in turn (last axis first) while under ``max_elems``."""
    out = list(start)
    grew = True
    while grew:
        grew = False
        for ax in reversed(axes):
            if out[ax] >= shape[ax]:
                continue
            new = min(out[ax] * 2, shape[ax])
            if math.prod(out) // out[ax] * new > max_elems:
                continue
            out[ax] = new
            grew = True
    return out


def choose_block(dims: Sequence[str], shape: Sequence[int], itemsize: int,
                 chunk_bytes: int = CHUNK_BYTES) -> tuple[int, ...]:
    """Spatial block of a series chunk: about ``chunk_bytes`` of whole time series.

    The block starts at one voxel and doubles along the spatial axes in turn, ``x`` first,
    while ``T * block * itemsize <= chunk_bytes`` and the block fits the image; so a
    1000-frame uint16 movie gets 16 x 32 (y, x) blocks and a 3-D one 8 x 8 x 8.
    Returns the block for the spatial axes only, in ``dims`` order.
    """
    per_voxel = shape[0] * itemsize
    n_vox = max(1, chunk_bytes // per_voxel)
    sp = _spatial_axes(dims)
    start = [1] * len(shape)
    grown = _double_round_robin(start, shape, sp, n_vox)
    return tuple(grown[i] for i in sp)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _grow(unit: Sequence[int], shape: Sequence[int], order: Sequence[int],
          max_elems: int) -> tuple[int, ...] | None:
    """Largest region of whole ``unit`` s, filled axis by axis in ``order``, within budget.

    Axis by axis: the current axis takes as many units as fit; only once it spans the whole
    array does the next axis grow. ``None`` when even one unit is over ``max_elems``.
    """
    r = [min(u, n) for u, n in zip(unit, shape, strict=True)]
    if math.prod(r) > max_elems:
        return None
    for ax in order:
        others = math.prod(r) // r[ax]
        k = max(1, max_elems // (others * unit[ax]))
        r[ax] = min(shape[ax], k * unit[ax])
        if r[ax] < shape[ax]:
            # same number of tasks, evened out: smaller peak, same reads
            n_tasks = _ceil_div(shape[ax], r[ax])
            r[ax] = _ceil_div(_ceil_div(shape[ax], n_tasks), unit[ax]) * unit[ax]
            break
    return tuple(r)


def _bounds(chunks: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(chunks)])


def amplification(shape: Sequence[int], task_shape: Sequence[int],
                  source_chunks: Sequence[Sequence[int]] | None) -> float:
    """How many times each source element is decoded when reading tasks of ``task_shape``.

    A source chunk overlapped by ``k`` tasks is decoded ``k`` times; the result is the total
    decoded over the array size (1.0 when tasks never split a source chunk).
    """
    if source_chunks is None:
        return 1.0
    total = 1.0
    for n, r, cs in zip(shape, task_shape, source_chunks, strict=True):
        b = _bounds(cs)
        decoded = 0
        for start in range(0, n, r):
            stop = min(n, start + r)
            first = int(np.searchsorted(b, start, side="right")) - 1
            last = int(np.searchsorted(b, stop, side="left"))
            decoded += int(b[last] - b[first])
        total *= decoded / n
    return total


def _max_chunk(source_chunks: Sequence[Sequence[int]] | None, ndim: int) -> tuple[int, ...]:
    if source_chunks is None:
        return (0,) * ndim
    return tuple(max(c) for c in source_chunks)


def _regular(source_chunks: Sequence[Sequence[int]] | None) -> tuple[int, ...] | None:
    """The chunk shape when every chunk but the last along each axis is the same size."""
    if source_chunks is None:
        return None
    out = []
    for cs in source_chunks:
        if len(set(cs[:-1])) > 1 or (len(cs) > 1 and cs[-1] > cs[0]):
            return None
        out.append(cs[0])
    return tuple(out)


def _in_flight(read_unit: Sequence[int], write_unit: Sequence[int], threads: int) -> int:
    """Elements held by chunks being decoded and encoded at one time."""
    return threads * (READ_FACTOR * math.prod(read_unit) + WRITE_FACTOR * math.prod(write_unit))


def _peak(region: Sequence[int], read_unit: Sequence[int], write_unit: Sequence[int],
          itemsize: int, threads: int) -> int:
    return itemsize * (math.prod(region) + _in_flight(read_unit, write_unit, threads))


def _budget_error(budget: int, unit: Sequence[int], source_chunk: Sequence[int], need: int,
                  what: str, threads: int) -> VoxzarrError:
    src = f" and source chunks {tuple(source_chunk)}" if any(source_chunk) else ""
    return ArgumentError(
        f"memory budget of {format_bytes(budget)} is smaller than one {what} "
        f"{tuple(unit)} with the buffers of {threads} thread(s) decoding{src} "
        f"({format_bytes(need)}); raise memory=, choose a smaller block or rechunk the source",
        field="memory",
    )


# ----------------------------------------------------------------------------- planning
def _plan_phases(
    direction: str,
    shape: tuple[int, ...],
    itemsize: int,
    source_chunks: Sequence[Sequence[int]] | None,
    unit: tuple[int, ...],
    budget: int,
    threads: int,
    staging: bool | str,
) -> tuple[tuple[Phase, ...], tuple[int, ...] | None, float]:
    """Direct or staged phases writing whole ``unit`` s (see module docstring)."""
    ndim = len(shape)
    order = list(reversed(range(ndim)))
    cs_max = _max_chunk(source_chunks, ndim)
    what = "series block" if direction == "to_series" else "image chunk"
    avail = budget // itemsize - _in_flight(cs_max, unit, threads)
    r2 = _grow(unit, shape, order, avail)
    if r2 is None:
        need = _peak(unit, cs_max, unit, itemsize, threads)
        raise _budget_error(budget, unit, cs_max, need, what, threads)
    direct = Phase("direct", "source", "target", shape, r2,
                   _peak(r2, cs_max, unit, itemsize, threads))
    amp = amplification(shape, r2, source_chunks)
    want = staging is True or (staging == "auto" and amp >= STAGING_THRESHOLD)
    if not want:
        return (direct,), None, amp
    staged = _plan_staged(shape, itemsize, source_chunks, unit, budget, threads)
    if staged is None:
        if staging is True:
            raise ArgumentError("a staged plan does not fit this memory budget with these "
                                "source chunks; use staging='auto' or raise memory=",
                                field="staging")
        return (direct,), None, amp
    phases, g = staged
    return phases, g, amp


def _staging_chunk(
    shape: tuple[int, ...],
    unit: tuple[int, ...],
    cs: tuple[int, ...],
    r1: tuple[int, ...],
    r2: tuple[int, ...],
    partial: list[int],
    g_max: int,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Scratch chunk of about ``g_max`` elements, and both phases' tasks trimmed to hold
    whole scratch chunks.

    Along the axes the ``write`` tasks split (``partial``) it is whole target units, and the
    write tasks shrink to a multiple of it; along the others it is a multiple of the source
    chunk, shrunk slowest axis first, and the stage tasks shrink to a multiple of it.
    """
    ndim = len(shape)
    rest = sorted(a for a in range(ndim) if a not in partial)
    g = [unit[a] if a in partial else r1[a] for a in range(ndim)]
    for a in rest:  # slowest first: keeps long contiguous rows
        if math.prod(g) <= g_max:
            break
        others = math.prod(g) // g[a]
        g[a] = min(g[a], max(1, g_max // (others * cs[a])) * cs[a])
    for a in sorted(partial, reverse=True):
        others = math.prod(g) // g[a]
        m = max(1, min(r2[a] // unit[a], g_max // (others * unit[a])))
        g[a] = m * unit[a]
    t1 = tuple(r if r >= n or a in partial else r // g[a] * g[a]
               for a, (r, n) in enumerate(zip(r1, shape, strict=True)))
    t2 = tuple(r // g[a] * g[a] if a in partial else r
               for a, r in enumerate(r2))
    return tuple(g), t1, t2


def _plan_staged(
    shape: tuple[int, ...],
    itemsize: int,
    source_chunks: Sequence[Sequence[int]] | None,
    unit: tuple[int, ...],
    budget: int,
    threads: int,
) -> tuple[tuple[Phase, ...], tuple[int, ...]] | None:
    """Two phases through scratch chunks ``g``, or ``None`` when they cannot fit."""
    cs = _regular(source_chunks)
    if cs is None:
        return None
    ndim = len(shape)
    order = list(reversed(range(ndim)))
    n = threads
    limit = budget // itemsize
    g_max = max(math.prod(unit), min(STAGING_CHUNK_BYTES,
                                     budget // (8 * (READ_FACTOR + WRITE_FACTOR) * n))
                // itemsize)
    g_est = g_max
    for _ in range(4):  # g depends on r1 and r2, they on g: a few rounds settle it
        r2 = _grow(unit, shape, order, limit - _in_flight((g_est,), unit, n))
        if r2 is None:
            return None
        partial = [a for a in order if r2[a] < shape[a]]
        rest = [a for a in order if a not in partial]
        grown = _grow(cs, shape, partial + rest, limit - _in_flight(cs, (g_est,), n))
        if grown is None or any(grown[a] < shape[a] for a in partial):
            return None
        g, r1, r2 = _staging_chunk(shape, unit, cs, grown, r2, partial, g_max)
        if math.prod(g) <= g_est:
            break
        g_est = math.prod(g)
    p1 = Phase("stage", "source", "staging", shape, r1, _peak(r1, cs, g, itemsize, n))
    p2 = Phase("write", "staging", "target", shape, r2, _peak(r2, g, unit, itemsize, n))
    if max(p1.peak, p2.peak) > budget:
        return None
    return (p1, p2), g


def _check_dims(dims: Sequence[str], shape: Sequence[int]) -> None:
    if not dims or dims[0] != "t":
        raise ArgumentError(f"a series layout needs a time axis first; dims are "
                            f"{tuple(dims)}", field="dims")
    if not _spatial_axes(dims):
        raise ArgumentError("a series layout needs at least one spatial axis", field="dims")
    if len(dims) != len(shape):
        raise ArgumentError(f"{len(dims)} dims for {len(shape)} axes", field="dims")


def _shape_arg(value: Any, dims: Sequence[str], what: str) -> dict[str, int]:
    """A per-dim dict from an int (every spatial axis), a dict or a spatial tuple."""
    sp = [d for d in dims if d in SPATIAL]
    if isinstance(value, Mapping):
        out = {str(k): int(v) for k, v in value.items()}
    elif isinstance(value, int | np.integer):
        out = {d: int(value) for d in sp}
    else:
        vals = [int(v) for v in value]
        if len(vals) == len(dims):
            out = dict(zip(dims, vals, strict=True))
        elif len(vals) == len(sp):
            out = dict(zip(sp, vals, strict=True))
        else:
            raise ArgumentError(f"give {len(sp)} sizes for {tuple(sp)} (or {len(dims)} for "
                                f"{tuple(dims)}), got {value!r}", field=what)
    for k, v in out.items():
        if k not in dims:
            raise ArgumentError(f"no axis {k!r} in dims {tuple(dims)}", field=what)
        if v < 1:
            raise ArgumentError(f"sizes must be >= 1, got {k}={v}", field=what)
    return out


def plan_to_series(
    dims: Sequence[str],
    shape: Sequence[int],
    itemsize: int,
    *,
    budget: int,
    source_chunks: Sequence[Sequence[int]] | None = None,
    block: Any = None,
    shards: Any = None,
    threads: int = 2,
    staging: bool | str = "auto",
    dtype: str = "",
) -> TransposePlan:
    """Plan image -> series: chunks ``(T, 1 per channel, *block)``, optional shards.

    Parameters
    ----------
    dims, shape, itemsize
        The image (``t`` first).
    budget
        Memory budget in bytes (see the module's memory model).
    source_chunks
        Dask-style chunk sizes of the source per axis; ``None`` for in-memory data.
    block
        Spatial block of a series chunk (int, tuple over the spatial axes, or dict by dim);
        default :func:`choose_block` for ``min(CHUNK_BYTES, budget / (4 (1 + 4 threads)))``.
    shards
        ``None`` (auto: shards once there would be more than ``MAX_UNSHARDED_CHUNKS``
        chunks), ``False`` (never) or a spatial shard shape (whole blocks).
    """
    dims = tuple(dims)
    shape = tuple(int(s) for s in shape)
    _check_dims(dims, shape)
    sp = _spatial_axes(dims)
    n = threads
    # a write unit of at most this leaves room for tasks of several units
    unit_bytes = budget // (4 * (1 + WRITE_FACTOR * n))

    def chunk_from(blk: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(shape[0] if i == 0 else min(shape[i], blk.get(d, 1))
                     for i, d in enumerate(dims))

    def shard_from(chunk: tuple[int, ...]) -> tuple[int, ...] | None:
        n_chunks = math.prod(-(-s // c) for s, c in zip(shape, chunk, strict=True))
        if shards is False:
            return None
        if shards is None or shards == "auto":
            if n_chunks <= MAX_UNSHARDED_CHUNKS:
                return None
            target = min(SHARD_BYTES, unit_bytes) // itemsize
            grown = _double_round_robin(list(chunk), shape, sp, max(target, math.prod(chunk)))
        else:
            given = _shape_arg(shards, dims, "shards")
            grown = [shape[0] if i == 0 else min(shape[i], max(chunk[i], given.get(d, 1)))
                     for i, d in enumerate(dims)]
        # whole chunks per shard (zarr needs it); a shard spanning an axis may overhang it
        return tuple(_ceil_div(s, c) * c if s >= n else s // c * c
                     for s, c, n in zip(grown, chunk, shape, strict=True))

    if block is not None:
        chunk = chunk_from(_shape_arg(block, dims, "block"))
        if "c" in dims and chunk[dims.index("c")] != 1:
            raise ArgumentError("series blocks hold one channel; drop 'c' from block",
                                field="block")
    else:
        blk = choose_block(dims, shape, itemsize, min(CHUNK_BYTES, unit_bytes))
        chunk = chunk_from(dict(zip([dims[i] for i in sp], blk, strict=True)))
    shard = shard_from(chunk)
    unit = shard or chunk
    phases, g, amp = _plan_phases("to_series", shape, itemsize, source_chunks, unit, budget,
                                  n, staging)
    return TransposePlan("to_series", dims, shape, dtype, chunk, shard, g, phases, budget, n,
                         amp)


def plan_to_images(
    dims: Sequence[str],
    shape: Sequence[int],
    itemsize: int,
    *,
    budget: int,
    source_chunks: Sequence[Sequence[int]] | None = None,
    chunks: tuple[int, ...] | None = None,
    shards: tuple[int, ...] | None = None,
    threads: int = 2,
    staging: bool | str = "auto",
    dtype: str = "",
) -> TransposePlan:
    """Plan series -> images: target ``chunks`` (default one timepoint, spatial blocks).

    ``chunks`` / ``shards`` are full-length tuples (already normalised by the caller); with
    ``chunks=None`` the default image chunking is halved along its largest spatial axis until
    one chunk fits the budget.
    """
    from ..io import default_chunks

    dims = tuple(dims)
    shape = tuple(int(s) for s in shape)
    _check_dims(dims, shape)
    n = threads
    cs_max = _max_chunk(source_chunks, len(shape))
    if chunks is None:
        ck = list(default_chunks(dims, shape))
        while _peak(ck, cs_max, ck, itemsize, n) > budget and max(ck) > 1:
            ax = int(np.argmax(ck))
            ck[ax] = -(-ck[ax] // 2)
        chunk = tuple(ck)
    else:
        chunk = tuple(chunks)
    unit = tuple(shards) if shards else chunk
    phases, g, amp = _plan_phases("to_images", shape, itemsize, source_chunks, unit, budget,
                                  n, staging)
    return TransposePlan("to_images", dims, shape, dtype, chunk,
                         tuple(shards) if shards else None, g, phases, budget, n, amp)
