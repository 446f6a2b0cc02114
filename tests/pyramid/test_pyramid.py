"""Pyramid planning, placement and block-reduce kernels (in memory; I/O is in test_pyramid_io)."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import dask.array as da
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

import voxzarr as vz
from voxzarr import VoxzarrError
from voxzarr._downsample import gaussian_sigma, nearest_offset
from voxzarr.pyramid import PyramidError, build_pyramid, parse_factors, plan_pyramid

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _img(arr, voxel=None, origin=None, dims=None, attrs=None):
    dims = dims or "zyx"[-np.ndim(arr):]
    return vz.from_array(arr, dims, voxel_size=voxel or dict.fromkeys(dims, 1.0),
                         translation=origin, attrs=attrs)


def _levels(tree):
    return [tree[k].image for k in tree.children]


# ----------------------------------------------------------------------------- numpy reference
def _ref_blocks(x: np.ndarray, factors):
    """Whole-array reference: {output index: 1-D array of the block's voxels present}."""
    out_shape = tuple(-(-n // k) for n, k in zip(x.shape, factors, strict=True))
    blocks = {}
    for idx in np.ndindex(*out_shape):
        sl = tuple(slice(i * k, min((i + 1) * k, n))
                   for i, k, n in zip(idx, factors, x.shape, strict=True))
        blocks[idx] = x[sl].ravel()
    return out_shape, blocks


def _ref_reduce(x: np.ndarray, factors, method: str) -> np.ndarray:
    """Block reduce written the plain way, one output voxel at a time."""
    if method == "nearest":
        return x[tuple(slice(nearest_offset(k), None, k) for k in factors)]
    if method == "gaussian":
        return _ref_gaussian(x, factors)
    out_shape, blocks = _ref_blocks(x, factors)
    out = np.empty(out_shape, dtype=x.dtype)
    integer = x.dtype.kind in "iu"
    for idx, v in blocks.items():
        if method == "mean":
            out[idx] = (round(Fraction(int(v.astype(object).sum()), v.size)) if integer
                        else v.astype(np.float64).sum() / v.size)
        elif method == "min":
            out[idx] = v.min()
        elif method == "max":
            out[idx] = v.max()
        elif method == "median":
            m = np.median(v.astype(np.float64))
            out[idx] = np.rint(m) if integer else m
        elif method == "mode":
            counts = Counter(v.tolist())
            best = max(counts.values())
            out[idx] = min(val for val, c in counts.items() if c == best)
    return out


def _ref_gaussian(x: np.ndarray, factors) -> np.ndarray:
    """scipy on the whole image, then a block mean summing axis by axis in index order."""
    smooth = ndi.gaussian_filter(x.astype(np.float64), [gaussian_sigma(k) for k in factors],
                                 mode="nearest", truncate=4.0)
    acc, count = smooth, np.ones((), dtype=np.float64)
    for ax, k in enumerate(factors):
        n = acc.shape[ax]
        m = -(-n // k)
        pad = [(0, 0)] * acc.ndim
        pad[ax] = (0, m * k - n)
        blocks = np.moveaxis(np.pad(acc, pad), ax, -1)
        blocks = blocks.reshape(blocks.shape[:-1] + (m, k))
        s = blocks[..., 0]
        for i in range(1, k):
            s = s + blocks[..., i]
        acc = np.moveaxis(s, -1, ax)
        c = np.array([min(k, n - j * k) for j in range(m)], dtype=np.float64)
        count = count * c.reshape([-1 if a == ax else 1 for a in range(acc.ndim)])
    out = acc / count
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(x.dtype)


@st.composite
def _case(draw, methods=("mean", "min", "max", "median", "mode", "nearest", "gaussian")):
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.lists(st.integers(1, 11), min_size=ndim, max_size=ndim)))
    factors = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    if all(k == 1 for k in factors):
        factors = (2,) + factors[1:]
    dtype = np.dtype(draw(st.sampled_from(
        ["uint8", "int16", "uint16", "int32", "float32", "float64"])))
    method = draw(st.sampled_from(methods))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":  # multiples of 1/8: every sum below is exact whatever its order
        x = (rng.integers(-64, 64, shape) / 8).astype(dtype)
    else:
        info = np.iinfo(dtype)
        hi = 6 if method == "mode" else int(info.max) + 1  # repeats make modes meaningful
        x = rng.integers(info.min, hi, shape, dtype=np.int64).astype(dtype)
    chunks = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    return x, factors, method, chunks


# ----------------------------------------------------------------------------- planning
def test_bead_first_levels_halve_only_y_and_x(data_dir):
    arr = tifffile.imread(data_dir / "3d" / "Bead_Image1_crop.tif")
    img = _img(arr, {"z": 0.125, "y": 0.02249, "x": 0.02249})
    plan = plan_pyramid(img, min_size=8)
    assert plan.factors[1:3] == ((1, 2, 2), (1, 2, 2))  # z 5.6x coarser: y, x catch up
    assert plan.factors[3] == (2, 2, 2)  # y, x within sqrt 2 of z: everything halves
    assert plan.shapes[:4] == ((41, 150, 150), (41, 75, 75), (41, 38, 38), (21, 19, 19))
    tree = build_pyramid(img, min_size=8)
    sizes = [lv.vox.voxel_size for lv in _levels(tree)]
    assert sizes[2] == pytest.approx({"z": 0.125, "y": 0.08996, "x": 0.08996}, rel=1e-12)
    assert sizes[3] == pytest.approx({"z": 0.25, "y": 0.17992, "x": 0.17992}, rel=1e-12)


def test_default_plan_stops_at_one_chunk():
    x = da.zeros((128, 1024, 1024), dtype="uint16", chunks=(128, 256, 256))
    img = _img(x, {"z": 1.0, "y": 0.2, "x": 0.2})
    plan = plan_pyramid(img)  # default chunks are 128^3: no axis is halved below 128
    assert plan.shapes == ((128, 1024, 1024), (128, 512, 512), (128, 256, 256),
                           (128, 128, 128))
    plan = plan_pyramid(img, min_size=32)
    assert plan.shapes == ((128, 1024, 1024), (128, 512, 512), (128, 256, 256),
                           (64, 128, 128), (32, 64, 64), (32, 32, 32))
    plan = plan_pyramid(img, chunks=(32, 64, 64))  # one chunk of what will be written
    assert plan.shapes[-1] == (32, 64, 64)


def test_thin_stack_keeps_its_few_planes():
    img = _img(da.zeros((30, 4000, 4000), dtype="uint8"), {"z": 1.0, "y": 0.1, "x": 0.1})
    plan = plan_pyramid(img, min_size=64)
    assert [s[0] for s in plan.shapes] == [30] * 6  # 15 planes would be under min_size
    assert plan.shapes[-1] == (30, 125, 125)  # 63 < 64 stops y and x


def test_exhausted_axis_lets_the_others_approach_isotropy():
    img = _img(da.zeros((8, 256, 1024), dtype="uint8"), {"z": 4.0, "y": 1.0, "x": 0.25})
    plan = plan_pyramid(img, min_size=8)
    # z cannot halve (8 -> 4 < 8): x (4x finer than y) halves alone until within sqrt 2
    assert plan.factors[1:4] == ((1, 1, 2), (1, 1, 2), (1, 2, 2))


def test_levels_count_and_unreachable_count():
    img = _img(np.zeros((4, 9), "uint8"), {"y": 1.0, "x": 1.0})
    plan = plan_pyramid(img, levels=5)  # no min_size: axes may shrink to one voxel
    assert plan.shapes == ((4, 9), (2, 5), (1, 3), (1, 2), (1, 1))
    with pytest.raises(PyramidError, match="cannot build 6 levels"):
        plan_pyramid(img, levels=6)
    assert plan_pyramid(img, levels=1).shapes == ((4, 9),)


def test_explicit_factors():
    img = _img(np.zeros((10, 20, 20), "uint8"))
    assert plan_pyramid(img, factors=[(1, 2, 2), {"z": 2}, 3]).factors[1:] == (
        (1, 2, 2), (2, 1, 1), (3, 3, 3))
    assert plan_pyramid(img, factors=[(1, 2, 2)]).shapes == ((10, 20, 20), (10, 10, 10))
    assert plan_pyramid(img, factors={"x": 2}, min_size=5).shapes[-1] == (10, 20, 5)
    assert plan_pyramid(img, factors=2, levels=3).shapes[-1] == (3, 5, 5)
    assert parse_factors("1,2,2;z=2;3") == [[1, 2, 2], {"z": 2}, 3]


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(factors=[0]), "integer >= 1"),
    (dict(factors=[2.5]), "integer >= 1"),
    (dict(factors=[True]), "integer >= 1"),
    (dict(factors=[(1, 2)]), "one per spatial axis"),
    (dict(factors=[(1, 1, 1)]), "does not reduce"),
    (dict(factors=[{"q": 2}]), "no axis 'q'"),
    (dict(factors=[2, 2], levels=2), "2 factor entries for 2 levels"),
    (dict(factors=[(1, 1, 64)], method="nearest"), "would be empty"),
    (dict(levels=0), "integer >= 1"),
    (dict(min_size=0), "integer >= 1"),
    (dict(min_size={"t": 2}), "no spatial axis 't'"),
    (dict(method="bilinear"), "unknown method 'bilinear'"),
])
def test_bad_arguments_are_clear(kwargs, match):
    img = _img(np.zeros((4, 8, 8), "uint16"))
    with pytest.raises(PyramidError, match=match) as info:
        plan_pyramid(img, **kwargs)
    assert isinstance(info.value, VoxzarrError) and isinstance(info.value, ValueError)
    assert info.value.field is not None


