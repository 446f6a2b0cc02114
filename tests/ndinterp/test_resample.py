"""Physical-unit resampling: shapes, placement, anti-aliasing, labels, affine, rotate, CLI."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

import voxzarr as vz
from voxzarr import resample as rs
from voxzarr.cli import main
from voxzarr.errors import GeometryError, VoxzarrError


def _blob(shape, spacing, centre, width=1.5, origin=(0.0, 0.0, 0.0)):
    grids = np.meshgrid(*[o + np.arange(n) * s for n, s, o in zip(shape, spacing, origin,
                                                                    strict=True)],
                        indexing="ij")
    r2 = sum(((g - c) / width) ** 2 for g, c in zip(grids, centre, strict=True))
    return (np.exp(-r2 / 2) * 1000).astype(np.float32)


def _centroid(img: xr.DataArray) -> np.ndarray:
    v = np.asarray(img.values, dtype=np.float64)
    v = v / v.sum()
    out = []
    for k, d in enumerate(img.dims):
        shape = [1] * img.ndim
        shape[k] = -1
        out.append(float((v * img.coords[d].values.reshape(shape)).sum()))
    return np.array(out)


# ----------------------------------------------------------------------- shapes, placement
def test_isotropic_shape_example():
    img = vz.from_array(da.zeros((86, 396, 393), dtype=np.uint16, chunks=64), "zyx",
                        voxel_size={"z": 1.0, "y": 0.202, "x": 0.202})
    assert img.vox.to_isotropic(voxel_size=1).shape == (86, 80, 79)
    iso2 = img.vox.to_isotropic(voxel_size=1, zoom=2)
    assert iso2.shape == (172, 160, 159)
    assert iso2.vox.voxel_size == {"z": 0.5, "y": 0.5, "x": 0.5}
    assert img.vox.to_isotropic().shape == (426, 396, 393)  # default: finest spacing
    assert isinstance(iso2.data, da.Array)  # lazy


@pytest.mark.parametrize("target", [0.5, 0.202, 1.3])
def test_grid_starts_at_lower_edge(target):
    img = vz.from_array(np.zeros((10, 30, 31), np.float32), "zyx",
                        voxel_size={"z": 1.0, "y": 0.202, "x": 0.202},
                        translation={"z": 5.0, "y": -3.0, "x": 0.25}, units="micrometer")
    out = img.vox.resample(target)
    for d in "zyx":
        s, t = img.vox.voxel_size[d], img.vox.origin[d]
        assert out.vox.voxel_size[d] == pytest.approx(target, rel=1e-12)
        assert out.vox.origin[d] == pytest.approx(t + (target - s) / 2, abs=1e-12)
        assert out.vox.extent[d][0] == pytest.approx(img.vox.extent[d][0], abs=1e-12)
        n = img.sizes[d]
        assert out.sizes[d] == rs.output_length(n, s, target) == max(1, round(n * s / target))
        assert out.coords[d].attrs["units"] == "micrometer"


@pytest.mark.parametrize("order", [1, 3])
@pytest.mark.parametrize("kwargs", [{}, {"voxel_size": 1.0}, {"voxel_size": 1.0, "zoom": 2},
                                    {"voxel_size": 0.35}])
def test_blob_centroid_does_not_move(order, kwargs):
    spacing = (1.0, 0.202, 0.202)
    origin = (0.3, -2.0, 1.0)
    img = vz.from_array(_blob((36, 110, 100), spacing, (18.1, 9.3, 11.2), origin=origin),
                        "zyx", voxel_size=dict(zip("zyx", spacing, strict=True)),
                        translation=dict(zip("zyx", origin, strict=True)))
    out = img.vox.to_isotropic(order=order, **kwargs)
    assert np.all(np.abs(_centroid(out) - _centroid(img)) <= 0.05 * 0.202)


# ----------------------------------------------------------------------- equal to scipy
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["nearest", "reflect", "mirror", "grid-wrap", "constant"]),
       st.sampled_from([0, 1, 3]), st.tuples(*[st.floats(0.15, 2.0)] * 3),
       st.integers(3, 12))
def test_resample_equals_scipy_whole_array(mode, order, target, chunk):
    """No anti-aliasing: exactly scipy's affine_transform with the physical-index map."""
    rng = np.random.default_rng(int(chunk))
    data = rng.random((9, 14, 12)).astype(np.float32)
    spacing = (1.0, 0.4, 0.3)
    img = vz.from_array(da.from_array(data, chunks=chunk), "zyx",
                        voxel_size=dict(zip("zyx", spacing, strict=True)))
    out = rs.resample(img, dict(zip("zyx", target, strict=True)), order, mode=mode,
                      anti_alias=False, chunks=chunk + 2)
    m = np.array(target) / np.array(spacing)
    ref = ndi.affine_transform(data, np.diag(m), (m - 1) / 2, output_shape=out.shape,
                               order=order, mode=mode)
    tol = 1e-5 if order < 2 else 1e-4
    assert np.max(np.abs(out.values - ref)) <= tol * np.ptp(data)


