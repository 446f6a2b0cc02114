"""Dask graphs: one task per output chunk, fed exactly the input blocks it reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .._xp import array_module, empty_meta, is_cupy
from ._dtypes import _cast


def _select(block: Any, selectors: tuple[Any, ...]) -> Any:
    """Apply per-axis slices or index arrays (outer indexing, unlike numpy's default)."""
    basic = tuple(s if isinstance(s, slice) else slice(None) for s in selectors)
    out = block[basic]
    for ax, s in enumerate(selectors):
        if not isinstance(s, slice):
            out = array_module(out).take(out, array_module(out).asarray(s), axis=ax)
    return out


def _assemble(parts: Any, axis: int = 0) -> Any:
    """Concatenate a nested list of blocks (dask's ``concatenate3`` for numpy or CuPy)."""
    if not isinstance(parts, list):
        return parts
    pieces = [_assemble(p, axis + 1) for p in parts]
    if len(pieces) == 1:
        return pieces[0]
    return array_module(pieces[0]).concatenate(pieces, axis=axis)


def _as_selector(local: np.ndarray) -> slice | np.ndarray:
    if local.size and local[-1] - local[0] + 1 == local.size:
        return slice(int(local[0]), int(local[-1]) + 1)
    return local


def _gather(image: da.Array, sels: Sequence[np.ndarray]) -> Any:
    """Nested list of tasks giving ``image[np.ix_(*sels)]`` from the blocks that hold it."""
    per_axis = []
    for ax, sel in enumerate(sels):
        bounds = np.cumsum((0,) + image.chunks[ax])
        block_of = np.searchsorted(bounds, sel, side="right") - 1
        cuts = np.flatnonzero(np.diff(block_of)) + 1
        groups = []
        for piece in np.split(np.arange(sel.size), cuts):
            b = int(block_of[piece[0]])
            groups.append((b, _as_selector(sel[piece] - bounds[b])))
        per_axis.append(groups)

    def build(ax: int, key: tuple[int, ...], selectors: tuple[Any, ...]) -> Any:
        if ax == len(per_axis):
            return (_select, (image.name, *key), selectors)
        return [build(ax + 1, key + (b,), selectors + (s,)) for b, s in per_axis[ax]]

    return build(0, (), ())


def _fill(shape: tuple[int, ...], value: float, dtype: Any, gpu: bool) -> Any:
    """An output chunk that lies wholly in the constant region: no input is read."""
    if gpu:
        import cupy as xp
    else:
        xp = np
    return _cast(xp.full(shape, value, dtype=np.float64), np.dtype(dtype))


def _build(
    image: da.Array,
    out_shape: tuple[int, ...],
    out_chunks: Any,
    dtype: np.dtype,
    planner: Callable[[tuple[int, ...], tuple[int, ...]], Any],
    prefix: str,
    token: Any,
) -> da.Array:
    """One task per output chunk; ``planner(start, shape)`` says what each task does.

    The planner returns ``("fill", value)`` for a chunk that is entirely ``cval`` (no input
    is read), or ``(sels, func, args)``: ``func(region, *args)`` runs on the input region
    ``image[np.ix_(*sels)]``. Planning is eager (a Python loop over the output chunks, tens
    of microseconds each).
    """
    chunks = da.core.normalize_chunks(out_chunks, out_shape, dtype=dtype)
    name = f"{prefix}-{tokenize(image.name, out_shape, chunks, str(dtype), token)}"
    starts = [np.cumsum((0,) + c) for c in chunks]
    gpu = is_cupy(image._meta)
    dsk: dict[Any, Any] = {}
    for index in product(*(range(len(c)) for c in chunks)):
        start = tuple(int(starts[a][i]) for a, i in enumerate(index))
        shape = tuple(int(chunks[a][i]) for a, i in enumerate(index))
        plan = planner(start, shape)
        if plan[0] == "fill":
            dsk[(name, *index)] = (_fill, shape, plan[1], dtype, gpu)
            continue
        sels, func, args = plan
        dsk[(name, *index)] = (func, _gather(image, sels), *args)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[image])
    return da.Array(graph, name, chunks, meta=empty_meta(image._meta, len(out_shape), dtype))


def _default_chunks(image: da.Array, out_shape: tuple[int, ...], output_chunks: Any) -> Any:
    if output_chunks is not None:
        return output_chunks
    if len(out_shape) != image.ndim:  # another rank: the input's longest chunk on every axis
        longest = max(image.chunksize, default=1)
        return tuple(min(longest, max(n, 1)) for n in out_shape)
    return tuple(min(c, max(n, 1)) for c, n in zip(image.chunksize, out_shape, strict=True))