def test_time_and_channel_are_never_reduced():
    img = vz.from_array(np.zeros((3, 2, 8, 8), "uint8"), "tcyx", channel_names=["a", "b"])
    tree = img.vox.pyramid(levels=3)
    assert [lv.shape for lv in _levels(tree)] == [(3, 2, 8, 8), (3, 2, 4, 4), (3, 2, 2, 2)]
    assert list(_levels(tree)[2].c.values) == ["a", "b"]
    with pytest.raises(PyramidError, match="never downsampled"):
        plan_pyramid(img, factors=[{"t": 2, "x": 2}])


def test_other_bad_input():
    with pytest.raises(PyramidError, match="DataArray"):
        build_pyramid(np.zeros((4, 4)))
    img = _img(np.zeros((4, 4), bool))
    with pytest.raises(PyramidError, match="bool"):
        plan_pyramid(img)
    assert plan_pyramid(img, method="max").method == "max"
    with pytest.raises(PyramidError, match="complex"):
        plan_pyramid(_img(np.zeros((4, 4), complex)))
    with pytest.raises(VoxzarrError, match="device"):
        build_pyramid(_img(np.zeros((4, 4), "uint8")), device="tpu")
    with pytest.raises(VoxzarrError, match="no voxel size"):
        plan_pyramid(__import__("xarray").DataArray(np.zeros((4, 4)), dims=("y", "x")))


