"""Block-reduce kernels for pyramid levels, written once for numpy and CuPy.

Every kernel takes one block whose first voxel lies at a multiple of the factors ``k`` along
each axis and returns the reduced block. Output voxel ``j`` along an axis summarises input
voxels ``[j*k, (j+1)*k)``; when the axis length ``n`` is not a multiple of ``k`` the last
block is *partial* and is reduced over the voxels present, so the output has ``ceil(n / k)``
voxels and no input voxel is dropped. ``nearest`` is the exception: it keeps input voxel
``j*k + (k-1)//2`` and so has ``len(range((k-1)//2, n, k))`` voxels.

Per output voxel the arithmetic is the same whatever block it is computed in (sums run axis
by axis, in index order), so a chunked result is bit-identical to a whole-array one, and CuPy
gives the numpy result (except ``gaussian``, whose filter pass is CuPy's own).

Rounding: integer ``mean`` is exact (integer sums, division rounded half to even);
``median`` and ``gaussian`` of integers are computed in float64 and rounded half to even
(``rint``), then clipped to the dtype range.

Methods are found by name in :data:`voxzarr._registry.PYRAMID_METHODS`
(:func:`register_pyramid_method`; other packages add theirs through the entry-point group
``voxzarr.pyramid_methods``). The built-ins are registered there with lazy references to the
kernels below; :data:`METHODS` and :data:`LABEL_METHODS` are live read-only views of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ._registry import (
    PYRAMID_METHOD_ALIASES,
    PYRAMID_METHODS,
    PyramidMethod,
    register_pyramid_method,
)
from ._xp import array_module, ndimage_module
from .errors import PyramidError

__all__ = [
    "METHODS",
    "ALIASES",
    "LABEL_METHODS",
    "GAUSSIAN_TRUNCATE",
    "PyramidMethod",
    "register_pyramid_method",
    "pyramid_method",
    "canonical_method",
    "nearest_offset",
    "output_length",
    "gaussian_sigma",
    "gaussian_radius",
    "check_dtype",
    "reduce_block",
    "gaussian_reduce_block",
]

#: registered reduction methods, built-ins first in the order the docs list them (a live,
#: read-only view of the registry: it shows methods registered later too)
METHODS: Sequence[str] = PYRAMID_METHODS.view()
#: other accepted spellings
ALIASES: dict[str, str] = PYRAMID_METHOD_ALIASES
#: registered methods that only ever output values present in the input (safe for label
#: images); a live, read-only view
LABEL_METHODS: Sequence[str] = PYRAMID_METHODS.view(lambda m: m.labels)
GAUSSIAN_TRUNCATE = 4.0


def canonical_method(name: str) -> str:
    """``name`` with aliases resolved; ``ValueError`` for unknown names (caller rewraps)."""
    key = ALIASES.get(name, name)
    if key not in PYRAMID_METHODS:
        raise ValueError(name)
    return key


def pyramid_method(name: str) -> PyramidMethod:
    """The registered method ``name`` (aliases resolved); :class:`PyramidError` if unknown."""
    return PYRAMID_METHODS.get(ALIASES.get(name, name))


def nearest_offset(k: int) -> int:
    """Index inside a block of ``k`` voxels that ``nearest`` keeps: the centre (lower on ties)."""
    return (k - 1) // 2


def output_length(n: int, k: int, method: str) -> int:
    """Number of output voxels from ``n`` input voxels reduced by ``k`` with ``method``."""
    if method == "nearest":
        return len(range(nearest_offset(k), n, k))
    return -(-n // k)


def gaussian_sigma(k: int) -> float:
    """Pre-filter sigma (input voxels) for factor ``k``: ``(k - 1) / 2``, scikit-image's rule."""
    return (k - 1) / 2.0


def gaussian_radius(k: int) -> int:
    """Kernel radius scipy uses for that sigma: ``int(truncate * sigma + 0.5)``."""
    return int(GAUSSIAN_TRUNCATE * gaussian_sigma(k) + 0.5)


def _sl(ndim: int, axis: int, s: slice) -> tuple[slice, ...]:
    idx = [slice(None)] * ndim
    idx[axis] = s
    return tuple(idx)


def _accumulator(dtype: np.dtype, block_voxels: int) -> np.dtype:
    """Smallest integer type that holds a sum of ``block_voxels`` values, or float64."""
    if dtype.kind == "f":
        return np.dtype(np.float64)
    bits = dtype.itemsize * 8 + max(1, math.ceil(math.log2(max(block_voxels, 2))))
    if dtype.kind == "u":
        return np.dtype(np.uint32 if bits <= 32 else np.uint64)
    return np.dtype(np.int32 if bits <= 31 else np.int64)


