"""Run the phases of a :class:`~voxzarr.series.plan.TransposePlan`: read a region, write it.

A task (:func:`copy_region`) reads one region into one buffer and writes it as whole write
units (chunks or shards), with ``threads`` threads inside it decoding the source and encoding
the target, so its memory is one region plus the chunks in flight. Tasks run where the active
dask scheduler runs them:

* local (threaded or no scheduler): one after another in this process;
* a ``dask.distributed`` client: submitted to the cluster, at most one per worker process at
  a time (a process-wide lock guarantees it), so each worker stays within the budget and this
  process holds no pixel data. A task ships the source and target as zarr arrays (metadata
  and a store that reopens itself from its path or URL) or a small culled dask graph; data
  living in this process only (numpy arrays, memory stores, graphs holding large arrays) is
  converted here instead.

After each task the caller records the next task index such that every task before it has
finished (the ``voxzarr.progress`` attribute), so a killed conversion resumes there; a task
that was cut off, or that finished out of order, is simply written again (every task writes
whole chunks or shards, and the same data gives the same bytes). No two tasks of a phase
write one chunk or shard.

Zarr v3 arrays whose codecs are ``bytes`` (+ ``blosc``), sharded or not, are written unit by
unit with the codec called directly (:class:`ChunkCodec`); unsharded ones are also read that
way. That is zarr's bytes for chunks (shards hold the same inner chunks in C order rather than
zarr's Morton order, with the same index) at a half (chunks) to two thirds (shards) of the CPU
of zarr's per-chunk pipeline. Anything else goes through zarr.
"""

from __future__ import annotations

import ctypes
import itertools
import pickle
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

import dask
import dask.array as da
import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype

from .. import _store
from .._chunkwrite import Layout, delete_object, get_object, layout, put_object
from .._store import local_root
from ..errors import ChunkError
from .plan import Phase

__all__ = [
    "ChunkCodec",
    "Reader",
    "ZarrReader",
    "active_client",
    "copy_region",
    "reader_for",
    "malloc_tuned",
    "run_phase",
    "settle_malloc",
    "tune_malloc",
    "zarr_backing",
]

#: a task whose reader pickles larger than this carries data, not a recipe: run it here
SHIP_LIMIT = 1 << 20


class Reader(Protocol):
    """Reads a region of an array into a preallocated buffer."""

    #: dask-style chunk sizes per axis, ``None`` when any region costs the same to read
    chunks: tuple[tuple[int, ...], ...] | None

    def read(self, region: tuple[slice, ...], out: np.ndarray) -> None: ...

    def for_task(self, region: tuple[slice, ...]
                 ) -> tuple[Reader, tuple[slice, ...]] | None:
        """A reader (and the region in its terms) to ship to another process for one
        task, or ``None`` when the data lives in this process only."""
        ...


# ----------------------------------------------------------------------------- direct codec
class ChunkCodec:
    """Whole-unit encode (chunks or shards) and whole-chunk decode, straight to and from
    the store.

    The codec itself is :class:`voxzarr._chunkwrite.Layout` (the one direct chunk codec of
    voxzarr): edge units padded with the fill value; units holding only the fill value are
    removed, as zarr's ``write_empty_chunks=False`` does (and inner chunks holding only it
    are left out of their shard).
    """

    def __init__(self, array: zarr.Array, lay: Layout):
        self.array = array
        self.lay = lay
        self.chunks = lay.unit  # the write unit: a shard, or a chunk when unsharded
        self.sharded = lay.inner is not None
        self.dtype = array.dtype
        self.store = array.store_path.store
        self.root = local_root(self.store)  # local files: no event-loop round trip

    @classmethod
    def for_array(cls, array: zarr.Array) -> ChunkCodec | None:
        """The direct codec for ``array``, or ``None`` when zarr must do the work."""
        lay = layout(array)
        if lay is None or array.config.write_empty_chunks or array.config.order != "C":
            return None
        return cls(array, lay)

    def key(self, coords: tuple[int, ...]) -> str:
        return self.lay.key_of(coords)

    def write(self, coords: tuple[int, ...], data: np.ndarray) -> None:
        """Encode and store unit ``coords`` (``data`` may be an edge unit's valid part)."""
        parts = self.lay.encode_unit(data)
        if parts is None:
            delete_object(self.store, self.root, self.key(coords))
            return
        put_object(self.store, self.root, self.key(coords), parts)

    def read(self, coords: tuple[int, ...], out: np.ndarray | None = None
             ) -> np.ndarray | None:
        """Chunk ``coords`` of an unsharded array decoded (full chunk shape; into ``out``,
        a C-contiguous chunk-shaped buffer of the stored dtype, when given), or ``None``
        when it is not stored."""
        if self.sharded:
            raise NotImplementedError("direct reads are for unsharded arrays")
        raw = get_object(self.store, self.root, self.key(coords))
        if raw is None:
            return None
        return self.lay.decode(raw, out).astype(self.dtype, copy=False)