def test_anti_alias_only_on_downsampled_axes():
    rng = np.random.default_rng(2)
    data = rng.random((8, 40, 44)).astype(np.float32)
    img = vz.from_array(da.from_array(data, chunks=(4, 13, 11)), "zyx",
                        voxel_size={"z": 1.0, "y": 0.25, "x": 0.2})
    out = img.vox.to_isotropic(voxel_size=0.5)  # z up by 2, y down by 2, x down by 2.5
    m = np.array([0.5, 2.0, 2.5])
    sigma = [0.0, rs.anti_alias_sigma(2.0), rs.anti_alias_sigma(2.5)]
    assert sigma == [0.0, 0.5, 0.75]
    smooth = np.asarray(data, np.float32)
    for ax, s in enumerate(sigma):
        if s:
            smooth = ndi.gaussian_filter1d(smooth, s, axis=ax, mode="nearest")
    ref = ndi.affine_transform(smooth, np.diag(m), (m - 1) / 2, output_shape=out.shape,
                               order=1, mode="nearest")
    np.testing.assert_allclose(out.values, ref, atol=1e-5)
    plain = img.vox.to_isotropic(voxel_size=0.5, anti_alias=False)
    assert not np.allclose(plain.values, out.values, atol=1e-3)


# ----------------------------------------------------------------------- dtypes, labels, axes
def test_integer_output_rounded_and_clipped():
    data = np.zeros((4, 12, 12), np.uint8)
    data[:, :, 6:] = 250  # a step: cubic splines overshoot above 255 and below 0
    img = vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 1.0, "x": 1.0})
    out = img.vox.resample({"x": 0.37}, order=3, anti_alias=False)
    assert out.dtype == np.uint8
    f = ndi.affine_transform(data.astype(np.float64), np.diag([1, 1, 0.37]),
                             [0, 0, (0.37 - 1) / 2], output_shape=out.shape, order=3,
                             mode="nearest")
    assert f.max() > 255.5 and f.min() < -0.5
    np.testing.assert_array_equal(out.values, np.clip(np.floor(f + 0.5), 0, 255))


@pytest.mark.parametrize("how", ["attrs", "flag"])
def test_labels_use_nearest_and_keep_values(how):
    rng = np.random.default_rng(0)
    lab = rng.choice(np.array([0, 3, 7, 200], np.uint16), size=(6, 20, 21))
    attrs = {"image-label": {"colors": []}} if how == "attrs" else {}
    img = vz.from_array(lab, "zyx", voxel_size={"z": 1.0, "y": 0.3, "x": 0.3}, attrs=attrs)
    out = img.vox.to_isotropic(voxel_size=0.45, order=3,
                               **({"labels": True} if how == "flag" else {}))
    assert set(np.unique(out.values)) <= {0, 3, 7, 200}
    m = np.array([0.45, 1.5, 1.5])
    ref = ndi.affine_transform(lab, np.diag(m), (m - 1) / 2, output_shape=out.shape,
                               order=0, mode="nearest")
    np.testing.assert_array_equal(out.values, ref)