def test_label_images_default_to_mode_and_refuse_averaging():
    lab = _img(np.zeros((8, 8), "uint16"), attrs={"image-label": {}})
    assert plan_pyramid(lab).method == "mode"
    for method in ("mean", "gaussian", "median"):
        with pytest.raises(PyramidError, match="not labels"):
            plan_pyramid(lab, method=method)
    assert plan_pyramid(lab, method="stride").method == "nearest"


# ----------------------------------------------------------------------------- placement
def test_placement_every_level():
    s0 = {"z": 0.7, "y": 0.2, "x": 0.2}
    t0 = {"z": -3.0, "y": 1.25, "x": 10.0}
    img = _img(np.zeros((9, 50, 47), "uint16"), s0, t0)
    for method in ("mean", "max", "gaussian"):
        tree = img.vox.pyramid(levels=5, method=method)
        k = {"z": 1, "y": 1, "x": 1}
        for i, lv in enumerate(_levels(tree)):
            if i:
                fac = plan_pyramid(img, levels=5).factors[i]
                k = {d: k[d] * f for d, f in zip("zyx", fac, strict=True)}
            for d in "zyx":
                assert lv.vox.voxel_size[d] == pytest.approx(k[d] * s0[d], rel=1e-12)
                assert lv.vox.origin[d] == pytest.approx(t0[d] + (k[d] - 1) * s0[d] / 2,
                                                         rel=1e-12, abs=1e-12)


