"""Randomised comparison of voxzarr.ndinterp with scipy.ndimage on the whole array.

Every scipy boundary mode, spline orders 0-5, 1-3 dimensions, prefilter on and off, float64,
float32, uint8, uint16 and int16 data, random input and output chunks, for affine_transform
(general, diagonal as a matrix and as a 1-D vector), map_coordinates, rotate (3-D, every pair
of axes) and spline_filter / spline_filter1d.

Tolerances, relative to ``scale = max(|data|, |cval|, 1)``:

- float64: ``1e-7`` (the chunked spline prefilter leaves about ``1e-8``; orders 0 and 1 agree
  to rounding);
- float32: ``1e-6`` (float32 carries about ``6e-8``; voxzarr computes float32 data in float32
  where scipy rounds a float64 result once);
- integer outputs: bit for bit.

Integer data stays within ``[-1000, 1000]`` for 16-bit types: the prefilter's ``1e-8``
relative error must not reach a rounding tie (it would, at a rate of about ``2e-8 * range``
per voxel, for full-range uint16 with the prefilter truncated at a chunk edge).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from voxzarr import ndinterp

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MODES = ndinterp.MODES
DTYPES = ("float64", "float32", "uint8", "uint16", "int16")
#: longest axis per rank: long enough for the prefilter halo (11-22 voxels) to be cut
SIDES = {1: 40, 2: 20, 3: 9}
TOL = {"float64": 1e-7, "float32": 1e-6}


@st.composite
def images(draw: Any, ndim: int | None = None,
           dtypes: tuple[str, ...] = DTYPES) -> tuple[np.ndarray, tuple[int, ...]]:
    """A random image and a random chunking of it."""
    ndim = draw(st.integers(1, 3)) if ndim is None else ndim
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = tuple(draw(st.integers(1, SIDES[ndim])) for _ in range(ndim))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":
        data = (rng.random(shape) * 100 - 20).astype(dtype)
    else:
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -1000), min(info.max, 1000)
        data = rng.integers(lo, hi, shape, endpoint=True).astype(dtype)
    return data, tuple(draw(st.integers(1, n)) for n in shape)


def _chunks_for(draw: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(draw(st.integers(1, max(n, 1))) for n in shape)


cvals = st.sampled_from([0.0, 2.5, -1.5, 7.25, 0.5]) | st.floats(-50, 50)
orders = st.integers(0, 5)


def assert_matches(got: np.ndarray, ref: np.ndarray, data: np.ndarray, cval: float) -> None:
    """``got`` equals scipy's ``ref`` within the module's tolerance for its dtype."""
    assert got.shape == ref.shape
    assert got.dtype == ref.dtype
    if ref.dtype.kind in "iu":
        np.testing.assert_array_equal(got, ref)
        return
    scale = max(float(np.max(np.abs(data), initial=0.0)), abs(cval), 1.0)
    err = np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)), initial=0.0)
    assert err <= TOL[ref.dtype.name] * scale, err / scale


# --------------------------------------------------------------------------- affine
@st.composite
def affines(draw: Any, ndim: int) -> tuple[np.ndarray, list[float], tuple[int, ...]]:
    """A general, diagonal or 1-D (vector) matrix, an offset and an output shape."""
    kind = draw(st.sampled_from(["general", "diagonal", "vector"]))
    scale = [draw(st.sampled_from([1.0, 0.5, 2.0, -1.0]) | st.floats(0.3, 2.5))
             for _ in range(ndim)]
    if kind == "vector":
        matrix = np.array(scale)
    else:
        matrix = np.diag(scale)
        if kind == "general":
            matrix = matrix + np.array(
                [[0.0 if i == j else draw(st.floats(-0.5, 0.5)) for j in range(ndim)]
                 for i in range(ndim)])
    offset = [draw(st.sampled_from([0.0, 0.5, -1.5, 3.0]) | st.floats(-8.0, 8.0))
              for _ in range(ndim)]
    out_shape = tuple(draw(st.integers(1, SIDES[ndim])) for _ in range(ndim))
    return matrix, offset, out_shape


@SETTINGS
@given(st.data(), images(), orders, st.sampled_from(MODES), st.booleans(), cvals)
def test_affine_transform(data: Any, image: Any, order: int, mode: str, prefilter: bool,
                          cval: float) -> None:
    arr, chunks = image
    matrix, offset, out_shape = data.draw(affines(arr.ndim))
    out_chunks = _chunks_for(data.draw, out_shape)
    ref = ndi.affine_transform(arr, matrix, offset, out_shape, order=order, mode=mode,
                               cval=cval, prefilter=prefilter)
    got = ndinterp.affine_transform(da.from_array(arr, chunks=chunks), matrix, offset,
                                    out_shape, order, out_chunks, mode=mode, cval=cval,
                                    prefilter=prefilter).compute()
    assert_matches(got, ref, arr, cval)


# --------------------------------------------------------------------------- map_coordinates
@SETTINGS
@given(st.data(), images(), orders, st.sampled_from(MODES), st.booleans(), cvals)
def test_map_coordinates(data: Any, image: Any, order: int, mode: str, prefilter: bool,
                         cval: float) -> None:
    arr, chunks = image
    out_shape = tuple(data.draw(st.integers(1, 12)) for _ in range(data.draw(st.integers(1, 2))))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    span = np.array(arr.shape, dtype=np.float64).reshape((-1,) + (1,) * len(out_shape))
    coords = rng.uniform(-0.3, 1.3, (arr.ndim, *out_shape)) * span
    if data.draw(st.booleans()):  # half-integer and integer points: rounding ties, edges
        coords = np.round(coords * 2) / 2
    coord_chunks = (arr.ndim,) + _chunks_for(data.draw, out_shape)
    ref = ndi.map_coordinates(arr, coords, order=order, mode=mode, cval=cval,
                              prefilter=prefilter)
    got = ndinterp.map_coordinates(da.from_array(arr, chunks=chunks),
                                   da.from_array(coords, chunks=coord_chunks), order, mode,
                                   cval, prefilter).compute()
    assert_matches(got, ref, arr, cval)


# --------------------------------------------------------------------------- rotate
AXES = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1), (-1, -2), (0, -1)]


@SETTINGS
@given(st.data(), images(ndim=3), orders, st.sampled_from(MODES), st.booleans(), cvals,
       st.sampled_from(AXES), st.booleans(),
       st.sampled_from([0.0, 90.0, 180.0, -90.0, 45.0]) | st.floats(-180, 180))
def test_rotate_3d(data: Any, image: Any, order: int, mode: str, prefilter: bool,
                   cval: float, axes: tuple[int, int], reshape: bool, angle: float) -> None:
    arr, chunks = image
    ref = ndi.rotate(arr, angle, axes=axes, reshape=reshape, order=order, mode=mode,
                     cval=cval, prefilter=prefilter)
    out_chunks = _chunks_for(data.draw, ref.shape)
    got = ndinterp.rotate(da.from_array(arr, chunks=chunks), angle, axes, reshape, out_chunks,
                          order=order, mode=mode, cval=cval, prefilter=prefilter).compute()
    assert_matches(got, ref, arr, cval)


# --------------------------------------------------------------------------- spline filter
@SETTINGS
@given(images(), st.integers(2, 5), st.sampled_from(MODES),
       st.sampled_from(["float64", "float32"]), st.integers(-3, 2) | st.none())
def test_spline_filter(image: Any, order: int, mode: str, output: str,
                       axis: int | None) -> None:
    arr, chunks = image
    darr = da.from_array(arr, chunks=chunks)
    if axis is None:
        ref = ndi.spline_filter(arr, order, output=output, mode=mode)
        got = ndinterp.spline_filter(darr, order, output, mode).compute()
    else:
        if not -arr.ndim <= axis < arr.ndim:
            axis = axis % arr.ndim
        ref = ndi.spline_filter1d(arr, order, axis, output=output, mode=mode)
        got = ndinterp.spline_filter1d(darr, order, axis, output, mode).compute()
    assert_matches(got, ref, arr, 0.0)


# --------------------------------------------------------------------------- the reported cases
def test_one_dimensional_separable() -> None:
    """Order 1 on 1-D data took the separable path, which wrote into a scalar."""
    got = ndinterp.affine_transform(da.from_array(np.arange(10.0), chunks=5), [0.5],
                                    order=1).compute()
    np.testing.assert_array_equal(got, ndi.affine_transform(np.arange(10.0), [0.5], order=1))


@pytest.mark.parametrize("order", [3, 5])
@pytest.mark.parametrize("chunk", [1, 4, 30])
def test_nearest_far_outside(order: int, chunk: int) -> None:
    """``nearest`` beyond scipy's 12-voxel pre-pad still depends on the data near the edge."""
    rng = np.random.default_rng(0)
    line = rng.random(30)
    for off in (-40.0, 35.0):
        ref = ndi.affine_transform(line, [[1.0]], [off], order=order, mode="nearest")
        got = ndinterp.affine_transform(da.from_array(line, chunks=chunk), [[1.0]], [off],
                                        order=order, output_chunks=chunk,
                                        mode="nearest").compute()
        assert np.max(np.abs(got - ref)) <= 1e-7


