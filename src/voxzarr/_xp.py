"""numpy / cupy dispatch: one place that knows whether an array lives on the GPU.

CuPy is optional (the ``gpu`` extra). Everything here works without it: functions that need
it raise :class:`~voxzarr.errors.VoxzarrError` with a clear message instead of ImportError.
"""

from __future__ import annotations

import functools
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
