"""Working precision and the cast of results to the output dtype (numpy or CuPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._xp import array_module


def _compute_dtype(src: np.dtype, dst: np.dtype, gpu: bool) -> np.dtype:
    """Working precision: float32 for float32 data, float64 otherwise (CPU).

    Integer outputs are computed in float64 on the CPU so that their rounding matches
    scipy's double-precision result exactly; on the GPU everything but float64 data runs in
    float32 (results then agree with the CPU within float32 rounding).
    """
    if np.float64 in (src, dst):
        return np.dtype(np.float64)
    if gpu or (src in (np.float32, np.float16) and dst.kind == "f"):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _cast(x: Any, dtype: np.dtype) -> Any:
    """Round half away from zero and clip to the range of an integer ``dtype``."""
    xp = array_module(x)
    if dtype.kind == "b":
        return x > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if x.dtype.kind in "iub":  # order 0 gathers keep integers: nothing to round
            return x.astype(dtype, copy=False) if x.dtype == dtype else \
                xp.clip(x, info.min, info.max).astype(dtype)
        x = xp.clip(x, info.min, info.max)  # a new array: safe to work in place below
        if dtype.kind == "u":
            x += 0.5
            xp.floor(x, out=x)
        else:
            x = xp.where(x >= 0, xp.floor(x + 0.5), xp.ceil(x - 0.5))
    return x.astype(dtype, copy=False)
