"""map_coordinates at scattered points: equal to scipy, and reading only the chunks needed."""

from __future__ import annotations

import math
import threading
from itertools import product

import dask
import dask.array as da
import numpy as np
import pytest
from scipy import ndimage as ndi

from voxzarr import ndinterp
from voxzarr.ndinterp import _points

MODES = ndinterp.MODES
SHAPE = (23, 26, 19)
CHUNKS = (6, 7, 5)


def _data(dtype=np.float64, shape=SHAPE, seed=3):
    rng = np.random.default_rng(seed)
    data = ndi.gaussian_filter(rng.random(shape), 1.0) * 200 - 60
    return data.astype(dtype) if np.dtype(dtype).kind == "f" else np.round(data).astype(dtype)


def _border_values(n, c):
    """Chunk borders and image edges, exactly and half a voxel either side, plus points outside
    the image near and far (several periods away, where the reflecting modes fold back)."""
    b = np.arange(0, n + 1, c, dtype=np.float64)
    return np.concatenate([b, b - 0.5, b + 0.5, [0.0, n - 1.0, n - 0.5, n, -0.5, -1.0, -0.3,
                                                  2 * n - 0.5, -2 * n + 0.2, 3 * n + 0.7,
                                                  -7.25 * n, 11.5 * n]])


def _points_for(shape=SHAPE, chunks=CHUNKS, n_random=300, seed=4):
    rng = np.random.default_rng(seed)
    rand = np.stack([rng.uniform(-6, n + 6, n_random) for n in shape])
    rand[:, ::3] = np.round(rand[:, ::3] * 2) / 2  # half-integers: order-0 ties, on-voxel taps
    edges = [_border_values(n, c) for n, c in zip(shape, chunks, strict=True)]
    m = max(len(e) for e in edges)
    grid = np.stack([np.resize(e, m) for e in edges])
    # the same border values in other combinations across axes
    grid = np.concatenate([grid, np.roll(grid, 2, axis=1), grid[:, ::-1]], axis=1)
    return np.concatenate([rand, grid], axis=1)


def _rel_err(got, ref):
    return np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300)


# ----------------------------------------------------------------------- equal to scipy
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1, 3, 5])
@pytest.mark.parametrize("prefilter", [True, False])
def test_scattered_points_equal_scipy(mode, order, prefilter):
    data = _data()
    pts = _points_for()
    ref = ndi.map_coordinates(data, pts, order=order, mode=mode, cval=-2.5, prefilter=prefilter)
    got = ndinterp.map_coordinates(da.from_array(data, chunks=CHUNKS), pts, order=order,
                                   mode=mode, cval=-2.5, prefilter=prefilter).compute()
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert _rel_err(got, ref) <= 1e-7


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("prefilter", [True, False])
def test_integer_output_bit_equal(mode, order, prefilter):
    data = _data(np.int16)
    pts = _points_for(n_random=150)
    ref = ndi.map_coordinates(data, pts, order=order, mode=mode, cval=-3, prefilter=prefilter)
    got = ndinterp.map_coordinates(da.from_array(data, chunks=CHUNKS), pts, order=order,
                                   mode=mode, cval=-3, prefilter=prefilter).compute()
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("mode", MODES)
def test_points_on_chunk_borders_and_image_edges(mode):
    """Every combination of border values over a 2-D image: taps exactly on chunk seams."""
    shape, chunks = (20, 21), (5, 7)
    data = _data(shape=shape)
    e0, e1 = (_border_values(n, c) for n, c in zip(shape, chunks, strict=True))
    pts = np.array(list(product(e0, e1))).T
    img = da.from_array(data, chunks=chunks)
    for order, prefilter in [(0, False), (1, False), (3, True), (3, False), (5, True)]:
        ref = ndi.map_coordinates(data, pts, order=order, mode=mode, prefilter=prefilter)
        got = ndinterp.map_coordinates(img, pts, order=order, mode=mode,
                                       prefilter=prefilter).compute()
        assert _rel_err(got, ref) <= 1e-7, (order, prefilter)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1, 3])
