"""voxzarr.ndinterp: chunked results equal scipy.ndimage's whole-array results."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from voxzarr import ndinterp
from voxzarr.errors import GeometryError, VoxzarrError

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
MODES = ndinterp.MODES


def _chunking(draw, shape):
    return tuple(draw(st.integers(1, max(1, n))) for n in shape)


@st.composite
def transforms(draw, ndim, diagonal):
    """A (matrix, offset, output_shape) pulling from an ndim-D array, index units."""
    scale = [draw(st.floats(0.3, 2.5)) for _ in range(ndim)]
    if diagonal:
        matrix = np.diag(scale)
    else:
        matrix = np.diag(scale) + np.array(
            [[0.0 if i == j else draw(st.floats(-0.4, 0.4)) for j in range(ndim)]
             for i in range(ndim)])
    offset = [draw(st.floats(-6.0, 6.0)) for _ in range(ndim)]
    out_shape = tuple(draw(st.integers(1, 24)) for _ in range(ndim))
    return matrix, offset, out_shape


@st.composite
def cases(draw, dtype=np.float32):
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.integers(1, 16)) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    else:
        data = (rng.random(shape) * 100 - 20).astype(dtype)
    matrix, offset, out_shape = draw(transforms(ndim, draw(st.booleans())))
    return (data, _chunking(draw, shape), matrix, offset, out_shape,
            _chunking(draw, out_shape), draw(st.sampled_from(MODES)))


# ----------------------------------------------------------------------- orders 0 and 1
@SETTINGS
@given(cases(), st.sampled_from([0, 1]), st.floats(-5, 5))
def test_chunked_equals_scipy_float(case, order, cval):
    data, chunks, matrix, offset, out_shape, out_chunks, mode = case
    ref = ndi.affine_transform(data, matrix, offset, output_shape=out_shape, order=order,
                               mode=mode, cval=cval)
    got = ndinterp.affine_transform(da.from_array(data, chunks=chunks), matrix, offset,
                                    out_shape, order, out_chunks, mode=mode,
                                    cval=cval).compute()
    assert got.dtype == np.float32
    span = max(float(np.ptp(data)), abs(cval), 1.0)
    assert np.max(np.abs(got - ref), initial=0.0) <= 1e-5 * span


@SETTINGS
@given(st.sampled_from([np.uint8, np.uint16, np.int16]).flatmap(cases),
       st.sampled_from([0, 1]))
def test_chunked_equals_scipy_integer(case, order):
    """Integer outputs equal scipy's bit for bit (rounded half away from zero, clipped)."""
    data, chunks, matrix, offset, out_shape, out_chunks, mode = case
    ref = ndi.affine_transform(data, matrix, offset, output_shape=out_shape, order=order,
                               mode=mode, cval=7)
    got = ndinterp.affine_transform(da.from_array(data, chunks=chunks), matrix, offset,
                                    out_shape, order, out_chunks, mode=mode, cval=7).compute()
    assert got.dtype == data.dtype
    np.testing.assert_array_equal(got, ref)


def test_dyadic_ties_round_like_scipy():
    """Half-integer results (zoom by 2 of integers) round the same way as scipy's."""
    data = np.arange(4 * 6 * 5, dtype=np.uint16).reshape(4, 6, 5) * 3
    matrix, offset = np.diag([0.5, 0.5, 0.25]), [0.25, -0.25, 0.375]
    ref = ndi.affine_transform(data, matrix, offset, output_shape=(8, 12, 20), order=1,
                               mode="nearest")
    got = ndinterp.affine_transform(da.from_array(data, chunks=(3, 4, 2)), matrix, offset,
                                    (8, 12, 20), 1, (5, 5, 7), mode="nearest").compute()
    exact = ndi.affine_transform(data, matrix, offset, output_shape=(8, 12, 20), order=1,
                                 mode="nearest", output=np.float64)
    assert np.any(exact % 1 == 0.5)  # the case has real ties
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("form", ["1d", "2d", "homogeneous", "short"])
def test_matrix_forms(form):
    rng = np.random.default_rng(3)
    data = rng.random((14, 17)).astype(np.float32)
    m = np.array([[0.8, 0.1], [-0.2, 1.3]]) if form != "1d" else np.array([0.8, 1.3])
    off = np.array([1.5, -2.0])
    ref = ndi.affine_transform(data, np.diag(m) if form == "1d" else m, off, order=1)
    if form == "homogeneous":
        arg = np.block([[m, off[:, None]], [np.zeros((1, 2)), np.ones((1, 1))]])
    elif form == "short":
        arg = np.hstack([m, off[:, None]])
    else:
        arg = m
    got = ndinterp.affine_transform(da.from_array(data, chunks=5), arg,
                                    off if form in ("1d", "2d") else 0.0,
                                    output_chunks=(4, 6)).compute()
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_diagonal_away_from_origin_chunk():
    """dask-image's bug: a 1-D matrix sampled the wrong place in non-origin chunks."""
    data = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    got = ndinterp.affine_transform(da.from_array(data, chunks=10), [0.5, 0.5], 0.0,
                                    (40, 40), 1, 10).compute()
    ref = ndi.affine_transform(data, np.diag([0.5, 0.5]), 0.0, order=1)
    np.testing.assert_allclose(got, ref, atol=1e-4)