def test_t_and_c_pass_through():
    rng = np.random.default_rng(4)
    data = rng.random((2, 3, 5, 16, 14)).astype(np.float32)
    img = vz.from_array(da.from_array(data, chunks=(1, 1, 5, 8, 7)), "tczyx",
                        voxel_size={"t": 2.5, "z": 1.0, "y": 0.5, "x": 0.5},
                        channel_names=["a", "b", "c"])
    out = img.vox.to_isotropic()
    assert out.dims == img.dims and out.shape == (2, 3, 10, 16, 14)
    assert list(out.coords["c"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(out.coords["t"].values, img.coords["t"].values)
    one = vz.from_array(data[1, 2], "zyx", voxel_size={"z": 1.0, "y": 0.5, "x": 0.5})
    np.testing.assert_allclose(out.values[1, 2], one.vox.to_isotropic().values, atol=1e-6)


def test_two_d_image_and_attrs_name_kept():
    img = vz.from_array(np.ones((20, 30), np.float32), "yx", voxel_size={"y": 0.5, "x": 1.0},
                        name="cells", attrs={"note": 1})
    out = img.vox.to_isotropic()
    assert out.shape == (20, 60) and out.name == "cells" and out.attrs == {"note": 1}
    np.testing.assert_allclose(out.values, 1.0)


def test_real_bead_stack(data_dir):
    tifffile = pytest.importorskip("tifffile")
    data = tifffile.imread(data_dir / "3d" / "Bead_Image1_crop.tif")
    assert data.shape == (41, 150, 150)
    img = vz.from_array(data, "zyx", voxel_size={"z": 0.125, "y": 0.02249, "x": 0.02249})
    out = img.vox.to_isotropic(voxel_size=0.05)
    assert out.shape == (103, 67, 67) and out.dtype == np.uint8  # 102.5 rounds up
    bright = img.where(img > 60, 0)
    bright_out = out.where(out > 60, 0)
    # the bright beads stay where they were (to a fraction of the finer voxel)
    assert np.all(np.abs(_centroid(bright_out) - _centroid(bright)) < 0.5 * 0.05)


# ----------------------------------------------------------------------- affine, rotate
def test_affine_identity_keeps_grid_and_values():
    rng = np.random.default_rng(1)
    data = rng.random((7, 12, 10)).astype(np.float32)
    img = vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 0.3, "x": 0.3},
                        translation={"z": 2.0, "y": 1.0, "x": -1.0})
    out = img.vox.affine(np.eye(4))
    assert out.shape == img.shape
    for d in "zyx":
        np.testing.assert_allclose(out.coords[d].values, img.coords[d].values, atol=1e-12)
    np.testing.assert_allclose(out.values, data, atol=1e-6)


def test_affine_translation_moves_content():
    data = np.zeros((5, 20, 20), np.float32)
    data[2, 5, 7] = 1.0
    img = vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 0.5, "x": 0.5})
    shift = np.eye(4)
    shift[1, 3] = 1.5  # move +1.5 um in y, onto the input grid
    out = img.vox.affine(shift, output_grid=img, order=1)
    assert out.shape == img.shape
    assert np.argwhere(out.values > 0.99).tolist() == [[2, 8, 7]]


def test_affine_output_grid_dict_and_matrix_errors():
    img = vz.from_array(np.ones((4, 10, 10), np.float32), "zyx", voxel_size=0.5)
    out = img.vox.affine(np.eye(3), output_grid={"voxel_size": 0.25, "origin": {"z": 0.0}})
    assert out.vox.voxel_size == {"z": 0.25, "y": 0.25, "x": 0.25}
    assert out.shape == (8, 20, 20) and out.vox.origin["z"] == 0.0
    for bad in (np.eye(2), np.eye(5), np.zeros((3, 3)), np.full((3, 3), np.nan)):
        with pytest.raises(GeometryError) as err:
            img.vox.affine(bad)
        assert err.value.field == "matrix"


def test_rotate_matches_scipy_for_isotropic_voxels():
    rng = np.random.default_rng(8)
    data = ndi.gaussian_filter(rng.random((6, 30, 26)), 1).astype(np.float32)
    img = vz.from_array(da.from_array(data, chunks=(3, 11, 9)), "zyx", voxel_size=0.4)
    out = img.vox.rotate(25.0, axes=("y", "x"), reshape=False, order=1)
    ref = ndi.rotate(data, 25.0, axes=(1, 2), reshape=False, order=1, mode="constant")
    np.testing.assert_allclose(out.values, ref, atol=1e-5)


def test_rotate_anisotropic_quarter_turn_swaps_extents():
    img = vz.from_array(np.ones((3, 40, 10), np.float32), "zyx",
                        voxel_size={"z": 1.0, "y": 0.25, "x": 0.5})
    out = img.vox.rotate(90.0, reshape=True)
    ext_in, ext_out = img.vox.extent, out.vox.extent
    assert ext_out["y"][1] - ext_out["y"][0] == pytest.approx(ext_in["x"][1] - ext_in["x"][0])
    assert ext_out["x"][1] - ext_out["x"][0] == pytest.approx(ext_in["y"][1] - ext_in["y"][0])
    assert out.vox.voxel_size == img.vox.voxel_size
    assert out.shape == (3, 20, 20)


