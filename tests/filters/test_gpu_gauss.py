"""The GPU Gaussian passes (voxzarr._gpu_gauss) equal cupyx's gaussian_filter bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from voxzarr import _gpu_gauss

pytestmark = pytest.mark.gpu

cupy = pytest.importorskip("cupy", reason="needs CuPy and a GPU")
cndi = pytest.importorskip("cupyx.scipy.ndimage", reason="needs CuPy and a GPU")

MODES = ("reflect", "mirror", "nearest", "wrap", "constant")
DTYPES = (np.float32, np.float64, np.uint16, np.uint8, np.int16, np.int32)


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        a = rng.normal(100.0, 40.0, shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(max(info.min, -3000), min(info.max, 3000), shape).astype(dtype)
    return cupy.asarray(a)


def _check(x, sigma, order=0, mode="reflect", cval=0.0, truncate=4.0, radius=None,
           keep=None, rows=None):
    nd = x.ndim
    sig = (sigma,) * nd if np.isscalar(sigma) else tuple(sigma)
    orders = (order,) * nd if np.isscalar(order) else tuple(order)
    keep = tuple(slice(None) for _ in range(nd)) if keep is None else keep
    kw = {"truncate": truncate} if radius is None else {"truncate": truncate, "radius": radius}
    want = cndi.gaussian_filter(x, sig, order=orders, mode=mode, cval=cval, **kw)[keep]
    got = _gpu_gauss.gaussian_kept(x, sig, orders, mode, cval, truncate,
                                   None if radius is None else (radius,) * nd
                                   if np.isscalar(radius) else radius, keep, rows=rows)
    assert got is not None, "the fast path declined a supported input"
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(cupy.asnumpy(got), cupy.asnumpy(want))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_whole_array_every_mode_and_dtype(mode, dtype):
    _check(_data((19, 23, 37), dtype), 1.7, mode=mode, cval=5.5)


@pytest.mark.parametrize("rows", [1, 3, None])
@pytest.mark.parametrize("mode", MODES)
def test_lines_shorter_than_the_radius(mode, rows):
    # taps fold over the line more than once: the boundary rule is periodic
    _check(_data((3, 1, 2, 9), np.float32), (2.5, 3.0, 4.0, 0.8), mode=mode, cval=-2.0,
           rows=rows)
    _check(_data((11, 40, 33), np.uint16), (3.0, 2.0, 1.0), mode=mode, cval=7.0, rows=rows)


@pytest.mark.parametrize("rows", [1, None])
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 1, 1)])
def test_derivative_orders(order, rows):
    _check(_data((16, 37, 40), np.float32), (1.0, 1.5, 2.0), order=order, mode="mirror",
           rows=rows)


@pytest.mark.parametrize("rows", [1, 3, None])
def test_kept_rows_are_the_cropped_whole_result(rows):
    x = _data((30, 26, 41), np.float32)
    _check(x, 2.0, keep=(slice(8, 20), slice(0, 26), slice(5, 36)), rows=rows)
    _check(x, (0.0, 1.3, 2.2), keep=(slice(3, 4), slice(10, 11), slice(40, 41)), rows=rows)
    y = _data((45, 64, 48), np.float64)  # rows not a multiple of the rows per thread
    _check(y, (2.0, 1.5, 1.0), mode="wrap", keep=(slice(5, 34), slice(1, 62), slice(None)),
           rows=rows)


def test_skipped_axes_and_explicit_radius():
    x = _data((12, 13, 14), np.uint16)
    _check(x, (0.0, 2.0, 0.1))        # sigma 0 and radius 0 are skipped, as cupyx does
    _check(x, 1.5, radius=3)
    _check(x, (1.0, 0.7, 2.0), radius=(2, 1, 5))


def test_non_contiguous_input():
    x = _data((20, 24, 30), np.float32)[::2, :, ::-1].transpose(2, 0, 1)
    _check(x, 1.2, mode="nearest")


def test_unsupported_inputs_fall_back():
    x = cupy.ones((4, 5, 6), dtype=cupy.float16)
    keep = (slice(None),) * 3
    assert _gpu_gauss.gaussian_kept(x, (1.0,) * 3, (0,) * 3, "reflect", 0.0, 4.0, None,
                                    keep) is None
    assert not _gpu_gauss.supports(np.float32, "grid-wrap", 10)
