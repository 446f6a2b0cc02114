"""Sampling at scattered points for :func:`voxzarr.ndinterp.map_coordinates`.

Each point has a *footprint*: the input box its value depends on (the spline taps plus the
prefilter halo, with the boundary mode folded in). Points are grouped into *regions* so that a
task reads only chunks that some footprint touches, and holds regions of at most a tile of
chunks plus the halo, never the bounding box of all the points of an output chunk:

1. A point whose value is ``cval`` whatever the data (outside the image in ``constant``, and in
   ``grid-constant`` for orders 0 and 1) is filled in; nothing is read for it.
2. Dense points (a warp field): where the union of the footprints is at most a tile and every
   chunk of it is touched, that union is the one region (:func:`_dense_box`, a few passes).
3. Otherwise points are grouped by *key*, the range of chunks their footprint spans, and keys
   by the chunk in the middle of that range (their *home*) and by tile. A group becomes one
   region (the union of its footprints) where that reads no untouched chunk and costs less
   than its subgroups, by a cost model of per-region overhead, block assembly and prefilter
   volume (:meth:`_Planner.cost`); with the prefilter, sparse groups are also bisected.
4. The regions of one home chunk share a task (those inside one block apart from those that
   span several, which wait for their neighbours' pieces).

A region is assembled from pieces of its blocks: a view where the piece is most of its block,
else a copy cut by a task of its own, so that a block is released once its slivers are cut.
scipy (cupyx for CuPy blocks) evaluates the region's points, and the values are scattered back
into their output chunk.

Exactness. In the reflecting and wrapping modes scipy first maps a coordinate into the image
(``_taps._map_coordinate`` is that mapping, vectorised). Where the mapped coordinate is a
fixed point of the mapping, it is what scipy interpolates at, so passing it gives scipy's own
computation bit for bit, and a point far outside reads only near its image inside. Otherwise
(reflect maps a band of width 1 onto ``(-1, 0)``) the raw coordinate is passed, with the
region the raw coordinate needs. A region's origin is an integer, so shifting coordinates to
it is exact. Regions reach the image edge wherever a footprint does, so scipy applies the
boundary there exactly as on the whole array, and interior region edges lie at least the
prefilter depth away from every tap. NaN and infinite coordinates are evaluated with the
whole axis read; what scipy returns for them (as for coordinates near +-2**63, where its
integer conversion overflows) is undefined, so no equality is promised there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .._xp import array_module, empty_meta, is_cupy, ndimage_module
from ..errors import GeometryError
from ._checks import _REFLECTS, _WRAPS
from ._dtypes import _cast, _compute_dtype
from ._graph import _assemble, _fill
from ._taps import _map_coordinate, _spline_margin, prefilter_depth

__all__ = ["PointPlan", "PointSpec", "footprints", "map_points", "plan_points", "point_spec"]

# Cost model of one region, in nanoseconds (measured on a 2-core x86 host, float64). Regions
# of one home chunk share a task, so a region costs a scipy call, not a dask task.
_REGION_NS = 3e4  # one region: assembling its blocks' views, the scipy call
_COPY_NS = 10.0  # per voxel of a region concatenated from several blocks
_FILTER_NS = 40.0  # per voxel of the spline prefilter (float64 copy, padding, one pass per axis)
#: voxels of the largest tile of chunks one region may span (32 MiB of float64)
_TILE_VOXELS = 2**22
#: most chunks a plan keeps a touched-or-not grid of
_GRID_CELLS = 2**22
#: points per batch of the dense fast path (temporaries of a few hundred KiB)
_BATCH = 2**15
#: scipy pads the input by 12 voxels before prefiltering in ``nearest`` / ``grid-constant``
_PREPAD = 12


@dataclass(frozen=True, eq=False)
class PointSpec:
    """What the planner needs to know about the input and the interpolation.

    Attributes
    ----------
    shape
        Input shape.
    bounds
        Per axis, the chunk boundaries of the input (``[0, c0, c0 + c1, ..., n]``).
    order, mode, prefilter
        As in :func:`scipy.ndimage.map_coordinates` (``mode`` normalised).
    margin
        Voxels a footprint reaches on each side of ``floor(x)``: spline support plus the
        prefilter depth (``_taps._spline_margin`` + ``_taps.prefilter_depth``).
    periodic
        Whether the prefilter reads the far side of the image (``grid-wrap``).
    tile
        Chunks per tile along each axis.
    """

    shape: tuple[int, ...]
    bounds: tuple[np.ndarray, ...]
    order: int
    mode: str
    prefilter: bool
    margin: int
    periodic: bool
    tile: tuple[int, ...]

    @property
    def heavy(self) -> bool:
        """Whether evaluating a region costs per voxel of it (the spline prefilter runs)."""
        return self.prefilter and self.order > 1


def point_spec(shape: Sequence[int], chunks: Sequence[Sequence[int]], order: int, mode: str,
               prefilter: bool) -> PointSpec:
    """Build the :class:`PointSpec` of an input of ``shape`` chunked as ``chunks``.

    ``mode`` must be normalised already (``_checks._check_mode``). Tiles grow by powers of
    two along every axis while they hold at most :data:`_TILE_VOXELS` voxels (or one chunk).
    """
    depth = prefilter_depth(order) if prefilter and order > 1 else 0
    bounds = tuple(np.cumsum((0,) + tuple(int(c) for c in cs)).astype(np.int64)
                   for cs in chunks)
    nblocks = [len(cs) for cs in chunks]
    csize = [max(cs) if len(cs) else 1 for cs in chunks]
    limit = max(_TILE_VOXELS, math.prod(csize))
    s = 1
    while any(s < nb for nb in nblocks):
        wider = [min(2 * s, nb) for nb in nblocks]
        if math.prod(min(w * c, n) for w, c, n in zip(wider, csize, shape, strict=True)) > limit:
            break
        s *= 2
    return PointSpec(
        shape=tuple(int(n) for n in shape), bounds=bounds, order=order, mode=mode,
        prefilter=prefilter, margin=_spline_margin(order) + depth,
        periodic=mode == "grid-wrap" and depth > 0,
        tile=tuple(max(1, min(s, nb)) for nb in nblocks),
    )


# --------------------------------------------------------------------------- footprints
def _boxes(b: np.ndarray, n: int, mode: str, margin: int,
           periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """``_plan._axis_box(x, x, ...)`` for every ``x`` in ``b`` (finite, moderate)."""
    return _boxes_int(np.floor(b).astype(np.int64), n, mode, margin, periodic)


def _boxes_int(f: np.ndarray, n: int, mode: str, margin: int,
               periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_boxes` from ``f = floor(x)``."""
    lo, hi = f - margin, f + margin + 1
    if mode in _WRAPS:
        whole = (lo < 0) | (hi > n)
        if periodic:
            whole |= (lo <= 0) | (hi >= n)
        return np.where(whole, 0, lo), np.where(whole, n, hi)
    if mode in _REFLECTS or (mode == "grid-constant" and margin > 2):
        hi = np.where(lo < 0, np.maximum(hi, 1 - lo), hi)
        lo = np.where(hi > n, np.minimum(lo, 2 * n - hi - 1), lo)
        return np.maximum(lo, 0), np.minimum(hi, n)
    lo = np.clip(lo, 0, n - 1)
    return lo, np.maximum(np.minimum(hi, n), lo + 1)