def test_pull_reduction_is_the_row_norm():
    c, s_ = np.cos(0.3), np.sin(0.3)
    assert rs.pull_reduction(np.array([[c, s_], [-s_, c]])) == [1.0, 1.0]
    assert rs.pull_reduction(np.diag([2.0, 0.5])) == [2.0, 0.5]
    assert rs.pull_reduction(2 * np.array([[c, s_], [-s_, c]])) == pytest.approx([2.0, 2.0])


def test_affine_anti_alias_smooths_only_coarsely_sampled_axes():
    """A 2x shrink with a rotation: the chunked result equals scipy's whole-array Gaussian
    (sigma (2 - 1) / 2 on y and x, none on z) followed by the plain transform."""
    rng = np.random.default_rng(3)
    data = rng.random((4, 40, 36)).astype(np.float32)
    img = vz.from_array(da.from_array(data, chunks=(2, 13, 11)), "zyx", voxel_size=0.5)
    t = np.deg2rad(30.0)
    fwd = np.eye(3)
    fwd[1:, 1:] = 0.5 * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    out = img.vox.affine(fwd, order=1)
    plain = img.vox.affine(fwd, order=1, anti_alias=False)
    smooth = ndi.gaussian_filter(data.astype(np.float64), (0, 0.5, 0.5), mode="constant",
                                 truncate=4.0).astype(np.float32)
    ref = vz.from_array(smooth, "zyx", voxel_size=0.5).vox.affine(fwd, order=1,
                                                                   anti_alias=False).values
    np.testing.assert_allclose(out.values, ref, atol=1e-5)
    assert not np.allclose(out.values, plain.values, atol=1e-3)
    # a rotation at the same voxel size samples no axis more coarsely: nothing smoothed
    rot = img.vox.rotate(30.0, reshape=False)
    np.testing.assert_array_equal(rot.values,
                                  img.vox.rotate(30.0, reshape=False, anti_alias=False).values)


def test_affine_anti_alias_damps_a_nyquist_pattern():
    y = np.arange(64)
    stripes = np.broadcast_to(((y % 2) * 1000.0)[None, :, None], (2, 64, 16)).astype(np.float32)
    img = vz.from_array(stripes.copy(), "zyx", voxel_size=1.0)
    shrink = np.diag([1.0, 1 / 3, 1.0])
    aliased = img.vox.affine(shrink, anti_alias=False, mode="nearest").values
    smooth = img.vox.affine(shrink, anti_alias=True, mode="nearest").values
    assert np.ptp(aliased[:, 2:-2]) > 500  # stripes alias to a false pattern
    assert np.ptp(smooth[:, 2:-2]) < 0.1 * np.ptp(aliased[:, 2:-2])


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,field", [
    ({"voxel_size": 0}, "voxel_size"),
    ({"voxel_size": -1}, "voxel_size"),
    ({"voxel_size": float("nan")}, "voxel_size"),
    ({"zoom": 0}, "zoom"),
    ({"zoom": float("inf")}, "zoom"),
    ({"mode": "edge"}, "mode"),
    ({"order": 7}, "order"),
    ({"device": "tpu"}, "device"),
    ({"voxel_size": (1.0, 1.0, 1.0)}, "voxel_size"),
])
def test_bad_parameters(kwargs, field):
    img = vz.from_array(np.zeros((4, 5, 6), np.float32), "zyx", voxel_size=1.0)
    with pytest.raises(VoxzarrError) as err:
        img.vox.to_isotropic(**kwargs).compute()
    assert err.value.field == field


def test_resample_voxel_size_per_axis_in_dims_order():
    rng = np.random.default_rng(3)
    img = vz.from_array(rng.random((6, 8, 10)).astype(np.float32), "zyx",
                        voxel_size=(2.0, 1.0, 1.0))
    by_order = img.vox.resample((1.0, 0.5, 2.0))
    by_name = img.vox.resample({"z": 1.0, "y": 0.5, "x": 2.0})
    assert by_order.vox.voxel_size == {"z": 1.0, "y": 0.5, "x": 2.0}
    xr.testing.assert_identical(by_order, by_name)
    with pytest.raises(GeometryError, match="2 values for the spatial axes") as err:
        img.vox.resample((1.0, 0.5))
    assert err.value.field == "voxel_size"
    with pytest.raises(GeometryError) as err:
        img.vox.resample((1.0, 0.5, 0.0))
    assert err.value.field == "voxel_size.x"