def test_far_out_of_range_points(mode, order):
    """Points many periods outside the image (reflect / wrap fold them back in)."""
    data = _data(shape=(20, 22))
    v = np.array([1e6 + 0.3, -1e6 - 0.7, 1e9 + 0.5, -1e9, 1e12 + 0.25, 12345.5, -12345.5,
                  39.5, 40.0, 41.5, -19.5, -20.5, 43.99])
    pts = np.stack([v, np.roll(v, 5)])
    img = da.from_array(data, chunks=(6, 7))
    for prefilter in (True, False):
        ref = ndi.map_coordinates(data, pts, order=order, mode=mode, cval=1.5,
                                  prefilter=prefilter)
        got = ndinterp.map_coordinates(img, pts, order=order, mode=mode, cval=1.5,
                                       prefilter=prefilter).compute()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(data).max())


@pytest.mark.parametrize("mode,order,prefilter", [("constant", 1, False), ("nearest", 3, True),
                                                   ("mirror", 0, False), ("grid-wrap", 3, True),
                                                   ("reflect", 5, True), ("wrap", 2, False)])
def test_dask_coordinates_equal_scipy(mode, order, prefilter):
    """Lazy coordinates in several blocks (2-D point layout), one block all outside."""
    data = _data()
    pts = _points_for(n_random=420).reshape(3, -1)
    npts = pts.shape[1] - pts.shape[1] % 60
    pts = pts[:, :npts].reshape(3, 60, -1)
    pts[:, :10] = -50.0  # a coordinates block wholly outside the image
    coords = da.from_array(pts, chunks=(3, 10, 7))
    ref = ndi.map_coordinates(data, pts, order=order, mode=mode, prefilter=prefilter)
    out = ndinterp.map_coordinates(da.from_array(data, chunks=CHUNKS), coords, order=order,
                                   mode=mode, prefilter=prefilter)
    assert out.chunks == coords.chunks[1:]
    assert _rel_err(out.compute(), ref) <= 1e-7


def _warp(shape, amp=2.5):
    g = np.indices(shape, dtype=np.float64)
    return g + amp * np.sin(g[::-1] / 5.0 + np.arange(len(shape)).reshape(-1, 1, 1, 1))


