"""An xarray index that carries a physical axis' sampling step through selection.

A coordinate of one value cannot show its spacing, and spacing written in ``attrs`` at
creation goes stale as soon as the axis is sliced with a step (``img[::4][0:1]`` samples
every fourth plane; its spacing is four times the original). :class:`GridIndex` is a
:class:`xarray.indexes.PandasIndex` that also holds the step between samples and updates it
in every operation xarray routes through an index: ``isel`` / ``sel`` (slices with steps,
integer and boolean arrays), ``concat``, alignment and ``roll``. Length-2+ axes still derive
their spacing from the values; the index step is what a length-1 axis reports.

Operations that rebuild a coordinate from its values (``coarsen``, ``interp``,
``expand_dims``, ``assign_coords`` with plain values) replace the index with a plain
``PandasIndex``. For those, the coordinate's ``attrs["voxzarr_grid"]`` holds the grid
``[first, step, size]`` the index had at its last selection; :func:`spacing_of_single`
derives a length-1 axis' spacing from it only where the answer is certain and returns
``None`` otherwise, so callers refuse instead of guessing (``spec/conventions.md``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex

__all__ = ["GRID_ATTR", "GridIndex", "grid_coordinate", "spacing_of_single"]

GRID_ATTR = "voxzarr_grid"


class GridIndex(PandasIndex):
    """A ``PandasIndex`` over uniformly spaced positions that remembers the sampling step.

    Parameters
    ----------
    array
        The coordinate values (pixel centres).
    dim
        The dimension name.
    coord_dtype
        As for ``PandasIndex``.
    step
        Distance between consecutive samples; ``None`` when it is not known (for example a
        length-1 axis picked out by an integer array from an unevenly spaced one).
    """

    __slots__ = ("step",)

    def __init__(self, array: Any, dim: Hashable, coord_dtype: Any = None, *,
                 fastpath: bool = False, step: float | None = None) -> None:
        super().__init__(array, dim, coord_dtype, fastpath=fastpath)
        self.step = None if step is None else float(step)

    def _replace(self, index: pd.Index, dim: Hashable | None = None,
                 coord_dtype: Any = None) -> GridIndex:
        return GridIndex(index, self.dim if dim is None else dim,
                         self.coord_dtype if coord_dtype is None else coord_dtype,
                         fastpath=True, step=self.step)

    def _with_step(self, index: pd.Index, step: float | None) -> GridIndex:
        new = self._replace(index)
        new.step = _values_step(index, step)
        return new

    def isel(self, indexers: Mapping[Any, Any]) -> GridIndex | None:
        out = super().isel(indexers)
        if out is None or out is self:
            return out
        indexer = indexers[self.dim]
        if isinstance(indexer, xr.Variable):
            indexer = indexer.data
        return self._with_step(out.index, self._selected_step(indexer))

    def _selected_step(self, indexer: Any) -> float | None:
        """Sampling step after selecting ``indexer`` (positions) from this index."""
        if self.step is None:
            return None
        n = len(self.index)
        if isinstance(indexer, slice):
            start, stop, stride = indexer.indices(n)
            return self.step * abs(stride)
        positions = np.asarray(indexer)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        positions = np.where(positions < 0, positions + n, positions).ravel()
        if positions.size < 2:
            # one position picked from the grid: a plane of the grid, step unchanged
            return self.step
        diffs = np.diff(positions)
        if np.all(diffs == diffs[0]) and diffs[0] != 0:
            return self.step * abs(int(diffs[0]))
        return None

    @classmethod
    def concat(cls, indexes: Sequence[Any], dim: Hashable,
               positions: Iterable[Iterable[int]] | None = None) -> GridIndex:
        out = super().concat(indexes, dim, positions)
        steps = {getattr(i, "step", None) for i in indexes}
        step = steps.pop() if len(steps) == 1 else None
        out.step = _values_step(out.index, step)
        return out

    def join(self, other: Any, how: str = "inner") -> GridIndex:
        out = super().join(other, how)
        step = self.step if getattr(other, "step", None) == self.step else None
        out.step = _values_step(out.index, step)
        return out

    def create_variables(self, variables: Mapping[Any, xr.Variable] | None = None
                         ) -> dict[Hashable, xr.Variable]:
        out = super().create_variables(variables)
        var = out[self.index.name]
        # record the grid this coordinate had last, for operations that drop the index;
        # the variable's attrs are its own copy (IndexVariable copies the mapping)
        values = np.asarray(self.index.values)
        if self.step is not None and values.size and np.issubdtype(values.dtype, np.number):
            var.attrs[GRID_ATTR] = [float(values[0]), self.step, int(values.size)]
        else:
            var.attrs.pop(GRID_ATTR, None)
        return out

    def __repr__(self) -> str:
        return f"GridIndex(step={self.step!r}, {self.index!r})"


def _values_step(index: pd.Index, step: float | None) -> float | None:
    """``step`` checked against the values: longer axes follow their values."""
    values = np.asarray(index.values)
    if values.size < 2 or not np.issubdtype(values.dtype, np.number):
        return step
    diffs = np.diff(values.astype(np.float64))
    mean = float((values[-1] - values[0]) / (values.size - 1))
    if mean != 0 and np.max(np.abs(diffs - mean)) <= 1e-6 * abs(mean):
        if step is not None and abs(abs(mean) - step) <= 1e-9 * step:
            return step  # keep the exact step the grid was built with
        return abs(mean)
    return None


def grid_coordinate(dim: str, values: np.ndarray, step: float,
                    attrs: Mapping[str, Any] | None = None) -> xr.Coordinates:
    """Coordinates holding one dimension coordinate indexed by a :class:`GridIndex`."""
    index = GridIndex(pd.Index(np.asarray(values, dtype=np.float64)), dim, step=step)
    var = xr.Variable((dim,), np.asarray(values, dtype=np.float64), attrs=dict(attrs or {}))
    variables = index.create_variables({dim: var})
    return xr.Coordinates(variables, indexes={dim: index})


def spacing_of_single(coord: xr.DataArray, index: Any) -> float | None:
    """Spacing of a length-1 coordinate when it is certain, else ``None``.

    Certain cases: a :class:`GridIndex` with a known step; a coordinate whose recorded grid
    had one sample at the same position (the value came through unchanged); the mean of a
    whole grid of an even number of samples (``coarsen`` over the whole axis), whose
    position lies between two grid samples where no selection can put it. Every other case
    (for example one plane chosen from a longer grid after the index was dropped, which
    could as well be a coarsened block) is ``None``.
    """
    if isinstance(index, GridIndex):
        return index.step
    grid = coord.attrs.get(GRID_ATTR)
    if not isinstance(grid, list | tuple) or len(grid) != 3:
        return None
    try:
        first, step, size = float(grid[0]), float(grid[1]), int(grid[2])
        value = float(np.asarray(coord.values, dtype=np.float64).ravel()[0])
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(step) and step > 0 and size >= 1):
        return None
    tol = 1e-9 * max(abs(first), abs(value), step)
    if size == 1:
        return step if abs(value - first) <= tol else None
    centre = first + (size - 1) / 2 * step
    if size % 2 == 0 and abs(value - centre) <= tol:
        return size * step
    return None
