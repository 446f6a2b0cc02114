"""Geometry through xarray operations: every result matches what a person computes by hand.

A result's voxel size and origin are either exactly the hand-computed ones or, where one
sample cannot show its spacing, a clear ``GeometryError``; never a stale spacing.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import voxzarr as vz
from voxzarr.errors import ArgumentError, GeometryError
from voxzarr.gridindex import GRID_ATTR, GridIndex

SPACINGS = st.sampled_from([0.202, 0.5, 1.0, 2.0, 3.7])
ORIGINS = st.sampled_from([0.0, -1.5, 10.25, 1000.0])


def _image(n: int, s: float, t0: float) -> xr.DataArray:
    data = np.arange(n * 3 * 2, dtype=np.float64).reshape(n, 3, 2)
    return vz.from_array(data, dims="zyx", voxel_size={"z": s, "y": 1.0, "x": 1.0},
                         translation={"z": t0}, units="micrometer")


def _check(result: xr.DataArray, spacing: float, origin: float) -> None:
    assert result.vox.voxel_size["z"] == pytest.approx(spacing, rel=1e-12)
    assert result.vox.origin["z"] == pytest.approx(origin, rel=1e-12, abs=1e-12)


def _certain_or_refused(result: xr.DataArray, spacing: float, origin: float,
                        certain: bool) -> None:
    """Hand values where the spacing is certain; else either those values or a refusal."""
    try:
        geo = result.vox.voxel_size["z"], result.vox.origin["z"]
    except GeometryError as err:
        assert not certain, f"refused a certain spacing: {err}"
        assert "set_voxel_size" in str(err)
        return
    assert geo[0] == pytest.approx(spacing, rel=1e-12)
    assert geo[1] == pytest.approx(origin, rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------- worked cases
def test_strided_then_single_reports_the_stride():
    img = vz.from_array(np.zeros((8, 8, 8)), dims="zyx", voxel_size={"z": 2, "y": 1, "x": 1})
    assert img[::4][0:1].vox.voxel_size["z"] == 8.0
    assert img[::4][1:2].vox.origin["z"] == 8.0


def test_coarsen_whole_axis_reports_the_block():
    img = vz.from_array(np.zeros((8, 8, 8)), dims="zyx", voxel_size={"z": 2, "y": 1, "x": 1})
    out = img.coarsen(z=8).mean()
    assert out.vox.voxel_size["z"] == 16.0
    assert out.vox.origin["z"] == 7.0


def test_wrong_scale_is_never_written(tmp_path):
    img = vz.from_array(np.ones((8, 8, 8), "uint16"), dims="zyx",
                        voxel_size={"z": 2, "y": 1, "x": 1})
    img[::4][0:1].vox.to_ome_zarr(tmp_path / "a.ome.zarr")
    back = vz.open_image(tmp_path / "a.ome.zarr")
    assert back.vox.voxel_size["z"] == 8.0
    img.coarsen(z=8).mean().vox.to_ome_zarr(tmp_path / "b.ome.zarr")
    assert vz.open_image(tmp_path / "b.ome.zarr").vox.voxel_size["z"] == 16.0
    # one plane chosen after the index was dropped: refused, nothing written
    plane = img.isel(z=3).expand_dims("z")
    with pytest.raises(GeometryError, match="set_voxel_size"):
        plane.vox.to_ome_zarr(tmp_path / "c.ome.zarr")
    assert not (tmp_path / "c.ome.zarr").exists()
    fixed = plane.vox.set_voxel_size({"z": 2.0})
    assert fixed.vox.voxel_size["z"] == 2.0 and fixed.vox.origin["z"] == 6.0


def test_odd_whole_axis_coarsen_is_refused_not_guessed():
    # the mean of 3 planes sits on the middle plane: indistinguishable from picking it
    img = _image(3, 2.0, 0.0)
    with pytest.raises(GeometryError, match="one sample"):
        _ = img.coarsen(z=3).mean().vox.voxel_size


def test_chain_after_dropped_index_is_refused():
    # coarsen keeps length 4 (plain index), then one block is picked: spacing 4 is not
    # certain from attributes alone, so it is refused rather than guessed
    img = _image(8, 2.0, 0.0)
    blocks = img.coarsen(z=2).mean()
    _check(blocks, 4.0, 1.0)
    with pytest.raises(GeometryError):
        _ = blocks[1:2].vox.voxel_size


def test_index_type_and_grid_attribute():
    img = _image(6, 0.5, 1.0)
    assert isinstance(img.xindexes["z"], GridIndex)
    assert img.z.attrs[GRID_ATTR] == [1.0, 0.5, 6]
    sub = img[1::2]
    assert isinstance(sub.xindexes["z"], GridIndex)
    assert sub.z.attrs[GRID_ATTR] == [1.5, 1.0, 3]


def test_alignment_with_plain_coordinates():
    img = _image(4, 2.0, 0.0)
    plain = xr.DataArray(np.ones((4, 3, 2)), dims=("z", "y", "x"),
                         coords={"z": img.z.values, "y": img.y.values, "x": img.x.values})
    total = img + plain
    _check(total, 2.0, 0.0)
    np.testing.assert_array_equal(total.values, img.values + 1)


def test_dataset_zarr_round_trip_of_one_plane(tmp_path):
    img = _image(8, 2.0, 0.0)[::4][1:2]
    xr.Dataset({"image": img}).to_zarr(tmp_path / "x.zarr", consolidated=False)
    back = xr.open_zarr(tmp_path / "x.zarr", consolidated=False)["image"]
    _check(back, 8.0, 8.0)


def test_pickle_keeps_the_step():
    import pickle

    one = _image(8, 2.0, 0.0)[::4][0:1]
    again = pickle.loads(pickle.dumps(one))
    _check(again, 8.0, 0.0)


# --------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), s=SPACINGS, t0=ORIGINS,
       slices=st.lists(st.tuples(st.integers(-12, 12) | st.none(),
                                 st.integers(-12, 12) | st.none(),
                                 st.integers(1, 4) | st.none()), min_size=1, max_size=3))
def test_isel_with_steps(n, s, t0, slices):
    img = _image(n, s, t0)
    positions = np.arange(n)
    stride = 1
    out = img
    for a, b, k in slices:
        sl = slice(a, b, k)
        if len(positions[sl]) == 0:
            continue
        positions = positions[sl]
        stride *= k or 1
        out = out.isel(z=sl)
    _check(out, stride * s, t0 + positions[0] * s)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 12), s=SPACINGS, t0=ORIGINS, data=st.data())
def test_sel_with_slices_and_lists(n, s, t0, data):
    img = _image(n, s, t0)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(i, n - 1))
    out = img.sel(z=slice(t0 + i * s, t0 + j * s))
    _check(out, s, t0 + i * s)
    k = data.draw(st.integers(1, 3))
    picks = list(range(i, n, k))
    out = img.sel(z=[t0 + p * s for p in picks])
    _check(out, k * s if len(picks) > 1 else s, t0 + i * s)
    out = img.isel(z=[i])  # one plane picked by an integer list: a plane of the grid
    _check(out, s, t0 + i * s)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), s=SPACINGS, t0=ORIGINS, k=st.integers(1, 6),
       boundary=st.sampled_from(["trim", "exact"]), how=st.sampled_from(["mean", "max"]))
def test_coarsen(n, s, t0, k, boundary, how):
    if k > n or (boundary == "exact" and n % k):
        return
    img = _image(n, s, t0)
    out = getattr(img.coarsen(z=k, boundary=boundary), how)()
    m = n // k
    certain = m >= 2 or k == 1 and n == 1 or (k == n and n % 2 == 0)
    _certain_or_refused(out, k * s, t0 + (k - 1) / 2 * s, certain)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), s=SPACINGS, t0=ORIGINS, w=st.integers(1, 4),
       stride=st.integers(1, 4))
def test_rolling_reductions_and_arithmetic(n, s, t0, w, stride):
    img = _image(n, s, t0)[::stride]
    spacing = s * stride
    _check(img.rolling(z=min(w, img.sizes["z"])).mean(), spacing, t0)
    _check(img * 2 + img, spacing, t0)
    _check(np.sqrt(abs(img)), spacing, t0)
    _check(xr.where(img > 3, img, 0), spacing, t0)
    _check(img.mean("x"), spacing, t0)
    _check(img.cumsum("z"), spacing, t0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 12), s=SPACINGS, t0=ORIGINS, data=st.data())
def test_concat_of_consecutive_pieces(n, s, t0, data):
    img = _image(n, s, t0)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=3))))
    edges = [0, *cuts, n]
    pieces = [img.isel(z=slice(a, b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    whole = xr.concat(pieces, dim="z")
    _check(whole, s, t0)
    np.testing.assert_array_equal(whole.values, img.values)
    # two single planes a stride apart
    k = data.draw(st.integers(1, n - 1))
    pair = xr.concat([img.isel(z=slice(0, 1)), img.isel(z=slice(k, k + 1))], dim="z")
    _check(pair, k * s, t0)
    # one piece on its own keeps its step
    _check(xr.concat([img[::2][0:1]], dim="z"), 2 * s, t0)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 12), s=SPACINGS, t0=ORIGINS, m=st.integers(1, 9),
       step=st.sampled_from([0.25, 0.5, 1.5]))
def test_interp(n, s, t0, m, step):
    img = _image(n, s, t0)
    new = t0 + np.arange(m) * step * s
    out = img.interp(z=new)
    if m >= 2:
        _check(out, step * s, t0)
    else:
        with pytest.raises(GeometryError, match="one sample"):
            _ = out.vox.voxel_size


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 10), s=SPACINGS, t0=ORIGINS, stride=st.integers(1, 4))
def test_written_scale_matches_hand_value(tmp_path_factory, n, s, t0, stride):
    img = _image(n, s, t0)[::stride]
    path = tmp_path_factory.mktemp("geo") / "x.ome.zarr"
    img.vox.to_ome_zarr(path)
    back = vz.open_image(path)
    _check(back, stride * s, t0)


def test_set_voxel_size_and_origin_per_axis_in_dims_order():
    img = vz.from_array(np.zeros((2, 3, 4)), "zyx", voxel_size=1)
    out = img.vox.set_voxel_size((2.0, 0.5, 0.25), origin=(10.0, 1.0, -1.0))
    assert out.vox.voxel_size == {"z": 2.0, "y": 0.5, "x": 0.25}
    assert out.vox.origin == {"z": 10.0, "y": 1.0, "x": -1.0}
    with pytest.raises(GeometryError, match="not physical axes") as info:
        img.vox.set_voxel_size({"q": 1.0})
    assert info.value.field == "voxel_size"
    with pytest.raises(ArgumentError, match="must be numbers") as info:
        img.vox.set_voxel_size({"z": "thin"})
    assert info.value.field == "voxel_size"
    with pytest.raises(ArgumentError, match="2 values for the 3") as info:
        img.vox.set_voxel_size(origin=(1.0, 2.0))
    assert info.value.field == "origin"