def _chunk_coords(region: tuple[slice, ...], chunks: tuple[int, ...]
                  ) -> Iterator[tuple[int, ...]]:
    ranges = [range(s.start // c, -(-s.stop // c)) for s, c in zip(region, chunks, strict=True)]
    return itertools.product(*ranges)


# ----------------------------------------------------------------------------- readers
class NumpyReader:
    """In-memory data: a region is a copy."""

    chunks = None

    def __init__(self, data: Any):
        self.data = data

    def read(self, region: tuple[slice, ...], out: np.ndarray) -> None:
        out[...] = np.asarray(self.data[region])

    def for_task(self, region: tuple[slice, ...]) -> None:
        return None  # in this process's memory


class DaskReader:
    """A dask array, computed chunk by chunk straight into the buffer (no concatenation)."""

    def __init__(self, data: da.Array, threads: int):
        self.data = data
        self.chunks = tuple(tuple(int(c) for c in cs) for cs in data.chunks)
        self.threads = threads

    def read(self, region: tuple[slice, ...], out: np.ndarray) -> None:
        part = self.data[region]
        with dask.config.set({"array.slicing.split_large_chunks": False}):
            da.store(part, out, lock=False, compute=True, scheduler="threads",
                     num_workers=self.threads)

    def for_task(self, region: tuple[slice, ...]
                 ) -> tuple[DaskReader, tuple[slice, ...]]:
        """The region's own (culled) graph, computed by the task on its worker."""
        part = self.data[region]
        return DaskReader(part, self.threads), tuple(slice(0, n) for n in part.shape)


class ZarrReader:
    """A zarr array read straight into the buffer, chunk by chunk in ``threads`` threads."""

    def __init__(self, array: zarr.Array, threads: int = 1):
        self.array = array
        self.threads = max(1, threads)
        codec = ChunkCodec.for_array(array)
        self.codec = codec if codec is not None and not codec.sharded else None
        # a region read decodes only the (inner) chunks it touches, so they are the unit
        self.chunks = tuple(
            tuple(min(c, n - i) for i in range(0, n, c))
            for n, c in zip(array.shape, array.chunks, strict=True)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # the zarr array pickles as its metadata and a store that reopens itself
        return (ZarrReader, (self.array, self.threads))

    def for_task(self, region: tuple[slice, ...]
                 ) -> tuple[ZarrReader, tuple[slice, ...]] | None:
        if _store.process_local(self.array.store):
            return None  # another process would read an empty copy
        return self, region

    def read(self, region: tuple[slice, ...], out: np.ndarray) -> None:
        try:
            if self.codec is None:
                buf = default_buffer_prototype().nd_buffer.from_numpy_array(out)
                self.array.get_basic_selection(region, out=buf)
            else:
                self._read_direct(region, out)
        except Exception as err:
            first = tuple(s.start for s in region)
            raise ChunkError(f"cannot read or decode the region starting at {first} "
                             f"({type(err).__name__}: {err})", path=self.array.store_path,
                             field=f"region {first}") from err

    def _read_direct(self, region: tuple[slice, ...], out: np.ndarray) -> None:
        codec = self.codec
        assert codec is not None
        chunks = codec.chunks
        scratch = threading.local()  # one decode buffer per thread, reused chunk to chunk

        def one(coords: tuple[int, ...]) -> None:
            lo = [c * n for c, n in zip(coords, chunks, strict=True)]
            glob = tuple(slice(max(s.start, o), min(s.stop, o + n))
                         for s, o, n in zip(region, lo, chunks, strict=True))
            dst = tuple(slice(g.start - s.start, g.stop - s.start)
                        for g, s in zip(glob, region, strict=True))
            src = tuple(slice(g.start - o, g.stop - o) for g, o in zip(glob, lo, strict=True))
            buf = getattr(scratch, "buf", None)
            if buf is None:
                buf = scratch.buf = np.empty(chunks, dtype=codec.lay.dtype)
            block = codec.read(coords, buf)
            out[dst] = 0 if block is None else block[src]

        coords = list(_chunk_coords(region, chunks))
        if self.threads == 1 or len(coords) == 1:
            for c in coords:
                one(c)
            return
        with ThreadPoolExecutor(self.threads) as pool:
            for _ in pool.map(one, coords):
                pass


def zarr_backing(data: da.Array) -> zarr.Array | None:
    """The zarr array behind a dask array made by ``da.from_array`` on it, else ``None``.

    ``voxzarr.open_image`` wraps the zarr array (in an object with an ``array`` attribute)
    in a two-layer graph; reading that array directly skips a dask task per chunk, which
    halves the time and the memory of a region read. Anything else (sliced, computed) is
    read through dask.
    """
    try:
        layers = data.__dask_graph__().layers
        if len(layers) != 2:
            return None
        for name, layer in layers.items():
            if str(name).startswith("original-") and len(layer) == 1:
                obj = next(iter(layer.values()))
                arr = getattr(obj, "array", obj)
                if isinstance(arr, zarr.Array) and tuple(arr.shape) == tuple(data.shape):
                    return arr
    except Exception:  # any other graph shape: not ours to take apart
        return None
    return None


def reader_for(data: Any, threads: int) -> Reader:
    """The reader for a DataArray's ``.data``: zarr-backed, other dask, or in memory."""
    if isinstance(data, da.Array):
        backing = zarr_backing(data)
        if backing is not None:
            return ZarrReader(backing, threads)
        return DaskReader(data, threads)
    if isinstance(data, zarr.Array):
        return ZarrReader(data, threads)
    return NumpyReader(data)


# ----------------------------------------------------------------------------- tasks
#: one task at a time per process, whoever runs it: the budget holds per worker process
_TASK_LOCK = threading.Lock()


def copy_region(
    reader: Reader,
    read_region: tuple[slice, ...],
    target: zarr.Array,
    region: tuple[slice, ...],
    threads: int,
) -> int:
    """One task: read ``read_region`` of ``reader`` and write it as ``region`` of
    ``target``, whole write units only; returns the bytes copied.

    Runs in this process or on a ``dask.distributed`` worker (every argument pickles small).
    """
    with _TASK_LOCK, malloc_tuned():
        codec = ChunkCodec.for_array(target)
        unit = tuple(target.shards or target.chunks)
        with zarr.config.set({"async.concurrency": max(1, threads)}), \
                ThreadPoolExecutor(max(1, threads)) as pool:
            buf = np.empty(tuple(s.stop - s.start for s in region), dtype=target.dtype)
            reader.read(read_region, buf)
            _write_units(target, codec, region, buf, unit, pool)
            nbytes = buf.nbytes
            del buf
        _release_memory()
    return nbytes


def active_client() -> Any:
    """The ``dask.distributed`` client the active dask scheduler submits to, else ``None``
    (the threaded scheduler, ``dask.config.set(scheduler=...)``, no distributed)."""
    if "distributed" not in sys.modules:
        return None  # nothing imported it, so no client can exist
    try:
        from distributed import Client

        sched = dask.base.get_scheduler()
    except (ImportError, RuntimeError, ValueError):
        return None
    owner = getattr(sched, "__self__", sched)
    return owner if isinstance(owner, Client) and not owner.asynchronous else None


def _shippable(phase: Phase, reader: Reader, target: zarr.Array) -> bool:
    """Whether the tasks of ``phase`` can run in other processes: the source and target
    reopen there, and a task carries a recipe rather than data."""
    if _store.process_local(target.store) or phase.n_tasks == 0:
        return False
    task = reader.for_task(phase.region(0))
    if task is None:
        return False
    try:
        import cloudpickle

        return len(cloudpickle.dumps(task[0])) <= SHIP_LIMIT
    except (pickle.PicklingError, TypeError, OSError, ChunkError, ValueError):
        return False  # e.g. a graph holding a store of this process only


def run_phase(
    phase: Phase,
    reader: Reader,
    target: zarr.Array,
    *,
    start: int,
    threads: int,
    on_progress: Callable[[int, int], None],
    client: Any = None,
) -> None:
    """Copy every task of ``phase`` from ``start`` on; ``on_progress(next, nbytes)`` after
    each task, ``next`` being the first task not yet finished.

    With ``client`` (a ``dask.distributed.Client``) and data that can leave this process,
    tasks run on the cluster, at most one per worker at a time; else here, in order.
    """
    if client is not None and _shippable(phase, reader, target):
        _run_on_cluster(phase, reader, target, start=start, threads=threads,
                        on_progress=on_progress, client=client)
        return
    for i in range(start, phase.n_tasks):
        region = phase.region(i)
        nbytes = copy_region(reader, region, target, region, threads)
        on_progress(i + 1, nbytes)


def _run_on_cluster(
    phase: Phase,
    reader: Reader,
    target: zarr.Array,
    *,
    start: int,
    threads: int,
    on_progress: Callable[[int, int], None],
    client: Any,
) -> None:
    """Submit the tasks, one per worker in flight; each freed worker gets the next one.

    Pinning a task to the worker that asks for work keeps each worker's memory to one task
    (``allow_other_workers``: if that worker leaves, another runs it).
    """
    from distributed import as_completed

    workers = list(client.scheduler_info().get("workers", {})) or [None]
    token = uuid.uuid4().hex[:12]
    todo = iter(range(start, phase.n_tasks))
    running: dict[Any, tuple[int, Any]] = {}
    finished: set[int] = set()
    nxt = start
    queue = as_completed()

    def submit(worker: Any) -> None:
        i = next(todo, None)
        if i is None:
            return
        region = phase.region(i)
        task = reader.for_task(region)
        assert task is not None  # checked by _shippable
        fut = client.submit(
            copy_region, task[0], task[1], target, region, threads,
            key=f"voxzarr-{phase.name}-{token}-{i}", pure=False,
            workers=None if worker is None else [worker], allow_other_workers=True,
        )
        running[fut] = (i, worker)
        queue.add(fut)

    try:
        for w in workers:
            submit(w)
        for fut in queue:
            i, worker = running.pop(fut)
            nbytes = fut.result()  # a task's error is raised here
            finished.add(i)
            while nxt in finished:
                finished.discard(nxt)
                nxt += 1
            on_progress(nxt, nbytes)
            submit(worker)
    finally:
        if running:
            client.cancel(list(running))


def _write_units(target: zarr.Array, codec: ChunkCodec | None, region: tuple[slice, ...],
                 buf: np.ndarray, unit: tuple[int, ...], pool: ThreadPoolExecutor) -> None:
    """Write ``buf`` one chunk (or shard) at a time: at most ``threads`` units in flight.

    Handing zarr the whole region would let it copy and encode many units at once.
    """
    starts = [range(s.start, s.stop, u) for s, u in zip(region, unit, strict=True)]

    def one(origin: tuple[int, ...]) -> None:
        glob = tuple(slice(o, min(o + u, s.stop))
                     for o, u, s in zip(origin, unit, region, strict=True))
        local = tuple(slice(g.start - s.start, g.stop - s.start)
                      for g, s in zip(glob, region, strict=True))
        if codec is not None:
            codec.write(tuple(o // u for o, u in zip(origin, unit, strict=True)), buf[local])
        else:
            target[glob] = np.ascontiguousarray(buf[local])

    for _ in pool.map(one, itertools.product(*starts)):
        pass


# ----------------------------------------------------------------------------- memory
def _release_memory() -> None:
    """Hand freed heap memory back to the OS between tasks (glibc keeps it otherwise)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        libc.mallopt  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's own ceiling for its dynamic mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX),
#: and the trim threshold it pairs with it: what a busy process settles at untuned
_SETTLED_MMAP = 32 << 20
_SETTLED_TRIM = 2 * _SETTLED_MMAP


def tune_malloc() -> None:
    """Serve allocations of 1 MiB and more from mmap (glibc), until :func:`settle_malloc`.

    glibc raises its mmap threshold as large blocks are freed, after which decoded and
    encoded chunk buffers are carved from per-thread arenas that fragment and are not given
    back: tens of MiB above the budget. A fixed threshold returns them on ``free``.
    Documented in ``spec/series.md``.
    """
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 1 << 20)


def settle_malloc() -> None:
    """Undo :func:`tune_malloc` for the rest of the process: the thresholds glibc settles
    at on its own in a process that frees large blocks. Left at 1 MiB, every later large
    buffer of any operation would be mapped and faulted in afresh (resampling after a
    series conversion took 17 % more CPU on the 2-core machine)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM)


@contextmanager
def malloc_tuned() -> Iterator[None]:
    """:func:`tune_malloc` for the duration of one copy task (tasks of a process run one
    at a time under ``_TASK_LOCK``), :func:`settle_malloc` after it."""
    tune_malloc()
    try:
        yield
    finally:
        settle_malloc()