@pytest.mark.parametrize("mode", ["constant", "grid-constant"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32])
@pytest.mark.parametrize(("order", "prefilter"), [(1, True), (3, True), (3, False)])
def test_half_integer_cval(mode: str, dtype: type, order: int, prefilter: bool) -> None:
    """Integer outputs at a tie ``cval`` round like scipy's (a weighted sum of ``cval``)."""
    rng = np.random.default_rng(3)
    data = rng.random((6, 7)) * 20
    coords = rng.uniform(-20, 27, (2, 40))
    for matrix in ([1.1, 0.8], [[1.1, 0.1], [0.0, 0.8]]):
        for cval in (2.5, -1.5, 4.5):
            kw = {"order": order, "mode": mode, "cval": cval, "prefilter": prefilter,
                  "output": dtype}
            ref = ndi.affine_transform(data, matrix, [-17.3, 3.7], (40, 40), **kw)
            got = ndinterp.affine_transform(da.from_array(data, chunks=2), matrix,
                                            [-17.3, 3.7], (40, 40), output_chunks=7,
                                            **kw).compute()
            np.testing.assert_array_equal(got, ref)
            ref = ndi.map_coordinates(data, coords, **kw)
            got = ndinterp.map_coordinates(da.from_array(data, chunks=3),
                                           da.from_array(coords, chunks=(2, 9)),
                                           **kw).compute()
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_output_rank_differs(order: int) -> None:
    """An ``(ndim, k)`` matrix maps a k-D output, as in scipy."""
    data = np.arange(12.0).reshape(3, 4) ** 1.5
    for matrix, offset, shape in (([[0], [2]], 0, (2,)), ([[2.0], [0.3]], [0.2, 0.1], (3,)),
                                  ([[0.5, 0.1, 0.0]], 0.5, (2, 3, 2))):
        ref = ndi.affine_transform(data if len(matrix) == 2 else data[0], np.array(matrix),
                                   offset, shape, order=order)
        src = data if len(matrix) == 2 else data[0]
        got = ndinterp.affine_transform(da.from_array(src, chunks=2), np.array(matrix), offset,
                                        shape, order).compute()
        assert_matches(got, ref, src, 0.0)


