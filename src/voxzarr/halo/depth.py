"""Find the smallest halo depth that makes a block function seam-free.

People find the overlap a tiled computation needs by trial; this automates the trial: on a
few sample regions it compares ``fn`` run tile by tile (each tile seeing ``depth`` real
neighbour voxels, cropped at the region edge exactly as the halo store crops at the image
edge) with ``fn`` run on the whole region.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..coords import SPATIAL
from ..errors import ArgumentError, HaloError
from .layout import HaloLayout

__all__ = ["HaloDepthReport", "find_halo_depth", "tiled_apply"]


@dataclass(frozen=True)
class HaloDepthReport:
    """Result of :func:`find_halo_depth`.

    Attributes
    ----------
    depth
        Smallest depth (voxels, every spatial axis) whose tiled result matched the untiled
        one on every sample, or ``None`` when no depth up to ``max_depth`` did.
    max_diff
        For each depth tried, the largest ``|tiled - untiled|`` over all samples
        (0.0 = identical; ``inf`` where NaNs or shapes disagree).
    tile, regions
        The tile shape used and the sample regions (slices of the image) at their largest
        (for ``max_depth``); smaller depths use their leading part.
    atol
        The tolerance a depth had to meet.
    """

    depth: int | None
    max_diff: dict[int, float]
    tile: tuple[int, ...]
    regions: tuple[tuple[slice, ...], ...]
    atol: float = 0.0
    max_depth: int = 64
    dims: tuple[str, ...] = field(default=())

    @property
    def exact(self) -> bool:
        return self.depth is not None

    def seam_differences(self, img: xr.DataArray, fn: Callable[[np.ndarray], Any],
                         depths: Sequence[int] | None = None) -> dict[int, np.ndarray]:
        """Rerun the seam experiment on the first sample region: ``{depth: |tiled - untiled|}``.

        For each depth (default: every depth the report tried), ``fn`` runs tile by tile
        over the region with that halo depth and is compared with ``fn`` on the whole region.
        """
        dims = self.dims or tuple(str(d) for d in img.dims)
        depths = sorted(self.max_diff) if depths is None else sorted(depths)
        if not depths:
            raise ArgumentError("the report tried no depth", field="depths")
        x = np.asarray(img[self.regions[0]].values)
        ref = np.asarray(fn(x), dtype=np.float64)
        out = {}
        for d in depths:
            depth = [d if name in SPATIAL else 0 for name in dims]
            out[d] = np.abs(tiled_apply(x, fn, self.tile, depth).astype(np.float64) - ref)
        return out

    def figure(self, img: xr.DataArray, fn: Callable[[np.ndarray], Any],
               depths: Sequence[int] | None = None) -> Any:
        """The seam experiment as a figure: one ``|tiled - untiled|`` panel per depth (on the
        region's middle plane, titled with its sum) and the sums against depth; drawn by
        :func:`voxzarr.plot.seam_figure` from :meth:`seam_differences`."""
        from ..plot import seam_figure

        diffs = self.seam_differences(img, fn, depths)
        return seam_figure(diffs, tile=self.tile,
                           dims=self.dims or tuple(str(d) for d in img.dims),
                           seam_free=self.depth)

    def __str__(self) -> str:
        tried = ", ".join(f"{d}: {v:.3g}" for d, v in sorted(self.max_diff.items()))
        if self.depth is None:
            head = (f"no depth up to {self.max_depth} is seam-free within atol={self.atol:g} "
                    "(the function may not be local: IIR, FFT, global statistics)")
        else:
            head = f"seam-free depth: {self.depth} voxels"
        return f"{head}; max |tiled - untiled| by depth: {{{tried}}}"


def tiled_apply(region: np.ndarray, fn: Callable[[np.ndarray], Any], tile: Sequence[int],
                depth: Sequence[int]) -> np.ndarray:
    """Run ``fn`` tile by tile over ``region`` with a halo of ``depth`` real voxels."""
    layout = HaloLayout.regular(["_"] * region.ndim, region.shape, tile, depth,
                                [False] * region.ndim)
    out = None
    for index in layout.blocks():
        valid = tuple(slice(*a.valid(k)) for a, k in zip(layout.axes, index, strict=True))
        block = region[valid]
        res = np.asarray(fn(block))
        if res.shape != block.shape:
            raise HaloError(f"fn returned shape {res.shape} for a block of shape "
                            f"{block.shape}; it must keep the shape", field="fn")
        if out is None:
            out = np.empty(region.shape, dtype=res.dtype)
        out[layout.core_slices(index)] = res[layout.core_in_valid(index)]
    assert out is not None
    return out


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    if np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc"):
        return 0.0
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if np.isnan(diff).any():
        return math.inf
    return float(diff.max())


def _tiles(obj: xr.DataArray, tile: Any) -> tuple[int, ...]:
    from ..io import default_chunks

    dims = tuple(str(d) for d in obj.dims)
    if tile is None:
        if obj.chunks is not None:
            base = [c[0] for c in obj.chunks]
        else:
            base = list(default_chunks(dims, obj.shape))
        raw = [min(b, 64) if d in SPATIAL else b for b, d in zip(base, dims, strict=True)]
    elif np.ndim(tile) == 0:
        raw = [int(tile) if d in SPATIAL else 1 for d in dims]
    else:
        raw = [int(t) for t in tile]
    if len(raw) != len(dims) or any(t < 1 for t in raw):
        raise HaloError(f"tile needs {len(dims)} positive sizes, got {tile!r}", field="tile")
    # at least one seam per spatial axis that has room for it
    return tuple(min(t, max(1, math.ceil(n / 2))) if d in SPATIAL else min(t, n)
                 for t, n, d in zip(raw, obj.shape, dims, strict=True))


def find_halo_depth(obj: xr.DataArray, fn: Callable[[np.ndarray], Any], max_depth: int = 64,
                    *, tile: Any = None, samples: int = 2, seed: int = 0, atol: float = 0.0
                    ) -> HaloDepthReport:
    """Smallest halo depth for which ``fn`` run tile by tile equals ``fn`` on the whole.

    Parameters
    ----------
    obj
        The image (only the sample regions are read).
    fn
        Block function: numpy array in, array of the same shape out (as for
        :meth:`HaloArray.map_blocks`). Apply its boundary mode inside ``fn``.
    max_depth
        Largest depth to try.
    tile
        Tile shape (int for every spatial axis, or per dim). Default: the image's chunks,
        at most 64 per spatial axis, and at most half the axis so every axis has a seam.
    samples
        Number of sample regions: the first at the image corner (so the image edge is
        covered), the others at seeded random places. To test depth ``d`` a region spans
        ``2 * tile + d + 1`` voxels per spatial axis (or the whole axis), so the halo of a
        tile is really cut inside it.
    seed, atol
        Random seed for the sample places; tolerance on ``|tiled - untiled|`` (0 = exact).

    Returns
    -------
    HaloDepthReport
        ``depth`` (``None`` when nothing up to ``max_depth`` works) and the largest
        difference seen at every depth tried. Depths are tried at 0, 1, 2, 4, ... then
        bisected, which assumes a depth stays exact once it is (true of local filters).
    """
    if not isinstance(obj, xr.DataArray):
        raise HaloError(f"expects an image DataArray, got {type(obj).__name__}", field="obj")
    if not callable(fn):
        raise HaloError("fn must be callable", field="fn")
    if not isinstance(max_depth, int) or max_depth < 0:
        raise HaloError(f"max_depth must be an integer >= 0, got {max_depth!r}",
                        field="max_depth")
    if not isinstance(samples, int) or samples < 1:
        raise HaloError(f"samples must be an integer >= 1, got {samples!r}", field="samples")
    dims = tuple(str(d) for d in obj.dims)
    tiles = _tiles(obj, tile)

    def size_for(d: int) -> tuple[int, ...]:
        # two tiles plus d + 1: the first tile's halo is cut inside the region, so a depth
        # is tested against real neighbours, never passed because a tile saw everything
        return tuple(min(n, 2 * t + d + 1) if name in SPATIAL else t
                     for n, t, name in zip(obj.shape, tiles, dims, strict=True))

    largest = size_for(max_depth)
    rng = np.random.default_rng(seed)
    starts: list[tuple[int, ...]] = []
    for i in range(samples):
        start = tuple(0 if i == 0 else int(rng.integers(0, n - s + 1))
                      for n, s in zip(obj.shape, largest, strict=True))
        if start not in starts:
            starts.append(start)
    cache: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}

    def samples_for(d: int) -> list[tuple[np.ndarray, np.ndarray]]:
        size = size_for(d)
        if size not in cache:
            pairs = []
            for start in starts:
                reg = tuple(slice(a, a + s) for a, s in zip(start, size, strict=True))
                x = np.asarray(obj[reg].values)
                pairs.append((x, np.asarray(fn(x))))
            cache[size] = pairs
        return cache[size]

    diffs: dict[int, float] = {}

    def worst(d: int) -> float:
        if d not in diffs:
            depth = [d if name in SPATIAL else 0 for name in dims]
            diffs[d] = max(_difference(tiled_apply(x, fn, tiles, depth), ref)
                           for x, ref in samples_for(d))
        return diffs[d]

    lo, hi = -1, None  # lo: largest depth known inexact; hi: smallest known exact
    d = 0
    while d <= max_depth:
        if worst(d) <= atol:
            hi = d
            break
        lo = d
        d = 1 if d == 0 else min(2 * d, max_depth) if d < max_depth else max_depth + 1
    if hi is not None:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if worst(mid) <= atol:
                hi = mid
            else:
                lo = mid
    regions = tuple(tuple(slice(a, a + s) for a, s in zip(start, largest, strict=True))
                    for start in starts)
    return HaloDepthReport(depth=hi, max_diff=dict(sorted(diffs.items())), tile=tiles,
                           regions=regions, atol=float(atol), max_depth=max_depth,
                           dims=dims)