def test_missing_voxel_size_and_bad_dims():
    bare = xr.DataArray(np.zeros((4, 5, 6)), dims=("z", "y", "x"))
    with pytest.raises(GeometryError):
        bare.vox.to_isotropic()
    img = vz.from_array(np.zeros((4, 5, 6), np.float32), "zyx", voxel_size=1.0)
    with pytest.raises(GeometryError):
        img.vox.resample({"t": 1.0})
    with pytest.raises(GeometryError):
        img.vox.resample({"z": -2.0})
    with pytest.raises(GeometryError):
        img.vox.rotate(10, axes=("z", "z"))


def test_size_guard_needs_chunks():
    img = vz.from_array(da.zeros((64, 64, 64), dtype=np.uint16, chunks=32), "zyx",
                        voxel_size=1.0)
    with pytest.raises(VoxzarrError) as err:
        img.vox.to_isotropic(zoom=4, max_bytes="10 MB")
    assert err.value.field == "chunks"
    out = img.vox.to_isotropic(zoom=4, max_bytes="10 MB", chunks=64)
    assert out.shape == (256, 256, 256) and out.data.chunksize == (64, 64, 64)


def test_gpu_request_without_gpu():
    from voxzarr._xp import gpu_available

    if gpu_available():
        pytest.skip("a GPU is present")
    img = vz.from_array(np.zeros((4, 5, 6), np.float32), "zyx", voxel_size=1.0)
    with pytest.raises(VoxzarrError) as err:
        img.vox.to_isotropic(device="gpu")
    assert err.value.field == "device"


# ----------------------------------------------------------------------- CLI
def test_cli_isotropic_streams_ome_zarr(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = (rng.random((6, 40, 36)) * 1000).astype(np.uint16)
    img = vz.from_array(data, "zyx", voxel_size={"z": 1.0, "y": 0.25, "x": 0.25},
                        translation={"z": 3.0, "y": 0.0, "x": 0.0})
    src, dst = tmp_path / "in.ome.zarr", tmp_path / "out.ome.zarr"
    img.vox.to_ome_zarr(src)
    assert main(["isotropic", str(src), str(dst), "--chunks", "16", "--no-progress"]) == 0
    assert "shape (24, 40, 36)" in capsys.readouterr().out
    out = vz.open_image(dst)
    assert out.vox.voxel_size == {"z": 0.25, "y": 0.25, "x": 0.25}
    assert out.vox.origin["z"] == pytest.approx(3.0 - 0.375)
    assert out.data.chunksize == (16, 16, 16)
    np.testing.assert_array_equal(out.values, img.vox.to_isotropic().values)
    assert main(["isotropic", str(src), str(dst), "--no-progress"]) == 1  # exists
    assert main(["isotropic", str(src), str(dst), "--zoom", "-1", "--overwrite",
                 "--no-progress"]) == 1
    assert main(["isotropic", str(src), str(dst), "--voxel-size", "0.5", "--zoom", "2",
                 "--overwrite", "--no-progress"]) == 0
    assert vz.open_image(dst).shape == (24, 40, 36)


@pytest.mark.parametrize("mode", ["nearest", "reflect", "grid-mirror", "grid-constant",
                                  "wrap", "mirror"])
@pytest.mark.parametrize("shape", [(5, 17, 23), (20, 256, 260)])  # the second: > 4 MB
def test_anti_alias_pass_is_scipy_bit_for_bit(mode, shape):
    """The CPU anti-aliasing Gaussian (compiled, split over cores for large regions) gives
    exactly what scipy's gaussian_filter1d gives, pass by pass."""
    from voxzarr.ndinterp._blocks import _GAUSS_MODE, _smooth

    rng = np.random.default_rng(11)
    region = rng.integers(0, 4000, shape).astype(np.uint16)
    sigma = (0.0, 0.5, 0.75)
    for cdtype in (np.dtype(np.float32), np.dtype(np.float64)):
        got = _smooth(region, sigma, mode, 3.0, 4.0, cdtype)
        want = region.astype(cdtype)
        for ax, s in enumerate(sigma):
            if s:
                want = ndi.gaussian_filter1d(want, s, axis=ax,
                                             mode=_GAUSS_MODE.get(mode, mode), cval=3.0,
                                             truncate=4.0, output=cdtype)
        assert got.dtype == cdtype
        np.testing.assert_array_equal(got, want)