# ----------------------------------------------------------------------- prefiltered splines
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MODES), st.sampled_from([2, 3, 5]), st.booleans(),
       st.integers(0, 2**32 - 1), st.integers(6, 14))
def test_spline_orders_chunked_within_tolerance(mode, order, diagonal, seed, chunk):
    """Orders 2-5 with the chunked prefilter: within 1e-4 relative of whole-array scipy."""
    rng = np.random.default_rng(seed)
    data = ndi.gaussian_filter(rng.random((44, 50)), 1.0) * 50
    m = np.diag([0.9, 1.15]) if diagonal else np.array([[0.93, 0.35], [-0.35, 0.93]])
    off = rng.uniform(-8, 8, 2)
    ref = ndi.affine_transform(data, m, off, output_shape=(40, 47), order=order, mode=mode,
                               cval=1.5, prefilter=True)
    got = ndinterp.affine_transform(da.from_array(data, chunks=chunk), m, off, (40, 47),
                                    order, (chunk + 3, chunk), mode=mode, cval=1.5).compute()
    assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_prefilter_depth_from_poles():
    assert [ndinterp.prefilter_depth(k) for k in range(6)] == [0, 0, 11, 14, 19, 22]
    # the claim behind the depth: a line cut `depth` voxels away changes coefficients
    # there by less than 1e-8 of the data
    rng = np.random.default_rng(0)
    line = rng.random(400)
    for order in (2, 3, 4, 5):
        d = ndinterp.prefilter_depth(order)
        whole = ndi.spline_filter1d(line, order, mode="mirror")
        cut = ndi.spline_filter1d(line[100:], order, mode="mirror")
        assert abs(cut[d] - whole[100 + d]) < 1e-8 * np.abs(line).max()
        assert abs(cut[1] - whole[101]) > 1e-8  # and the cut does matter near it


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [2, 3, 5])
def test_spline_filter_chunked(mode, order):
    rng = np.random.default_rng(order)
    data = rng.random((37, 41))
    ref = ndi.spline_filter(data, order, mode=mode)
    got = ndinterp.spline_filter(da.from_array(data, chunks=(9, 12)), order,
                                 mode=mode).compute()
    assert np.max(np.abs(got - ref)) <= 1e-7 * np.max(np.abs(ref))
    ref1 = ndi.spline_filter1d(data, order, axis=0, mode=mode)
    got1 = ndinterp.spline_filter1d(da.from_array(data, chunks=(7, 41)), order, axis=0,
                                    mode=mode).compute()
    assert np.max(np.abs(got1 - ref1)) <= 1e-7 * np.max(np.abs(ref1))


# ----------------------------------------------------------------------- 1-D taps
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODES), st.sampled_from([0, 1]), st.integers(1, 7),
       st.lists(st.floats(-20, 25), min_size=1, max_size=12))
def test_taps_match_scipy_1d(mode, order, n, coords):
    rng = np.random.default_rng(n)
    a = rng.random(n)
    idx, w = ndinterp.taps_1d(coords, n, order, mode)
    padded = np.append(a, 3.25)  # index n stands for cval
    w = np.ones_like(idx, dtype=float) if w is None else w
    got = (padded[idx] * w).sum(axis=1)
    ref = ndi.map_coordinates(a, [coords], order=order, mode=mode, cval=3.25,
                              prefilter=False)
    np.testing.assert_allclose(got, ref, atol=1e-12)


