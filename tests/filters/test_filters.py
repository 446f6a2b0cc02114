"""Seam-free filters: bit-identical to scipy.ndimage on the whole image, chunk by chunk.

The run-time overlap path is tested here over random filters, modes, dtypes, shapes, chunks;
the stored-halo path in tests/halo/test_halo.py. The scipy reference and the strategy of filter
specs they share are in tests/_filter_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from _filter_reference import (
    DTYPES,
    ZYX,
    assert_matches,
    chain_reference,
    filter_specs,
    make_image,
    reference,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.errors import VoxzarrError
from voxzarr.filters import MODES, apply_filter, filter_radius, prepare_filter


# --------------------------------------------------------------------------- strategies
@st.composite
def cases(draw):
    ndim = draw(st.sampled_from([2, 3]))
    hi = 24 if ndim == 3 else 40
    shape = tuple(draw(st.lists(st.integers(3, hi), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.integers(1, n)) if draw(st.booleans()) else
                   draw(st.integers(max(1, n // 3), n)) for n in shape)
    dtype = draw(st.sampled_from(DTYPES))
    mode = draw(st.sampled_from(MODES))
    steps = [draw(filter_specs(ndim))]
    if draw(st.integers(0, 4)) == 0:
        steps.append(draw(filter_specs(ndim)))
    return shape, chunks, dtype, mode, steps


def _image(arr, chunks):
    dims = ZYX[-arr.ndim:]
    return vz.from_array(arr, dims).chunk(dict(zip(dims, chunks, strict=True)))


# --------------------------------------------------------------------------- exactness
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(0, 2**16))
def test_runtime_overlap_matches_scipy(case, seed):
    shape, chunks, dtype, mode, steps = case
    arr = make_image(shape, dtype, seed)
    img = _image(arr, chunks)
    if len(steps) == 1:
        out = apply_filter(img, steps[0][0], mode=mode, halo="never", **steps[0][1])
    else:
        out = apply_filter(img, steps, mode=mode, halo="never")
    got = out.values
    assert out.chunks == img.chunks
    assert_matches(got, chain_reference(arr, steps, mode), steps)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_filter_every_mode_3d(mode, dtype):
    """Each registered filter, fixed parameters, partial last chunks, depth > chunk."""
    arr = make_image((13, 17, 11), dtype, seed=3)
    img = _image(arr, (5, 4, 6))  # partial last chunks; sigma 2 needs 8 > chunk
    w = np.arange(12, dtype=float).reshape(2, 3, 2) - 5
    fixed = [
        ("gaussian", {"sigma": 2.0}),
        ("gaussian", {"sigma": (1.0, 0.0, 1.5), "order": (0, 1, 2)}),
        ("gaussian_laplace", {"sigma": 1.2}),
        ("gaussian_gradient_magnitude", {"sigma": 0.8}),
        ("difference_of_gaussians", {"sigma_low": 1.0, "sigma_high": 2.0}),
        ("uniform", {"size": (3, 4, 2)}),
        ("median", {"size": 3}),
        ("minimum", {"size": (2, 3, 1), "origin": (-1, 1, 0)}),
        ("maximum", {"footprint": np.eye(3, dtype=bool)[None].repeat(2, 0)}),
        ("sobel", {"axis": 0}),
        ("prewitt", {"axis": -1}),
        ("laplace", {}),
        ("convolve", {"weights": w}),
        ("correlate", {"weights": w, "origin": (0, -1, -1)}),
    ]
    for name, params in fixed:
        got = apply_filter(img, name, mode=mode, cval=3.0, halo="never", **params).values
        assert_matches(got, reference(arr, name, params, mode, cval=3.0), [(name, params)])


def test_chain_of_filters_radius_is_sum():
    steps = [("gaussian", {"sigma": 1.5}), ("median", {"size": 3}), ("sobel", {"axis": 1})]
    chain = prepare_filter(steps, ZYX)
    assert chain.radius == (6 + 1 + 1,) * 3
    arr = make_image((20, 21, 19), "float32", seed=5)
    for mode in MODES:
        got = apply_filter(_image(arr, (7, 6, 8)), steps, mode=mode, halo="never").values
        np.testing.assert_array_equal(got, chain_reference(arr, steps, mode))


def test_leading_time_and_channel_axes_filter_each_plane():
    arr = make_image((2, 3, 9, 10), "uint16", seed=1)
    img = vz.from_array(arr, "tcyx").chunk({"t": 1, "c": 2, "y": 4, "x": 3})
    got = img.vox.filter("gaussian", sigma=1.3, mode="nearest").values
    want = np.stack([np.stack([ndi.gaussian_filter(arr[t, c], 1.3, mode="nearest")
                               for c in range(3)]) for t in range(2)])
    np.testing.assert_array_equal(got, want)


def test_numpy_backed_image_and_result_metadata():
    arr = make_image((30, 40), "float64", seed=2)
    img = vz.from_array(arr, "yx", voxel_size={"y": 0.5, "x": 0.25}, name="cells",
                        attrs={"note": "kept"})
    out = img.vox.filter("median", size=3)
    assert out.name == "cells" and out.attrs == {"note": "kept"}
    assert out.vox.voxel_size == {"y": 0.5, "x": 0.25}
    np.testing.assert_array_equal(out.values, ndi.median_filter(arr, 3))


def test_physical_units_divide_sigma_by_voxel_size():
    arr = make_image((12, 20, 20), "float32", seed=4)
    img = vz.from_array(arr, "zyx", voxel_size={"z": 1.0, "y": 0.5, "x": 0.25}).chunk(8)
    got = img.vox.filter("gaussian", sigma=1.0, units="physical").values
    np.testing.assert_array_equal(got, ndi.gaussian_filter(arr, (1.0, 2.0, 4.0)))
    with pytest.raises(VoxzarrError, match="physical"):
        img.vox.filter("median", size=3, units="physical")


# --------------------------------------------------------------------------- radius
def _reach(name, params, ndim=1):
    """Largest |offset| at which an impulse changes the output (the true radius)."""
    n = 81
    base_in = np.random.default_rng(0).random((n,) * ndim)
    base = reference(base_in, name, params, "constant")
    changed = np.zeros(base.shape, bool)
    for spike in (1000.0, -1000.0):  # both signs, so minimum and maximum see one
        x = base_in.copy()
        x[(n // 2,) * ndim] = spike
        changed |= np.abs(reference(x, name, params, "constant") - base) > 1e-6
    idx = np.argwhere(changed)
    return int(np.abs(idx - n // 2).max()) if idx.size else 0


@pytest.mark.parametrize("name,params", [
    ("gaussian", {"sigma": 5.0}),
    ("gaussian", {"sigma": 1.7, "order": 2, "truncate": 3.0}),
    ("gaussian", {"sigma": 2.0, "radius": 3}),
    ("gaussian_laplace", {"sigma": 2.2}),
    ("gaussian_gradient_magnitude", {"sigma": 1.1}),
    ("uniform", {"size": 4}), ("uniform", {"size": 5, "origin": -2}),
    ("median", {"size": 4, "origin": 1}),
    ("minimum", {"size": 3}), ("maximum", {"size": 2, "origin": -1}),
    ("convolve", {"weights": np.array([1.0, 2.0, 3.0, 4.0])}),
    ("convolve", {"weights": np.array([1.0, 2.0, 3.0, 4.0]), "origin": 1}),
    ("correlate", {"weights": np.array([1.0, 2.0, 3.0, 4.0]), "origin": -2}),
    ("laplace", {}), ("sobel", {"axis": 0}),
])
def test_radius_is_the_exact_reach(name, params):
    assert filter_radius(name, ("x",), **params) == (_reach(name, params),)


def test_gaussian_radius_follows_scipy_rule():
    # sigma 5, truncate 4 -> int(20.5) = 20 (dask-image would take ceil: 20 as well)
    assert filter_radius("gaussian", ZYX, sigma=5) == (20, 20, 20)
    assert filter_radius("gaussian", ZYX, sigma=(0, 1.1, 2.6)) == (0, 4, 10)
    assert filter_radius("dog", ("y", "x"), sigma_low=1, sigma_high=3) == (12, 12)


def test_radius_one_less_is_not_exact():
    """The radius is tight: gathering one voxel less gives seams."""
    from voxzarr.halo.graph import overlap_map

    arr = make_image((64,), "float64", seed=0)
    src = vz.from_array(np.stack([arr] * 2), "yx").chunk({"x": 16}).data
    r = filter_radius("gaussian", ("x",), sigma=2.0)[0]
    kern = lambda b: ndi.gaussian_filter1d(b, 2.0, axis=-1)  # noqa: E731
    want = ndi.gaussian_filter1d(np.stack([arr] * 2), 2.0, axis=-1)
    exact = overlap_map(src, kern, (0, r), (False, False), np.float64).compute()
    short = overlap_map(src, kern, (0, r - 1), (False, False), np.float64).compute()
    np.testing.assert_array_equal(exact, want)
    assert not np.array_equal(short, want)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,match", [
    (lambda img: img.vox.filter("nope", sigma=1), "unknown filter"),
    (lambda img: img.vox.filter("gaussian", sigma=-1), "sigma"),
    (lambda img: img.vox.filter("gaussian", sigma=1, order=3), "order"),
    (lambda img: img.vox.filter("gaussian"), "sigma"),
    (lambda img: img.vox.filter("gaussian", sigma=1, mode="bogus"), "mode"),
    (lambda img: img.vox.filter("gaussian", sigma=(1, 2, 3)), "one per axis"),
    (lambda img: img.vox.filter("uniform", size=0), "size"),
    (lambda img: img.vox.filter("uniform", size=3, origin=2), "origin"),
    (lambda img: img.vox.filter("median"), "size= or footprint"),
    (lambda img: img.vox.filter("convolve", weights=np.ones(3)), "weights"),
    (lambda img: img.vox.filter("sobel", axis=5), "axis"),
    (lambda img: img.vox.filter("laplace", sigma=2), "unknown parameter"),
    (lambda img: img.vox.filter("dog", sigma_low=2, sigma_high=1), "sigma_high"),
    (lambda img: img.vox.filter([("gaussian", {"sigma": 1}), 3]), "chain step"),
    (lambda img: img.vox.filter("gaussian", sigma=1, device="tpu"), "device"),
    (lambda img: img.vox.filter("gaussian", sigma=1, halo="sometimes"), "halo"),
    (lambda img: img.vox.filter("gaussian", sigma=1, halo="require"), "require"),
])
def test_bad_input_is_a_voxzarr_error(call, match):
    img = vz.from_array(np.zeros((8, 9), np.uint8), "yx")
    with pytest.raises(VoxzarrError, match=match):
        call(img)


def test_filter_is_lazy():
    import dask.array as da

    img = vz.from_array(da.ones((64, 64), chunks=16, dtype="f4"), "yx")
    out = img.vox.filter("gaussian", sigma=3)
    assert isinstance(out.data, da.Array)
    assert out.data.npartitions == 16


def test_filter_layer_names_follow_the_filter_and_its_parameters():
    """The output's dask name is a token of what the filter computes (not a pickle of the
    kernel): equal for the same call, different when name, parameters or mode differ."""
    import dask.array as da

    img = vz.from_array(da.from_array(np.random.default_rng(0).random((8, 16, 16)),
                                      chunks=8), "zyx", voxel_size=1)
    name = img.vox.filter("gaussian", sigma=2).data.name
    assert img.vox.filter("gaussian", sigma=2).data.name == name
    others = [img.vox.filter("gaussian", sigma=3), img.vox.filter("gaussian", sigma=2,
                                                                  mode="wrap"),
              img.vox.filter("gaussian", sigma=2, cval=1.0, mode="constant"),
              img.vox.filter("uniform", size=3),
              img.vox.filter("convolve", weights=np.ones((3, 3, 3))),
              img.vox.filter("convolve", weights=np.full((3, 3, 3), 2.0))]
    names = [o.data.name for o in others]
    assert name not in names and len(set(names)) == len(names)


def test_gpu_crop_is_used_for_a_non_scipy_module_and_falls_back_to_call():
    """The dispatch of FilterStep.run_kept, without a GPU: scipy gets the CPU crop, any
    other ndimage module the GPU crop, and the whole call then a crop when the GPU crop
    declines (returns None)."""
    from types import SimpleNamespace

    from voxzarr import _gpu_gauss
    from voxzarr.filters import FilterStep

    x = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    keep = (slice(1, 4), slice(None), slice(2, 5))
    seen = []

    def call(ndi_mod, xp, a, mode, cval):
        seen.append("call")
        return a * 2

    def crop(a, mode, cval, kp):
        seen.append("crop")
        return a[kp] * 2

    def gpu_crop(a, mode, cval, kp):
        seen.append("gpu_crop")
        return None if mode == "wrap" else a[kp] * 2

    step = FilterStep("t", {}, (1, 1, 1), call, crop, gpu_crop)
    other = SimpleNamespace()  # stands for cupyx.scipy.ndimage
    want = x[keep] * 2
    np.testing.assert_array_equal(step.run_kept(ndi, np, x, "reflect", 0.0, keep), want)
    np.testing.assert_array_equal(step.run_kept(other, np, x, "reflect", 0.0, keep), want)
    np.testing.assert_array_equal(step.run_kept(other, np, x, "wrap", 0.0, keep), want)
    assert seen == ["crop", "gpu_crop", "gpu_crop", "call"]
    # what the GPU Gaussian passes take: real dtypes, scipy's five modes, < 2**31 voxels
    assert _gpu_gauss.supports(np.uint16, "reflect", 10)
    assert not _gpu_gauss.supports(np.float16, "reflect", 10)
    assert not _gpu_gauss.supports(np.complex64, "reflect", 10)
    assert not _gpu_gauss.supports(np.float32, "grid-wrap", 10)
    assert not _gpu_gauss.supports(np.float32, "nearest", 2**31)


def test_gaussian_weights_are_cached_and_equal_scipys():
    from voxzarr import _kernels

    def scipy_weights(sigma, order, radius):
        # correlate1d's weights, read back as scipy's response to a unit impulse (exact)
        imp = np.zeros(2 * radius + 1)
        imp[radius] = 1.0
        return ndi.gaussian_filter1d(imp, sigma, order=order, mode="constant",
                                     radius=radius)[::-1]

    a = _kernels.gaussian_weights(2.0, 0, 4.0, None)
    assert _kernels.gaussian_weights(2, 0, 4, None) is a  # one shared array
    np.testing.assert_array_equal(a, scipy_weights(2.0, 0, 8))
    np.testing.assert_array_equal(_kernels.gaussian_weights(1.5, 1, 4.0, 3),
                                  scipy_weights(1.5, 1, 3))
