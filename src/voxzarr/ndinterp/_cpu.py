"""The separable path's numpy passes and integer rounding, bit for bit as scipy rounds.

The compiled versions (:mod:`voxzarr._kernels`, numba) are used where they apply; the numpy
loops here are their reference and fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product
from typing import Any

import numpy as np


def _pass_cpu(a: np.ndarray, ax: int, idx: np.ndarray, w: np.ndarray | None,
              cdtype: np.dtype) -> np.ndarray:
    """One 1-D pass on the CPU: ``out = a[i0] * w0 + a[i1] * w1`` along ``ax``.

    Works plane by plane (along axis 0) into one preallocated result, so the temporaries stay
    small and in cache; whole-array ``take`` temporaries cost more in page faults than in
    arithmetic. Per element the arithmetic (and so the rounding) is the vectorised one.
    """
    shape = list(a.shape)
    shape[ax] = idx.shape[0]
    if w is None:
        return np.take(a, idx[:, 0], axis=ax)
    from .. import _kernels  # numba: imported on first use

    w0, w1 = w[:, 0].astype(cdtype), w[:, 1].astype(cdtype)
    out = _kernels.lerp_pass(a, ax, idx[:, 0], idx[:, 1], w0, w1, cdtype)
    if out is not None:  # compiled, one call without the GIL (the same arithmetic)
        return out
    if a.ndim == 1:  # 1-D: the "planes" are scalars, so one vectorised pass does it
        out = np.multiply(a[idx[:, 0]], w0, dtype=cdtype)
        out += np.multiply(a[idx[:, 1]], w1, dtype=cdtype)
        return out
    out = np.empty(shape, dtype=cdtype)
    tmp = np.empty(shape[1:], dtype=cdtype)
    if ax == 0:
        for j, (i, k) in enumerate(zip(idx[:, 0].tolist(), idx[:, 1].tolist(), strict=True)):
            np.multiply(a[i], w0[j], out=out[j])
            np.multiply(a[k], w1[j], out=tmp)
            out[j] += tmp
        return out
    wshape = [1] * (a.ndim - 1)
    wshape[ax - 1] = -1
    w0, w1 = w0.reshape(wshape), w1.reshape(wshape)
    i0, i1 = idx[:, 0], idx[:, 1]
    for p in range(a.shape[0]):
        np.multiply(np.take(a[p], i0, axis=ax - 1), w0, out=out[p])
        np.multiply(np.take(a[p], i1, axis=ax - 1), w1, out=tmp)
        out[p] += tmp
    return out


def _round_cpu(res: np.ndarray, dtype: np.dtype,
               exact: Callable[[tuple], np.ndarray] | None = None,
               tol: float = 1e-7) -> np.ndarray:
    """:func:`_cast` for float results on the CPU, plane by plane (temporaries in cache).

    With ``exact``, values within ``tol`` of a rounding tie are recomputed by
    ``exact(points)`` before rounding.
    """
    from .. import _kernels  # numba: imported on first use

    info = np.iinfo(dtype)
    got = _kernels.round_to_int(res, dtype, tol, exact is not None)
    if got is not None:  # compiled, one call without the GIL (the same arithmetic)
        out, near = got
        if near.size:
            pts = np.unravel_index(near, res.shape)
            ex = exact(pts)
            val = np.where(ex >= 0, np.floor(ex + 0.5), np.ceil(ex - 0.5))
            out[pts] = np.clip(val, info.min, info.max)
        return out
    out = np.empty(res.shape, dtype=dtype)
    flat = res.reshape(res.shape[0] if res.ndim > 1 else 1, -1)
    oflat = out.reshape(flat.shape)
    buf = np.empty(flat.shape[1], dtype=np.float64)
    low = np.empty_like(buf)
    ties = []
    for p in range(flat.shape[0]):
        x = flat[p]
        if dtype.kind == "i":
            np.abs(x, out=buf)  # half away from zero: round |x| half up, restore the sign
        else:
            buf[...] = x
        buf += 0.5
        np.floor(buf, out=low)
        if exact is not None:
            buf -= low  # distance above the rounding threshold
            near = np.flatnonzero((buf < tol) | (buf > 1.0 - tol))
            if near.size:
                ties.append((p, near))
        if dtype.kind == "i":
            np.copysign(low, x, out=low)
        np.clip(low, info.min, info.max, out=low)
        oflat[p] = low
    if ties:
        rows = np.concatenate([np.full(n.size, p) for p, n in ties])
        cols = np.concatenate([n for _, n in ties])
        pts = np.unravel_index(rows * flat.shape[1] + cols, res.shape)
        ex = exact(pts)
        val = np.where(ex >= 0, np.floor(ex + 0.5), np.ceil(ex - 0.5))
        out[pts] = np.clip(val, info.min, info.max)
    return out


def _scipy_sum(pts: tuple[np.ndarray, ...], region: np.ndarray, tables: Sequence[Any],
               cval: float, mode: str = "") -> np.ndarray:
    """Values at ``pts`` summed over all taps in scipy's order: ``((v * w0) * w1) ...``.

    Axis-by-axis sums round differently from scipy's sum over all taps, which matters only
    where the exact value is a tie for integer rounding; there (rarely) this recomputes it,
    so integer outputs equal scipy's bit for bit. In ``constant`` mode scipy returns ``cval``
    itself (no weighted sum) once any axis leaves the image.
    """
    axes = [ax for ax, t in enumerate(tables) if t is not None]
    taps = {ax: tables[ax][0][pts[ax]] for ax in axes}
    weights = {ax: (tables[ax][1][pts[ax]] if tables[ax][1] is not None
                    else np.ones((pts[ax].size, 1))) for ax in axes}
    total = np.zeros(pts[0].size, dtype=np.float64)
    for combo in product(*(range(taps[ax].shape[1]) for ax in axes)):
        index = list(pts)
        pad = np.zeros(pts[0].size, dtype=bool)
        for ax, k in zip(axes, combo, strict=True):
            i = taps[ax][:, k]
            pad |= i >= region.shape[ax]
            index[ax] = np.minimum(i, region.shape[ax] - 1)
        coeff = np.where(pad, cval, region[tuple(index)].astype(np.float64))
        for ax, k in zip(axes, combo, strict=True):
            coeff = coeff * weights[ax][:, k]
        total = total + coeff
    if mode == "constant":  # there every tap >= len(region) marks a point outside the image
        outside = np.zeros(pts[0].size, dtype=bool)
        for ax in axes:
            outside |= (taps[ax] >= region.shape[ax]).all(axis=1)
        total = np.where(outside, cval, total)
    return total
