"""Compiled (numba) filter passes: bit-identical to scipy.ndimage, and really used.

``voxzarr._kernels`` reproduces scipy's correlate1d arithmetic on the kept rows only; these
tests compare it with scipy on random shapes, dtypes, modes, sigmas, orders and crops, then
end to end through chunked filters (run-time overlap and stored halo, image-edge chunks,
depth larger than a chunk), and check that the compiled path is taken where it should be.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import zarr.storage
from _filter_reference import DTYPES, ZYX, make_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr import _kernels
from voxzarr.filters import MODES, apply_filter
from voxzarr.halo import write_halo

pytestmark = pytest.mark.skipif(not _kernels.available(),
                                reason="compiled path off (numba missing or VOXZARR_NO_JIT)")


@pytest.fixture
def no_scipy_passes(monkeypatch):
    """Fail if a Gaussian pass falls back to scipy (proves the compiled path ran)."""

    def refuse(*args, **kwargs):
        raise AssertionError("scipy fallback used where the compiled path covers the case")

    monkeypatch.setattr(_kernels, "_scipy_gaussian1d", refuse)


def _covered(dtype, orders, mode, cval) -> bool:
    """Cases the compiled path must take (no integer result outside the dtype)."""
    if np.dtype(dtype).kind == "f":
        return True
    return all(o == 0 for o in orders) and (mode != "constant" or 0 <= cval <= 255)


# --------------------------------------------------------------------------- one pass
@st.composite
def passes(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 13), min_size=ndim, max_size=ndim)))
    axis = draw(st.integers(0, ndim - 1))
    n = shape[axis]
    lo = draw(st.integers(0, n - 1))
    hi = draw(st.integers(lo + 1, n))
    return dict(shape=shape, axis=axis, keep=slice(lo, hi),
                dtype=draw(st.sampled_from(DTYPES)), mode=draw(st.sampled_from(MODES)),
                sigma=draw(st.floats(0.2, 6.0)), order=draw(st.integers(0, 2)),
                truncate=draw(st.sampled_from([4.0, 2.5, 9.0])),
                cval=draw(st.sampled_from([0.0, 3.5, 250.0, -2.5, 1e5])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(passes(), st.integers(0, 2**16))
def test_gaussian_pass_matches_scipy(case, seed):
    x = make_image(case["shape"], case["dtype"], seed)
    args = (case["sigma"], case["axis"], case["order"])
    kw = dict(mode=case["mode"], cval=case["cval"], truncate=case["truncate"])
    want = ndi.gaussian_filter1d(x, *args, **kw)
    want = want[(slice(None),) * case["axis"] + (case["keep"],)]
    w = _kernels.gaussian_weights(case["sigma"], case["order"], case["truncate"], None)
    got = _kernels.correlate1d_kept(x, w, case["axis"], case["mode"], case["cval"],
                                    case["keep"])
    if _covered(case["dtype"], [case["order"]], case["mode"], case["cval"]):
        assert got is not None
    if got is not None:  # None: out-of-range integers, scipy's own result is used
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # the public helper falls back to scipy where the kernel declines: always exact
    both = _kernels.gaussian1d_kept(x, *args, kw["mode"], kw["cval"], kw["truncate"], None,
                                    case["keep"])
    np.testing.assert_array_equal(both, want)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.sampled_from(MODES), st.sampled_from(["float32", "float64"]),
       st.integers(0, 2**16))
def test_any_weights_match_correlate1d(size, mode, dtype, seed):
    """Even lengths and asymmetric kernels take scipy's general branch."""
    rng = np.random.default_rng(seed)
    x = make_image((5, 11), dtype, seed)
    w = rng.standard_normal(size)
    for axis in (0, 1):
        want = ndi.correlate1d(x, w, axis, mode=mode, cval=1.5)
        got = _kernels.correlate1d_kept(x, w, axis, mode, 1.5, slice(0, x.shape[axis]))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_symmetry_test_uses_scipys_tolerance(sign):
    """Weights symmetric within DBL_EPSILON use the left weights for both taps, as scipy."""
    w = np.array([0.3, 0.4, sign * np.nextafter(0.3, 1.0)])  # right differs by one ulp
    assert _kernels._symmetry(w) == sign
    x = np.random.default_rng(0).standard_normal((7, 9)) * 1e3
    for axis in (0, 1):
        np.testing.assert_array_equal(
            _kernels.correlate1d_kept(x, w, axis, "reflect", 0.0, slice(0, x.shape[axis])),
            ndi.correlate1d(x, w, axis))