def test_complex_map_coordinates_and_rotate() -> None:
    rng = np.random.default_rng(4)
    z = rng.random((9, 11)) + 1j * rng.random((9, 11))
    coords = rng.uniform(-1, 10, (2, 17))
    got = ndinterp.map_coordinates(da.from_array(z, chunks=4), coords, 3, "reflect",
                                   1 - 2j).compute()
    ref = ndi.map_coordinates(z, coords, order=3, mode="reflect", cval=1 - 2j)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7)
    got = ndinterp.rotate(da.from_array(z.astype(np.complex64), chunks=4), 30.0,
                          order=3).compute()
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, ndi.rotate(z.astype(np.complex64), 30.0), atol=1e-6)


@pytest.mark.parametrize(("call", "error"), [
    (lambda d: ndinterp.affine_transform(d, np.eye(2), order=6), RuntimeError),
    (lambda d: ndinterp.affine_transform(d, np.eye(2), mode="edge"), RuntimeError),
    (lambda d: ndinterp.affine_transform(d, np.eye(4)), RuntimeError),
    (lambda d: ndinterp.affine_transform(d, np.eye(2), [1, 2, 3]), RuntimeError),
    (lambda d: ndinterp.affine_transform(d, np.ones((3, 3)) * [[1], [1], [2]]), ValueError),
    (lambda d: ndinterp.map_coordinates(d, np.zeros((3, 4))), RuntimeError),
    (lambda d: ndinterp.map_coordinates(d, np.zeros(2)), RuntimeError),
    (lambda d: ndinterp.map_coordinates(d, np.zeros((2, 4), dtype=complex)), TypeError),
    (lambda d: ndinterp.rotate(d, 10, axes=(0, 2)), ValueError),
    (lambda d: ndinterp.spline_filter(d, 1), RuntimeError),
    (lambda d: ndinterp.affine_transform(d[0, 0], [[1]]), RuntimeError),
])
def test_error_types_follow_scipy(call: Any, error: type) -> None:
    """The builtin error types are scipy's (voxzarr's classes subclass them)."""
    data = np.zeros((5, 6))
    with pytest.raises(error):
        call(data)
    with pytest.raises(error):
        call(da.from_array(data, chunks=2))


def test_zero_dimensional_spline_filter() -> None:
    got = ndinterp.spline_filter(da.from_array(np.array(3.0)), 3).compute()
    assert np.ndim(got) == 0 and got == ndi.spline_filter(np.array(3.0), 3)