def test_nearest_origin_is_the_kept_voxel():
    x = np.arange(7 * 10, dtype="uint16").reshape(7, 10)
    img = _img(x, {"y": 0.5, "x": 2.0}, {"y": 1.0, "x": 0.0})
    tree = img.vox.pyramid(factors=[3, 2], method="nearest")
    lv1, lv2 = _levels(tree)[1:]
    np.testing.assert_array_equal(lv1.values, x[1::3, 1::3])  # centre of 3: offset 1
    np.testing.assert_array_equal(lv2.values, x[1::3, 1::3][0::2, 0::2])
    # every kept voxel sits where level 0 has it
    for lv in (lv1, lv2):
        for d in "yx":
            assert set(np.round(lv[d].values, 9)) <= set(np.round(img[d].values, 9))


def _centroid(img):
    w = img.values.astype(np.float64)
    grids = np.meshgrid(*[img[d].values for d in img.dims], indexing="ij")
    return [float((g * w).sum() / w.sum()) for g in grids]


@pytest.mark.parametrize("method", ["mean", "gaussian", "nearest"])
def test_blob_centroid_stays_put(method):
    s0 = np.array([0.9, 0.25, 0.25])
    shape = (48, 160, 150)
    centre_vox = np.array([21.3, 77.6, 70.2])
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    r2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre_vox, s0, strict=True))
    arr = (60000 * np.exp(-r2 / (2 * 3.0**2))).astype("uint16")
    img = _img(arr, dict(zip("zyx", s0, strict=True)), {"z": 5.0, "y": -2.0, "x": 0.5})
    tree = img.vox.pyramid(levels=5, method=method)
    c0 = np.array(_centroid(img))
    for lv in _levels(tree)[1:]:
        err = np.abs(np.array(_centroid(lv)) - c0) / s0
        assert np.all(err < 0.1), (lv.shape, err)


@FAST
@given(n=st.integers(1, 40), k=st.integers(1, 5), levels=st.integers(1, 4),
       s=st.floats(0.01, 5), t=st.floats(-100, 100))
def test_extent_is_kept(n, k, levels, s, t):
    img = _img(np.zeros((n, 3), "uint8"), {"y": s, "x": 1.0}, {"y": t, "x": 0.0})
    tree = img.vox.pyramid(factors=[{"y": k} if k > 1 else {"x": 2}] * (levels - 1))
    lo, hi = img.vox.extent["y"]
    for lv in _levels(tree):
        kk = round(lv.vox.voxel_size["y"] / s)
        a, b = lv.vox.extent["y"]
        assert a == pytest.approx(lo, abs=1e-9 * (abs(lo) + s))  # lower edge identical
        # ceil(n / K) voxels: covers level 0, at most K - 1 level-0 voxels beyond it
        assert b == pytest.approx(lo + math.ceil(n / kk) * kk * s, rel=1e-9, abs=1e-9)
        assert hi - 1e-9 * s <= b < hi + kk * s
        if n % kk == 0:
            assert b == pytest.approx(hi, rel=1e-9, abs=1e-9)