def test_integer_results_outside_the_dtype_go_to_scipy():
    x = make_image((6, 8), "uint8", 1) // 4  # edges go negative with cval -1000
    w = _kernels.gaussian_weights(1.0, 0, 4.0, None)
    assert _kernels.correlate1d_kept(x, w, 1, "constant", -1000.0, slice(0, 8)) is None
    assert _kernels.correlate1d_kept(x, -w, 1, "reflect", 0.0, slice(0, 8)) is None
    got = _kernels.gaussian1d_kept(x, 1.0, 1, 0, "constant", -1000.0, 4.0, None, slice(0, 7))
    np.testing.assert_array_equal(got, ndi.gaussian_filter1d(x, 1.0, 1, mode="constant",
                                                             cval=-1000.0)[:, :7])


def test_switch_sends_every_pass_to_scipy(monkeypatch):
    x = make_image((6, 8), "uint16", 1)
    w = _kernels.gaussian_weights(1.0, 0, 4.0, None)
    assert _kernels.correlate1d_kept(x, w, 0, "reflect", 0.0, slice(0, 6)) is not None
    monkeypatch.setattr(_kernels, "ENABLED", False)
    assert not _kernels.available()
    assert _kernels.correlate1d_kept(x, w, 0, "reflect", 0.0, slice(0, 6)) is None


# --------------------------------------------------------------------------- chunked, end to end
@st.composite
def chunked(draw):
    ndim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.lists(st.integers(3, 22 if ndim == 3 else 36), min_size=ndim,
                                max_size=ndim)))
    # small chunks (down to 1 voxel): the halo is often deeper than a chunk
    chunks = tuple(draw(st.integers(max(1, n // 4), n)) for n in shape)
    sigma = draw(st.one_of(st.floats(0.3, 3.0),
                           st.lists(st.floats(0.0, 3.0), min_size=ndim, max_size=ndim)
                           .map(tuple)))
    dtype = draw(st.sampled_from(DTYPES))
    orders = (0,) * ndim
    if np.dtype(dtype).kind == "f":
        orders = tuple(draw(st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim)))
    return (shape, chunks, dtype, draw(st.sampled_from(MODES)), sigma, orders,
            draw(st.sampled_from([0.0, 7.0])))


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(chunked(), st.integers(0, 2**16))
def test_chunked_gaussian_matches_scipy(no_scipy_passes, case, seed):
    shape, chunks, dtype, mode, sigma, order, cval = case
    arr = make_image(shape, dtype, seed)
    dims = ZYX[-arr.ndim:]
    img = vz.from_array(arr, dims).chunk(dict(zip(dims, chunks, strict=True)))
    got = apply_filter(img, "gaussian", sigma=sigma, order=order, mode=mode, cval=cval,
                       halo="never").values
    want = ndi.gaussian_filter(arr, sigma, order=order, mode=mode, cval=cval)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name, params", [
    ("gaussian", {"sigma": 2.5}),
    ("gaussian_laplace", {"sigma": 1.5}),
    ("gaussian_gradient_magnitude", {"sigma": 1.2}),
    ("difference_of_gaussians", {"sigma_low": 1.0}),
])
def test_stored_halo_deeper_than_a_chunk(no_scipy_passes, name, params):
    arr = make_image((19, 23, 17), "float32", seed=4)
    store = zarr.storage.MemoryStore()
    vz.from_array(arr, "zyx").vox.to_ome_zarr(store, chunks=(4, 7, 5), progress=False)
    write_halo(None, store, for_filter=(name, params), progress=False)
    for mode in ("reflect", "constant", "mirror"):
        got = vz.open_image(store).vox.filter(name, mode=mode, cval=2.0, halo="require",
                                              **params).values
        if name == "difference_of_gaussians":
            lo, hi = params["sigma_low"], 1.6 * params["sigma_low"]
            want = (ndi.gaussian_filter(arr, lo, mode=mode, cval=2.0)
                    - ndi.gaussian_filter(arr, hi, mode=mode, cval=2.0))
        else:
            fn = getattr(ndi, "gaussian_filter" if name == "gaussian" else name)
            want = fn(arr, params["sigma"], mode=mode, cval=2.0)
        np.testing.assert_array_equal(got, want)


def test_compiled_and_scipy_paths_agree_on_uint16_blocks(monkeypatch):
    arr = make_image((40, 37, 33), "uint16", seed=5)
    img = vz.from_array(arr, "zyx").chunk({"z": 16, "y": 16, "x": 16})
    fast = img.vox.filter("gaussian", sigma=3.0, mode="nearest").values
    monkeypatch.setattr(_kernels, "ENABLED", False)
    slow = img.vox.filter("gaussian", sigma=3.0, mode="nearest").values
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, ndi.gaussian_filter(arr, 3.0, mode="nearest"))