def footprints(pts: np.ndarray,
               spec: PointSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per point: the coordinates to evaluate, whether it is ``cval``, and its footprint.

    Parameters
    ----------
    pts
        ``(ndim, npoints)`` float64 input coordinates.
    spec
        The input and interpolation (:func:`point_spec`).

    Returns
    -------
    coords, const, lo, hi
        ``coords`` ``(ndim, npoints)``: what to hand scipy (the mapped coordinate where that
        is exact, see the module docstring; ``pts`` itself where nothing is mapped);
        ``const`` ``(npoints,)``: the value is ``cval`` and nothing needs reading; ``lo``,
        ``hi`` ``(ndim, npoints)`` int64: the input box ``[lo, hi)`` the value depends on
        (meaningless where ``const``).
    """
    nd, npts = pts.shape
    coords = pts
    fbuf = None
    const = np.zeros(npts, dtype=bool)
    lo = np.empty((nd, npts), dtype=np.int64)
    hi = np.empty((nd, npts), dtype=np.int64)
    mode, margin = spec.mode, spec.margin
    for a, n in enumerate(spec.shape):
        x = coords[a]
        # min and max (NaN-propagating) decide which of the passes below are needed at all
        x_min, x_max = (float(x.min()), float(x.max())) if npts else (0.0, 0.0)
        inside = 0 <= x_min and x_max <= n - 1
        if mode == "constant":
            if not inside:
                const |= (x < 0) | (x > n - 1)
            b = x
        elif mode == "grid-constant" and spec.order <= 1:
            if not inside:
                const |= (x <= -1) | (x >= n)
            b = x
        elif mode == "grid-constant":
            # beyond the 12-voxel pre-pad and the spline support every tap is cval: the
            # footprint stops growing there
            reach = margin + _PREPAD + 1
            b = x if inside else np.clip(x, -reach, n - 1 + reach)
        elif mode == "nearest":
            b = x if inside else np.clip(x, -1.0, float(n))  # further out: the edge voxel
        else:
            b = x
            if not inside:
                out = np.flatnonzero(~((x >= 0) & (x <= n - 1)))  # NaN too
                with np.errstate(invalid="ignore"):
                    y = _map_coordinate(x[out], n, mode)
                    fixed = _map_coordinate(y, n, mode) == y
                if coords is pts:
                    coords = pts.copy()  # never write into the caller's coordinates
                b = coords[a]
                b[out] = np.where(fixed, y, x[out])
        finite = math.isfinite(x_min) and math.isfinite(x_max)
        bad = None if finite else ~np.isfinite(b)
        if bad is not None:
            b = np.where(bad, 0.0, b)
        # beyond 2n + margin from the image every mode's box is the whole axis already
        far = 2 * n + margin + 2
        if not (finite and -far <= x_min and x_max <= far):
            b = np.clip(b, -far, far)
        # floor in place through one buffer: large temporaries cost more in page faults
        # than in arithmetic
        fbuf = np.floor(b, out=fbuf if a else None)
        lo[a] = fbuf
        np.add(lo[a], margin + 1, out=hi[a])
        lo[a] -= margin
        if not (x_min >= margin + 1 and x_max < n - margin - 2):
            # footprints that reach an edge: there the boundary mode decides the box
            edge = np.flatnonzero((lo[a] <= 0) | (hi[a] >= n))
            lo[a][edge], hi[a][edge] = _boxes_int(lo[a][edge] + margin, n, mode, margin,
                                                  spec.periodic)
        if bad is not None:
            lo[a][bad], hi[a][bad] = 0, n  # NaN or inf: let scipy see the whole axis
    return coords, const, lo, hi


# --------------------------------------------------------------------------- planning
@dataclass(eq=False)
class PointPlan:
    """How one set of points is evaluated.

    Attributes
    ----------
    coords
        ``(ndim, npoints)`` coordinates to hand scipy (see :func:`footprints`).
    const
        Flat indices of the points whose value is ``cval``.
    groups
        Flat indices of the points of each region.
    boxes
        Per region, its ``(lo, hi)`` int64 corners in input indices.
    packs
        Regions per task: task ``t`` evaluates regions ``packs[t]:packs[t + 1]`` (those of
        one home chunk, so that a task is worth its overhead and reads neighbouring blocks).
    whole
        One region holds every point, in order, with ``coords`` the points themselves (the
        dense fast path): one task evaluates them, with no splitting or scattering.
    """

    coords: np.ndarray
    const: np.ndarray
    groups: list[np.ndarray]
    boxes: list[tuple[np.ndarray, np.ndarray]]
    packs: list[int]
    whole: bool = False


def _chunk_of(spec: PointSpec, axis: int, idx: np.ndarray) -> np.ndarray:
    """Index of the chunk holding each input index ``idx`` (in ``[0, n)``) along ``axis``."""
    bounds = spec.bounds[axis]
    c = int(bounds[1]) if bounds.size > 1 else 1
    if bounds.size > 2 and np.all(np.diff(bounds[:-1]) == c):
        # regular chunks (the last may be short): a division, not a search
        return np.minimum(np.asarray(idx) // c, bounds.size - 2)
    return np.searchsorted(bounds, idx, side="right") - 1


def _codes(cols: Sequence[np.ndarray], dims: Sequence[int]) -> np.ndarray:
    """One int64 per row of ``cols`` (equal rows, equal codes), deterministic: the row's
    mixed-radix number where that fits int64, else its rank among the rows present."""
    if math.prod(dims) < 2**62:
        code = np.array(cols[0], dtype=np.int64)
        for c, d in zip(cols[1:], dims[1:], strict=True):
            code *= d
            code += c
        return code
    rows = np.stack(cols, axis=1)
    return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _dense_rank(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` (codes >= -1), in linear time where the
    codes span a small range."""
    top = int(codes.max()) + 2
    if top <= max(4 * codes.size, 2**16):
        rank = np.zeros(top, dtype=np.int64)
        rank[codes + 1] = 1
        present = np.flatnonzero(rank)
        rank[present] = np.arange(present.size)
        return present - 1, rank[codes + 1]
    uniq, inv = np.unique(codes, return_inverse=True)
    return uniq, inv.reshape(-1)


def _split_by(codes: np.ndarray) -> list[np.ndarray]:
    """Positions in ``codes`` grouped by equal code (ascending code, stable inside)."""
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, cuts)