# ----------------------------------------------------------------------------- values
@FAST
@given(_case())
def test_each_method_equals_whole_array_reference(case):
    x, factors, method, chunks = case
    assume(method != "nearest" or all(n > nearest_offset(k)
                                      for n, k in zip(x.shape, factors, strict=True)))
    img = _img(da.from_array(x, chunks=chunks))
    tree = build_pyramid(img, factors=[factors], method=method, device="cpu")
    got = _levels(tree)[1]
    expected = _ref_reduce(x, factors, method)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got.values, expected)


@settings(max_examples=25, deadline=None)
@given(_case(methods=("mean", "gaussian", "median", "mode")), st.integers(0, 2**32 - 1))
def test_chunked_levels_bit_identical_to_whole_array(case, seed):
    x, factors, method, chunks = case
    if x.dtype.kind == "f":  # non-dyadic floats: order of operations now matters
        x = np.random.default_rng(seed).standard_normal(x.shape).astype(x.dtype)
    fs = [factors, (2,) * x.ndim]
    whole = _levels(build_pyramid(_img(x), factors=fs, method=method, device="cpu"))
    chunked = _levels(build_pyramid(_img(da.from_array(x, chunks=chunks)), factors=fs,
                                    method=method, device="cpu", chunks=(3,) * x.ndim))
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a.values, b.values)


def test_integer_mean_rounds_half_to_even():
    x = np.array([[1, 2, 2, 3, 5, 6, 254, 255, 7]], dtype="uint8")
    got = _levels(_img(x).vox.pyramid(factors=[{"x": 2}]))[1].values
    np.testing.assert_array_equal(got, [[2, 2, 6, 254, 7]])  # 1.5, 2.5, 5.5, 254.5, 7
    y = np.array([[-3, -2, -1, 0, 3]], dtype="int16")
    got = _levels(_img(y).vox.pyramid(factors=[{"x": 2}]))[1].values
    np.testing.assert_array_equal(got, [[-2, 0, 3]])  # -2.5 -> -2, -0.5 -> 0, 3


def test_partial_last_block_uses_the_voxels_present():
    x = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype="float32")
    tree = _img(x).vox.pyramid(factors=[{"x": 2}])
    lv = _levels(tree)[1]
    np.testing.assert_array_equal(lv.values, [[1.5, 3.5, 5.0]])
    assert lv.x.values.tolist() == [0.5, 2.5, 4.5]


def test_mode_never_invents_labels():
    rng = np.random.default_rng(3)
    lab = np.zeros((20, 61, 59), "uint32")
    for value in rng.choice(10**6, size=25, replace=False):
        z, y, x = rng.integers(0, (20, 61, 59))
        lab[max(z - 3, 0):z + 3, max(y - 7, 0):y + 7, max(x - 7, 0):x + 7] = value
    img = _img(lab, attrs={"image-label": {"colors": [{"label-value": 1, "rgba": [1, 2, 3, 4]}]}})
    tree = img.vox.pyramid(levels=6)
    assert tree.attrs["pyramid_method"] == "mode"
    seen = set(np.unique(lab).tolist())
    for lv in _levels(tree):
        assert set(np.unique(lv.values).tolist()) <= seen
        assert lv.attrs["image-label"] == img.attrs["image-label"]


def test_ties_in_mode_pick_the_smallest_value():
    x = np.array([[7, 3, 3, 7, 9, 1, 1, 9]], dtype="uint16")
    got = _levels(_img(x).vox.pyramid(factors=[{"x": 4}], method="mode"))[1].values
    np.testing.assert_array_equal(got, [[3, 1]])


def test_pyramid_is_lazy():
    from voxzarr.testing import raise_if_dask_computes

    img = _img(da.ones((16, 64, 64), "uint16", chunks=16))
    with raise_if_dask_computes():
        tree = img.vox.pyramid(levels=3, method="gaussian")
    assert int(_levels(tree)[2].max()) == 1
