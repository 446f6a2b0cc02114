"""numpy / cupy dispatch: one place that knows whether an array lives on the GPU.

CuPy is optional (the ``gpu`` extra). Everything here works without it: functions that need
it raise :class:`~voxzarr.errors.DependencyError` with a clear message instead of a bare
ImportError.
"""

from __future__ import annotations

import functools
import math
import os
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ArgumentError, DependencyError

__all__ = [
    "DEVICES",
    "gpu_available",
    "is_cupy",
    "array_module",
    "ndimage_module",
    "resolve_device",
    "to_device",
    "to_host",
    "dask_to_device",
    "empty_meta",
    "gpu_free_bytes",
    "gpu_block_chunks",
    "rechunk_in_memory",
    "whole_array",
]

#: accepted values of every ``device=`` argument
DEVICES = ("auto", "cpu", "gpu")


@functools.cache
def gpu_available() -> bool:
    """Whether CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDA driver errors: no usable GPU either way
        return False


def is_cupy(arr: Any) -> bool:
    """True for CuPy arrays (checked by type, so CuPy is never imported needlessly)."""
    return type(arr).__module__.split(".")[0] == "cupy"


def array_module(arr: Any) -> ModuleType:
    """``numpy`` or ``cupy``, whichever owns ``arr``."""
    if is_cupy(arr):
        import cupy

        return cupy
    return np


def ndimage_module(arr: Any) -> ModuleType:
    """``scipy.ndimage`` or ``cupyx.scipy.ndimage`` to match ``arr``."""
    if is_cupy(arr):
        from . import _cupyx_exact  # cupyx, with scipy's prefilter on short lines

        return _cupyx_exact
    import scipy.ndimage as ndi

    return ndi


def resolve_device(device: str, data: Any = None) -> str:
    """Turn ``"auto" | "cpu" | "gpu"`` into ``"cpu"`` or ``"gpu"``.

    ``"auto"`` picks the GPU when the data already lives there or a GPU is present.
    An unknown device is an :class:`ArgumentError`; ``"gpu"`` without CuPy or a device a
    :class:`DependencyError`.
    """
    if device not in DEVICES:
        raise ArgumentError(f"device must be one of {DEVICES}, got {device!r}", field="device")
    on_gpu = is_cupy(getattr(data, "_meta", data))
    if device == "auto":
        return "gpu" if on_gpu or gpu_available() else "cpu"
    if device == "gpu" and not (on_gpu or gpu_available()):
        raise DependencyError("device='gpu' needs CuPy and an NVIDIA GPU (pip install "
                              "'voxzarr[gpu]'); use device='cpu' or 'auto'", field="device")
    return device


def to_device(arr: Any) -> Any:
    """Copy a numpy array to the GPU (CuPy arrays pass through)."""
    import cupy

    return cupy.asarray(arr)


def to_host(arr: Any) -> Any:
    """Copy a CuPy array to host memory (numpy arrays pass through)."""
    if is_cupy(arr):
        return arr.get()
    return np.asarray(arr)


def empty_meta(like: Any, ndim: int, dtype: Any) -> Any:
    """A zero-size array of ``dtype`` from the same library as ``like`` (dask ``meta``)."""
    xp = array_module(like)
    return xp.empty((0,) * ndim, dtype=dtype)


def dask_to_device(arr: Any, device: str) -> Any:
    """Move every chunk of a dask array to ``device`` (``"cpu"`` or ``"gpu"``), lazily."""
    on_gpu = is_cupy(arr._meta)
    if device == "gpu" and not on_gpu:
        import cupy

        return arr.map_blocks(to_device, dtype=arr.dtype,
                              meta=cupy.empty((0,) * arr.ndim, dtype=arr.dtype))
    if device == "cpu" and on_gpu:
        return arr.map_blocks(to_host, dtype=arr.dtype,
                              meta=np.empty((0,) * arr.ndim, dtype=arr.dtype))
    return arr


# --------------------------------------------------------------------------- GPU blocks
#: set to ``0`` / ``off`` / ``false`` to keep the caller's chunks on the GPU (benchmarks)
GPU_BLOCKS_ENV = "VOXZARR_GPU_BLOCKS"
#: fraction of free GPU memory one merged block may take (input, output and the kernel's
#: temporaries must all fit beside it)
GPU_BLOCK_FRACTION = 1 / 8
#: slabs smaller than this are not worth merging into (kernel launch and graph overhead)
GPU_MIN_BLOCK = 256 << 20
#: largest slab when the whole array does not fit the budget
GPU_MAX_BLOCK = 2 << 30


def gpu_free_bytes() -> int:
    """Free memory on the current CUDA device, counting what CuPy's pool holds unused."""
    import cupy

    free = int(cupy.cuda.Device().mem_info[0])
    return free + int(cupy.get_default_memory_pool().free_bytes())