class _Planner:
    """Groups the live (non-``cval``) points of one plan; see the module docstring.

    Grouping works on *keys* (the points whose footprints span the same chunks), whose
    boxes and footprint volumes are reduced from the points once (unbuffered ``ufunc.at``:
    no sort); only sparse groups under the prefilter are bisected point by point.
    """

    def __init__(self, spec: PointSpec, lo: np.ndarray, hi: np.ndarray, const: np.ndarray):
        self.spec, self.lo, self.hi = spec, lo, hi
        nd = lo.shape[0]
        nblocks = [len(b) - 1 for b in spec.bounds]
        dims = [nb for nb in nblocks for _ in (0, 1)]
        cols = []
        for a in range(nd):
            cols += [_chunk_of(spec, a, lo[a]), _chunk_of(spec, a, hi[a] - 1)]
        codes = _codes(cols, dims)
        # cval points (their boxes are meaningless) form one more key, never planned
        self.dead = int(const.any())
        if self.dead:
            codes[const] = -1
        uniq, self.inv = _dense_rank(codes)
        nkeys = uniq.size
        if math.prod(dims) < 2**62:  # mixed-radix codes: the key rows decode from them
            rows = np.stack(np.unravel_index(np.maximum(uniq, 0), dims))
        else:
            first = np.full(nkeys, codes.size, dtype=np.int64)
            np.minimum.at(first, self.inv, np.arange(codes.size))
            rows = np.stack([c[first] for c in cols])
        del cols, codes
        self.klo, self.khi = rows[0::2], rows[1::2]  # (nd, nkeys)
        big = np.iinfo(np.int64)
        self.kbox_lo = np.full((nd, nkeys), big.max, dtype=np.int64)
        self.kbox_hi = np.full((nd, nkeys), big.min, dtype=np.int64)
        for a in range(nd):
            np.minimum.at(self.kbox_lo[a], self.inv, lo[a])
            np.maximum.at(self.kbox_hi[a], self.inv, hi[a])
        if spec.heavy:  # summed footprint volumes: the bisection's sparseness test
            self.kvol = np.zeros(nkeys)
            np.add.at(self.kvol, self.inv, np.prod(hi - lo, axis=0, dtype=np.float64))
        # the live keys (the dead key, if any, is key 0: code -1 sorts first)
        self.live = np.arange(self.dead, nkeys)
        # a key's home: the chunk in the middle of its span; tiles group homes
        home = (self.klo + self.khi) // 2
        tiles = [home[a] // spec.tile[a] for a in range(nd)]
        tdims = [-(-nb // t) for nb, t in zip(nblocks, spec.tile, strict=True)]
        self.levels = [_codes(tiles, tdims), _codes(list(home), nblocks),
                       np.arange(nkeys, dtype=np.int64)]
        # the chunks some footprint of the plan touches: a region may read any of them (each
        # is read anyway), so regions of neighbouring points can merge
        self.origin = self.klo[:, self.live].min(axis=1)
        span = self.khi[:, self.live].max(axis=1) - self.origin + 1
        self.touched = (self._touched(self.live, self.origin, span)
                        if math.prod(span.tolist()) <= _GRID_CELLS else None)

    def box(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.kbox_lo[:, keys].min(axis=1), self.kbox_hi[:, keys].max(axis=1)

    def chunk_span(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        return (np.array([_chunk_of(spec, a, lo[a]) for a in range(len(lo))]),
                np.array([_chunk_of(spec, a, hi[a] - 1) for a in range(len(lo))]))

    def cost(self, lo: np.ndarray, hi: np.ndarray) -> float:
        """Estimated ns to evaluate one region ``[lo, hi)`` (its points excepted: they cost
        the same however they are grouped)."""
        vol = float(np.prod(hi - lo, dtype=np.float64))
        if self.spec.heavy:
            return _REGION_NS + _FILTER_NS * vol
        c0, c1 = self.chunk_span(lo, hi)
        return _REGION_NS + (_COPY_NS * vol if np.any(c0 != c1) else 0.0)

    def _touched(self, keys: np.ndarray, c0: np.ndarray, span: np.ndarray) -> np.ndarray:
        """Boolean grid of the chunks ``c0 .. c0 + span - 1``: touched by a footprint of
        ``keys``."""
        grid = np.zeros(tuple(span.tolist()), dtype=bool)
        for k in keys.tolist():
            grid[tuple(slice(int(s), int(e) + 1) for s, e in
                       zip(self.klo[:, k] - c0, self.khi[:, k] - c0, strict=True))] = True
        return grid

    def exact(self, keys: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
        """Whether every chunk the region ``[lo, hi)`` spans is touched by a footprint (of
        the plan; of ``keys`` where the plan spans too many chunks to keep a grid of)."""
        c0, c1 = self.chunk_span(lo, hi)
        if self.touched is not None:
            return bool(self.touched[tuple(slice(int(a), int(b) + 1) for a, b in zip(
                c0 - self.origin, c1 - self.origin, strict=True))].all())
        return bool(self._touched(keys, c0, c1 - c0 + 1).all())

    def best(self, keys: np.ndarray, level: int) -> tuple[float, list[np.ndarray]]:
        """Cheapest grouping of ``keys`` (one group at ``level``) into regions."""
        lo, hi = self.box(keys)
        own = self.cost(lo, hi) if level == 2 or self.exact(keys, lo, hi) else math.inf
        if level == 2:
            return own, [keys]
        parts = [keys[p] for p in _split_by(self.levels[level + 1][keys])]
        if len(parts) == 1:
            return self.best(keys, level + 1)
        if own <= len(parts) * _REGION_NS:
            return own, [keys]  # no split into that many regions can cost less
        total, out = 0.0, []
        for p in parts:
            c, g = self.best(p, level + 1)
            total += c
            out += g
        return (own, [keys]) if own <= total else (total, out)

    def bisect(self, sel: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Median bisection of sparse points ``sel``, kept where it lowers the cost."""
        lo, hi = self.lo[:, sel].min(axis=1), self.hi[:, sel].max(axis=1)
        own = self.cost(lo, hi)
        if sel.size < 2:
            return own, [sel]
        vol = np.prod((hi - lo).astype(np.float64))
        if np.prod(self.hi[:, sel] - self.lo[:, sel], axis=0, dtype=np.float64).sum() >= vol:
            return own, [sel]  # footprints fill the box: splitting saves next to nothing
        axis = int(np.argmax(hi - lo))
        v = self.lo[axis, sel]
        mid = np.partition(v, sel.size // 2)[sel.size // 2]
        left = v < mid
        if not left.any():
            left = v <= mid
            if left.all():
                return own, [sel]
        c0, g0 = self.bisect(sel[left])
        c1, g1 = self.bisect(sel[~left])
        return (c0 + c1, g0 + g1) if c0 + c1 < own else (own, [sel])

    def regions(self) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]], list[int]]:
        """Each region's points and box, ordered by task, and the tasks' first regions
        (+ the end)."""
        live = self.live
        chosen = [k for tile in _split_by(self.levels[0][live])
                  for k in self.best(live[tile], 0)[1]]
        region_of = np.full(self.klo.shape[1], len(chosen), dtype=np.int64)  # dead: the last
        for r, keys in enumerate(chosen):
            region_of[keys] = r
        # the points of every region at once: one stable sort by region
        rid = region_of[self.inv]
        order = np.argsort(rid.astype(np.uint16) if len(chosen) < 2**16 else rid,
                           kind="stable")
        counts = np.bincount(rid, minlength=len(chosen) + 1)
        members = np.split(order, np.cumsum(counts)[:-1])[:len(chosen)]
        groups, boxes, home, spans = [], [], [], []
        for keys, sel in zip(chosen, members, strict=True):
            lo, hi = self.box(keys)
            parts = [(sel, lo, hi)]
            if self.spec.heavy and self.kvol[keys].sum() < np.prod(hi - lo, dtype=float):
                # sparse points under the prefilter: smaller regions may pay off
                parts = [(g, self.lo[:, g].min(axis=1), self.hi[:, g].max(axis=1))
                         for g in self.bisect(sel)[1]]
            for g, glo, ghi in parts:
                groups.append(g)
                boxes.append((glo, ghi))
                home.append(int(self.levels[1][keys[0]]))
                c0, c1 = self.chunk_span(glo, ghi)
                spans.append(bool(np.any(c0 != c1)))
        # one task per home chunk for the regions inside one block, another for those that
        # span several: the first need only their block and can run (and free it) at once
        h, s = np.array(home, dtype=np.int64), np.array(spans, dtype=bool)
        order = np.lexsort((s, h))
        starts = np.flatnonzero((np.diff(h[order]) != 0) | (np.diff(s[order]) != 0)) + 1
        return ([groups[i] for i in order], [boxes[i] for i in order],
                [0, *starts.tolist(), len(groups)])


def plan_points(pts: np.ndarray, spec: PointSpec) -> PointPlan:
    """Plan the evaluation of the points ``pts`` (``(ndim, npoints)`` float64).

    Deterministic: the same points and spec always give the same plan (the dask-coordinates
    path plans once up front and again inside the tasks).
    """
    box = _dense_box(pts, spec)
    if box is not None:
        empty = np.zeros(0, dtype=np.int64)
        return PointPlan(pts, empty, [np.arange(pts.shape[1])], [box], [0, 1], whole=True)
    coords, const, lo, hi = footprints(pts, spec)
    if const.all():
        return PointPlan(coords, np.flatnonzero(const), [], [], [0])
    groups, boxes, packs = _Planner(spec, lo, hi, const).regions()
    return PointPlan(coords, np.flatnonzero(const), groups, boxes, packs)


def _dense_box(pts: np.ndarray, spec: PointSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """The one region of points that fill it, or ``None`` (then they are planned in full).

    A fast path for dense coordinates (a warp field, a resampling grid), in a few passes
    over the points: where no point needs the mode's coordinate mapping, the union of the
    footprints is at most a tile (plus halo), and every chunk of it is touched by the
    footprint of a point that is not ``cval``, that union is the region.
    """
    nd, npts = pts.shape
    if npts < 2:
        return None
    mode, order, margin = spec.mode, spec.order, spec.margin
    lo, hi = np.empty(nd, dtype=np.int64), np.empty(nd, dtype=np.int64)
    const_possible = False
    bounds: list[tuple[float, float] | None] = []
    for a, n in enumerate(spec.shape):
        x_min, x_max = float(pts[a].min()), float(pts[a].max())
        if not (math.isfinite(x_min) and math.isfinite(x_max)):
            return None
        bounds.append(None)
        if not (0 <= x_min and x_max <= n - 1):
            # the bounds footprints() clamps to (for cval modes: where live points lie)
            if mode == "constant":
                bound = (0.0, n - 1.0)
            elif mode == "grid-constant" and order <= 1:
                bound = (-0.5, n - 0.5)
            elif mode == "grid-constant":
                bound = (-(margin + _PREPAD + 1.0), n - 1.0 + margin + _PREPAD + 1)
            elif mode == "nearest":
                bound = (-1.0, float(n))
            else:
                return None  # reflected or wrapped coordinates: plan in full
            const_possible |= mode == "constant" or (mode == "grid-constant" and order <= 1)
            bounds[a] = bound
            x_min, x_max = min(max(x_min, bound[0]), bound[1]), min(max(x_max, bound[0]),
                                                                    bound[1])
        # a box's ends are monotone (plain modes), unimodal (reflections) or whole-axis near
        # an edge (wraps) in x: either way the union's ends are the extreme points' ones
        ends = _boxes(np.array([x_min, x_max]), n, mode, margin, spec.periodic)
        lo[a], hi[a] = ends[0].min(), ends[1].max()
    limit = max(_TILE_VOXELS, math.prod(int(b[1]) for b in spec.bounds))
    if math.prod((hi - lo).tolist()) > limit:
        return None
    c0 = np.array([_chunk_of(spec, a, lo[a]) for a in range(nd)])
    c1 = np.array([_chunk_of(spec, a, hi[a] - 1) for a in range(nd)])
    span = (c1 - c0 + 1).tolist()
    if math.prod(span) == 1 and not const_possible:
        return lo, hi  # one chunk: touched
    if math.prod(span) ** 2 > _GRID_CELLS:
        return None
    # a subsample first: what it touches the full set touches too, so if it covers the box,
    # that settles it at a fraction of the cost
    step = max(1, npts // _BATCH)
    for sub in ((pts[:, ::step], pts) if step > 1 else (pts,)):
        if _covers(sub, spec, lo, hi, bounds, const_possible):
            return lo, hi
    return None  # some chunk of the box is touched by no footprint: plan in full


def _covers(pts: np.ndarray, spec: PointSpec, lo: np.ndarray, hi: np.ndarray,
            bounds: Sequence[tuple[float, float] | None], const_possible: bool) -> bool:
    """Whether the footprints of ``pts`` (not ``cval``) touch every chunk of ``[lo, hi)``.

    Per point its chunk box is coded as (first chunk, extent) per axis relative to the
    box's first chunk (boxes are few, points many), in batches so that the temporaries stay
    in cache. ``bounds``: per axis, where footprints() clamps the coordinates (or ``None``).
    """
    nd, npts = pts.shape
    mode, margin = spec.mode, spec.margin
    c0 = np.array([_chunk_of(spec, a, lo[a]) for a in range(nd)])
    span = [int(_chunk_of(spec, a, hi[a] - 1)) - int(c0[a]) + 1 for a in range(nd)]
    dims = [d for sp in span for d in (sp, sp)]
    present = np.zeros(math.prod(dims) + 1, dtype=bool)  # + 1: cval points
    for s in range(0, npts, _BATCH):
        x = pts[:, s:s + _BATCH]
        code = np.zeros(x.shape[1], dtype=np.int64)
        live = np.ones(x.shape[1], dtype=bool) if const_possible else None
        for a, n in enumerate(spec.shape):
            if live is not None:
                live &= (x[a] >= 0) & (x[a] <= n - 1) if mode == "constant" else \
                    (x[a] > -1) & (x[a] < n)
            f = np.floor(np.clip(x[a], *bounds[a]) if bounds[a] else x[a]).astype(np.int64)
            flo, fhi = f - margin, f + margin + 1
            edge = np.flatnonzero((flo <= 0) | (fhi >= n))
            flo[edge], fhi[edge] = _boxes_int(f[edge], n, mode, margin, spec.periodic)
            r0 = _chunk_of(spec, a, flo) - c0[a]
            r1 = _chunk_of(spec, a, fhi - 1) - c0[a]
            if r0.size and (r0.min() < 0 or r1.max() >= span[a]):
                return False  # outside the union box after all: let the planner decide
            code *= span[a]
            code += r0
            code *= span[a]
            code += r1 - r0
        if live is not None:
            code[~live] = present.size - 1
        present[code] = True
    seen = np.zeros(span, dtype=bool)
    for c in np.flatnonzero(present[:-1]).tolist():
        row = np.unravel_index(c, dims)
        seen[tuple(slice(row[2 * a], row[2 * a] + row[2 * a + 1] + 1)
                   for a in range(nd))] = True
    return bool(seen.all())


# --------------------------------------------------------------------------- tasks
def _sample(regions: Sequence[Sequence[Any]], order: int, mode: str,
            cval: float, prefilter: bool, dtype: np.dtype) -> list[Any]:
    """Evaluate the points of each region: ``[parts, coords, lo]`` = the region's pieces (a
    nested list, one level per axis), its points' global coordinates ``(ndim, k)`` and the
    region's origin."""
    return [_sample_one(*r, order, mode, cval, prefilter, dtype) for r in regions]


def _sample_one(parts: Any, coords: np.ndarray, lo: np.ndarray, order: int, mode: str,
                cval: float, prefilter: bool, dtype: np.dtype) -> Any:
    region = _assemble(parts)
    gpu = is_cupy(region)
    xp = array_module(region)
    cdtype = _compute_dtype(np.dtype(region.dtype), dtype, gpu)
    if gpu:
        region = xp.ascontiguousarray(region)
    local = xp.asarray(coords - lo.astype(np.float64)[:, None])  # integer shift: exact
    out = ndimage_module(region).map_coordinates(region, local, order=order, mode=mode,
                                                 cval=cval, prefilter=prefilter, output=cdtype)
    return _cast(out, dtype)


def _scatter(shape: tuple[int, ...], dtype: np.dtype, cval: float, gpu: bool,
             const: np.ndarray, groups: Sequence[np.ndarray],
             packed: Sequence[Sequence[Any]]) -> Any:
    """Put each region's values (and ``cval``) back at their places in the output chunk."""
    values = [v for task in packed for v in task]
    xp = array_module(values[0]) if values else np
    if gpu and xp is np:
        import cupy as xp
    out = xp.empty(math.prod(shape), dtype=dtype)
    if const.size:
        out[xp.asarray(const)] = _fill((int(const.size),), cval, dtype, gpu)
    for idx, v in zip(groups, values, strict=True):
        out[xp.asarray(idx)] = v
    return out.reshape(shape)


def _host(block: Any) -> np.ndarray:
    block = block.get() if is_cupy(block) else block
    return np.asarray(block, dtype=np.float64).reshape(block.shape[0], -1)


def _summary(block: Any, spec: PointSpec) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                   list[int], bool]:
    """Region boxes, packs and ``whole`` of one block of dask coordinates (the up-front
    planning)."""
    plan = plan_points(_host(block), spec)
    return plan.boxes, plan.packs, plan.whole


def _sample_whole(parts: Any, block: Any, lo: np.ndarray, order: int, mode: str, cval: float,
                  prefilter: bool, dtype: np.dtype) -> Any:
    """One output chunk whose points all lie in one region (no split, no scatter)."""
    out = _sample_one(parts, _host(block), lo, order, mode, cval, prefilter, dtype)
    return out.reshape(block.shape[1:])


def _split(block: Any, spec: PointSpec, boxes: list[tuple[np.ndarray, np.ndarray]]) -> PointPlan:
    """Re-plan one coordinates block inside the graph; it must match the up-front plan."""
    plan = plan_points(_host(block), spec)
    same = len(plan.boxes) == len(boxes) and all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(plan.boxes, boxes, strict=True))
    if not same:
        raise RuntimeError("coordinates changed between planning and computing "
                           "map_coordinates (are they deterministic?)")
    return plan


def _group_coords(plan: PointPlan, i: int) -> np.ndarray:
    return plan.coords[:, plan.groups[i]]


def _scatter_plan(shape: tuple[int, ...], dtype: np.dtype, cval: float, gpu: bool,
                  plan: PointPlan, packed: Sequence[Sequence[Any]]) -> Any:
    return _scatter(shape, dtype, cval, gpu, plan.const, plan.groups, packed)


# --------------------------------------------------------------------------- graph
def _check_coords(shape: tuple[int, ...], ndim: int) -> None:
    if len(shape) < 1 or shape[0] != ndim:
        raise GeometryError(f"coordinates must have shape ({ndim}, ...), got {shape}",
                            field="coordinates")
    if len(shape) < 2:
        raise GeometryError("coordinates need shape (ndim, n, ...); for one point use "
                            "shape (ndim, 1)", field="coordinates")


def _piece(block: Any, slices: tuple[slice, ...]) -> Any:
    """A copy of a small part of one block (see :class:`_Pieces`)."""
    return block[slices].copy()


def _view(block: Any, slices: tuple[slice, ...]) -> Any:
    return block[slices]


class _Pieces:
    """The block pieces of a graph's regions.

    A piece of at most half its block is a copy cut by a task of its own, shared by the
    regions that need it, so that the block is released as soon as its slivers are cut, not
    kept alive by a view until every region that needs a sliver of it has run. A larger
    piece is a view taken inside the region's task (no task and no copy of its own).
    """

    def __init__(self, image: da.Array, dsk: dict[Any, Any], name: str):
        self.image, self.dsk, self.name = image, dsk, name
        self.keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def region(self, lo: np.ndarray, hi: np.ndarray) -> list[Any]:
        """Nested list (one level per axis) of the keys of the pieces of ``[lo, hi)``."""
        per_axis = []
        for ax, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            bounds = self.image.chunks[ax]
            start = 0
            parts = []
            for k, c in enumerate(bounds):
                if start < b and start + c > a:
                    parts.append((k, slice(max(a, start) - start, min(b, start + c) - start)))
                start += c
            per_axis.append(parts)
        return self._build(per_axis, 0, (), ())

    def _build(self, per_axis: list[list[tuple[int, slice]]], ax: int, index: tuple[int, ...],
               slices: tuple[slice, ...]) -> Any:
        if ax == len(per_axis):
            block = (self.image.name, *index)
            size = math.prod(s.stop - s.start for s in slices)
            if 2 * size > math.prod(self.image.chunks[a][k] for a, k in enumerate(index)):
                return (_view, block, slices)
            ident = (index, tuple((s.start, s.stop) for s in slices))
            if ident not in self.keys:
                self.keys[ident] = (self.name, len(self.keys))
                self.dsk[self.keys[ident]] = (_piece, block, slices)
            return self.keys[ident]
        return [self._build(per_axis, ax + 1, index + (k,), slices + (s,))
                for k, s in per_axis[ax]]


def _pack(dsk: dict[Any, Any], prefix: tuple[Any, ...], regions: list[list[Any]],
          packs: list[int], order: int, mode: str, cval: float, prefilter: bool,
          dtype: np.dtype) -> list[tuple[Any, ...]]:
    """Add one :func:`_sample` task per pack of regions to ``dsk``; return their keys."""
    keys = []
    for t, (r0, r1) in enumerate(zip(packs[:-1], packs[1:], strict=True)):
        keys.append((*prefix, t))
        dsk[keys[-1]] = (_sample, regions[r0:r1], order, mode, cval, prefilter, dtype)
    return keys


def map_points(image: da.Array, coordinates: Any, order: int, mode: str, cval: float,
               prefilter: bool, dtype: np.dtype) -> da.Array:
    """The graph of :func:`voxzarr.ndinterp.map_coordinates` (arguments validated there).

    Parameters
    ----------
    image
        Dask input (numpy or CuPy blocks).
    coordinates
        ``(ndim, ...)`` coordinates: numpy or CuPy (planned now) or dask (planned per block
        in one pass over them, computed up front).
    order, mode, cval, prefilter
        As in :func:`scipy.ndimage.map_coordinates`; ``mode`` normalised.
    dtype
        Output dtype.

    Returns
    -------
    dask.array.Array
        Shape and chunks of ``coordinates[0]`` (numpy coordinates are chunked as
        ``dask.array.asarray`` would chunk them, along axes 1 and up).
    """
    spec = point_spec(image.shape, image.chunks, order, mode, prefilter)
    gpu = is_cupy(image._meta)
    if isinstance(coordinates, da.Array):
        return _lazy(image, coordinates, spec, cval, dtype, gpu)
    pts = coordinates.get() if is_cupy(coordinates) else coordinates
    pts = np.asarray(pts, dtype=np.float64)
    _check_coords(pts.shape, image.ndim)
    chunks = da.core.normalize_chunks("auto", pts.shape, dtype=np.float64)[1:]
    token = tokenize(image.name, pts, order, mode, cval, prefilter, str(dtype))
    name = f"vz-map-coordinates-{token}"
    part = f"vz-map-points-{token}"
    dsk: dict[Any, Any] = {}
    pieces = _Pieces(image, dsk, f"vz-map-piece-{token}")
    starts = [np.cumsum((0,) + c) for c in chunks]
    for index in product(*(range(len(c)) for c in chunks)):
        sl = tuple(slice(int(starts[a][i]), int(starts[a][i] + chunks[a][i]))
                   for a, i in enumerate(index))
        shape = tuple(int(chunks[a][i]) for a, i in enumerate(index))
        block = pts[(slice(None), *sl)]
        plan = plan_points(block.reshape(image.ndim, -1), spec)
        if plan.whole:
            lo, hi = plan.boxes[0]
            dsk[(name, *index)] = (_sample_whole, pieces.region(lo, hi), block, lo, order,
                                   mode, cval, prefilter, dtype)
            continue
        # lists, not tuples: dask finds the block keys inside lists only
        regions = [[pieces.region(lo, hi), plan.coords[:, idx], lo]
                   for idx, (lo, hi) in zip(plan.groups, plan.boxes, strict=True)]
        keys = _pack(dsk, (part, *index), regions, plan.packs, order, mode, cval, prefilter,
                     dtype)
        dsk[(name, *index)] = (_scatter, shape, dtype, cval, gpu, plan.const, plan.groups,
                               keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[image])
    return da.Array(graph, name, chunks, meta=empty_meta(image._meta, len(chunks), dtype))


def _lazy(image: da.Array, coordinates: da.Array, spec: PointSpec, cval: float,
          dtype: np.dtype, gpu: bool) -> da.Array:
    """Dask coordinates: plan every block in one pass, then per block one task that splits
    its points by region, one task per region, and one that scatters the values back (or,
    for a block of dense points, one task)."""
    _check_coords(coordinates.shape, image.ndim)
    coords = coordinates.rechunk({0: -1}).astype(np.float64)
    blocks = coords.to_delayed().reshape(-1)
    summaries = dask.compute(*[dask.delayed(_summary)(b, spec) for b in blocks])
    order, mode, prefilter = spec.order, spec.mode, spec.prefilter
    token = tokenize(image.name, coords.name, order, mode, cval, prefilter, str(dtype))
    name = f"vz-map-coordinates-{token}"
    part, split = f"vz-map-points-{token}", f"vz-map-split-{token}"
    dsk: dict[Any, Any] = {}
    pieces = _Pieces(image, dsk, f"vz-map-piece-{token}")
    indices = product(*(range(len(c)) for c in coords.chunks[1:]))
    for index, (bx, packs, whole) in zip(indices, summaries, strict=True):
        shape = tuple(int(coords.chunks[a + 1][i]) for a, i in enumerate(index))
        if not bx:  # every point is cval (or there are none): nothing to read
            dsk[(name, *index)] = (_fill, shape, cval, dtype, gpu)
            continue
        if whole:  # dense: the block's points as they are, in one region
            lo = bx[0][0]
            dsk[(name, *index)] = (_sample_whole, pieces.region(lo, bx[0][1]),
                                   (coords.name, 0, *index), lo, order, mode, cval,
                                   prefilter, dtype)
            continue
        skey = (split, *index)
        dsk[skey] = (_split, (coords.name, 0, *index), spec, list(bx))
        regions = [[pieces.region(lo, hi), (_group_coords, skey, g), lo]
                   for g, (lo, hi) in enumerate(bx)]
        keys = _pack(dsk, (part, *index), regions, packs, order, mode, cval, prefilter, dtype)
        dsk[(name, *index)] = (_scatter_plan, shape, dtype, cval, gpu, skey, keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[image, coords])
    return da.Array(graph, name, coords.chunks[1:],
                    meta=empty_meta(image._meta, coords.ndim - 1, dtype))