# --------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("src", ["u1", "u2", "i2", "i8", "f4", "f8"])
@pytest.mark.parametrize("ax", [0, 1, 2])
def test_lerp_pass_equals_numpy_loop(src, ax, monkeypatch):
    """The compiled pass equals ``ndinterp._pass_cpu``'s numpy loop bit for bit."""
    from voxzarr import ndinterp

    rng = np.random.default_rng(ax)
    a = (rng.random((5, 6, 7)) * 200 - (50 if src[0] in "if" else 0)).astype(src)
    n = a.shape[ax]
    idx = rng.integers(0, n, (9, 2))
    w = rng.random((9, 2))
    cdtype = np.dtype(np.float32 if src == "f4" else np.float64)
    got = ndinterp._pass_cpu(a, ax, idx, w, cdtype)
    monkeypatch.setattr(_kernels, "ENABLED", False)
    ref = ndinterp._pass_cpu(a, ax, idx, w, cdtype)
    assert got.dtype == ref.dtype and np.array_equal(got, ref)
    if ax == 1:  # a strided view is read in place
        view = np.asarray(a)[:, :, ::2]
        monkeypatch.setattr(_kernels, "ENABLED", True)
        got = ndinterp._pass_cpu(view, ax, idx, w, cdtype)
        monkeypatch.setattr(_kernels, "ENABLED", False)
        assert np.array_equal(got, ndinterp._pass_cpu(view, ax, idx, w, cdtype))


@pytest.mark.parametrize("dst", ["u1", "u2", "i2", "i4"])
def test_round_to_int_equals_numpy_loop(dst, monkeypatch):
    """Rounding, clipping and the near-tie list equal the numpy loop; NaN falls back."""
    from voxzarr import ndinterp

    rng = np.random.default_rng(1)
    res = np.concatenate([rng.random(3000) * 80000 - 40000, np.arange(-300, 300) / 2,
                          [np.inf, -np.inf, 1e20, -1e20, -0.3, 0.5 - 1e-9]]).reshape(-1, 6)
    seen = []

    def exact(pts):
        seen.append(np.ravel_multi_index(pts, res.shape).tolist())
        return res[pts] + 0.25

    got = ndinterp._round_cpu(res, np.dtype(dst), exact)
    monkeypatch.setattr(_kernels, "ENABLED", False)
    with np.errstate(invalid="ignore"):  # the numpy loop computes inf - inf for +-inf inputs
        ref = ndinterp._round_cpu(res, np.dtype(dst), exact)
    assert np.array_equal(got, ref) and sorted(seen[0]) == sorted(seen[1]) and seen[0]
    res[3, 4] = np.nan
    assert _kernels.round_to_int(res, np.dtype(dst), 1e-7, True) is None


@pytest.mark.skipif(not _kernels.available(), reason="numba is not available")
@pytest.mark.parametrize("shape", [(1, 300, 4000), (40, 160, 200), (3, 700, 600)])
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_large_passes_split_over_the_pool_match_scipy(shape, dtype):
    """Passes over 4 MB run on the codec pool in row ranges; results stay bit-identical,
    whichever way a pass is split (leading rows, kept rows, inner lines)."""
    rng = np.random.default_rng(3)
    x = (rng.random(shape) * 1000).astype(dtype)
    w = _kernels.gaussian_weights(2.0, 0, 4.0, None)
    for axis in range(3):
        n = shape[axis]
        keep = slice(min(2, n - 1), max(n - 3, min(2, n - 1) + 1))
        got = _kernels.correlate1d_kept(x, w, axis, "reflect", 0.0, keep)
        want = ndi.correlate1d(x, w, axis, mode="reflect")
        want = want[(slice(None),) * axis + (keep,)]
        assert got is not None
        assert np.array_equal(got, want), axis