@pytest.mark.parametrize("mode", ["constant", "grid-constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("order,prefilter", [(0, False), (1, False), (3, True)])
def test_dense_coordinates_equal_scipy(mode, order, prefilter):
    """A warp field (dense points, partly outside the image): the one-region fast path where
    it applies, full planning where the mode maps coordinates."""
    shape = (20, 26, 22)
    data = _data(shape=shape)
    warp = _warp(shape)
    img = da.from_array(data, chunks=(7, 8, 9))
    ref = ndi.map_coordinates(data, warp, order=order, mode=mode, prefilter=prefilter)
    for coords in (warp, da.from_array(warp, chunks=(3, 10, 13, 11))):
        got = ndinterp.map_coordinates(img, coords, order=order, mode=mode,
                                       prefilter=prefilter).compute()
        assert _rel_err(got, ref) <= 1e-7
    spec = _points.point_spec(shape, img.chunks, order, mode, prefilter)
    plan = _points.plan_points(warp.reshape(3, -1), spec)
    assert plan.whole == (mode in ("constant", "grid-constant", "nearest"))


@pytest.mark.parametrize("mode", MODES)
def test_points_inside_an_axis_shorter_than_the_halo(mode):
    """Every footprint reaches an edge (and, wrapping, the far side): the union of the
    footprints is not the box of the extreme points' boxes alone."""
    data = np.arange(-6.0, 7.0) ** 2
    x = np.linspace(0, 12, 97)[None]
    for order in range(6):
        for chunks in (5, (2, 11), 13):
            got = ndinterp.map_coordinates(da.from_array(data, chunks=chunks), x, order=order,
                                           mode=mode).compute()
            ref = ndi.map_coordinates(data, x, order=order, mode=mode)
            assert _rel_err(got, ref) <= 1e-7, (order, chunks)


def test_dense_points_skip_untouched_chunks():
    """Two dense clusters in diagonal chunks: their bounding box spans four chunks (within a
    tile), but only the two touched are read."""
    rec = _Recorder((40, 40), 20)
    g = np.indices((6, 6), dtype=np.float64).reshape(2, -1)
    pts = np.concatenate([g + 5, g + 28], axis=1)
    spec = _points.point_spec((40, 40), rec.image.chunks, 1, "constant", False)
    assert not _points.plan_points(pts, spec).whole
    out = ndinterp.map_coordinates(rec.image, pts, order=1).compute()
    assert sorted(rec.seen) == [(0, 0), (1, 1)]
    ref = ndi.map_coordinates(rec.image.compute(), pts, order=1)
    assert _rel_err(out, ref) <= 1e-6


def test_output_shape_chunks_dtype():
    data = da.from_array(_data(np.uint16), chunks=CHUNKS)
    pts = np.random.default_rng(0).uniform(0, 18, (3, 17, 13))
    out = ndinterp.map_coordinates(data, pts, order=1)
    assert out.shape == (17, 13) and out.dtype == np.uint16
    assert out.chunks == da.asarray(pts).rechunk({0: -1}).chunks[1:]
    assert out.compute().dtype == np.uint16
    out = ndinterp.map_coordinates(data, pts.tolist(), order=1, output=np.float32)
    assert out.dtype == np.float32 and out.compute().dtype == np.float32
    empty = ndinterp.map_coordinates(data, np.zeros((3, 0)), order=1)
    assert empty.shape == (0,) and empty.compute().shape == (0,)


def test_one_and_two_dimensional_images():
    rng = np.random.default_rng(9)
    line = rng.random(50)
    pts = rng.uniform(-5, 55, (1, 40))
    for mode in ("nearest", "reflect", "grid-wrap"):
        ref = ndi.map_coordinates(line, pts, order=3, mode=mode)
        got = ndinterp.map_coordinates(da.from_array(line, chunks=7), pts, order=3, mode=mode)
        assert _rel_err(got.compute(), ref) <= 1e-7
    plane = rng.random((1, 40))  # a length-1 axis
    pts = np.stack([rng.uniform(-2, 2, 30), rng.uniform(-3, 43, 30)])
    for mode in MODES:
        ref = ndi.map_coordinates(plane, pts, order=1, mode=mode)
        got = ndinterp.map_coordinates(da.from_array(plane, chunks=(1, 9)), pts, order=1,
                                       mode=mode)
        assert _rel_err(got.compute(), ref) <= 1e-7, mode


# ----------------------------------------------------------------------- reads
class _Recorder:
    """A lazily generated image that records which of its blocks are computed."""

    def __init__(self, shape, chunks, dtype=np.float32):
        self.seen: list[tuple[int, ...]] = []
        self._lock = threading.Lock()
        base = da.random.default_rng(0).random(shape, chunks=chunks, dtype=dtype)
        self.image = base.map_blocks(self._record, dtype=dtype)

    def _record(self, block, block_info=None):
        with self._lock:
            self.seen.append(tuple(block_info[0]["chunk-location"]))
        return block


def _touched(pts, shape, chunks, order, prefilter):
    """Chunks the footprints of in-image points touch, from the documented footprint:
    ``[floor(x) - margin, floor(x) + margin]`` clipped to the image, with ``margin`` the
    spline support (+ 1 for rounding) plus the prefilter depth."""
    margin = order // 2 + 2 if order else 1
    if prefilter and order > 1:
        margin += ndinterp.prefilter_depth(order)
    out = set()
    for p in pts.T:
        ranges = []
        for x, n, c in zip(p, shape, chunks, strict=True):
            f = math.floor(x)
            lo, hi = max(f - margin, 0), min(f + margin, n - 1)
            ranges.append(range(lo // c, hi // c + 1))
        out.update(product(*ranges))
    return out


@pytest.mark.parametrize("order,prefilter", [(0, False), (1, False), (3, False), (3, True),
                                             (5, True)])
def test_reads_only_the_chunks_the_footprints_touch(order, prefilter):
    shape, chunks = (120, 100, 90), (30, 25, 30)
    rng = np.random.default_rng(2)
    pts = np.concatenate([
        np.array([[0.0, 0.0, 0.0], [119.0, 99.0, 89.0]]).T,  # two opposite corners
        np.array([[60.0, 50.0, 45.0], [30.0, 25.0, 30.0]]).T,  # chunk corners, exactly
        np.stack([rng.uniform(0, 29, 5), rng.uniform(0, 99, 5), rng.uniform(0, 20, 5)]),
    ], axis=1)
    rec = _Recorder(shape, chunks)
    with dask.config.set(scheduler="threads"):
        got = ndinterp.map_coordinates(rec.image, pts, order=order, prefilter=prefilter,
                                       mode="nearest").compute()
    expected = _touched(pts, shape, chunks, order, prefilter)
    assert set(rec.seen) == expected
    assert len(rec.seen) == len(expected)  # each block read once
    whole = rec.image.compute()
    ref = ndi.map_coordinates(whole, pts, order=order, prefilter=prefilter, mode="nearest")
    assert _rel_err(got, ref) <= 1e-6  # float32 output


@pytest.mark.parametrize("lazy", [False, True])
def test_two_corners_read_two_chunks(lazy):
    """Two opposite corners, scaled down: opposite corners read the two corner chunks only."""
    rec = _Recorder((60, 60, 60), 20)
    pts = np.array([[0.0, 59.0]] * 3)
    coords = da.from_array(pts, chunks=(3, 1)) if lazy else pts
    for order, prefilter in [(1, False), (3, True), (3, False)]:
        rec.seen.clear()
        ndinterp.map_coordinates(rec.image, coords, order=order, prefilter=prefilter).compute()
        assert sorted(rec.seen) == [(0, 0, 0), (2, 2, 2)]


def test_points_in_the_constant_region_read_nothing():
    rec = _Recorder((40, 40), 10)
    pts = np.array([[-5.0, 45.0, 3.0, 41.0], [3.0, 3.0, -0.5, 39.5]])
    out = ndinterp.map_coordinates(rec.image, pts, order=3, mode="constant", cval=7.0)
    np.testing.assert_array_equal(out.compute(), 7.0)
    out = ndinterp.map_coordinates(rec.image, pts[:, :2], order=1, mode="grid-constant",
                                   cval=7.0)
    np.testing.assert_array_equal(out.compute(), 7.0)
    assert rec.seen == []


def test_dask_coordinates_read_only_touched_chunks():
    rec = _Recorder((80, 80, 80), 20)
    rng = np.random.default_rng(5)
    pts = np.concatenate([rng.uniform(1, 15, (3, 6)), rng.uniform(63, 78, (3, 6))], axis=1)
    coords = da.from_array(pts, chunks=(3, 4))  # blocks mix both ends: bounding box = all
    ndinterp.map_coordinates(rec.image, coords, order=3, mode="reflect").compute()
    assert set(rec.seen) == _touched(pts, (80,) * 3, (20,) * 3, 3, True)


def test_regions_bounded_by_tile_and_halo():
    """No task holds more than a tile of chunks plus the footprint margin, whatever the
    points' bounding box (memory is bounded by the chunks touched, not the box)."""
    shape, chunks = (400, 400, 400), (50, 50, 50)
    spec = _points.point_spec(shape, tuple((50,) * 8 for _ in range(3)), 3, "reflect", True)
    rng = np.random.default_rng(6)
    pts = rng.uniform(0, 399, (3, 3000))
    plan = _points.plan_points(pts, spec)
    limit = [t * c + 2 * spec.margin + 1 for t, c in zip(spec.tile, chunks, strict=True)]
    for lo, hi in plan.boxes:
        assert np.all(hi - lo <= limit)
    assert sorted(np.concatenate(plan.groups).tolist()) == list(range(pts.shape[1]))
    assert math.prod(spec.tile) * math.prod(chunks) <= max(_points._TILE_VOXELS,
                                                             math.prod(chunks))


@pytest.mark.parametrize("mode", MODES)
def test_vectorised_boxes_match_axis_box(mode):
    mode = ndinterp._check_mode(mode)
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.uniform(-40, 70, 400), np.arange(-35, 66, 0.5)])
    for n, margin, periodic in [(30, 2, False), (30, 17, True), (30, 17, False), (1, 3, False)]:
        if mode in ("nearest", "grid-constant"):
            # footprints() clamps these modes' coordinates itself (to what the pre-pad reads),
            # before the boxes; compare where neither clamp applies
            xs = xs[(xs >= -1) & (xs <= n)]
        lo, hi = _points._boxes(xs, n, mode, margin, periodic)
        for x, a, b in zip(xs, lo, hi, strict=True):
            assert (a, b) == ndinterp._axis_box(x, x, n, mode, margin, periodic)


# ----------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("lazy", [False, True])
def test_cupy_blocks(lazy):
    import cupy

    data = _data(np.float32)
    pts = _points_for(n_random=200)
    img = da.from_array(data, chunks=CHUNKS).map_blocks(cupy.asarray)
    coords = da.from_array(pts, chunks=(3, 100)) if lazy else pts
    for mode, order in [("constant", 1), ("nearest", 3), ("mirror", 0)]:
        ref = ndi.map_coordinates(data, pts, order=order, mode=mode)
        got = ndinterp.map_coordinates(img, coords, order=order, mode=mode).compute()
        assert isinstance(got, cupy.ndarray)
        assert _rel_err(cupy.asnumpy(got).astype(np.float64), ref) <= 1e-5