def _block_shape(shape: tuple[int, ...], itemsize: int, budget: float) -> tuple[int, ...]:
    """Largest C-order slab of ``shape`` within ``budget`` bytes: full trailing axes, part
    of one axis, single elements before it."""
    out = [1] * len(shape)
    inner = itemsize
    for ax in range(len(shape) - 1, -1, -1):
        n = max(int(shape[ax]), 1)
        if inner * n <= budget:
            out[ax] = n
            inner *= n
            continue
        out[ax] = max(1, min(n, int(budget // inner)))
        break
    return tuple(out)


def gpu_block_chunks(arr: Any, shape: Any = None, dtype: Any = None, *,
                     free: int | None = None) -> tuple[int, ...] | None:
    """Chunk shape that merges a CuPy-backed dask array into a few large GPU blocks.

    GPU kernels run best on few large blocks: per-chunk launches, halos and graph overhead
    dominate on small CuPy chunks. Returns ``None`` (keep the chunks) unless ``arr``'s
    chunks are CuPy arrays and the policy is on (environment variable
    ``VOXZARR_GPU_BLOCKS`` not ``0``). Otherwise: the whole array when it takes at most
    ``GPU_BLOCK_FRACTION`` of free GPU memory (``free``, default :func:`gpu_free_bytes`),
    else C-order slabs of ``min(that budget, GPU_MAX_BLOCK)`` bytes when the budget is at
    least ``GPU_MIN_BLOCK``, else ``None``. Without ``shape`` it is also ``None`` when the
    blocks would be no larger than ``arr``'s chunks; with ``shape`` (and ``dtype``) it
    sizes the blocks of another array of that shape on the same device (an output).
    """
    if os.environ.get(GPU_BLOCKS_ENV, "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    if not is_cupy(getattr(arr, "_meta", None)):
        return None
    own = shape is None
    shape = tuple(int(n) for n in (arr.shape if own else shape))
    itemsize = np.dtype(arr.dtype if dtype is None else dtype).itemsize
    nbytes = math.prod(shape) * itemsize
    if nbytes == 0:
        return None
    budget = (gpu_free_bytes() if free is None else int(free)) * GPU_BLOCK_FRACTION
    if nbytes <= budget:
        blocks = tuple(max(n, 1) for n in shape)
    elif budget >= GPU_MIN_BLOCK:
        blocks = _block_shape(shape, itemsize, min(budget, GPU_MAX_BLOCK))
    else:
        return None
    if own:
        current = tuple(int(c) for c in arr.chunksize)
        if blocks == current or math.prod(blocks) <= math.prod(current):
            return None
    return blocks


def whole_array(arr: Any) -> Any | None:
    """The one in-memory array a dask array slices, or ``None``.

    ``dask.array.from_array`` of an in-memory NumPy or CuPy array stores each chunk as a view
    of that array. When every chunk of ``arr``'s (single-layer) graph is a view of one base
    array of ``arr``'s shape and dtype, at exactly the place its chunk says, that base is
    returned: ``arr`` is that array, chunked, with nothing computed on it.
    """
    import dask.array as da
    from dask.array.core import slices_from_chunks

    if not isinstance(arr, da.Array) or arr.size == 0:
        return None
    graph = arr.__dask_graph__()
    layer = dict(graph)
    if len(graph.layers) == 2:  # arrays other than NumPy: one node, getter tasks
        return _sliced_node(arr, layer)
    if len(graph.layers) != 1:
        return None
    keys = [k for k in layer if isinstance(k, tuple) and k and k[0] == arr.name]
    if len(keys) != len(layer) or len(keys) != arr.npartitions:
        return None
    base = None
    for idx, where in zip(np.ndindex(*arr.numblocks), slices_from_chunks(arr.chunks),
                          strict=True):
        view = layer.get((arr.name, *idx))
        if not (isinstance(view, np.ndarray) or is_cupy(view)):
            return None
        owner = view if view.base is None else view.base
        if base is None:
            base = owner
            if base.shape != arr.shape or base.dtype != arr.dtype:
                return None
        elif owner is not base:
            return None
        start = sum(s.start * st for s, st in zip(where, base.strides, strict=True))
        if (_pointer(view) != _pointer(base) + start
                or view.shape != tuple(s.stop - s.start for s in where)):
            return None
    return base


def _sliced_node(arr: Any, layer: dict) -> Any | None:
    """The array behind ``from_array``'s graph for non-NumPy arrays: one ``original-``
    node holding it, and a getter task per chunk taking exactly that chunk's slices."""
    from dask._task_spec import DataNode, Task
    from dask.array.core import getter, getter_inline, getter_nofancy, slices_from_chunks

    orig = f"original-{arr.name}"
    base = layer.get(orig)
    base = base.value if isinstance(base, DataNode) else base
    from ._views import _NoCopy

    if isinstance(base, _NoCopy):  # voxzarr's own view (dask_view): the array it wraps
        base = base.arr
    if not ((isinstance(base, np.ndarray) or is_cupy(base)) and base.shape == arr.shape
            and base.dtype == arr.dtype) or len(layer) != arr.npartitions + 1:
        return None
    for idx, where in zip(np.ndindex(*arr.numblocks), slices_from_chunks(arr.chunks),
                          strict=True):
        task = layer.get((arr.name, *idx))
        if (not isinstance(task, Task) or task.func not in (getter, getter_nofancy,
                                                             getter_inline)
                or task.dependencies != {orig} or len(task.args) != 2):
            return None
        key = task.args[1]
        key = key.value if isinstance(key, DataNode) else key
        if tuple(key) != tuple(where):
            return None
    return base


def _pointer(a: Any) -> int:
    return int(a.data.ptr) if is_cupy(a) else int(a.__array_interface__["data"][0])


def rechunk_in_memory(arr: Any, blocks: tuple[int, ...]) -> Any:
    """``arr.rechunk(blocks)``, as views of the array itself when ``arr`` merely slices one
    in-memory array (:func:`whole_array`): no copies and no rechunk graph."""
    base = whole_array(arr)
    if base is None:
        return arr.rechunk(blocks)
    from ._views import dask_view

    return dask_view(base, blocks)


def run_now_on_gpu(src: Any, out: Any) -> Any | None:
    """``out`` computed now, as a one-block view, when it is one task over one CuPy array.

    For data already in GPU memory (``src`` merely slices one CuPy array:
    :func:`whole_array`) and an output of a single block, the graph holds one GPU task
    whose kernels take about a millisecond; handing it to dask's threaded scheduler later
    costs more than that. Running it now on the synchronous scheduler (CuPy launches the
    kernels asynchronously, so this returns at once) and returning a view of the result
    keeps the call at the kernel's speed. Returns ``None`` (keep the lazy graph) otherwise.
    """
    import dask.array as da

    if not (isinstance(out, da.Array) and out.npartitions == 1 and is_cupy(out._meta)):
        return None
    base = whole_array(src)
    if base is None or not is_cupy(base):
        return None
    from ._views import dask_view

    res = out.compute(scheduler="sync")
    return dask_view(res, res.shape)