# ----------------------------------------------------------------------- rotate, map_coordinates
@pytest.mark.parametrize("reshape", [True, False])
@pytest.mark.parametrize("axes", [(1, 0), (0, 2), (-1, -2)])
@pytest.mark.parametrize("order", [0, 1, 3])
def test_rotate_matches_scipy(reshape, axes, order):
    rng = np.random.default_rng(5)
    data = rng.random((12, 19, 15)).astype(np.float32)
    ref = ndi.rotate(data, 33.0, axes=axes, reshape=reshape, order=order, mode="constant")
    got = ndinterp.rotate(da.from_array(data, chunks=(5, 7, 6)), 33.0, axes=axes,
                          reshape=reshape, output_chunks=(6, 8, 7), order=order).compute()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5 * (1 if order < 2 else 10))


@pytest.mark.parametrize("mode", ["constant", "nearest", "grid-wrap", "mirror"])
@pytest.mark.parametrize("order", [0, 1, 3])
def test_map_coordinates_matches_scipy(mode, order):
    rng = np.random.default_rng(11)
    data = ndi.gaussian_filter(rng.random((30, 33)), 1.0)
    coords = rng.uniform(-4, 36, (2, 17, 13))
    ref = ndi.map_coordinates(data, coords, order=order, mode=mode)
    got = ndinterp.map_coordinates(da.from_array(data, chunks=8),
                                   da.from_array(coords, chunks=(2, 6, 5)), order=order,
                                   mode=mode).compute()
    assert got.shape == (17, 13)
    assert np.max(np.abs(got - ref)) <= 1e-6 * np.max(np.abs(ref))


# ----------------------------------------------------------------------- laziness, chunks
def _boom(block):
    raise AssertionError("this input block must not be read")


def test_lazy_and_reads_only_needed_blocks():
    """Output chunks wholly in the constant region read no input at all."""
    data = da.zeros((40, 40), chunks=10, dtype=np.float32).map_blocks(_boom,
                                                                       dtype=np.float32)
    out = ndinterp.affine_transform(data, [1.0, 1.0], [100.0, 0.0], (40, 40), 1, 10)
    assert isinstance(out, da.Array)
    assert np.all(out.compute() == 0)
    # a shift by 25 rows reads only the blocks it needs: rows 0-14 read rows 25-39
    src = np.arange(1600, dtype=np.float32).reshape(40, 40)
    guarded = da.from_array(src, chunks=10).map_blocks(
        lambda b, block_info=None: _boom(b) if block_info[0]["chunk-location"][0] < 2 else b,
        dtype=np.float32)
    out = ndinterp.affine_transform(guarded, [1.0, 1.0], [25.0, 0.0], (15, 40), 1, (5, 10))
    np.testing.assert_array_equal(out.compute(), src[25:40])


def test_output_chunks_and_dtype():
    data = da.zeros((20, 30), chunks=(7, 9), dtype=np.uint16)
    out = ndinterp.affine_transform(data, [0.5, 2.0], 0.0, (40, 15), 1, (16, 5),
                                    output=np.float32)
    assert out.chunks == ((16, 16, 8), (5, 5, 5))
    assert out.dtype == np.float32 and out.compute().dtype == np.float32


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,field", [
    ({"matrix": np.eye(4)}, "matrix"),
    ({"matrix": np.ones(3)}, "matrix"),
    ({"matrix": np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]])}, "matrix"),
    ({"matrix": np.eye(2), "order": 6}, "order"),
    ({"matrix": np.eye(2), "mode": "edge"}, "mode"),
    ({"matrix": np.eye(2), "output_shape": (3,)}, "output_shape"),
    ({"matrix": np.eye(2), "offset": [1, 2, 3]}, "offset"),
    ({"matrix": [[np.nan, 0], [0, 1]]}, "matrix"),
])
def test_bad_input(kwargs, field):
    data = da.zeros((5, 6), chunks=3)
    with pytest.raises(GeometryError) as err:
        ndinterp.affine_transform(data, **kwargs)
    assert err.value.field == field
    assert isinstance(err.value, VoxzarrError) and isinstance(err.value, ValueError)


def test_bad_coordinates_and_axes():
    data = da.zeros((5, 6), chunks=3)
    with pytest.raises(GeometryError):
        ndinterp.map_coordinates(data, np.zeros((3, 4)))
    with pytest.raises(GeometryError):
        ndinterp.rotate(data, 10, axes=(0, 0))
    # complex input is supported (real and imaginary parts separately, as in scipy)
    z = np.arange(16.0).reshape(4, 4) * (1 - 2j)
    np.testing.assert_allclose(
        ndinterp.affine_transform(da.from_array(z, chunks=2), np.eye(2), 0.5).compute(),
        ndi.affine_transform(z, np.eye(2), 0.5, order=1))
