"""numpy / cupy dispatch: one place that knows whether an array lives on the GPU.

CuPy is optional (the ``gpu`` extra). Everything here works without it: functions that need
it raise :class:`~voxzarr.errors.VoxzarrError` with a clear message instead of ImportError.
"""

from __future__ import annotations

import functools
import math
import os
from types import ModuleType
from typing import Any

import numpy as np

from .errors import VoxzarrError

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
    ``"gpu"`` without CuPy or a device raises :class:`VoxzarrError`.
    """
    if device not in DEVICES:
        raise VoxzarrError(f"device must be one of {DEVICES}, got {device!r}", field="device")
    on_gpu = is_cupy(getattr(data, "_meta", data))
    if device == "auto":
        return "gpu" if on_gpu or gpu_available() else "cpu"
    if device == "gpu" and not (on_gpu or gpu_available()):
        raise VoxzarrError("device='gpu' needs CuPy and an NVIDIA GPU (pip install "
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