def _fold(x: Any, factors: Sequence[int], acc_dtype: Any,
          combine: Callable[..., Any], xp: ModuleType) -> tuple[Any, list[Any]]:
    """Combine the ``k`` strided slices of each axis, axis by axis, in index order.

    Returns the folded array and, per axis, the voxel count of each output position
    (``None`` where ``k == 1``).
    """
    counts: list[Any] = []
    acc = x
    for ax, k in enumerate(factors):
        if k == 1:
            counts.append(None)
            continue
        n = acc.shape[ax]
        m = -(-n // k)
        first = acc[_sl(acc.ndim, ax, slice(0, None, k))]
        second = acc[_sl(acc.ndim, ax, slice(1, None, k))]
        if second.shape == first.shape:  # combine the first pair while converting: one pass
            out, start = combine(first, second, dtype=acc_dtype), 2
        else:
            out, start = first.astype(acc_dtype, copy=True), 1
        for i in range(start, k):
            part = acc[_sl(acc.ndim, ax, slice(i, None, k))]
            if part.shape[ax] == 0:
                break
            view = out[_sl(out.ndim, ax, slice(0, part.shape[ax]))]
            combine(view, part, out=view)
        acc = out
        c = np.full(m, k, dtype=np.int64)
        c[-1] = n - (m - 1) * k
        counts.append(c)
    return acc, counts


def _count_array(counts: list[Any], ndim: int, xp: ModuleType) -> Any:
    """Voxels per output position (a scalar when every block is whole)."""
    total: Any = 1
    for ax, c in enumerate(counts):
        if c is None:
            continue
        if np.all(c == c[0]):
            total = total * int(c[0])
            continue
        shape = [1] * ndim
        shape[ax] = c.size
        total = total * xp.asarray(c).reshape(shape)
    return total


def _round_div_half_even(s: Any, n: Any, xp: ModuleType) -> Any:
    """Integer ``s / n`` rounded half to even, exactly (``n > 0``)."""
    if s.dtype == np.uint64:
        n = n.astype(np.uint64) if hasattr(n, "astype") else n
    else:
        s = s.astype(np.int64, copy=False)
    q = s // n
    r = s - q * n
    twice = 2 * r
    up = (twice > n) | ((twice == n) & (q % 2 == 1))
    return q + up


def _to_dtype(values: Any, dtype: np.dtype, xp: ModuleType) -> Any:
    """Cast float results to ``dtype``: integers rounded half to even and clipped."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = xp.clip(xp.rint(values), info.min, info.max)
    return values.astype(dtype, copy=False)


def _mean(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    dtype = x.dtype
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        biggest = math.prod(factors) * max(abs(int(info.min)), int(info.max))
        # A float quotient of sums below 2**(mantissa bits) rounds like the exact one: a tie
        # k + 1/2 is representable, any other quotient is >= 1/(2n) from a tie, which is more
        # than half an ulp. So rint (half to even) gives the exact result, in fewer passes.
        # Every partial sum is an integer below 2**bits too, so the fold itself runs in that
        # float type (exact) and the division and rounding run in place: no integer pass.
        for ftype, bits in ((np.float32, 23), (np.float64, 52)):
            if biggest < 2**bits:
                acc, counts = _fold(x, factors, ftype, xp.add, xp)
                n = _count_array(counts, x.ndim, xp)
                xp.divide(acc, ftype(n) if np.isscalar(n) else n.astype(ftype), out=acc)
                xp.rint(acc, out=acc)
                return acc.astype(dtype)
        acc, counts = _fold(x, factors, _accumulator(dtype, math.prod(factors)), xp.add, xp)
        return _round_div_half_even(acc, _count_array(counts, x.ndim, xp), xp).astype(dtype)
    acc, counts = _fold(x, factors, _accumulator(dtype, math.prod(factors)), xp.add, xp)
    return (acc / _count_array(counts, x.ndim, xp)).astype(dtype, copy=False)


def _extreme(x: Any, factors: Sequence[int], xp: ModuleType, fn: Callable) -> Any:
    acc, _ = _fold(x, factors, x.dtype, fn, xp)
    return acc


def _nearest(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    idx = tuple(slice(nearest_offset(k), None, k) for k in factors)
    return x[idx].copy()


def _regions(x: Any, factors: Sequence[int]):
    """Yield ``(output slices, blocks)``; ``blocks`` has shape ``(m_0, ..., m_d, B)``.

    The array is cut into whole blocks and the partial blocks at the far end of each axis,
    so every region holds blocks of one size and no padding value is ever invented.
    """
    per_axis = []
    for n, k in zip(x.shape, factors, strict=True):
        full, rem = divmod(n, k)
        parts = []
        if full:
            parts.append((slice(0, full * k), slice(0, full), full, k))
        if rem:
            parts.append((slice(full * k, n), slice(full, full + 1), 1, rem))
        per_axis.append(parts)
    nd = x.ndim
    for combo in itertools.product(*per_axis):
        sub = x[tuple(c[0] for c in combo)]
        inter = [v for c in combo for v in (c[2], c[3])]
        blocks = sub.reshape(inter).transpose(list(range(0, 2 * nd, 2)) +
                                              list(range(1, 2 * nd, 2)))
        yield tuple(c[1] for c in combo), blocks.reshape(
            tuple(c[2] for c in combo) + (math.prod(c[3] for c in combo),))


def _out_shape(shape: Sequence[int], factors: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-n // k) for n, k in zip(shape, factors, strict=True))


def _median(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    out = xp.empty(_out_shape(x.shape, factors), dtype=np.float64)
    for where, blocks in _regions(x, factors):
        out[where] = xp.median(blocks, axis=-1)
    return _to_dtype(out, x.dtype, xp)


def _mode(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    out = xp.empty(_out_shape(x.shape, factors), dtype=x.dtype)
    for where, blocks in _regions(x, factors):
        s = xp.sort(blocks, axis=-1)
        best = s[..., 0].copy()
        best_n = (s == best[..., None]).sum(axis=-1)
        for i in range(1, s.shape[-1]):
            v = s[..., i]
            cnt = (s == v[..., None]).sum(axis=-1)
            better = cnt > best_n  # strictly more: ties keep the smaller value
            best = xp.where(better, v, best)
            best_n = xp.where(better, cnt, best_n)
        out[where] = best
    return out


def _min(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    return _extreme(x, factors, xp, xp.minimum)


def _max(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    return _extreme(x, factors, xp, xp.maximum)


def _gaussian(x: Any, factors: Sequence[int], xp: ModuleType) -> Any:
    """``gaussian`` of a whole image (its edges are the image's). A chunked pyramid reduces
    each block with its halo instead (:func:`gaussian_reduce_block`)."""
    return gaussian_reduce_block(x, factors, (0,) * x.ndim)


def check_dtype(method: str, dtype: np.dtype) -> str | None:
    """Why ``method`` cannot reduce ``dtype``, or ``None`` when it can.

    Only methods registered with ``labels=True`` (that output input values) reduce bool.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        return f"dtype {dtype} is not supported (integers, floats and, for some methods, bool)"
    if dtype.kind == "b" and not pyramid_method(method).labels:
        return f"method {method!r} averages values and cannot reduce a bool image"
    return None


#: input bytes per slab of a folding kernel on the CPU: its float temporaries then stay in
#: the CPU caches instead of streaming through memory (about 1.3-1.5x faster on big blocks)
SLAB_BYTES = 2 << 20
_FOLDING = ("mean", "min", "max")


def reduce_block(block: Any, factors: Sequence[int], method: str | PyramidMethod) -> Any:
    """Reduce one block by integer ``factors`` with ``method`` (a name or a registered spec).

    ``gaussian`` reduces the block as a whole image here; chunked pyramids give each block
    its halo and call :func:`gaussian_reduce_block`. Passing the spec rather than the name
    lets tasks run where the registration was not made (a dask.distributed worker).
    """
    xp = array_module(block)
    if all(k == 1 for k in factors):
        return block.copy()
    spec = method if isinstance(method, PyramidMethod) else pyramid_method(method)
    kernel = spec.load()
    k0 = factors[0]
    plane = block[:1].nbytes * k0
    if xp is not np or spec.name not in _FOLDING or block.nbytes <= 2 * SLAB_BYTES or \
            plane == 0:
        return _checked(kernel(block, factors, xp), block, factors, spec.name)
    # slabs along the first axis start at multiples of its factor: every output voxel is
    # computed from the same voxels, in the same order, as on the whole block
    step = max(1, SLAB_BYTES // plane) * k0
    out = np.empty(_out_shape(block.shape, factors), dtype=block.dtype)
    for z in range(0, block.shape[0], step):
        out[z // k0:-(-(z + step) // k0)] = kernel(block[z:z + step], factors, xp)
    return out


def _checked(out: Any, block: Any, factors: Sequence[int], method: str) -> Any:
    """``out`` if it has the shape and dtype a reduction of ``block`` must have."""
    shape = tuple(output_length(n, k, method) for n, k in zip(block.shape, factors, strict=True))
    if tuple(out.shape) != shape or out.dtype != block.dtype:
        raise PyramidError(f"the kernel of method {method!r} returned shape {tuple(out.shape)} "
                           f"{out.dtype} for a {block.dtype} block of shape {block.shape} and "
                           f"factors {tuple(factors)}; expected {shape} {block.dtype}",
                           field="method")
    return out


def gaussian_reduce_block(block: Any, factors: Sequence[int], depth: Sequence[int]) -> Any:
    """Gaussian pre-filter, then block mean; ``block`` carries ``depth`` halo voxels per side.

    The filter runs in float64 with sigma ``(k - 1) / 2`` along each reduced axis, truncate
    4 and mode ``nearest`` (the halo holds the real neighbours or, at the image border,
    copies of the edge voxel, which is what ``nearest`` means on the whole image).
    """
    xp = array_module(block)
    dtype = block.dtype
    sigma = [gaussian_sigma(k) for k in factors]
    smooth = ndimage_module(block).gaussian_filter(block.astype(np.float64), sigma, mode="nearest",
                                  truncate=GAUSSIAN_TRUNCATE)
    core = smooth[tuple(slice(d, s - d) for d, s in zip(depth, smooth.shape, strict=True))]
    acc, counts = _fold(core, factors, np.float64, xp.add, xp)
    return _to_dtype(acc / _count_array(counts, core.ndim, xp), dtype, xp)
